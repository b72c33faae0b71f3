"""What the TLS listeners (the peer API, the AM API, the GMOC datastore) share: cheroot's
TLS adapter with a context of our own, each refused handshake audited (it never reaches
the app, so nothing else would record it), and the client's certificate handed to the app
in the WSGI environ."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot.ssl.builtin import BuiltinSSLAdapter
from sqlalchemy.exc import SQLAlchemyError

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context

log = logging.getLogger(__name__)


def server_context(
    cert: Path, key: Path, verify: ssl.VerifyMode = ssl.CERT_REQUIRED
) -> ssl.SSLContext:
    """TLS 1.2 or later with this facility's server certificate; trusting no CA yet (the
    caller loads only the ones it means, never the system's)."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.verify_mode = verify
    tls.load_cert_chain(cert, key)
    return tls


class AuditedTLSAdapter(BuiltinSSLAdapter):
    """Subclasses set `context` (an ssl.SSLContext) and say who refusals are from."""

    # The audit entry of a refused handshake: its actor, `via`, action and status.
    unknown_actor = "unknown"
    via = ""
    action = ""
    refused_status = 403
    # Where the app finds the client's certificate (DER, or None) in the environ.
    environ_key = ""

    def __init__(self, context: Context, cert: Path, key: Path) -> None:
        super().__init__(str(cert), str(key))
        self._federica = context

    def before_handshake(self) -> None:
        """Called before each handshake (e.g. to re-read who is trusted)."""

    def wrap(self, sock: Any) -> Any:
        self.before_handshake()
        try:
            address = sock.getpeername()[0]
        except OSError:
            address = ""
        try:
            return super().wrap(sock)  # type: ignore[no-untyped-call]
        except (cheroot_errors.FatalSSLAlert, cheroot_errors.NoSSLError) as exc:
            cause = exc.__cause__
            # A connection dropped before TLS began (a port probe) is no request; plain
            # HTTP on a TLS port is one, refused.
            if isinstance(exc, cheroot_errors.NoSSLError) or (
                isinstance(cause, ssl.SSLError)
                and not isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError)
            ):
                self._audit_handshake(address, cause or exc)
            raise

    def _audit_handshake(self, address: str, exc: BaseException) -> None:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        verify = getattr(exc, "verify_message", None)
        try:
            audit.record(
                self._federica.sessions,
                Principal(self.unknown_actor, Role.RESEARCHER, via=self.via, address=address),
                self.action,
                status=self.refused_status,
                target="TLS handshake",
                detail={"reason": f"{reason}: {verify}" if verify else str(reason)},
                at=self._federica.now(),
            )
        except SQLAlchemyError:
            log.exception(
                "%s listener: cannot audit a refused handshake from %s", self.via, address
            )

    # cheroot's stubs give the base Adapter's get_environ no socket; the builtin one has.
    def get_environ(self, sock: Any) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ(sock)  # type: ignore[no-untyped-call]
        environ[self.environ_key] = sock.getpeercert(binary_form=True)
        return environ
