"""federica serve"""

from __future__ import annotations

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
@pass_state
def serve(state: CliState, host: str | None, port: int | None, federation_port: int | None) -> None:
    """Serve the REST API (waitress) and, if asked, the peer API (cheroot, mutual TLS)."""
    from federica.cli.federation import peer_listener

    host = host or state.settings.host
    if federation_port is None:
        federation_port = state.settings.federation_port
    with peer_listener(state, host, federation_port):
        serve_app(state, host, port or state.settings.port)
