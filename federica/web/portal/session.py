"""The portal's browser session: a signed cookie holding a session id (a token of kind
"session", so the tokens page lists it and revoking it signs that browser out; the API
refuses it as a bearer token), and a CSRF token that every form and script sends back
(the synchronizer-token pattern). The cookie is Secure unless the portal is reached on a
loopback address (FEDERICA_PORTAL_SECURE_COOKIES=auto, the default)."""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface

from federica.aaa import tokens
from federica.aaa.models import TokenKind, User
from federica.errors import Forbidden
from federica.web.auth import SESSION_TOKEN_KEY, current
from federica.web.context import ctx, write_session

CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_NAME = "portal session"


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a state-changing request that did not come from one of our own pages."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and _origin(origin) != _origin(request.host_url):
        raise Forbidden(f"a form from {origin} may not act on this portal")
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_KEY)
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            "this form has expired or did not come from this portal: reload the page and try again"
        )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def start(user: User) -> None:
    """Sign the browser in as `user`: a fresh session (new CSRF token too)."""
    settings = ctx().settings
    lifetime = dt.timedelta(hours=settings.portal_session_hours)
    with write_session() as s:
        _, secret = tokens.issue(
            s,
            s.merge(user),
            name=SESSION_NAME,
            scopes=tokens.parse_scopes(None, user),
            lifetime=lifetime,
            max_lifetime=lifetime,
            now=ctx().now(),
            kind=TokenKind.SESSION,
        )
    session.clear()
    session.permanent = True
    session[SESSION_TOKEN_KEY] = secret
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def end() -> None:
    """Sign the browser out: its session is revoked, so a copied cookie is worthless too,
    and so is every token made in it."""
    who = current()
    if who is not None and who.token_id is not None:
        with write_session() as s:
            tokens.revoke(s, tokens.get(s, who.token_id), ctx().now())
    session.clear()


SECURE_COOKIES_CONFIG = "FEDERICA_PORTAL_SECURE_COOKIES"  # set by create_app


def on_loopback() -> bool:
    """The browser reached this portal on a loopback address (plain HTTP is fine there):
    localhost, 127.0.0.0/8 or [::1], by the Host it asked for."""
    host = urlsplit(f"//{request.host}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure per request in "auto" mode."""

    def get_cookie_secure(self, app: Flask) -> bool:
        mode = str(app.config[SECURE_COOKIES_CONFIG])
        if mode == "auto":
            return not on_loopback()
        return mode == "true"
