"""federica slice schema | validate"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from federica.aaa.policy import Action, allowed_projects, decide
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, audited
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.federation import remote
from federica.slices import maintenance, runner, service, windows
from federica.slices.models import Slice
from federica.slices.request import (
    MAX_REQUEST_BYTES,
    load_document,
    parse_duration,
    parse_instant,
    parse_request,
    schema_json,
)
from federica.substrate.models import Pop


@cli.group(name="slice")
def slice_group() -> None:
    """Slices: validate, book, list, show, release."""


@slice_group.command()
def schema() -> None:
    """Print the JSON Schema of the slice request format."""
    click.echo(schema_json(), nl=False)


@slice_group.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@pass_state
def validate(state: CliState, file: Path) -> None:
    """Check a slice request (YAML or JSON) against the format and the inventory's PoPs.
    Changes nothing; every problem is named with its field."""
    text = _read(file)
    with transaction(state.context.read_sessions) as s:
        pops = set(s.scalars(select(Pop.name)).all())
    req, window = parse_request(
        text,
        now=state.context.now(),
        max_duration=dt.timedelta(days=state.settings.max_slice_days),
        known_pops=pops,
    )
    click.echo(
        f"{file}: slice {req.name!r}, {len(req.nodes)} node(s), "
        f"{len(req.circuits)} circuit(s), {window.start:%Y-%m-%d %H:%M} → "
        f"{window.end:%Y-%m-%d %H:%M} UTC: valid"
    )


def _read(file: Path) -> bytes:
    try:
        if file.stat().st_size > MAX_REQUEST_BYTES:
            raise InvalidInput([FieldError("", f"{file}: larger than {MAX_REQUEST_BYTES} bytes")])
        return file.read_bytes()
    except OSError as exc:
        raise InvalidInput([FieldError("", f"{file}: {exc.strerror}")]) from None


def _read_key(path: Path) -> str:
    try:
        if path.stat().st_size > 65536:
            raise InvalidInput([FieldError("--ssh-key", f"{path}: not a public key (too large)")])
        return path.read_text(errors="replace").strip()
    except OSError as exc:
        raise InvalidInput([FieldError("--ssh-key", f"{path}: {exc.strerror}")]) from None


def _book_across(state: CliState, file: Path, document: Any, as_json: bool) -> None:
    """Nodes pinned to a peer's PoP (PEER/POP): booked here and at the peer."""
    with audited(state, Action.SLICE_CREATE, str(file)) as note:
        booked, parts = remote.book_across(
            state.context.sessions, state.settings, document, now=state.context.now,
            actor=state.principal,
        )  # fmt: skip
        assert booked.slice is not None
        note["slice_id"], note["project"] = booked.slice.id, booked.request.project
        note["detail"]["remote"] = [[p["peer"], p["request_id"]] for p in parts]
    if as_json:
        with transaction(state.context.read_sessions) as s:
            shown = service.describe(service.get(s, booked.slice.id))
        click.echo(json.dumps({"slice": shown, "remote": parts}, indent=2))
        return
    click.echo(
        f"booked slice {booked.slice.id} {booked.request.name!r}: "
        f"{booked.window.start:%Y-%m-%d %H:%M} → {booked.window.end:%Y-%m-%d %H:%M} UTC"
    )
    for node, host in booked.embedding.placement.items():
        click.echo(f"  node {node:<12} on {host}")
    for part in parts:
        there = part.get("slice") or {}
        for n in there.get("nodes", []):
            click.echo(f"  node {n['name']:<12} at peer {part['peer']} ({n['pop']}, {n['v_node']})")
        click.echo(f"  peer {part['peer']}: {part['state']} as slice {there.get('name')}")


