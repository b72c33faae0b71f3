"""Changing and finding windows: extend, "how far can I extend?", find the earliest slot."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from federica import revision
from federica.config import Settings
from federica.errors import Conflict, FieldError, InvalidInput
from federica.slices import events, quota
from federica.slices.calendar import Booking, Interval, earliest_start, latest_end
from federica.slices.embed import Embedder, Embedding, EmbeddingFailed
from federica.slices.index import CalendarIndex, Held, advance_on_commit, held_of, index_for
from federica.slices.lifecycle import EXTENDABLE
from federica.slices.models import ReservationKind, Slice
from federica.slices.request import SliceRequest, parse_request

K = ReservationKind
__all__ = ["EXTENDABLE", "Extent", "Slot", "extend", "extent", "find_slot"]


@dataclass(frozen=True)
class Extent:
    """How far a slice can be extended, and what stops it there."""

    latest: dt.datetime
    limited_by: str

    def as_dict(self) -> dict[str, Any]:
        return {"latest_end": self.latest.isoformat(), "limited_by": self.limited_by}


def extent(session: Session, settings: Settings, sl: Slice, now: dt.datetime) -> Extent:
    index = index_for(session)
    index.refresh(session, now)
    return _extent(index, settings, sl, now)


def _extent(index: CalendarIndex, settings: Settings, sl: Slice, now: dt.datetime) -> Extent:
    sub = index.substrate
    assert sub is not None
    limit = min(
        sl.start + dt.timedelta(days=settings.max_slice_days),
        now + dt.timedelta(days=settings.booking_horizon_days),
    )
    best = Extent(limit, f"the maximum slice length ({settings.max_slice_days} days)")
    if limit <= sl.end:
        return Extent(sl.end, best.limited_by)
    tail = Interval(sl.end, limit)
    current = Interval(sl.start, sl.end)
    mine = index.by_slice.get(sl.id, [])
    shared: dict[tuple[str, int], list[Held]] = defaultdict(list)
    for h in mine:
        if h.end < sl.end:
            continue
        others = index.held(h.resource, tail, exclude=sl.id)
        if h.vlan is not None:
            clash = [o.start for o in others if o.kind is h.kind and o.vlan == h.vlan]
            if clash and min(clash) < best.latest:
                best = Extent(max(min(clash), sl.end), f"VLAN {h.vlan} on {sub.label(h.resource)}")
        if h.vlan is None or h.amount:  # a tag's row carries its circuit's Mb/s too
            shared[h.resource].append(h)
    for res, items in shared.items():
        others = index.held(res, tail, exclude=sl.id)
        measures = [False, True] if res[0] == "host" else [False]
        for ram in measures:

            def amount(h: Held, ram: bool = ram) -> int:
                return h.ram_mb if ram else h.amount

            end = latest_end(
                sub.capacity(res, ram=ram),
                [Booking(Interval(o.start, o.end), amount(o)) for o in others],
                current,
                sum(amount(h) for h in items),
                best.latest,
            )
            if end < best.latest:
                what = "RAM" if ram else ("vCPU" if res[0] == "host" else "bandwidth")
                best = Extent(end, f"{what} on {sub.label(res)}")
    touched = {h.resource for h in mine}
    for m in index.maintenance:
        if (
            m.interval.end > sl.end
            and m.interval.start < best.latest
            and touched & sub.resources_of(m.target_kind.value, m.target)
        ):
            start = max(m.interval.start, sl.end)
            best = Extent(start, f"maintenance of {m.target_kind.value} {m.target} ({m.reason})")
    return best


def extend(
    session: Session,
    settings: Settings,
    sl: Slice,
    *,
    now: dt.datetime,
    to: dt.datetime | None = None,
    by: dt.timedelta | None = None,
) -> Slice:
    """Move the slice's end later, keeping its mapping; all or nothing."""
    if (to is None) == (by is None):
        raise InvalidInput(
            [FieldError("", "give exactly one of 'to' (a time) or 'by' (a duration)")]
        )
    field = "to" if to is not None else "by"
    try:
        new_end = to if to is not None else sl.end + by  # type: ignore[operator]
    except OverflowError:
        raise InvalidInput([FieldError(field, "longer than any calendar")]) from None
    if sl.status not in EXTENDABLE:
        raise Conflict(
            f"slice {sl.name} is {sl.status.value}; only scheduled, provisioning or active "
            "slices can be extended"
        )
    if new_end <= sl.end:
        raise InvalidInput(
            [
                FieldError(
                    field,
                    f"{new_end.isoformat()} is not after the current end {sl.end.isoformat()}",
                )
            ]
        )
    index = index_for(session)
    rev = revision.bump(session, revision.CALENDAR)
    index.refresh(session, now, upto=rev - 1)
    ext = _extent(index, settings, sl, now)
    if new_end > ext.latest:
        raise Conflict(
            f"slice {sl.name} can be extended to {ext.latest:%Y-%m-%d %H:%M} UTC at most "
            f"(limited by {ext.limited_by}), not to {new_end:%Y-%m-%d %H:%M} UTC",
            errors=[
                FieldError(field, f"latest possible end is {ext.latest.isoformat()}").as_dict()
            ],
        )
    req = SliceRequest.model_validate_json(sl.request)
    quota.check(session, req, Interval(sl.end, new_end), vcpu=sum(n.vcpu for n in sl.nodes))
    old_end = sl.end
    for r in sl.reservations:
        if r.end == old_end:
            r.end = new_end
    sl.end, sl.rev = new_end, rev
    advance_on_commit(
        session, index, sl.id, [held_of(r) for r in sl.reservations if r.end > now], rev
    )
    events.reschedule_end(sl, settings)
    sl.note(now, f"extended to {new_end:%Y-%m-%d %H:%M} UTC")
    session.flush()
    return sl


@dataclass
class Slot:
    window: Interval
    embedding: Embedding
    request: SliceRequest


def find_slot(
    session: Session,
    settings: Settings,
    document: Any,
    *,
    now: dt.datetime,
    after: dt.datetime | None,
    embedder: Embedder,
) -> Slot:
    """The earliest window of the request's length, starting at or after `after`, in which
    the whole request fits (nothing is booked)."""
    index = index_for(session)
    sub = index.refresh(session, now)
    horizon = now + dt.timedelta(days=settings.booking_horizon_days)
    req, win = parse_request(
        document,
        now=now,
        max_duration=dt.timedelta(days=settings.max_slice_days),
        known_pops=sub.pops,
    )
    start = max(after or win.start, now)
    length = win.end - win.start
    found: dict[Interval, Embedding] = {}
    last_failure: list[EmbeddingFailed] = []

    def feasible(iv: Interval) -> bool:
        try:
            found[iv] = embedder.embed(req, index.view(iv))
            return True
        except EmbeddingFailed as exc:
            last_failure[:] = [exc]
            return False

    with index.lock:
        ends = {h.end for held in index.by_slice.values() for h in held}
        ends |= {m.interval.end for m in index.maintenance}
        slot = earliest_start(feasible, length, start, ends, horizon + length)
    if slot is None:
        why = f": {last_failure[0]}" if last_failure else ""
        raise Conflict(
            f"no window of {length} fits before the booking horizon "
            f"({horizon:%Y-%m-%d %H:%M} UTC){why}",
            errors=[r.as_dict() for r in last_failure[0].reasons] if last_failure else [],
        )
    return Slot(slot, found[slot], req)
