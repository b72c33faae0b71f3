"""federica stats slice NAME"""

from __future__ import annotations

import click

from federica.aaa.policy import Action
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, echo_json
from federica.db import transaction
from federica.errors import FieldError, InvalidInput


@cli.group()
def stats() -> None:
    """What monitoring measured: per slice."""


@stats.command(name="slice")
@click.argument("ref")
@click.option(
    "--from", "start", metavar="TIME", help="ISO 8601 with a zone (default: an hour before --to)."
)
@click.option("--to", "end", metavar="TIME", help="ISO 8601 with a zone (default: now).")
@click.option(
    "--step", metavar="STEP", help="Period of the series: 60, 30s, 5m, 1h (default 60 s)."
)
@click.option("--json", "as_json", is_flag=True, help="The API's answer as JSON, points included.")
@pass_state
def slice_stats(
    state: CliState, ref: str, start: str | None, end: str | None, step: str | None, as_json: bool
) -> None:
    """A slice's circuits (what its nodes sent and received, drops, errors, over the
    window) and nodes (CPU, memory, health), by id or name."""
    from federica.monitoring.queries import parse_window
    from federica.slices import service
    from federica.slicestats.queries import slice_metrics

    context = state.context
    try:
        window = parse_window(start, end, step, context.now())
    except InvalidInput as exc:  # named as the command's options
        raise InvalidInput([FieldError(f"--{e.field}", e.message) for e in exc.errors]) from None
    with transaction(context.read_sessions) as s:
        sl = service.get(s, ref)
        allow(state, Action.SLICE_READ, project=sl.project, owner_id=sl.owner_id)
        body = slice_metrics(s, sl, window, context.now(), context.settings)
    if as_json:
        echo_json(body)
        return
    click.echo(
        f"slice {body['slice']['id']} {body['slice']['name']!r} ({body['slice']['status']}): "
        f"{body['from'][:19]} → {body['to'][:19]}"
    )
    click.echo(
        f"  {'circuit':<14}{'booked':>9}{'rx Mb/s':>10}{'tx Mb/s':>10}{'rx pkt/s':>10}"
        f"{'tx pkt/s':>10}{'drops':>8}{'errors':>8}{'covered':>9}"
    )
    for c in body["circuits"]:
        t = c["total"]
        if t is None:
            click.echo(f"  {c['name']:<14}{c['bandwidth_mbps']:>9}  not measured (hops not polled)")
            continue
        click.echo(
            f"  {c['name']:<14}{c['bandwidth_mbps']:>9}{_mbps(t['rx_bps']):>10}"
            f"{_mbps(t['tx_bps']):>10}{_num(t['rx_pps']):>10}{_num(t['tx_pps']):>10}"
            f"{t['drops']:>8.0f}{t['errors']:>8.0f}{t['covered_s']:>8.0f}s"
        )
    click.echo(f"  {'node':<14}{'V-node':<12}{'health':<10}{'CPU cores':>10}{'RAM MiB':>10}")
    for n in body["nodes"]:
        cores = [p["cpu_cores"] for p in n["points"] if p["cpu_cores"] is not None]
        mem = [p["memory_max_bytes"] for p in n["points"] if p["memory_max_bytes"] is not None]
        click.echo(
            f"  {n['name']:<14}{n['v_node']:<12}{n['health']:<10}"
            f"{_num(sum(cores) / len(cores) if cores else None, 3):>10}"
            f"{_num(max(mem) / 2**20 if mem else None):>10}"
        )


def _mbps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps / 1e6:.3f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