@slice_group.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show where it would go; book nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--ssh-key",
    "ssh_keys",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A public key file (e.g. ~/.ssh/id_ed25519.pub) that may log in through the "
    "slice's gateway; repeatable; added to the request's ssh_keys.",
)
@pass_state
def book(
    state: CliState, file: Path, dry_run: bool, as_json: bool, ssh_keys: tuple[Path, ...]
) -> None:
    """Book the slice described in FILE (YAML or JSON)."""
    document: Any = _read(file)
    if ssh_keys:
        document = load_document(document)
        have = document.get("ssh_keys", []) if isinstance(document, dict) else None
        if isinstance(have, list):  # otherwise validation names what is wrong
            extra = [_read_key(k) for k in ssh_keys]
            document["ssh_keys"] = [*have, *extra]
    if not dry_run:
        loaded = load_document(document) if isinstance(document, bytes) else document
        if remote.pinned_remote(loaded):
            _book_across(state, file, loaded, as_json)
            return
    with audited(state, Action.SLICE_CREATE, str(file)) as note:
        booked = service.book_with_retry(
            state.context.sessions,
            state.settings,
            document,
            now=state.context.now,
            dry_run=dry_run,
            actor=state.principal,
        )
        if booked.slice is not None:
            note["slice_id"], note["project"] = booked.slice.id, booked.request.project
        else:
            note["detail"]["dry_run"] = True
    if as_json:
        out = {
            "dry_run": booked.dry_run,
            "embedding": service.describe_embedding(booked.embedding),
            "timings_ms": booked.timings_ms,
        }
        if booked.slice is not None:
            with transaction(state.context.read_sessions) as s:
                out["slice"] = service.describe(service.get(s, booked.slice.id))
        click.echo(json.dumps(out, indent=2))
        return
    head = "would book" if booked.dry_run else f"booked slice {booked.slice.id}"  # type: ignore[union-attr]
    click.echo(
        f"{head} {booked.request.name!r}: {booked.window.start:%Y-%m-%d %H:%M} → "
        f"{booked.window.end:%Y-%m-%d %H:%M} UTC"
    )
    for node, host in booked.embedding.placement.items():
        click.echo(f"  node {node:<12} on {host}")
    for name, cm in booked.embedding.circuits.items():
        hops = ", ".join(f"{h.device}:{h.port}.{h.vlan}" for h in cm.hops) or "inside its V-node"
        click.echo(f"  circuit {name:<9} {cm.bandwidth_mbps} Mb/s: {hops}")


@slice_group.command(name="list")
@pass_state
def list_(state: CliState) -> None:
    """Slices, newest first (yours and your projects'; staff: all)."""
    who = allow(state, Action.SUBSTRATE_READ)
    query = select(Slice).order_by(Slice.id.desc())
    mine = allowed_projects(who)
    if mine is not None:
        query = query.where(or_(Slice.project.in_(mine), Slice.owner_id == who.user_id))
    with transaction(state.context.read_sessions) as s:
        for sl in s.scalars(query):
            click.echo(
                f"{sl.id:>5}  {sl.name:<20} {sl.status.value:<12} "
                f"{sl.start:%Y-%m-%d %H:%M} → {sl.end:%Y-%m-%d %H:%M} UTC"
            )


@slice_group.command()
@click.argument("ref")
@pass_state
def show(state: CliState, ref: str) -> None:
    """A slice (by id or name) as JSON: mapping, VLANs, window, history."""
    with transaction(state.context.read_sessions) as s:
        click.echo(json.dumps(service.describe(_slice(state, s, ref, Action.SLICE_READ)), indent=2))


def _slice(
    state: CliState, s: Session, ref: str, action: Action, note: dict[str, Any] | None = None
) -> Slice:
    sl = service.get(s, ref)
    if note is not None:  # the audit entry names the slice, also when refused
        note["slice_id"], note["project"] = sl.id, sl.project
    allow(state, action, project=sl.project, owner_id=sl.owner_id)
    return sl


