"""federica serve"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import click

from federica.app import create_app
from federica.cli import CliState, cli, pass_state


def serve_app(state: CliState, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM (waitress returns then)."""
    import waitress

    app = create_app(state.settings, context=state.context)
    click.echo(f"federica portal on http://{host}:{port}/  (Ctrl-C stops)")
    click.echo(f"federica API on http://{host}:{port}/api/v1/substrate")
    waitress.serve(app, host=host, port=port, threads=8, ident="federica")


@cli.command()
@click.option("--host", help="Listen address (FEDERICA_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (FEDERICA_PORT, default 8080).")
@click.option(
    "--federation-port",
    type=int,
    help="Also serve the peer API over mutual TLS here (FEDERICA_FEDERATION_PORT; 0: off).",
)
@click.option(
    "--geni-port",
    type=int,
    help="Also serve the GENI AM API v3 over mutual TLS here (FEDERICA_GENI_PORT; 0: off).",
)
@click.option(
    "--gmoc-port",
    type=int,
    help="Also serve the GENI monitoring datastore over TLS here (FEDERICA_GMOC_PORT; 0: off).",
)
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    federation_port: int | None,
    geni_port: int | None,
    gmoc_port: int | None,
) -> None:
    """Serve the REST API (waitress) and, if asked, the peer API and the GENI AM API
    (cheroot, mutual TLS) and the GENI monitoring datastore (cheroot, TLS with client
    certificates)."""
    from federica.cli.federation import peer_listener

    host = host or state.settings.host
    if federation_port is None:
        federation_port = state.settings.federation_port
    if geni_port is None:
        geni_port = state.settings.geni_port
    if gmoc_port is None:
        gmoc_port = state.settings.gmoc_port
    with (
        peer_listener(state, host, federation_port),
        geni_listener(state, host, geni_port),
        gmoc_listener(state, host, gmoc_port),
    ):
        serve_app(state, host, port or state.settings.port)


@contextlib.contextmanager
def geni_listener(state: CliState, host: str, port: int) -> Iterator[None]:
    """Serves the GENI AM API on `port` (0: not at all) while the body runs."""
    if not port:
        yield
        return
    from federica.app import geni_server

    server = geni_server(state.context, host, port)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="geni-listener", daemon=True)
    thread.start()
    click.echo(f"GENI AM API v3 on https://{host}:{port}/ (XML-RPC, mutual TLS)")
    try:
        yield
    finally:
        server.stop()
        thread.join(timeout=10)


@contextlib.contextmanager
def gmoc_listener(state: CliState, host: str, port: int) -> Iterator[None]:
    """Serves the datastore on `port` (0: not at all) while the body runs."""
    if not port:
        yield
        return
    from federica.app import gmoc_server

    server = gmoc_server(state.context, host, port)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="gmoc-listener", daemon=True)
    thread.start()
    click.echo(f"GENI monitoring datastore on https://{host}:{port}/info/opsconfig/ (TLS)")
    try:
        yield
    finally:
        server.stop()
        thread.join(timeout=10)
