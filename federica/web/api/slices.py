"""Slices over REST: book (or dry-run), list, show, release."""

from __future__ import annotations

import datetime as dt
import time

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from federica.aaa.policy import Action
from federica.errors import Conflict, FieldError, InvalidInput
from federica.estop import service as estop
from federica.federation import estop_relay, remote
from federica.slices import runner, service, windows
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.slices.request import load_document, parse_duration, parse_instant
from federica.web.api import api
from federica.web.api.models import Extension, parse_body
from federica.web.api.openapi import document
from federica.web.auth import guard, may, note, record_with, require, skip_audit
from federica.web.context import ctx, read_session, write_session
from federica.web.targets import slice_for, visible_slices


def _flag(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in {"1", "true", "yes", "0", "false", "no"}:
        raise InvalidInput([FieldError(name, f"expected true or false, got {raw!r}")])
    return raw in {"1", "true", "yes"}


@api.post("/slices")
@document(
    "Booking",
    "Book a slice (or, with dry_run, show where it would go)",
    tag="slices",
    body="SliceRequest",
    status=201,
    query=("dry_run",),
    also=((200, "A dry run: where the slice would go; nothing is booked"),),
)
@guard(Action.SLICE_CREATE, per_target=True)
def create_slice() -> ResponseReturnValue:
    received = g.get("received", time.perf_counter())
    dry_run = _flag("dry_run")
    if dry_run:
        skip_audit()
    raw = request.get_data()
    # Nodes pinned to a peer's PoP ("beta/TYO"): booked here and at the peer, in two phases.
    if not dry_run and b"/" in raw and remote.pinned_remote(load_document(raw)):
        return _book_across(raw)

    def audited(s: Session, booked: service.Booked) -> None:
        assert booked.slice is not None
        note(slice_id=booked.slice.id, project=booked.request.project, name=booked.request.name)
        record_with(s, 201)  # the booking and its audit entry commit together

    booked = service.book_with_retry(
        ctx().sessions,
        ctx().settings,
        raw,
        now=ctx().now,
        dry_run=dry_run,
        received=received,
        actor=require(),
        then=audited,
    )
    body = {
        "dry_run": booked.dry_run,
        "embedding": service.describe_embedding(booked.embedding),
        "window": {"start": booked.window.start.isoformat(), "end": booked.window.end.isoformat()},
        "timings_ms": booked.timings_ms,
    }
    if booked.description is not None:
        body["slice"] = booked.description
    return jsonify(body), 200 if dry_run else 201


def _book_across(raw: bytes) -> ResponseReturnValue:
    booked, parts = remote.book_across(
        ctx().sessions, ctx().settings, raw, now=ctx().now, actor=require()
    )
    assert booked.slice is not None
    note(slice_id=booked.slice.id, project=booked.request.project, name=booked.request.name,
         remote=[(p["peer"], p["request_id"]) for p in parts])  # fmt: skip
    with read_session() as s:
        shown = service.describe(service.get(s, booked.slice.id))
    body = {
        "dry_run": False,
        "embedding": service.describe_embedding(booked.embedding),
        "window": {"start": booked.window.start.isoformat(), "end": booked.window.end.isoformat()},
        "timings_ms": booked.timings_ms,
        "slice": shown,
        "remote": parts,
    }
    return jsonify(body), 201


@api.get("/slices")
@document(
    "SliceList",
    "Slices, newest first (filter with ?status=active etc.)",
    tag="slices",
    query=("status",),
)
@guard(Action.SLICE_READ, per_target=True)
def list_slices() -> ResponseReturnValue:
    query = visible_slices()
    status = request.args.get("status")
    if status is not None:
        try:
            query = query.where(Slice.status == SliceStatus(status))
        except ValueError:
            raise InvalidInput(
                [
                    FieldError(
                        "status",
                        f"{status!r} is not one of {', '.join(s.value for s in SliceStatus)}",
                    )
                ]
            ) from None
    with read_session() as s:
        return jsonify([service.describe(sl) for sl in s.scalars(query)])


@api.get("/slices/<ref>")
@document("Slice", "One slice by id or name", param="ref", tag="slices")
@guard(Action.SLICE_READ, per_target=True)
def show_slice(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        body = service.describe(sl)
        row = estop.in_force(s, sl.id)
        # Its owner and project see that it is stopped, by whom and why.
        body["emergency_stop"] = (
            estop.describe(row, staff=may(Action.SLICE_ESTOP)) if row is not None else None
        )
        return jsonify(body)


@api.get("/slices/<ref>/remote")
@document(
    "RemoteParts",
    "The slice's parts at peer facilities, as each peer says now (its nodes' state and how "
    "to log in)",
    param="ref",
    tag="slices",
)
@guard(Action.SLICE_READ, per_target=True)
def slice_remote(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        slice_id, name = sl.id, sl.name
    parts = remote.current_parts(ctx().sessions, ctx().settings, slice_id)
    with read_session() as s:
        relays = estop_relay.status_for(s, slice_id)  # an e-stop told to the peers, or not yet
    for part in parts:
        part["estop"] = relays.get(part["request_id"])
    return jsonify({"slice": name, "remote": parts})


@api.post("/slices/<ref>/release")
@document(
    "Slice",
    "Release a slice now (idempotent). A slice not yet built ends at once (200); a built "
    "one becomes releasing and a worker takes it down (202)",
    param="ref",
    tag="slices",
    also=((202, "The slice is releasing: a worker takes it down"),),
)
@guard(Action.SLICE_CHANGE, per_target=True)
def release_slice(ref: str) -> ResponseReturnValue:
    with write_session() as s:
        sl = runner.request_release(
            s,
            slice_for(s, ref, Action.SLICE_CHANGE),
            ctx().now(),
            staff=may(Action.SLICE_ESTOP),
        )
        code = 202 if sl.status is SliceStatus.RELEASING else 200
        body, slice_id = service.describe(sl), sl.id
        record_with(s, code)  # the release and its audit entry commit together
    # Its parts at peers (booked across facilities) are released there too.
    released = remote.release_remote(ctx().sessions, ctx().settings, slice_id)
    if released:
        body["remote"] = released
    return jsonify(body), code


@api.post("/slices/<ref>/extend")
@document(
    "Slice",
    'Extend a slice: body {"by": "2h"} or {"to": "2026-12-03T18:00:00Z"}',
    param="ref",
    tag="slices",
    body="Extension",
)
@guard(Action.SLICE_CHANGE, per_target=True)
def extend_slice(ref: str) -> ResponseReturnValue:
    body = parse_body(Extension)
    to = by = None
    try:
        if body.to is not None:
            to = parse_instant(body.to)
        if body.by is not None:
            by = parse_duration(body.by)
    except ValueError as exc:
        field = "to" if body.to is not None and to is None else "by"
        raise InvalidInput([FieldError(field, str(exc))]) from None
    with write_session() as s:
        sl = slice_for(s, ref, Action.SLICE_CHANGE)
        sl = windows.extend(s, ctx().settings, sl, now=ctx().now(), to=to, by=by)
        answer = service.describe(sl)
        record_with(s, 200)  # the extension and its audit entry commit together
    return jsonify(answer)


@api.get("/slices/<ref>/extent")
@document(
    "Extent", "How far the slice can be extended, and what limits it", param="ref", tag="slices"
)
@guard(Action.SLICE_READ, per_target=True)
def slice_extent(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        if sl.status not in windows.EXTENDABLE:
            raise Conflict(f"slice {sl.name} is {sl.status.value}; it cannot be extended")
        return jsonify(windows.extent(s, ctx().settings, sl, ctx().now()).as_dict())


@api.post("/slots")
@document(
    "Slot",
    "Find the earliest window (of the request's length, at or after ?after=) where the "
    "request fits; books nothing",
    tag="slices",
    body="SliceRequest",
    query=("after:string",),
)
@guard(Action.CALENDAR_READ)
def find_slot() -> ResponseReturnValue:
    skip_audit()  # books nothing
    after = _time_arg("after")
    with read_session() as s:
        slot = windows.find_slot(
            s,
            ctx().settings,
            request.get_data(),
            now=ctx().now(),
            after=after,
            embedder=service.DEFAULT_EMBEDDER,
        )
        return jsonify(
            {
                "start": slot.window.start.isoformat(),
                "end": slot.window.end.isoformat(),
                "embedding": service.describe_embedding(slot.embedding),
            }
        )


def _time_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise InvalidInput([FieldError(name, str(exc))]) from None
