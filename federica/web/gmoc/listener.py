"""The datastore's listener: cheroot over TLS, the facility's server certificate, a client
certificate asked for and, when one is sent, verified against FEDERICA_GMOC_TRUST_ROOTS.

Without a certificate the TLS handshake still succeeds (a collector or a researcher may
send a token instead; with neither the app answers 401); a certificate no trust root
issued fails the handshake, which is audited here since it never reaches the app.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cheroot import wsgi

from federica.context import Context
from federica.errors import FieldError, InvalidInput
from federica.federation import identity
from federica.web.gmoc import CLIENT_CERT, create_gmoc_app
from federica.web.tls import AuditedTLSAdapter, server_context


def tls_context(cert: Path, key: Path, trust_roots: Path | None) -> ssl.SSLContext:
    tls = server_context(cert, key, ssl.CERT_NONE)
    if trust_roots is not None:
        # Only the configured roots, never the system's: any certificate a public CA issued
        # must not pass for a collector's.
        try:
            tls.load_verify_locations(cafile=str(trust_roots))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(
                [
                    FieldError(
                        "FEDERICA_GMOC_TRUST_ROOTS", f"cannot read CAs from {trust_roots}: {exc}"
                    )
                ]
            ) from None
        tls.verify_mode = ssl.CERT_OPTIONAL
    return tls


class GmocTLSAdapter(AuditedTLSAdapter):
    unknown_actor, via, action, refused_status = "gmoc:unknown", "gmoc", "gmoc.handshake", 401
    environ_key = CLIENT_CERT

    def __init__(self, context: Context, cert: Path, key: Path) -> None:
        super().__init__(context, cert, key)
        self.context = tls_context(cert, key, context.settings.gmoc_trust_roots)


def make_server(context: Context, host: str, port: int) -> wsgi.Server:
    """The listener (not started: `.start()` serves until `.stop()`)."""
    facility = identity.load(context.settings.data_dir)
    server = wsgi.Server(
        (host, port), create_gmoc_app(context), numthreads=4, server_name=facility.name
    )
    server.ssl_adapter = GmocTLSAdapter(
        context, facility.files.server_cert, facility.files.server_key
    )
    return server
