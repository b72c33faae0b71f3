"""create_app(settings): the WSGI application. No global app object."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from federica import logs
from federica.config import Settings, SettingsError
from federica.context import Context, make_context
from federica.files import write_private
from federica.web.context import EXTENSION_KEY

if TYPE_CHECKING:
    from cheroot.wsgi import Server as FederationServer
    from cheroot.wsgi import Server as GeniServer


def create_app(settings: Settings, *, context: Context | None = None) -> Flask:
    from federica.web import register_web
    from federica.web.api.login import register_oidc

    logs.configure(settings)
    app = Flask("federica")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = context or make_context(settings)
    app.secret_key = secret_key(settings)
    # The session cookie carries the portal's sign-in and an OIDC login's state between
    # two redirects; never readable by scripts, never sent on cross-site posts, Secure as
    # FEDERICA_PORTAL_SECURE_COOKIES says (web/portal/session.py).
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="federica_session",
        FEDERICA_PORTAL_SECURE_COOKIES=settings.portal_secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.portal_session_hours),
    )
    register_web(app)
    register_oidc(app, settings)
    behind_proxies(app, settings)
    return app


def behind_proxies(app: Flask, settings: Settings) -> None:
    """Behind FEDERICA_TRUSTED_PROXIES proxies, the client's address and scheme are the
    ones the outermost of them saw (X-Forwarded-For, X-Forwarded-Proto); entries a client
    put in front of those are ignored. Without a proxy nothing is read from the headers."""
    n = settings.trusted_proxies
    if n:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]


def secret_key(settings: Settings) -> str:
    """FEDERICA_SECRET_KEY, else a random key made once in the data directory (0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if not path.exists():
        # Written whole aside, then linked into place: of processes starting at once, the
        # first link wins and every process reads that one key.
        tmp = write_private(path.with_name(f"secret_key.{os.getpid()}"), secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def federation_server(context: Context, host: str, port: int) -> FederationServer:
    """The peer API's mutual-TLS listener (started by the caller; see web/federation)."""
    from federica.web.federation.listener import make_server

    return make_server(context, host, port)


def geni_server(context: Context, host: str, port: int) -> GeniServer:
    """The GENI AM API v3 listener (XML-RPC over mutual TLS; see web/geni)."""
    from federica.web.geni.listener import make_server

    return make_server(context, host, port)


def gmoc_server(context: Context, host: str, port: int) -> FederationServer:
    """The GENI monitoring datastore's TLS listener (started by the caller; see web/gmoc)."""
    from federica.web.gmoc.listener import make_server

    return make_server(context, host, port)


def federation_proxy_server(context: Context, socket_path: Path) -> FederationServer:
    """The peer API in plain HTTP on a Unix socket, for a TLS-terminating proxy that
    forwards the client certificate (web/federation/forwarded.py). Not started."""
    from cheroot import wsgi

    from federica.web.federation import create_peer_app
    from federica.web.federation.forwarded import ForwardedCertificate

    check_private_directory(socket_path.parent)
    peer_app = create_peer_app(context)
    behind_proxies(peer_app, context.settings)
    app = ForwardedCertificate(peer_app)
    return wsgi.Server(str(socket_path), app, numthreads=4, server_name="federica-peers")


def check_private_directory(path: Path) -> None:
    """The proxy's socket trusts whoever connects to it; cheroot makes the socket itself
    world-writable, so its directory is what keeps other users out."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SettingsError(
            f"FEDERICA_FEDERATION_PROXY_SOCKET: directory {path} does not exist"
        ) from None
    if mode & 0o007:
        raise SettingsError(
            f"FEDERICA_FEDERATION_PROXY_SOCKET: directory {path} is open to other users "
            f"(mode {mode & 0o777:o}); make it 0750, group of the proxy"
        )
