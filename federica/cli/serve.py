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
@pass_state
def serve(state: CliState, host: str | None, port: int | None) -> None:
    """Serve the REST API (waitress)."""
    serve_app(state, host or state.settings.host, port or state.settings.port)
