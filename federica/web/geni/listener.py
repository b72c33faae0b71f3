"""The AM API's listener: cheroot over TLS, a client certificate chaining to one of the
configured GENI authorities' CAs required (never the system's CAs). A refused handshake
is audited here, since it never reaches the app."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from sqlalchemy.exc import SQLAlchemyError

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context
from federica.federation import identity
from federica.geni import trust as geni_trust
from federica.geni.aggregate import Aggregate
from federica.geni.shutdown import estop_shutdown
from federica.substrate.drivers.compute import registry as compute_registry
from federica.web.geni import GENI_CERT, create_geni_app

log = logging.getLogger(__name__)


class GeniTLSAdapter(BuiltinSSLAdapter):
    def __init__(self, context: Context, facility: identity.Facility, trusted_pem: str) -> None:
        files = facility.files
        super().__init__(str(files.server_cert), str(files.server_key))
        self._federica = context
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.verify_mode = ssl.CERT_REQUIRED
        tls.load_cert_chain(files.server_cert, files.server_key)
        tls.load_verify_locations(cadata=trusted_pem)
        self.context = tls

    def wrap(self, sock: Any) -> Any:
        try:
            address = sock.getpeername()[0]
        except OSError:
            address = ""
        try:
            return super().wrap(sock)  # type: ignore[no-untyped-call]
        except (cheroot_errors.FatalSSLAlert, cheroot_errors.NoSSLError) as exc:
            cause = exc.__cause__
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
                Principal("geni:unknown", Role.RESEARCHER, via="geni", address=address),
                "geni.handshake",
                status=403,
                target="TLS handshake",
                detail={"reason": f"{reason}: {verify}" if verify else str(reason)},
                at=self._federica.now(),
            )
        except SQLAlchemyError:
            log.exception("GENI listener: cannot audit a refused handshake from %s", address)

    def get_environ(self, sock: Any) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ(sock)  # type: ignore[no-untyped-call]
        environ[GENI_CERT] = sock.getpeercert(binary_form=True)
        return environ


def make_aggregate(context: Context, host: str, port: int) -> Aggregate:
    settings = context.settings
    if settings.geni_authorities_file is None:
        raise identity.NoIdentity(
            "the GENI AM API needs FEDERICA_GENI_AUTHORITIES_FILE (the authorities it "
            "trusts and their projects; see docs/geni.md)"
        )
    facility = identity.load(settings.data_dir)
    return Aggregate(
        settings=settings,
        sessions=context.sessions,
        read_sessions=context.read_sessions,
        now=context.now,
        trust=geni_trust.load(settings.geni_authorities_file),
        authority=facility.authority,
        url=f"https://{host}:{port}/",
        compute=lambda driver, vnode: compute_registry.create(
            context.compute_drivers, driver, vnode, settings
        ),
        shutdown=estop_shutdown(context),
    )


def make_server(
    context: Context, host: str, port: int, aggregate: Aggregate | None = None
) -> wsgi.Server:
    """The listener (not started: `.start()` serves until `.stop()`)."""
    am = aggregate or make_aggregate(context, host, port)
    facility = identity.load(context.settings.data_dir)
    server = wsgi.Server(
        (host, port),
        create_geni_app(am, context.settings.max_request_bytes),
        numthreads=4,
        server_name=f"{facility.name}-geni",
    )
    server.ssl_adapter = GeniTLSAdapter(context, facility, am.trust.pem())
    return server