@slice_group.command()
@click.argument("ref")
@pass_state
def summary(state: CliState, ref: str) -> None:
    """A slice for people: its nodes and addresses, circuits, how to log in, timings."""
    with transaction(state.context.read_sessions) as s:
        d = service.describe(_slice(state, s, ref, Action.SLICE_READ))
    click.echo(f"slice {d['id']} {d['name']!r}: {d['status']}  {d['start']} → {d['end']}")
    if d["failure_reason"]:
        click.echo(f"  failed: {d['failure_reason']}")
    for n in d["nodes"]:
        addrs = ", ".join(f"{i['name']} {i['address']} ({i['circuit']})" for i in n["interfaces"])
        click.echo(f"  node {n['name']:<12} {n['state']:<8} on {n['v_node']} ({n['pop']})  {addrs}")
    for c in d["circuits"]:
        hops = ", ".join(f"{h['device']}:{h['port']}.{h['vlan']}" for h in c["hops"])
        click.echo(
            f"  circuit {c['name']:<9} {c['bandwidth_mbps']} Mb/s {c['state']:<8} "
            f"{hops or 'inside its V-node'}"
        )
    access = d["access"]
    if access:
        click.echo(f"  log in: {access['ssh']}   (any node: replace the last word)")
        click.echo(f"  gateway host key: {access['host_key']}")
    for phase, laps in d["timings_ms"].items():
        click.echo(f"  {phase}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in laps.items()))


@slice_group.command()
@click.argument("ref")
@pass_state
def release(state: CliState, ref: str) -> None:
    """Release a slice now (idempotent). A built slice is taken down by the worker."""
    with audited(state, Action.SLICE_CHANGE, f"release {ref}") as note:
        with transaction(state.context.sessions) as s:
            sl = _slice(state, s, ref, Action.SLICE_CHANGE, note)
            staff = decide(state.principal, Action.SLICE_ESTOP).allowed
            sl = runner.request_release(s, sl, state.context.now(), staff=staff)
        click.echo(f"slice {sl.id} {sl.name!r}: {sl.status.value}")


@slice_group.command()
@click.argument("ref")
@click.option("--by", "by_", help="Extend by a duration: 2h, 1d, P1D.")
@click.option("--to", help="Extend to a time (ISO 8601 with a zone).")
@pass_state
def extend(state: CliState, ref: str, by_: str | None, to: str | None) -> None:
    """Extend a slice, keeping its mapping (see `slice extent` for how far)."""
    try:
        by = parse_duration(by_) if by_ is not None else None
        until = parse_instant(to) if to is not None else None
    except ValueError as exc:
        raise InvalidInput([FieldError("--by" if by_ else "--to", str(exc))]) from None
    with audited(state, Action.SLICE_CHANGE, f"extend {ref}") as note:
        with transaction(state.context.sessions) as s:
            sl = _slice(state, s, ref, Action.SLICE_CHANGE, note)
            sl = windows.extend(s, state.settings, sl, now=state.context.now(), to=until, by=by)
        click.echo(f"slice {sl.id} {sl.name!r} now ends {sl.end:%Y-%m-%d %H:%M} UTC")


@slice_group.command()
@click.argument("ref")
@pass_state
def extent(state: CliState, ref: str) -> None:
    """How far a slice can be extended, and what stops it there."""
    with transaction(state.context.read_sessions) as s:
        sl = _slice(state, s, ref, Action.SLICE_READ)
        ext = windows.extent(s, state.settings, sl, state.context.now())
        click.echo(
            f"slice {sl.name!r} ends {sl.end:%Y-%m-%d %H:%M} UTC; it can be extended to "
            f"{ext.latest:%Y-%m-%d %H:%M} UTC (limited by {ext.limited_by})"
        )


@slice_group.command(name="find-slot")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--after", help="Earliest start (ISO 8601); default: the request's start.")
@pass_state
def find_slot(state: CliState, file: Path, after: str | None) -> None:
    """The earliest window of the request's length in which it fits (books nothing)."""
    try:
        start = parse_instant(after) if after else None
    except ValueError as exc:
        raise InvalidInput([FieldError("--after", str(exc))]) from None
    allow(state, Action.CALENDAR_READ)
    with transaction(state.context.read_sessions) as s:
        slot = windows.find_slot(
            s,
            state.settings,
            _read(file),
            now=state.context.now(),
            after=start,
            embedder=service.DEFAULT_EMBEDDER,
        )
    click.echo(
        f"{slot.request.name!r} fits {slot.window.start:%Y-%m-%d %H:%M} → "
        f"{slot.window.end:%Y-%m-%d %H:%M} UTC"
    )


@slice_group.command()
@click.argument("kind", type=click.Choice(["link", "host"]))
@click.argument("name")
@click.option("--from", "from_", help="Start (ISO 8601); default now.")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
@pass_state
def calendar(state: CliState, kind: str, name: str, from_: str | None, days: int) -> None:
    """Who holds a link or V-node when, and its maintenance windows."""
    try:
        start = parse_instant(from_) if from_ else state.context.now()
    except ValueError as exc:
        raise InvalidInput([FieldError("--from", str(exc))]) from None
    allow(state, Action.CALENDAR_READ)
    with transaction(state.context.read_sessions) as s:
        cal = maintenance.resource_calendar(s, kind, name, start, start + dt.timedelta(days=days))
    click.echo(json.dumps(cal, indent=2))
