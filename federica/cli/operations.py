"""federica worker | maintenance … | quota …"""

from __future__ import annotations

import signal
import threading

import click

from federica import logs
from federica.aaa import accounts
from federica.aaa.policy import Action
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, audited
from federica.cli.params import ID
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.slices import maintenance, quota


@cli.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@pass_state
def worker(state: CliState, once: bool) -> None:
    """Run due calendar events: provision slices at their start, warn before their end,
    take them down at their end. Several workers may run at once; the one elected leader
    also runs the duties that must run once (rollups). SIGTERM: finish, then exit."""
    from federica.worker import Worker, singleton_duties

    logs.configure(state.settings)  # what it does is in its log; nothing else says it
    w = Worker(
        state.context,
        duties=() if once else lambda prov: singleton_duties(state.context, prov),
    )
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
        click.echo(f"worker {w.name}: stopping (the event in hand is finished first)")


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
    with (
        audited(state, Action.MAINTENANCE_MANAGE, f"{kind} {target}"),
        transaction(state.context.sessions) as s,
    ):
        allow(state, Action.MAINTENANCE_MANAGE)
        mw, slices = maintenance.create(
            s,
            target_kind=kind,
            target=target,
            start=start,
            end=end,
            reason=reason,
            now=state.context.now(),
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
    allow(state, Action.MAINTENANCE_READ)
    with transaction(state.context.read_sessions) as s:
        for m in maintenance.upcoming(s, state.context.now()):
            click.echo(
                f"{m.id:>4}  {m.target_kind.value} {m.target:<16} {m.start:%Y-%m-%d %H:%M} → "
                f"{m.end:%Y-%m-%d %H:%M} UTC  {m.reason}"
            )


@maintenance_group.command(name="cancel")
@click.argument("window_id", type=ID)
@pass_state
def maintenance_cancel(state: CliState, window_id: int) -> None:
    with (
        audited(state, Action.MAINTENANCE_MANAGE, f"maintenance {window_id}"),
        transaction(state.context.sessions) as s,
    ):
        allow(state, Action.MAINTENANCE_MANAGE)
        maintenance.cancel(s, window_id, state.context.now())
    click.echo(f"maintenance {window_id} cancelled")


@cli.command(name="quota")
@click.argument("project")
@click.argument("vcpu_hours", required=False)
@click.option("--max-nodes", help="Nodes held at once (a number, or 'none').")
@click.option("--max-bandwidth", help="Circuit Mb/s held at once (a number, or 'none').")
@pass_state
def quota_cmd(
    state: CliState,
    project: str,
    vcpu_hours: str | None,
    max_nodes: str | None,
    max_bandwidth: str | None,
) -> None:
    """Show a project's limits and use, or set them: VCPU_HOURS per month, --max-nodes,
    --max-bandwidth (each a number, or 'none' for no limit; what is not given stays)."""
    given = {
        "vcpu_hours_per_month": (vcpu_hours, "vcpu_hours"),
        "max_nodes": (max_nodes, "--max-nodes"),
        "max_bandwidth_mbps": (max_bandwidth, "--max-bandwidth"),
    }
    body: dict[str, object] = {}
    for key, (raw, flag) in given.items():
        if raw is None:
            continue
        if raw != "none" and not raw.isdigit():
            raise InvalidInput([FieldError(flag, "a whole number >= 0, or 'none'")])
        body[key] = None if raw == "none" else int(raw)
    if body:
        with (
            audited(state, Action.QUOTA_MANAGE, f"quota {project}") as note,
            transaction(state.context.sessions) as s,
        ):
            allow(state, Action.QUOTA_MANAGE)
            note["project"] = project
            note["detail"] |= body
            accounts.get_project(s, project)
            quota.set_limits(s, project, quota.parse_limits(body, quota.limits_of(s, project)))
    allow(state, Action.QUOTA_READ, project=project)
    with transaction(state.context.read_sessions) as s:
        accounts.get_project(s, project)
        u = quota.usage(s, project, state.context.now())

    def limit(value: object, unit: str) -> str:
        return f"{value} {unit}" if value is not None else "no limit"

    click.echo(
        f"project {project}: vCPU-hours per month: {limit(u['vcpu_hours_per_month'], '')}"
        f"(used {u['used_vcpu_hours']} in {u['month']}); nodes at once: "
        f"{limit(u['max_nodes'], '')}(now {u['nodes_now']}); circuit bandwidth at once: "
        f"{limit(u['max_bandwidth_mbps'], 'Mb/s ')}(now {u['bandwidth_mbps_now']} Mb/s)"
    )


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only show the drift found; change nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds something unknown must have been seen before it is removed "
    "(default: FEDERICA_RECONCILE_GRACE_S).",
)
@pass_state
def reconcile(state: CliState, dry_run: bool, grace: float | None) -> None:
    """Compare every device's running configuration and every V-node's nodes with the
    database's intent and repair the drift (what the leading worker does periodically):
    a missing or changed segment of an active slice is put back, something unknown in
    the controller's range is removed once seen for the grace period. Prints the drift;
    exit status 1 if some of it could not be checked or repaired."""
    from federica.reconcile import Reconciler, summary
    from federica.worker import default_provisioner

    action = Action.SUBSTRATE_READ if dry_run else Action.SUBSTRATE_MANAGE
    with audited(state, "reconcile.dry-run" if dry_run else "reconcile.run") as note:
        allow(state, action)
        prov, pool = default_provisioner(state.context)
        try:
            report = Reconciler(state.context, prov, grace_s=grace).run(dry_run=dry_run)
        finally:
            pool.close_all()
        note["detail"]["drift"] = len(report.drift)
        note["detail"]["repaired"] = len(report.repaired)
    for line in summary(report):
        click.echo(line)
    click.echo(
        f"{len(report.checked)} device(s) and V-node(s) checked; {len(report.drift)} drift(s)"
        + ("" if dry_run else f", {len(report.repaired)} repaired")
    )
    if report.problems:
        raise SystemExit(1)
