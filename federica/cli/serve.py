"""federica serve | demo"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from pathlib import Path

import click

from federica import migrate
from federica.aaa import demo as demo_account
from federica.app import create_app
from federica.cli import CliState, cli, pass_state
from federica.cli.emulate import emulator_for
from federica.cli.substrate import read_topology_file
from federica.db import transaction
from federica.substrate.emulator.facility import Emulator
from federica.substrate.emulator.plan import plan_facility
from federica.substrate.inventory import apply_topology, record_host_key
from federica.substrate.topology import parse_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _serve(state: CliState, host: str, port: int) -> None:
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
        _serve(state, host, port or state.settings.port)


@cli.command()
@click.option(
    "--topology",
    type=click.Path(path_type=Path, dir_okay=False),
    default=EXAMPLES / "topologies" / "core4.yaml",
    show_default=True,
)
@click.option("--host", help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default 8080).")
@click.option("--no-emulator", is_flag=True, help="Serve the API without the emulated facility.")
@pass_state
def demo(
    state: CliState, topology: Path, host: str | None, port: int | None, no_emulator: bool
) -> None:
    """Everything on one machine: SQLite database, the topology loaded, the emulated
    facility up (needs root), the API served. Ctrl-C takes the facility down again."""
    engine = state.context.engine
    click.echo(
        f"database {engine.url.render_as_string(hide_password=True)} "
        f"at revision {migrate.current_revision(engine)}"
    )
    topo = parse_topology(read_topology_file(topology))
    with transaction(state.context.sessions) as session:
        report = apply_topology(session, topo)
    click.echo(f"substrate {topology.name}: {len(report.changes)} change(s) applied")
    with transaction(state.context.sessions) as session:
        account = demo_account.ensure(session, state.settings, dt.datetime.now(dt.UTC))
    click.echo(
        f"demo account {account.username!r} (lead of project 'demo'): password in "
        f"{account.password_file}, API token in {account.token_file}"
    )
    # SIGTERM (a supervisor, a test) unwinds like Ctrl-C, so the facility comes down, even
    # when it arrives while the facility is still coming up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from federica.substrate.gateway import Gateways
    from federica.worker import Worker

    emu: Emulator | None = None
    worker: Worker | None = None
    try:
        if no_emulator:
            pass
        elif os.geteuid() != 0:
            click.echo("not root: serving without the emulated facility (it needs namespaces)")
        else:
            emu = emulator_for(state)
            click.echo("bringing up the emulated facility")
            result = emu.up(
                plan_facility(topo, state.settings.emulator_prefix),
                progress=lambda m: click.echo(f"  {m}"),
            )
            with transaction(state.context.sessions) as session:
                for name, info in result.devices.items():
                    record_host_key(session, name, info["fingerprint"])
        worker = Worker(state.context)
        worker.start()
        click.echo(
            f"worker running in this process (events every {state.settings.worker_poll_s} s)"
        )
        _serve(state, host or state.settings.host, port or state.settings.port)
    finally:
        if worker is not None:
            worker.stop()
        closed = Gateways(state.settings.gateway_dir).close_all()
        if closed:
            click.echo(f"closed {closed} slice gateway(s)")
        if emu is not None:
            click.echo("taking the emulated facility down")
            emu.down()
