"""The AM API's listener: cheroot over TLS, a client certificate chaining to one of the
configured GENI authorities' CAs required (never the system's CAs). A refused handshake
is audited here, since it never reaches the app."""

from __future__ import annotations

from cheroot import wsgi

from federica.context import Context
from federica.federation import identity
from federica.geni import trust as geni_trust
from federica.geni.aggregate import Aggregate
from federica.geni.shutdown import estop_shutdown
from federica.substrate.drivers.compute import registry as compute_registry
from federica.web.geni import GENI_CERT, create_geni_app
from federica.web.tls import AuditedTLSAdapter, server_context


class GeniTLSAdapter(AuditedTLSAdapter):
    unknown_actor, via, action, refused_status = "geni:unknown", "geni", "geni.handshake", 403
    environ_key = GENI_CERT

    def __init__(self, context: Context, facility: identity.Facility, trusted_pem: str) -> None:
        files = facility.files
        super().__init__(context, files.server_cert, files.server_key)
        self.context = server_context(files.server_cert, files.server_key)
        self.context.load_verify_locations(cadata=trusted_pem)


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
