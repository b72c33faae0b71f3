"""federica worker | maintenance … | quota …"""

from __future__ import annotations

import datetime as dt
import signal
import threading

import click

from federica.cli import CliState, cli, pass_state
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.slices import maintenance, quota
from federica.slices.models import ProjectQuota


@cli.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@pass_state
def worker(state: CliState, once: bool) -> None:
    """Run due calendar events: provision slices at their start, warn before their end,
    take them down at their end. Several workers may run at once."""
    from federica.worker import Worker

    w = Worker(state.context)
    if once:
        n = w.run_once()
        w.stop()
        click.echo(f"{n} event(s) handled")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"worker {w.name}: polling every {state.settings.worker_poll_s} s (Ctrl-C stops)")
    with w:
        stop.wait()


@cli.group(name="maintenance")
def maintenance_group() -> None:
    """Operators' maintenance windows: no booking may use the resource meanwhile."""


@maintenance_group.command(name="add")
@click.argument("kind", type=click.Choice(["pop", "device", "link", "host"]))
@click.argument("target")
@click.option("--start", default="now", show_default=True)
@click.option("--end", required=True, help="ISO 8601 time with a zone.")
@click.option("--reason", required=True, help="Shown to users whose bookings it blocks.")
@pass_state
def maintenance_add(
    state: CliState, kind: str, target: str, start: str, end: str, reason: str
) -> None:
    with transaction(state.context.sessions) as s:
        mw, slices = maintenance.create(
            s,
            target_kind=kind,
            target=target,
            start=start,
            end=end,
            reason=reason,
            now=dt.datetime.now(dt.UTC),
        )
        click.echo(
            f"maintenance {mw.id}: {kind} {target} {mw.start:%Y-%m-%d %H:%M} → "
            f"{mw.end:%Y-%m-%d %H:%M} UTC"
        )
    if slices:
        click.echo("already booked on it then (not changed): " + ", ".join(slices))


@maintenance_group.command(name="list")
@pass_state
def maintenance_list(state: CliState) -> None:
    with transaction(state.context.read_sessions) as s:
        for m in maintenance.upcoming(s, dt.datetime.now(dt.UTC)):
            click.echo(
                f"{m.id:>4}  {m.target_kind.value} {m.target:<16} {m.start:%Y-%m-%d %H:%M} → "
                f"{m.end:%Y-%m-%d %H:%M} UTC  {m.reason}"
            )


@maintenance_group.command(name="cancel")
@click.argument("window_id", type=int)
@pass_state
def maintenance_cancel(state: CliState, window_id: int) -> None:
    with transaction(state.context.sessions) as s:
        maintenance.cancel(s, window_id, dt.datetime.now(dt.UTC))
    click.echo(f"maintenance {window_id} cancelled")


@cli.command(name="quota")
@click.argument("project")
@click.argument("vcpu_hours", required=False)
@pass_state
def quota_cmd(state: CliState, project: str, vcpu_hours: str | None) -> None:
    """Show a project's monthly vCPU-hours quota, or set it (a number, or 'none')."""
    if vcpu_hours is not None:
        value: int | None = None
        if vcpu_hours != "none":
            if not vcpu_hours.isdigit():
                raise InvalidInput([FieldError("vcpu_hours", "a whole number >= 0, or 'none'")])
            value = int(vcpu_hours)
        with transaction(state.context.sessions) as s:
            quota.set_quota(s, project, value)
    with transaction(state.context.read_sessions) as s:
        limit = s.get(ProjectQuota, project)
        click.echo(
            f"project {project}: "
            + (f"{limit.vcpu_hours_per_month} vCPU-hours per month" if limit else "no quota")
        )
