"""The worker runs a slice's calendar on both databases: provisioning at its start
(devices and V-nodes through the driver contracts; fakes here, the real drivers in the
integration tests), warning before its end, taking it down at its end; failures roll
everything back and free the reservations; an interrupted provisioning is cleaned up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from federica.aaa.models import AuditEntry
from federica.config import Settings
from federica.context import Context
from federica.db import transaction
from federica.slices import events, runner, service
from federica.slices.lifecycle import EventKind, PartState, SliceStatus, move
from federica.slices.models import Reservation, Slice, SliceEvent
from federica.substrate.drivers.base import LockDenied
from federica.substrate.drivers.compute import fake as fake_compute
from federica.substrate.inventory import apply_topology
from federica.substrate.topology import parse_topology
from federica.worker import Worker
from tests.conftest import EXAMPLES

T0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def lab(db: Context) -> Context:
    """core4 with every device and V-node on the fake drivers."""
    text = (EXAMPLES / "topologies" / "core4.yaml").read_text()
    text = text.replace("driver: ietf", "driver: fake").replace("driver: netns", "driver: fake")
    with transaction(db.sessions) as s:
        apply_topology(s, parse_topology(text))
    return db


def request(name: str, start: dt.datetime, hours: int = 3, pop: str = "PRG") -> dict[str, Any]:
    return {
        "name": name,
        "window": {"start": start.isoformat(), "duration": f"{hours}h"},
        "nodes": [{"name": "a", "pop": pop, "vcpu": 2}, {"name": "b", "pop": "MIL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }


def book(db: Context, settings: Settings, doc: dict[str, Any], now: dt.datetime) -> int:
    with transaction(db.sessions) as s:
        b = service.book(s, settings, doc, now=now)
        assert b.slice is not None
        return b.slice.id


def status(db: Context, sid: int) -> Slice:
    with transaction(db.read_sessions) as s:
        sl = s.get(Slice, sid)
        assert sl is not None
        _ = (sl.history, sl.circuits, sl.events, [n.host.pop for n in sl.nodes])
        s.expunge_all()
        return sl


def segments_everywhere(ctx: Context) -> dict[str, list[str]]:
    out = {}
    for name in ("prg-mx", "erl-mx", "mil-mx", "psn-mx", "prg-ex", "mil-ex"):
        dev = ctx.fake_devices.device(name, ())
        if dev.running.segments:
            out[name] = sorted(dev.running.segments)
    return out


def nodes_everywhere(ctx: Context) -> list[str]:
    return sorted(n for h in ctx.fake_hosts.hosts.values() for n in h.nodes)


def test_a_slice_runs_its_calendar(
    lab: Context, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="federica")
    clock = Clock(T0)
    sid = book(lab, settings, request("cal", T0 + dt.timedelta(hours=1)), T0)
    w = Worker(lab, name="w1", now=clock)
    assert w.run_once() == 0  # nothing due yet
    assert status(lab, sid).status is SliceStatus.SCHEDULED

    clock.at = T0 + dt.timedelta(hours=1)
    assert w.run_once() == 1
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ACTIVE, sl.failure_reason
    assert all(n.state is PartState.READY for n in sl.nodes)
    assert {f"fed{sid}-c"} == {seg for segs in segments_everywhere(lab).values() for seg in segs}
    assert nodes_everywhere(lab) == [f"s{sid}-a", f"s{sid}-b"]
    assert set(service.describe(sl)["timings_ms"]["provisioning"]) >= {"netconf", "spawn"}

    clock.at = T0 + dt.timedelta(hours=3)  # an hour before the end: the warning
    assert w.run_once() == 1
    sl = status(lab, sid)
    warn = next(e for e in sl.events if e.kind is EventKind.WARN)
    assert warn.result.startswith("warned: ends at 2026-12-01 13:00")

    clock.at = T0 + dt.timedelta(hours=4)
    assert w.run_once() == 1
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ENDED
    assert [h.status for h in sl.history] == [
        SliceStatus.SCHEDULED,
        SliceStatus.PROVISIONING,
        SliceStatus.ACTIVE,
        SliceStatus.RELEASING,
        SliceStatus.ENDED,
    ]
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []
    assert w.run_once() == 0
    # The log tells the slice's story at INFO, one line per step.
    story = [r.getMessage() for r in caplog.records if f"slice {sid} (cal)" in r.getMessage()]
    assert [(m.split(":", 1)[0], m.split(": ", 1)[1]) for m in story] == [
        (f"slice {sid} (cal) start event {sl.events[0].id}", "started, active"),
        (f"slice {sid} (cal) warn event {warn.id}", warn.result),
        (f"slice {sid} (cal) end event {sl.events[2].id}", "ended, everything removed"),
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "federica.worker")


def test_a_node_that_cannot_start_fails_the_slice_and_frees_everything(
    lab: Context, settings: Settings
) -> None:
    sid = book(lab, settings, request("doomed", T0), T0)
    with transaction(lab.read_sessions) as s:
        host_of_b = next(n.host.name for n in s.get(Slice, sid).nodes if n.name == "b")  # type: ignore[union-attr]
    lab.fake_hosts.host(host_of_b).fail["boot"] = "out of memory"
    Worker(lab, name="w1", now=Clock(T0)).run_once()
    sl = status(lab, sid)
    assert sl.status is SliceStatus.FAILED
    assert sl.failure_reason is not None
    assert "node b" in sl.failure_reason and host_of_b in sl.failure_reason
    assert "out of memory" in sl.failure_reason
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []
    # The reservations are free again: the same request books at once.
    lab.fake_hosts.host(host_of_b).fail.clear()
    assert book(lab, settings, request("again", T0), T0)
    # A failed slice can always be released.
    with transaction(lab.sessions) as s:
        sl2 = runner.request_release(s, s.get(Slice, sid), T0)  # type: ignore[arg-type]
        assert sl2.status is SliceStatus.RELEASING
    Worker(lab, name="w1", now=Clock(T0)).run_once()
    assert status(lab, sid).status is SliceStatus.ENDED


def test_a_device_that_refuses_fails_the_slice_before_any_node_starts(
    lab: Context, settings: Settings
) -> None:
    sid = book(lab, settings, request("locked", T0), T0)
    lab.fake_devices.device("mil-mx", ()).fail["lock"] = LockDenied(
        "mil-mx", "held by another session"
    )
    Worker(lab, name="w1", now=Clock(T0)).run_once()
    sl = status(lab, sid)
    assert sl.status is SliceStatus.FAILED
    assert "mil-mx" in (sl.failure_reason or "")
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []


def test_releasing_an_active_slice_takes_it_down(lab: Context, settings: Settings) -> None:
    clock = Clock(T0)
    sid = book(lab, settings, request("rel", T0), T0)
    w = Worker(lab, name="w1", now=clock)
    w.run_once()
    assert status(lab, sid).status is SliceStatus.ACTIVE
    clock.at = T0 + dt.timedelta(minutes=30)
    with transaction(lab.sessions) as s:
        runner.request_release(s, service.get(s, "rel"), clock.at)
    w.run_once()
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ENDED
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []
    with transaction(lab.read_sessions) as s:
        latest = s.scalar(select(func.max(Reservation.end)).where(Reservation.slice_id == sid))
    assert latest == clock.at  # the rest of the window is free again
    with transaction(lab.sessions) as s:  # idempotent
        assert runner.request_release(s, service.get(s, sid), clock.at).status is SliceStatus.ENDED


def test_an_interrupted_provisioning_is_cleaned_up_and_redone(
    lab: Context, settings: Settings
) -> None:
    sid = book(lab, settings, request("crash", T0), T0)
    # A worker claimed the start, moved the slice to provisioning, built half of it, died.
    with transaction(lab.sessions) as s:
        assert events.claim(s, "dead", T0, dt.timedelta(minutes=5))
        sl = s.get(Slice, sid)
        assert sl is not None
        move(sl, SliceStatus.PROVISIONING, T0, "window started")
        p = runner.plan_of(s, sl)
    part = p.nodes[0]
    fake_compute.FakeCompute(lab.fake_hosts.host(part.host)).define(part.spec)
    # Before the lease runs out nobody takes the event; after it, the next worker does.
    assert Worker(lab, name="w2", now=Clock(T0 + dt.timedelta(minutes=1))).run_once() == 0
    assert Worker(lab, name="w2", now=Clock(T0 + dt.timedelta(minutes=6))).run_once() == 1
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ACTIVE, sl.failure_reason
    assert nodes_everywhere(lab) == [f"s{sid}-a", f"s{sid}-b"]
    start = next(e for e in sl.events if e.kind is EventKind.START)
    assert start.attempts == 2 and start.claimed_by == "w2"


def test_leftovers_not_yet_removable_delay_the_redo_instead_of_failing_it(
    lab: Context, settings: Settings
) -> None:
    """The dead worker's half-built slice cannot all be removed at first (a device does
    not answer): the start is retried after its back-off, not failed, and builds the
    slice once the device is back."""
    sid = book(lab, settings, request("crash2", T0), T0)
    with transaction(lab.sessions) as s:
        assert events.claim(s, "dead", T0, dt.timedelta(minutes=5))
        sl = s.get(Slice, sid)
        assert sl is not None
        move(sl, SliceStatus.PROVISIONING, T0, "window started")
        p = runner.plan_of(s, sl)
    device = sorted(p.segments)[0]
    clock = Clock(T0 + dt.timedelta(minutes=6))
    w = Worker(lab, name="w2", now=clock)
    with w.provisioner.devices([device]):
        pass  # the fake device made, with its ports, as its driver knows them
    lab.fake_devices.device(device, ()).reachable = False
    assert w.run_once() == 1
    sl = status(lab, sid)
    assert sl.status is SliceStatus.PROVISIONING
    start = next(e for e in sl.events if e.kind is EventKind.START)
    assert events.state_of(start) == "retrying", start.result
    assert "interrupted provisioning left" in start.result and device in start.result
    lab.fake_devices.device(device, ()).reachable = True
    # Attempt 2 (the dead worker's was 1) failed: its back-off, then attempt 3.
    clock.at += events.backoff(2, settings.worker_retry_first_s, settings.worker_retry_longest_s)
    clock.at += dt.timedelta(seconds=1)
    assert w.run_once() == 1
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ACTIVE, sl.failure_reason
    start = next(e for e in sl.events if e.kind is EventKind.START)
    assert start.attempts == 3 and start.result == "active"


def test_concurrent_workers_run_each_event_once(lab: Context, settings: Settings) -> None:
    ids = [book(lab, settings, request(f"p{i}", T0, pop="PRG"), T0) for i in range(4)]
    workers = [Worker(lab, name=f"w{i}", now=Clock(T0)) for i in range(4)]
    counts: list[int] = []
    threads = [threading.Thread(target=lambda w=w: counts.append(w.run_once())) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 4
    with transaction(lab.read_sessions) as s:
        starts = s.scalars(select(SliceEvent).where(SliceEvent.kind == EventKind.START)).all()
        assert sorted(e.slice_id for e in starts) == sorted(ids)
        assert all(e.attempts == 1 and e.done_at is not None for e in starts)
    assert all(status(lab, i).status is SliceStatus.ACTIVE for i in ids)


# Failures that raise (a driver's bug, a wedged session, the database): bounded attempts
# with back-off, then the event is given up as failed and the slice's owner sees why.

ATTEMPTS = 5  # the default worker_max_attempts
BACKOFF = [10, 20, 40, 80]  # seconds after attempts 1-4: doubling from the first 10 s


class DriverBug(RuntimeError):
    pass


def build_then_raise(w: Worker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker's provisioning builds everything, then raises (half done, as a bug
    would leave it); returns the list of calls."""
    real = w.provisioner.provision
    calls: list[int] = []

    def provision(p: Any) -> Any:
        calls.append(p.slice_id)
        real(p)
        raise DriverBug("unexpected reply from prg-mx\n<rpc-reply>…</rpc-reply>")

    monkeypatch.setattr(w.provisioner, "provision", provision)
    return calls


