"""Slices over REST: book (or dry-run), list, show, release."""

from __future__ import annotations

import datetime as dt

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from federica.errors import BadRequest
from federica.slices import service
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.web.api import api
from federica.web.api.openapi import document
from federica.web.api.util import ctx, read_session, write_session


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _flag(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in {"1", "true", "yes", "0", "false", "no"}:
        raise BadRequest(f"query parameter {name}: expected true or false, got {raw!r}")
    return raw in {"1", "true", "yes"}


@api.post("/slices")
@document(
    "Booking",
    "Book a slice (or, with dry_run, show where it would go)",
    tag="slices",
    body="SliceRequest",
    status=201,
    query=("dry_run",),
)
def create_slice() -> ResponseReturnValue:
    dry_run = _flag("dry_run")
    booked = service.book_with_retry(
        ctx().sessions, ctx().settings, request.get_data(), now=_now, dry_run=dry_run
    )
    body = {
        "dry_run": booked.dry_run,
        "embedding": service.describe_embedding(booked.embedding),
        "window": {"start": booked.window.start.isoformat(), "end": booked.window.end.isoformat()},
        "timings_ms": booked.timings_ms,
    }
    if booked.slice is not None:
        with read_session() as s:
            body["slice"] = service.describe(service.get(s, booked.slice.id))
    return jsonify(body), 200 if dry_run else 201


@api.get("/slices")
@document("SliceList", "Slices, newest first (filter with ?status=active etc.)", tag="slices")
def list_slices() -> ResponseReturnValue:
    query = select(Slice).order_by(Slice.id.desc())
    status = request.args.get("status")
    if status is not None:
        try:
            query = query.where(Slice.status == SliceStatus(status))
        except ValueError:
            raise BadRequest(
                f"query parameter status: {status!r} is not one of "
                f"{', '.join(s.value for s in SliceStatus)}"
            ) from None
    with read_session() as s:
        return jsonify([service.describe(sl) for sl in s.scalars(query)])


@api.get("/slices/<ref>")
@document("Slice", "One slice by id or name", param="ref", tag="slices")
def show_slice(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        return jsonify(service.describe(service.get(s, ref)))


@api.post("/slices/<ref>/release")
@document("Slice", "Release a slice now (idempotent)", param="ref", tag="slices")
def release_slice(ref: str) -> ResponseReturnValue:
    with write_session() as s:
        sl = service.release(s, service.get(s, ref), now=_now())
        return jsonify(service.describe(sl))
