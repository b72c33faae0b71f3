"""federica estop SLICE --reason … [--ticket …] | estop --vlan V --link L --at T --reason … |
estop lift SLICE | estop hold SLICE [--off] | estop show SLICE | estop drill [SLICE]"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from federica.aaa.policy import Action
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, audited, echo_json
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.estop import drill as drills
from federica.estop import service as estop
from federica.estop.isolate import Toolkit
from federica.estop.toolkit import make_toolkit, warm_all
from federica.slices import runner
from federica.slices import service as slices
from federica.slices.lifecycle import SliceStatus
from federica.slices.request import parse_instant
from federica.substrate.models import Pop
from federica.worker import Worker


class _StopOrSubcommand(click.Group):
    """`federica estop SLICE …` stops; `federica estop lift|hold|show|drill …` are
    subcommands (a slice named like one is reached with `federica estop stop NAME`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["stop", *args]
        return super().parse_args(ctx, args)


@cli.group(name="estop", cls=_StopOrSubcommand)
def estop_group() -> None:
    """Emergency stop: isolate slices at once, keep them for forensics, lift them."""


def _toolkit(state: CliState) -> Toolkit:
    return make_toolkit(state.context, seen_by="cli")


@estop_group.command(name="stop")
@click.argument("slice_ref", metavar="[SLICE]", required=False)
@click.option("--reason", required=True, help="Why (the slice's owner sees it).")
@click.option("--ticket", help="The operations centre's ticket.")
@click.option("--project", help="Every running slice of this project.")
@click.option("--user", help="Every running slice this user booked.")
@click.option("--port", help="Whoever held this port (device:port) at --at.")
@click.option("--link", help="Whoever held this link at --at.")
@click.option("--vnode", help="Whoever held this V-node at --at.")
@click.option("--vlan", type=int, help="Narrow a place to this VLAN tag.")
@click.option("--at", "at_", help="When (ISO 8601 with a zone; default now).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@pass_state
def stop_cmd(
    state: CliState,
    slice_ref: str | None,
    reason: str,
    ticket: str | None,
    project: str | None,
    user: str | None,
    port: str | None,
    link: str | None,
    vnode: str | None,
    vlan: int | None,
    at_: str | None,
    as_json: bool,
) -> None:
    """Stop SLICE, or every slice a selector names."""
    at = None
    if at_ is not None:
        try:
            at = parse_instant(at_)
        except ValueError as exc:
            raise InvalidInput([FieldError("at", str(exc))]) from None
    sel = estop.Selector(slice_ref, project, user, port, link, vnode, vlan, at)
    with audited(state, Action.SLICE_ESTOP, f"estop {json.dumps(sel.to_json())}") as note:
        who = allow(state, Action.SLICE_ESTOP)
        note["detail"].update(reason=reason, ticket=ticket)
        tk = _toolkit(state)
        try:
            stopped = estop.stop(state.context, tk, sel, who, reason, ticket)
        finally:
            tk.close()
    if as_json:
        echo_json([_stopped_json(st) for st in stopped])
        return
    for st in stopped:
        if st.skipped:
            click.echo(f"slice {st.slice_id} {st.slice_name!r}: skipped ({st.skipped})")
            continue
        r = st.report
        state_word = "ISOLATED" if r["isolated"] else "NOT FULLY ISOLATED"
        ms = r["timings_ms"]
        if not r.get("built", True):
            click.echo(f"slice {st.slice_id} {st.slice_name!r}: shut down before it started")
            continue
        click.echo(
            f"slice {st.slice_id} {st.slice_name!r}: shut down, {state_word} in "
            f"{ms['isolated']:.0f} ms (nodes frozen {ms['frozen']:.0f} ms)"
        )
        for device in r["unreached"]:
            click.echo(f"  device {device} did not answer: {r['devices'][device]['error']}")
        for fb in r["fallbacks"]:
            click.echo(f"  fallback: {fb['how']} ({fb['at']})")
        for c in r["collateral"]:
            click.echo(f"  collateral: {c} (every slice on it is cut too)")
        for n in r["not_isolated"]:
            click.echo(f"  NOT isolated: {n}")


def _stopped_json(st: estop.Stopped) -> dict[str, Any]:
    return {
        "slice_id": st.slice_id,
        "slice": st.slice_name,
        "estop_id": st.estop_id or None,
        "skipped": st.skipped or None,
        "report": st.report or None,
    }


@estop_group.command()
@click.argument("slice_ref", metavar="SLICE")
@click.option("--reason", default="cleared", show_default=True, help="Why it is lifted.")
@pass_state
def lift(state: CliState, slice_ref: str, reason: str) -> None:
    """Lift SLICE's emergency stop: circuits back, nodes thawed, gateway open, active."""
    with audited(state, Action.SLICE_ESTOP, f"estop lift {slice_ref}") as note:
        who = allow(state, Action.SLICE_ESTOP)
        note["detail"]["reason"] = reason
        tk = _toolkit(state)
        try:
            out = estop.lift(state.context, tk, slice_ref, who, reason)
        finally:
            tk.close()
    click.echo(f"slice {out['slice_id']}: lifted by {out['lifted_by']}, active again")


@estop_group.command()
@click.argument("slice_ref", metavar="SLICE")
@click.option("--off", is_flag=True, help="Remove the hold: torn down at its end as usual.")
@pass_state
def hold(state: CliState, slice_ref: str, off: bool) -> None:
    """Keep a shut-down SLICE past its window's end for forensics (or stop keeping it)."""
    with audited(state, Action.SLICE_ESTOP, f"estop hold {slice_ref}"):
        who = allow(state, Action.SLICE_ESTOP)
        out = estop.set_hold(state.context, slice_ref, who, not off)
    click.echo(f"slice {out['slice_id']}: forensic hold {'on' if out['forensic_hold'] else 'off'}")


@estop_group.command()
@click.argument("slice_ref", metavar="SLICE")
@pass_state
def show(state: CliState, slice_ref: str) -> None:
    """SLICE's latest emergency stop, with its report and forensic snapshot (JSON)."""
    who = allow(state, Action.SLICE_ESTOP)
    with transaction(state.context.read_sessions) as s:
        sl = slices.get(s, slice_ref)
        row = estop.latest(s, sl.id)
        if row is None:
            raise InvalidInput([FieldError("slice", f"{sl.name} was never emergency-stopped")])
        echo_json(estop.describe(row, staff=who is not None))


@estop_group.command()
@click.argument("slice_ref", metavar="[SLICE]", required=False)
@pass_state
def drill(state: CliState, slice_ref: str | None) -> None:
    """Prove the e-stop on this facility: on SLICE (or a small slice booked for the drill
    and released after), traffic across every circuit and a process in every node;
    e-stop; measure when traffic stopped and the nodes froze; check the gateway refuses
    and the processes remain; lift; check traffic resumes. Prints the timings."""
    with audited(state, Action.SLICE_ESTOP, f"estop drill {slice_ref or '(own slice)'}"):
        who = allow(state, Action.SLICE_ESTOP)
        ctx = state.context
        tk = _toolkit(state)
        worker = Worker(ctx, name=f"drill-{uuid.uuid4().hex[:6]}")
        booked: int | None = None
        try:
            with tempfile.TemporaryDirectory() as tmp:
                if slice_ref is None:
                    booked = _book_drill_slice(state, worker, Path(tmp))
                    slice_ref = str(booked)
                warm_all(ctx, tk)
                result = drills.run(ctx, tk, slice_ref, who, say=click.echo)
        finally:
            if booked is not None:
                _release(state, worker, booked)
            worker.stop()
            tk.close()
    click.echo(f"{'check':<52} result")
    for name, ok, detail in result.checks:
        click.echo(f"{name:<52} {'ok' if ok else 'FAIL'}{'  ' + detail if detail else ''}")
    click.echo(f"{'timing':<52} ms")
    for name, ms in result.timings_ms.items():
        click.echo(f"{name:<52} {ms:.1f}")
    if not result.ok:
        raise SystemExit(1)
    click.echo("drill passed")


def _book_drill_slice(state: CliState, worker: Worker, tmp: Path) -> int:
    key = tmp / "drill_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ctx = state.context
    with transaction(ctx.read_sessions) as s:
        pops = list(s.scalars(select(Pop.name).order_by(Pop.name)))
    if not pops:
        raise InvalidInput([FieldError("slice", "no PoP in the inventory: nothing to drill on")])
    doc = drills.drill_request(
        f"drill-{uuid.uuid4().hex[:6]}", pops, key.with_suffix(".pub").read_text()
    )
    with transaction(ctx.sessions) as s:
        booked = slices.book(s, state.settings, doc, now=ctx.now(), actor=state.principal)
        assert booked.slice is not None
        sid = booked.slice.id
    click.echo(f"booked slice {sid} for the drill; starting it")
    deadline = time.monotonic() + 120
    while _status(state, sid) in (SliceStatus.SCHEDULED, SliceStatus.PROVISIONING):
        if time.monotonic() > deadline:
            raise click.ClickException(f"the drill's slice {sid} did not start in 120 s")
        worker.run_once()
        time.sleep(0.05)
    if _status(state, sid) is not SliceStatus.ACTIVE:
        raise click.ClickException(f"the drill's slice {sid} did not start: {_status(state, sid)}")
    return sid


def _status(state: CliState, sid: int) -> SliceStatus:
    with transaction(state.context.read_sessions) as s:
        return slices.get(s, str(sid)).status


def _release(state: CliState, worker: Worker, sid: int) -> None:
    with contextlib.suppress(Exception), transaction(state.context.sessions) as s:
        runner.request_release(s, slices.get(s, str(sid)), state.context.now(), staff=True)
    deadline = time.monotonic() + 120
    while _status(state, sid) is not SliceStatus.ENDED and time.monotonic() < deadline:
        worker.run_once()
        time.sleep(0.05)
    click.echo(f"drill slice {sid}: {_status(state, sid).value}")