def event(sl: Slice, kind: EventKind) -> SliceEvent:
    return next(e for e in sl.events if e.kind is kind)


def held_until(db: Context, sid: int) -> dt.datetime | None:
    with transaction(db.read_sessions) as s:
        return s.scalar(select(func.max(Reservation.end)).where(Reservation.slice_id == sid))


def audit_of(db: Context, sid: int) -> list[AuditEntry]:
    with transaction(db.read_sessions) as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.slice_id == sid)))
        s.expunge_all()
        return entries


def test_a_start_that_always_raises_fails_the_slice_after_n_attempts_and_frees_it(
    lab: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(T0)
    sid = book(lab, settings, request("bug", T0), T0)
    w = Worker(lab, name="w1", now=clock)
    calls = build_then_raise(w, monkeypatch)
    for attempt, wait in enumerate([*BACKOFF, None], start=1):
        assert w.run_once() == 1
        sl = status(lab, sid)
        start = event(sl, EventKind.START)
        assert start.attempts == attempt
        if wait is None:
            break
        # Not given up yet: the slice waits, what the attempt built is still there (the
        # next attempt removes it first), the event says why and when it is tried again.
        assert sl.status is SliceStatus.PROVISIONING
        assert nodes_everywhere(lab) == [f"s{sid}-a", f"s{sid}-b"]
        assert events.state_of(start) == "retrying" and start.done_at is None
        assert start.result.startswith(f"attempt {attempt} failed: DriverBug: unexpected reply")
        assert "<rpc-reply>" not in start.result  # the first line only
        clock.at += dt.timedelta(seconds=wait)
        assert w.run_once() == 0  # backing off until then
        clock.at += dt.timedelta(seconds=1)
    assert len(calls) == ATTEMPTS
    failed_at = clock.at
    sl = status(lab, sid)
    assert sl.status is SliceStatus.FAILED
    assert sl.failure_reason is not None
    assert sl.failure_reason.startswith("could not start: 5 attempts failed, the last with ")
    assert "DriverBug: unexpected reply from prg-mx" in sl.failure_reason
    start = event(sl, EventKind.START)
    assert events.state_of(start) == "failed" and start.done_at == failed_at
    assert start.result == f"failed: {sl.failure_reason}"
    # Cleaned up, and the rest of the window is free again: the same request books.
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []
    assert held_until(lab, sid) == failed_at
    assert book(lab, settings, request("again", failed_at), failed_at)
    # The owner sees why: the slice's description, and the audit log.
    body = service.describe(sl)
    assert body["failure_reason"] == sl.failure_reason
    assert [(e["kind"], e["state"], e["attempts"]) for e in body["events"]] == [
        ("start", "failed", 5),
        ("warn", "pending", 0),
        ("end", "pending", 0),
    ]
    (entry,) = audit_of(lab, sid)
    assert (entry.action, entry.result, entry.via) == ("slice.start", "failed", "worker")
    assert "DriverBug" in entry.detail


def test_the_end_of_a_slice_whose_start_failed_still_runs(
    lab: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(T0)
    sid = book(lab, settings, request("bug", T0), T0)
    w = Worker(lab, name="w1", now=clock)
    build_then_raise(w, monkeypatch)
    for wait in [*BACKOFF, 0]:
        assert w.run_once() == 1
        clock.at += dt.timedelta(seconds=wait + 1)
    assert status(lab, sid).status is SliceStatus.FAILED
    # Whatever the clean-up missed goes at the window's end, with its end event.
    with transaction(lab.read_sessions) as s:
        part = runner.plan_of(s, s.get(Slice, sid)).nodes[0]  # type: ignore[arg-type]
    fake_compute.FakeCompute(lab.fake_hosts.host(part.host)).define(part.spec)
    assert nodes_everywhere(lab) == [part.spec.id]
    clock.at = T0 + dt.timedelta(hours=3)
    handled = 0
    while n := w.run_once():
        handled += n
    assert handled == 2  # the warning (not sent: the slice is not running), the end
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ENDED
    assert [h.status for h in sl.history] == [
        SliceStatus.SCHEDULED,
        SliceStatus.PROVISIONING,
        SliceStatus.FAILED,
        SliceStatus.RELEASING,
        SliceStatus.ENDED,
    ]
    assert (sl.failure_reason or "").startswith("could not start")  # still says why
    assert event(sl, EventKind.END).result == "ended"
    assert event(sl, EventKind.WARN).result == "no warning: the slice is not running"


def test_an_end_that_always_raises_leaves_the_slice_failed_holding_and_releasable(
    lab: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(T0)
    sid = book(lab, settings, request("stuck", T0), T0)
    w = Worker(lab, name="w1", now=clock)
    assert w.run_once() == 1 and status(lab, sid).status is SliceStatus.ACTIVE
    real = w.provisioner.deprovision

    def wedged(p: Any) -> list[str]:
        raise DriverBug("session to mil-mx wedged")

    monkeypatch.setattr(w.provisioner, "deprovision", wedged)
    clock.at = released = T0 + dt.timedelta(minutes=30)
    with transaction(lab.sessions) as s:
        runner.request_release(s, service.get(s, sid), clock.at)
    for wait in [*BACKOFF, 0]:
        assert w.run_once() == 1
        clock.at += dt.timedelta(seconds=wait + 1)
    sl = status(lab, sid)
    assert sl.status is SliceStatus.FAILED
    assert sl.failure_reason == (
        "release incomplete (release it again to retry): 5 attempts failed, the last with "
        f"DriverBug: session to mil-mx wedged (log reference {_ref(sl)})"
    )
    # It may still use what it holds on the devices: nothing is freed.
    assert held_until(lab, sid) == T0 + dt.timedelta(hours=3)
    assert nodes_everywhere(lab) == [f"s{sid}-a", f"s{sid}-b"]
    assert [(e.action, e.result) for e in audit_of(lab, sid)] == [("slice.end", "failed")]
    monkeypatch.setattr(w.provisioner, "deprovision", real)  # the session recovers
    with transaction(lab.sessions) as s:
        assert runner.request_release(s, service.get(s, sid), clock.at).status is (
            SliceStatus.RELEASING
        )
    assert w.run_once() == 1
    assert status(lab, sid).status is SliceStatus.ENDED
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []
    assert held_until(lab, sid) == clock.at > released


def _ref(sl: Slice) -> str:
    return (sl.failure_reason or "").rsplit("log reference ", 1)[-1].rstrip(")")


def test_a_start_is_not_retried_past_the_end_of_its_window(
    lab: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = dataclasses.replace(
        lab,
        settings=dataclasses.replace(
            lab.settings, worker_retry_first_s=1800, worker_retry_longest_s=7200
        ),
    )
    clock = Clock(T0)
    sid = book(lab, settings, request("short", T0, hours=1), T0)
    w = Worker(slow, name="w1", now=clock)
    build_then_raise(w, monkeypatch)
    assert w.run_once() == 1  # attempt 1; the next is due 30 min later, before the end
    clock.at = T0 + dt.timedelta(minutes=31)
    assert w.run_once() == 1  # attempt 2; the next would be after the end: given up
    sl = status(lab, sid)
    assert sl.status is SliceStatus.FAILED
    assert event(sl, EventKind.START).attempts == 2
    assert (sl.failure_reason or "").startswith("could not start: 2 attempts failed")
    assert nodes_everywhere(lab) == []
    clock.at = T0 + dt.timedelta(hours=1)
    assert w.run_once() == 1
    assert status(lab, sid).status is SliceStatus.ENDED


def test_a_slice_released_while_its_start_waits_to_be_retried_ends_at_once(
    lab: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(T0)
    sid = book(lab, settings, request("impatient", T0), T0)
    w = Worker(lab, name="w1", now=clock)
    calls = build_then_raise(w, monkeypatch)
    assert w.run_once() == 1
    assert nodes_everywhere(lab) == [f"s{sid}-a", f"s{sid}-b"]  # half done, waiting
    clock.at += dt.timedelta(seconds=2)
    with transaction(lab.sessions) as s:
        runner.request_release(s, service.get(s, sid), clock.at)
    assert w.run_once() == 1  # the end, not the start's next attempt
    sl = status(lab, sid)
    assert sl.status is SliceStatus.ENDED
    assert events.state_of(event(sl, EventKind.START)) == "cancelled"
    assert segments_everywhere(lab) == {} and nodes_everywhere(lab) == []
    assert len(calls) == 1


def test_a_start_whose_worker_keeps_dying_is_given_up_without_running_it(
    lab: Context, settings: Settings
) -> None:
    sid = book(lab, settings, request("crashy", T0), T0)
    at = T0
    for _ in range(ATTEMPTS):  # each worker claims it, then dies before it is recorded
        with transaction(lab.sessions) as s:
            assert events.claim(s, "dead", at, dt.timedelta(minutes=5))
        at += dt.timedelta(minutes=6)
    assert Worker(lab, name="w2", now=Clock(at)).run_once() == 1
    sl = status(lab, sid)
    assert sl.status is SliceStatus.FAILED
    assert sl.failure_reason == "could not start: its worker stopped 5 times while running it"
    assert event(sl, EventKind.START).attempts == ATTEMPTS + 1
    assert nodes_everywhere(lab) == []
    assert held_until(lab, sid) == at


def test_slices_lost_with_the_facility_fail_and_give_their_window_back(
    lab: Context, settings: Settings
) -> None:
    clock = Clock(T0)
    running = book(lab, settings, request("ran", T0), T0)
    later = book(lab, settings, request("later", T0 + dt.timedelta(days=1)), T0)
    Worker(lab, name="w1", now=clock).run_once()
    assert status(lab, running).status is SliceStatus.ACTIVE
    clock.at = T0 + dt.timedelta(minutes=10)
    assert runner.lost_with_facility(lab.sessions, clock, "the demo stopped") == ["ran"]
    sl = status(lab, running)
    assert sl.status is SliceStatus.FAILED and sl.failure_reason == "the demo stopped"
    assert {c.state for c in sl.circuits} == {PartState.REMOVED}
    with transaction(lab.read_sessions) as s:
        latest = s.scalar(select(func.max(Reservation.end)).where(Reservation.slice_id == running))
    assert latest == clock.at
    assert status(lab, later).status is SliceStatus.SCHEDULED  # not running: untouched
    assert runner.lost_with_facility(lab.sessions, clock, "again") == []
