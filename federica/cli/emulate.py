"""federica emulate up | down | status"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from federica.cli import CliState, cli, pass_state
from federica.cli.substrate import read_topology_file
from federica.db import transaction
from federica.substrate.emulator.facility import Emulator, EmulatorError
from federica.substrate.emulator.plan import PlanError, plan_facility
from federica.substrate.inventory import apply_topology, current_topology, record_host_key
from federica.substrate.topology import parse_topology


def emulator_for(state: CliState) -> Emulator:
    s = state.settings
    return Emulator(s.emulator_dir.resolve(), s.emulator_prefix, community=s.emulator_community)


@cli.group()
def emulate() -> None:
    """The emulated facility: namespaces, NETCONF and SNMP servers on this machine."""


@emulate.command()
@click.option(
    "--topology",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Load this topology file first (otherwise: the substrate in the database).",
)
@pass_state
def up(state: CliState, topology: Path | None) -> None:
    """Bring the facility up (after cleaning up any earlier or crashed run)."""
    started = time.monotonic()
    with transaction(state.context.sessions) as session:
        if topology is not None:
            apply_topology(session, parse_topology(read_topology_file(topology)))
        topo = current_topology(session)
    if not topo.devices:
        raise click.ClickException("the substrate has no devices; load a topology first")
    emu = emulator_for(state)
    try:
        plan = plan_facility(topo, state.settings.emulator_prefix)
        result = emu.up(plan, progress=lambda m: click.echo(f"  {m}"))
    except (EmulatorError, PlanError) as exc:
        # Left in place for inspection; `down` or the next `up` removes it.
        raise click.ClickException(f"{exc}\n(run `federica emulate down` to clean up)") from None
    with transaction(state.context.sessions) as session:
        for name, info in result.devices.items():
            record_host_key(session, name, info["fingerprint"])
    click.echo(
        f"emulated facility up in {time.monotonic() - started:.1f} s: "
        f"{len(plan.devices)} devices, {len(plan.hosts)} V-nodes; host keys recorded"
    )
    click.echo(
        f"  NETCONF: ssh {emu.login().username}@127.0.0.1 -p PORT -i {emu.key_file} "
        "-s netconf;  SNMP community: " + emu.community
    )


@emulate.command()
@pass_state
def down(state: CliState) -> None:
    """Stop every process and remove every namespace and file of the facility."""
    emu = emulator_for(state)
    if not emu.down(progress=lambda m: click.echo(f"  {m}")):
        click.echo("nothing to take down")
    else:
        click.echo("emulated facility down")


@emulate.command()
@click.option("--json", "as_json", is_flag=True)
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """Which devices run, on which ports, with which host keys."""
    st = emulator_for(state).status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    if not st.get("devices"):
        click.echo("emulated facility: not running")
        return
    click.echo(
        f"emulated facility: {'running' if st['running'] else 'DEGRADED'} (prefix {st['prefix']})"
    )
    for name, d in st["devices"].items():
        procs = " ".join(f"{k}:{'ok' if v else 'DEAD'}" for k, v in d["processes"].items())
        click.echo(
            f"  {name:<10} netconf {d['host']}:{d['netconf_port']}  snmp udp/{d['snmp_port']}"
            f"  {d['fingerprint']}  {procs}"
        )
    if st["dead_processes"]:
        click.echo("dead: " + ", ".join(st["dead_processes"]))
