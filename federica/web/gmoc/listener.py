"""The datastore's listener: cheroot over TLS, the facility's server certificate, a client
certificate asked for and, when one is sent, verified against FEDERICA_GMOC_TRUST_ROOTS.

Without a certificate the TLS handshake still succeeds (a collector or a researcher may
send a token instead; with neither the app answers 401); a certificate no trust root
issued fails the handshake, which is audited here since it never reaches the app.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from sqlalchemy.exc import SQLAlchemyError

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context
from federica.errors import FieldError, InvalidInput
from federica.federation import identity
from federica.web.gmoc import CLIENT_CERT, create_gmoc_app

log = logging.getLogger(__name__)


def tls_context(cert: Path, key: Path, trust_roots: Path | None) -> ssl.SSLContext:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(cert, key)
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


class GmocTLSAdapter(BuiltinSSLAdapter):
    def __init__(self, context: Context, cert: Path, key: Path) -> None:
        super().__init__(str(cert), str(key))
        self._federica = context
        self.context = tls_context(cert, key, context.settings.gmoc_trust_roots)

    def wrap(self, sock: Any) -> Any:
        try:
            address = sock.getpeername()[0]
        except OSError:
            address = ""
        try:
            return super().wrap(sock)  # type: ignore[no-untyped-call]
        except (cheroot_errors.FatalSSLAlert, cheroot_errors.NoSSLError) as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLError) and not isinstance(
                cause, ssl.SSLEOFError | ssl.SSLZeroReturnError
            ):
                self._audit_handshake(address, cause)
            raise

    def _audit_handshake(self, address: str, exc: ssl.SSLError) -> None:
        verify = getattr(exc, "verify_message", None)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        try:
            audit.record(
                self._federica.sessions,
                Principal("gmoc:unknown", Role.RESEARCHER, via="gmoc", address=address),
                "gmoc.handshake",
                status=401,
                target="TLS handshake",
                detail={"reason": f"{reason}: {verify}" if verify else str(reason)},
                at=self._federica.now(),
            )
        except SQLAlchemyError:
            log.exception("gmoc listener: cannot audit a refused handshake from %s", address)

    def get_environ(self, sock: Any) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ(sock)  # type: ignore[no-untyped-call]
        environ[CLIENT_CERT] = sock.getpeercert(binary_form=True)
        return environ


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
