"""A worker wakes when an event is written, not at its next poll: with a 30 s poll, a
slice booked for now starts within seconds (the application context's wake-up in this
process; NOTIFY too on PostgreSQL), and one booked for a few seconds ahead starts then
(the worker sleeps until the next due time, not a whole poll)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest

from federica.context import Context
from federica.slices.lifecycle import SliceStatus
from federica.worker import Worker
from tests.service.slices.test_worker import book, lab, request, status

__all__ = ["lab"]  # the fixture
POLL_S = 30.0
WITHIN_S = 15.0  # generous for a busy machine, and still half the poll


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
def worker(lab: Context) -> Iterator[Worker]:
    slow = dataclasses.replace(
        lab, settings=dataclasses.replace(lab.settings, worker_poll_s=POLL_S)
    )
    w = Worker(slow, name="sleepy")
    with w:
        # Its first round (at start) is over: only a wake-up can find what is booked next.
        wait_for("the first round", lambda: w.rounds >= 1, 30)
        yield w


def test_a_slice_booked_for_now_starts_without_waiting_for_the_poll(
    lab: Context, worker: Worker
) -> None:
    now = lab.now()
    sid = book(lab, lab.settings, request("now", now), now)
    took = wait_for("active", lambda: status(lab, sid).status is SliceStatus.ACTIVE, WITHIN_S)
    assert took < POLL_S


def test_a_slice_booked_for_shortly_starts_at_its_time(lab: Context, worker: Worker) -> None:
    now = lab.now()
    start = now + dt.timedelta(seconds=2)
    sid = book(lab, lab.settings, request("soon", start), now)

    def start_done() -> bool:
        # The slice is ACTIVE when provisioned; its start event is marked done after.
        sl = status(lab, sid)
        done = [e.done_at for e in sl.events if e.kind.value == "start"]
        return sl.status is SliceStatus.ACTIVE and done != [None]

    wait_for("active and its start event done", start_done, WITHIN_S)
    (ev,) = [e for e in status(lab, sid).events if e.kind.value == "start"]
    assert ev.done_at is not None and ev.done_at >= start  # not before its time
