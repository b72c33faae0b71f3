"""federica demo: everything on one machine, and nothing of it left after Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from federica import logs, migrate
from federica.aaa import demo as demo_account
from federica.alarms.service import make_poller
from federica.cli import CliState, cli, pass_state
from federica.cli.emulate import emulator_for
from federica.cli.serve import serve_app
from federica.cli.substrate import read_topology_file
from federica.db import transaction
from federica.substrate.emulator.plan import plan_facility
from federica.substrate.inventory import apply_topology, record_host_key
from federica.substrate.topology import parse_topology

if TYPE_CHECKING:
    from federica.monitoring.poller import Poller
    from federica.substrate.drivers.pool import DriverPool
    from federica.substrate.emulator.facility import Emulator
    from federica.worker import Worker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# What Ctrl-C costs, as the README states it (and tests/integration/test_demo.py checks):
# the worker's current event, if one runs, plus this.
STOP_WITHIN_S = 10
# Of that, what the SNMP poller may take to finish its round (one SNMP timeout and retry).
POLLER_STOP_S = 3.0


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
@click.option(
    "--federation-port",
    type=int,
    help="Also serve the peer API over mutual TLS here (needs `federation init`; 0: off).",
)
@click.option(
    "--federation",
    is_flag=True,
    help="Two facilities that trust each other: core4 and a JGN2plus-like one, each in its "
    "own process, data directory and database, their border devices joined "
    "(ports PORT to PORT+3; see docs/federation.md).",
)
@pass_state
def demo(
    state: CliState,
    topology: Path,
    host: str | None,
    port: int | None,
    no_emulator: bool,
    federation_port: int | None,
    federation: bool,
) -> None:
    """Everything on one machine: SQLite database, the topology loaded, the emulated
    facility up (needs root), the API served. Ctrl-C takes the facility down again."""
    if federation:
        from federica.cli import demo_federation

        demo_federation.run(
            state, host or state.settings.host, port or state.settings.port, no_emulator
        )
        return
    logs.configure(state.settings)
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
        account = demo_account.ensure(session, state.settings, state.context.now())
    click.echo(
        f"demo account {account.username!r} (lead of project 'demo'): password in "
        f"{account.password_file}, API token in {account.token_file}"
    )
    # SIGTERM (a supervisor, a test) unwinds like Ctrl-C, so the facility comes down, even
    # when it arrives while the facility is still coming up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from federica.worker import Worker, singleton_duties

    emu: Emulator | None = None
    worker: Worker | None = None
    poller: Poller | None = None
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
        # With its duties (it leads: one process), e.g. the peers' alarms and e-stop relays.
        worker = Worker(state.context, duties=singleton_duties(state.context))
        if emu is not None and worker.pool is not None:
            _warm(worker.pool, [d.name for d in topo.devices])
        worker.start()
        click.echo(
            f"worker running in this process (events every {state.settings.worker_poll_s} s)"
        )
        if emu is not None:
            poller = make_poller(state.context)
            poller.start()
            click.echo(
                f"SNMP poller running in this process (every {state.settings.monitor_interval_s}"
                " s; rates at /api/v1/monitoring/…)"
            )
        from federica.cli.federation import peer_listener

        listen = host or state.settings.host
        with peer_listener(state, listen, federation_port or 0):
            serve_app(state, listen, port or state.settings.port)
    except KeyboardInterrupt:
        pass  # Ctrl-C before the server ran: the same clean-up, without a traceback
    finally:
        _take_down(state, worker, emu, poller)


def _warm(pool: DriverPool, devices: list[str]) -> None:
    """Open the worker's NETCONF sessions now rather than in the first slice's
    transaction (one after the other there: ~1.5 s of a busy machine's time)."""
    t0 = time.monotonic()
    failed = pool.warm(devices)
    took = time.monotonic() - t0
    click.echo(f"NETCONF sessions open to {len(devices) - len(failed)} device(s) in {took:.1f} s")
    for name, why in failed.items():
        click.echo(f"  {name}: not reachable yet ({why}); the first slice there tries again")


def _still_stopping(_sig: int, _frame: FrameType | None) -> None:
    click.echo("still taking everything down (a few seconds); please wait", err=True)


LOST_WITH_THE_DEMO = "the demo stopped: its emulated facility and every node went with it"


def _record_the_loss(state: CliState) -> None:
    """The slices that ran on the facility just taken down are gone with it; say so in the
    database rather than leave them ACTIVE for the next start to contradict."""
    from federica.slices.runner import lost_with_facility

    try:
        lost = lost_with_facility(state.context.sessions, state.context.now, LOST_WITH_THE_DEMO)
    except Exception as exc:  # the facility is down either way; say what was not recorded
        click.echo(f"  could not mark the running slices failed: {exc}", err=True)
        return
    if lost:
        click.echo(f"marked {len(lost)} running slice(s) failed: {', '.join(lost)}")


def _take_down(
    state: CliState, worker: Worker | None, emu: Emulator | None, poller: Poller | None = None
) -> None:
    """Worker, gateways, nodes, devices, namespaces. A second Ctrl-C (people press it
    again when a stop seems slow) must not cut this short and leave half a facility."""
    from federica.substrate.gateway import Gateways

    started = time.monotonic()
    signal.signal(signal.SIGINT, _still_stopping)
    signal.signal(signal.SIGTERM, _still_stopping)
    click.echo("stopping: worker, slice gateways, emulated facility")
    if poller is not None:
        try:
            # A round in progress ends within the SNMP timeout; the thread is a daemon.
            poller.stop(timeout=POLLER_STOP_S)
        except RuntimeError as exc:
            click.echo(f"  {exc}; leaving it behind")
    if worker is not None:
        worker.stop()
    closed = Gateways(state.settings.gateway_dir).close_all()
    if closed:
        click.echo(f"closed {closed} slice gateway(s)")
    if emu is not None:
        click.echo("taking the emulated facility down")
        emu.down(progress=lambda m: click.echo(f"  {m}"))
        _record_the_loss(state)
    click.echo(f"stopped in {time.monotonic() - started:.1f} s")
