"""Calendar events of a slice (start, warn before end, end) and their atomic claiming.

Events live in the database, so any worker process can run them and none is lost when a
worker dies. Only the earliest pending event of a slice is claimable (a slice's end never
overtakes its start); a claim is a lease, and an expired lease can be taken again. The
worker running an event renews its lease every third of it (`renew`, its heartbeat), so a
long provisioning keeps its event while a worker that died loses it within one lease.

An event whose handler raised is released with `claimed_until` set to when it may be
tried again (its back-off), so the claim itself needs no other column; after a bounded
number of attempts the worker gives it up (worker.py).
"""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import Update, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from federica.config import Settings
from federica.slices.calendar import Interval
from federica.slices.lifecycle import EventKind
from federica.slices.models import Slice, SliceEvent


def for_window(window: Interval, settings: Settings) -> list[SliceEvent]:
    events = [SliceEvent(kind=EventKind.START, due=window.start)]
    warn = window.end - dt.timedelta(minutes=settings.warn_before_end_min)
    if warn > window.start:
        events.append(SliceEvent(kind=EventKind.WARN, due=warn))
    events.append(SliceEvent(kind=EventKind.END, due=window.end))
    return events


def reschedule_end(sl: Slice, settings: Settings) -> None:
    """After an extension: the pending warning and end move with the slice's end."""
    warn_at = sl.end - dt.timedelta(minutes=settings.warn_before_end_min)
    has_warn = False
    for e in sl.events:
        if e.done_at is not None:
            continue
        if e.kind is EventKind.END:
            e.due = sl.end
        elif e.kind is EventKind.WARN:
            e.due, has_warn = warn_at, True
    if not has_warn and warn_at > sl.start:
        sl.events.append(SliceEvent(kind=EventKind.WARN, due=warn_at))


def cancel_pending(sl: Slice, now: dt.datetime, why: str) -> None:
    """Cancel the slice's events not done yet, except one a worker is running right now
    (its worker records its own result). One waiting for its next attempt is cancelled."""
    for e in sl.events:
        running = e.claimed_by is not None and e.claimed_until is not None and e.claimed_until > now
        if e.done_at is None and not running:
            e.done_at, e.result = now, f"{CANCELLED}: {why}"


# A start that waits to be asked for (a GENI allocation waits for geni_start) is due just
# after the slice's end: the end event comes first, so a start never asked for never runs.
_AFTER_END = dt.timedelta(microseconds=1)


def defer_start(sl: Slice) -> None:
    for e in sl.events:
        if e.kind is EventKind.START and e.done_at is None:
            e.due = sl.end + _AFTER_END


def start_deferred(sl: Slice) -> bool:
    return any(
        e.kind is EventKind.START and e.done_at is None and e.due > sl.end for e in sl.events
    )


def start_at(sl: Slice, at: dt.datetime) -> bool:
    """A deferred start made due at `at` (not before the window starts); False if the
    slice had no deferred start."""
    moved = False
    for e in sl.events:
        if e.kind is EventKind.START and e.done_at is None and e.due > sl.end:
            e.due, moved = max(at, sl.start), True
    return moved


FAILED, CANCELLED = "failed", "cancelled"  # how a result starts when the event did not happen


def state_of(e: SliceEvent) -> str:
    """pending, running, retrying (an attempt failed; see claimed_until), done, failed or
    cancelled."""
    if e.done_at is None:
        if e.claimed_by is not None:
            return "running"
        return "retrying" if e.attempts else "pending"
    for prefix in (FAILED, CANCELLED):
        if e.result.startswith(prefix):
            return prefix
    return "done"


def backoff(attempt: int, first_s: float, longest_s: float) -> dt.timedelta:
    """How long to wait after failed attempt `attempt` (1, 2, …): doubling, capped."""
    return dt.timedelta(seconds=min(longest_s, first_s * 2 ** max(0, attempt - 1)))


