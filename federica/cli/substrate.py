"""federica substrate load | export | show"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from federica.aaa.policy import Action
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, audited
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.substrate.analysis import summarize
from federica.substrate.inventory import (
    apply_topology,
    current_topology,
    topology_to_data,
    topology_to_yaml,
)
from federica.substrate.topology import MAX_FILE_BYTES, parse_topology


class DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def read_topology_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidInput(
                [FieldError("", f"{path}: {size} bytes; the limit is {MAX_FILE_BYTES}")]
            )
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput([FieldError("", f"{path}: {exc.strerror}")]) from None


@cli.group()
def substrate() -> None:
    """The physical facility: PoPs, devices, links, V-nodes."""


@substrate.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check and show the changes without applying them.")
@pass_state
def load(state: CliState, file: Path, dry_run: bool) -> None:
    """Load or update the substrate from a topology FILE (YAML).

    Every problem is reported with its path in the file; a file with any problem changes
    nothing. Re-loading an unchanged file is a no-op; nothing in use is removed."""
    topo = parse_topology(read_topology_file(file))
    allow(state, Action.SUBSTRATE_MANAGE)
    try:
        with (
            # A dry run changes nothing and is not recorded.
            contextlib.nullcontext()
            if dry_run
            else audited(state, Action.SUBSTRATE_MANAGE, str(file)),
            transaction(state.context.sessions) as session,
        ):
            report = apply_topology(session, topo)
            if dry_run:
                raise DryRun
    except DryRun:
        pass
    for change in report.changes:
        click.echo(f"  {change}")
    if not report.changed:
        click.echo(f"{file}: no changes")
    else:
        counts = ", ".join(f"{n} to {k}" for k, n in sorted(report.counts().items()))
        click.echo(f"{file}: {'would apply' if dry_run else 'applied'} {counts}")


@substrate.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)
@pass_state
def export(state: CliState, output: Path | None) -> None:
    """Write the substrate as a topology file (loading it back changes nothing)."""
    with transaction(state.context.read_sessions) as session:
        text = topology_to_yaml(current_topology(session))
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)


@substrate.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def show(state: CliState, as_json: bool) -> None:
    """Summarise the substrate: PoPs, core mesh, connectivity, capacity."""
    with transaction(state.context.read_sessions) as session:
        topo = current_topology(session)
    summary = summarize(topo)
    if as_json:
        data = topology_to_data(topo)
        data["summary"] = summary.model_dump(mode="json")
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{summary.pops} PoPs ({summary.core_pops} core), {summary.devices} devices, "
        f"{summary.links} links, {summary.hosts} V-nodes "
        f"({summary.total_cpu_cores} cores, {summary.total_ram_mb // 1024} GiB RAM)"
    )
    mesh = "yes" if summary.core_full_mesh else "NO"
    reach = "yes" if summary.all_pops_connected else "NO"
    click.echo(
        f"core links: {summary.core_links}, full mesh: {mesh}; every PoP reaches the core: {reach}"
    )
    for a in summary.attachments:
        mark = "" if a.connected_to_core else "   <- not connected to the core"
        click.echo(
            f"  {a.pop:<8} {a.role.value:<8} links to {', '.join(a.neighbours) or '-'}{mark}"
        )
