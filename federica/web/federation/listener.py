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

from cheroot import wsgi
from sqlalchemy.exc import SQLAlchemyError

from federica.context import Context
from federica.federation import identity, peers
from federica.web.federation import PEER_CERT, create_peer_app
from federica.web.tls import AuditedTLSAdapter, server_context

log = logging.getLogger(__name__)


class PeerTLSAdapter(AuditedTLSAdapter):
    unknown_actor, via, action, refused_status = (
        "peer:unknown",
        "federation",
        "federation.handshake",
        403,
    )
    environ_key = PEER_CERT

    def __init__(self, context: Context, facility: identity.Facility) -> None:
        super().__init__(context, facility.files.server_cert, facility.files.server_key)
        self._facility = facility
        self._trusted: list[tuple[str, str]] | None = None
        self._lock = threading.Lock()

    def _tls_context(self) -> ssl.SSLContext:
        """A server context trusting only the registered peers' CAs (never the system's)."""
        files = self._facility.files
        tls = server_context(files.server_cert, files.server_key)
        for _fp, pem in self._trusted or []:
            tls.load_verify_locations(cadata=pem)
        return tls

    def before_handshake(self) -> None:
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


def make_server(context: Context, host: str, port: int) -> wsgi.Server:
    """The listener (not started: `.start()` serves until `.stop()`)."""
    facility = identity.load(context.settings.data_dir)
    server = wsgi.Server(
        (host, port), create_peer_app(context), numthreads=4, server_name=facility.name
    )
    server.ssl_adapter = PeerTLSAdapter(context, facility)
    return server