def claim(
    session: Session, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int = 10
) -> list[int]:
    """Take up to `limit` due events for `worker`; returns their ids, earliest first."""
    ids = session.scalars(
        _claim_statement(limit), {"now": now, "worker": worker, "until": now + lease}
    ).all()
    return sorted(ids)


@functools.cache
def _claim_statement(limit: int) -> Update:
    """Built once: the worker polls with it, and building it (an alias, a correlated
    subquery) cost more than running it."""
    now = bindparam("now", type_=SliceEvent.due.type)
    earlier = aliased(SliceEvent)
    blocked_by_earlier = exists().where(
        earlier.slice_id == SliceEvent.slice_id,
        earlier.done_at.is_(None),
        earlier.id != SliceEvent.id,
        or_(
            earlier.due < SliceEvent.due,
            and_(earlier.due == SliceEvent.due, earlier.id < SliceEvent.id),
        ),
    )
    due = (
        select(SliceEvent.id)
        .where(
            SliceEvent.done_at.is_(None),
            SliceEvent.due <= now,
            or_(SliceEvent.claimed_until.is_(None), SliceEvent.claimed_until < now),
            ~blocked_by_earlier,
        )
        .order_by(SliceEvent.due, SliceEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(SliceEvent)
        .where(SliceEvent.id.in_(due.scalar_subquery()))
        .values(
            claimed_by=bindparam("worker"),
            claimed_until=bindparam("until", type_=SliceEvent.claimed_until.type),
            attempts=SliceEvent.attempts + 1,
        )
        .returning(SliceEvent.id)
    )


def next_due_after(session: Session, now: dt.datetime) -> dt.datetime | None:
    """The earliest moment after `now` at which a pending event may become claimable (its
    due time, or when its lease or back-off ends); None if there is none. A lower bound:
    the worker sleeps until then at most, and a look too early only finds nothing."""
    pending = SliceEvent.done_at.is_(None)
    due = session.scalar(select(func.min(SliceEvent.due)).where(pending, SliceEvent.due > now))
    until = session.scalar(
        select(func.min(SliceEvent.claimed_until)).where(pending, SliceEvent.claimed_until > now)
    )
    times = [t for t in (due, until) if t is not None]
    if not times:
        return None
    # SQLite gives naive datetimes back; the columns hold UTC.
    return min(t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in times)


def renew(session: Session, event_id: int, worker: str, until: dt.datetime) -> bool:
    """Extend this worker's claim (its heartbeat while it runs the event); False if the
    lease was lost meanwhile (it ran out and another worker took the event)."""
    done = session.execute(
        update(SliceEvent)
        .where(
            SliceEvent.id == event_id, SliceEvent.claimed_by == worker, SliceEvent.done_at.is_(None)
        )
        .values(claimed_until=until)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def retry_later(session: Session, event_id: int, worker: str, at: dt.datetime, result: str) -> bool:
    """Release this worker's claim after a failed attempt; claimable again from `at`.
    False if the lease was lost meanwhile."""
    done = session.execute(
        update(SliceEvent)
        .where(
            SliceEvent.id == event_id, SliceEvent.claimed_by == worker, SliceEvent.done_at.is_(None)
        )
        .values(claimed_by=None, claimed_until=at, result=result[:2000])
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def end_due(session: Session, slice_id: int) -> dt.datetime | None:
    """When the slice's pending end event is due (None: there is none)."""
    return session.scalar(
        select(SliceEvent.due).where(
            SliceEvent.slice_id == slice_id,
            SliceEvent.kind == EventKind.END,
            SliceEvent.done_at.is_(None),
        )
    )


def finish(session: Session, event_id: int, worker: str, now: dt.datetime, result: str) -> bool:
    """Mark an event done if this worker still holds it; False if the lease was lost."""
    done = session.execute(
        update(SliceEvent)
        .where(
            SliceEvent.id == event_id, SliceEvent.claimed_by == worker, SliceEvent.done_at.is_(None)
        )
        .values(done_at=now, result=result[:2000])
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]
