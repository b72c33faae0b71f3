"""The peer API's listener: cheroot over TLS, a client certificate required.

The TLS layer trusts exactly the CAs of the peers registered now: it reads the registry
at every handshake (one small query) and rebuilds its TLS context when the registry
changed, so adding, removing or rotating a peer needs no restart. A handshake refused
(no certificate, one no registered CA issued, plain HTTP) is audited here, since it
never reaches the app; the app then identifies the peer again per request (a connection
opened before its peer was removed is refused at once).
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from sqlalchemy.exc import SQLAlchemyError

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context
from federica.federation import identity, peers
from federica.web.federation import PEER_CERT, create_peer_app

log = logging.getLogger(__name__)


class PeerTLSAdapter(BuiltinSSLAdapter):
    def __init__(self, context: Context, facility: identity.Facility) -> None:
        files = facility.files
        super().__init__(str(files.server_cert), str(files.server_key))
        self._federica = context
        self._facility = facility
        self._trusted: list[tuple[str, str]] | None = None
        self._lock = threading.Lock()

    def _tls_context(self) -> ssl.SSLContext:
        """A server context trusting only the registered peers' CAs (never the system's)."""
        files = self._facility.files
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.verify_mode = ssl.CERT_REQUIRED
        tls.load_cert_chain(files.server_cert, files.server_key)
        for _fp, pem in self._trusted or []:
            tls.load_verify_locations(cadata=pem)
        return tls

    def _refresh(self) -> None:
        try:
            with self._federica.read_sessions() as session:
                trusted = peers.trusted_cas(session)
        except SQLAlchemyError:
            # Fail closed: without the registry no peer can be told from a stranger (and
            # the accept loop must not die of it).
            log.exception("federation listener: cannot read the peer registry; trusting none")
            trusted = []
        with self._lock:
            if trusted != self._trusted:
                self._trusted = trusted
                self.context = self._tls_context()

    def wrap(self, sock: Any) -> Any:
        self._refresh()
        try:
            address = sock.getpeername()[0]
        except OSError:
            address = ""
        try:
            return super().wrap(sock)  # type: ignore[no-untyped-call]
        except (cheroot_errors.FatalSSLAlert, cheroot_errors.NoSSLError) as exc:
            cause = exc.__cause__
            # A connection dropped before TLS began (a port probe) is no peer request.
            if isinstance(cause, ssl.SSLError) and not isinstance(
                cause, ssl.SSLEOFError | ssl.SSLZeroReturnError
            ):
                self._audit_handshake(address, cause)
            elif isinstance(exc, cheroot_errors.NoSSLError):
                self._audit_handshake(address, exc)
            raise

    def _audit_handshake(self, address: str, exc: BaseException) -> None:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        verify = getattr(exc, "verify_message", None)
        try:
            audit.record(
                self._federica.sessions,
                Principal("peer:unknown", Role.RESEARCHER, via="federation", address=address),
                "federation.handshake",
                status=403,
                target="TLS handshake",
                detail={"reason": f"{reason}: {verify}" if verify else str(reason)},
                at=self._federica.now(),
            )
        except SQLAlchemyError:
            log.exception("federation listener: cannot audit a refused handshake from %s", address)

    # cheroot's stubs give the base Adapter's get_environ no socket; the builtin one has.
    def get_environ(self, sock: Any) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ(sock)  # type: ignore[no-untyped-call]
        environ[PEER_CERT] = sock.getpeercert(binary_form=True)
        return environ


def make_server(context: Context, host: str, port: int) -> wsgi.Server:
    """The listener (not started: `.start()` serves until `.stop()`)."""
    facility = identity.load(context.settings.data_dir)
    server = wsgi.Server(
        (host, port), create_peer_app(context), numthreads=4, server_name=facility.name
    )
    server.ssl_adapter = PeerTLSAdapter(context, facility)
    return server
