"""Reconciliation on both databases, with the fake drivers (the real ones on the emulated
facility: tests/integration/test_config_drift.py): what is drift and what is not, the
grace period, the slices in the lifecycle's hands left alone, alarms and audit rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

import pytest
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.alarms.models import Alarm
from federica.config import Settings
from federica.context import Context
from federica.db import transaction
from federica.reconcile import Reconciler, Report
from federica.slices import runner
from federica.slices.lifecycle import SliceStatus, move
from federica.slices.models import Slice
from federica.slices.provision import Provisioner
from federica.substrate.drivers.base import Attachment, Change, DeviceDriver, Segment
from federica.substrate.drivers.compute.base import NodeSpec, NodeState
from federica.worker import Worker
from tests.service.slices.test_worker import T0, Clock, book, lab, request, status

__all__ = ["lab"]  # the fixture
GRACE = dt.timedelta(minutes=5)
DEVICES = ("erl-mx", "mil-mx", "prg-mx", "psn-mx")  # core4's


def active(ctx: Context, settings: Settings, clock: Clock, name: str) -> tuple[int, Worker]:
    sid = book(ctx, settings, request(name, T0), T0)
    w = Worker(ctx, name="w", now=clock)
    assert w.run_once() == 1
    assert status(ctx, sid).status is SliceStatus.ACTIVE
    return sid, w


def hops(ctx: Context, sid: int) -> dict[str, Segment]:
    name = f"fed{sid}-c"
    return {
        d: dev.running.segments[name]
        for d in DEVICES
        if name in (dev := ctx.fake_devices.device(d, ())).running.segments
    }


def edit(ctx: Context, device: str, change: Change) -> None:
    dev = ctx.fake_devices.device(device, ())
    dev.running = dev.candidate = change.apply_to(dev.running)


def run(ctx: Context, w: Worker, clock: Clock, dry_run: bool = False) -> Report:
    rec = Reconciler(ctx, w.provisioner, grace_s=GRACE.total_seconds(), now=clock)
    return rec.run(dry_run=dry_run)


def kinds(report: Report) -> set[tuple[str, str, str, str]]:
    return {(d.where, d.kind, d.item, d.action) for d in report.drift}


def alarms(ctx: Context) -> dict[str, Alarm]:
    with transaction(ctx.read_sessions) as s:
        rows = s.scalars(select(Alarm).where(Alarm.kind == "config-drift")).all()
        s.expunge_all()
        return {a.subject: a for a in rows}


def audit(ctx: Context) -> list[AuditEntry]:
    with transaction(ctx.read_sessions) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action.like("reconcile.%"))).all()
        s.expunge_all()
        return list(rows)


def test_no_drift_no_change(lab: Context, settings: Settings) -> None:
    clock = Clock(T0)
    sid, w = active(lab, settings, clock, "calm")
    report = run(lab, w, clock)
    assert report.drift == [] and report.problems == []
    assert report.checked == [*DEVICES, *sorted(lab.fake_hosts.hosts)]
    assert alarms(lab) == {} and audit(lab) == []
    assert hops(lab, sid)


def test_missing_and_changed_segments_are_restored_at_once(
    lab: Context, settings: Settings
) -> None:
    clock = Clock(T0)
    sid, w = active(lab, settings, clock, "drifty")
    intended = hops(lab, sid)
    first, second = sorted(intended)
    seg = f"fed{sid}-c"
    edit(lab, first, Change(remove=(seg,)))
    edit(lab, second, Change(segment_state=((seg, False),)))

    dry = run(lab, w, clock, dry_run=True)
    assert kinds(dry) == {
        (first, "missing-segment", seg, "restore"),
        (second, "changed-segment", seg, "restore"),
    }
    assert seg not in lab.fake_devices.device(first, ()).running.segments
    assert alarms(lab) == {} and audit(lab) == []

    report = run(lab, w, clock)
    assert {d.where for d in report.repaired} == {first, second}
    assert hops(lab, sid) == intended
    assert {a.subject for a in alarms(lab).values() if a.cleared_at is None} == {
        f"{first} segment {seg}",
        f"{second} segment {seg}",
    }
    rows = audit(lab)
    assert sorted((r.action, r.target, r.status, r.slice_id) for r in rows) == [
        ("reconcile.restore", f"{first} segment {seg}", 200, sid),
        ("reconcile.restore", f"{second} segment {seg}", 200, sid),
    ]
    assert all(r.actor == "reconciler" and r.via == "worker" for r in rows)

    clock.at += dt.timedelta(minutes=1)
    again = run(lab, w, clock)
    assert again.drift == []
    assert all(a.cleared_at == clock.at for a in alarms(lab).values())


def test_unknown_things_go_only_after_the_grace_period(lab: Context, settings: Settings) -> None:
    clock = Clock(T0)
    sid, w = active(lab, settings, clock, "host")
    rogue = Segment("rogue", (Attachment("ge-0/0/0", 3990), Attachment("ge-0/0/1", 3990)))
    outside = Segment("mgmt", (Attachment("ge-0/0/0", 50), Attachment("ge-0/0/1", 50)))
    ended = Segment("fed99999-x", (Attachment("ge-0/0/0", 3991),))
    edit(lab, "prg-mx", Change(add=(rogue, outside, ended)))
    host = next(iter(lab.fake_hosts.hosts))
    orphan = NodeSpec("s99999-z", "gone", "z", "host", 1, 256, "debian")
    compute = w.provisioner.compute("fake", host)
    compute.define(orphan)
    compute.boot(orphan.id)

    report = run(lab, w, clock)
    assert kinds(report) == {
        ("prg-mx", "unknown-segment", "rogue", "wait"),
        ("prg-mx", "unknown-segment", "fed99999-x", "wait"),
        (host, "orphan-node", orphan.id, "wait"),
    }  # "mgmt" is outside every range the controller hands out: not its business
    assert report.repaired == []
    assert set(lab.fake_devices.device("prg-mx", ()).running.segments) >= {"rogue", "mgmt"}
    open_ = {a.subject: a for a in alarms(lab).values() if a.cleared_at is None}
    assert set(open_) == {
        "prg-mx segment rogue",
        "prg-mx segment fed99999-x",
        f"{host} node s99999-z",
    }
    assert all(a.raised_at == T0 for a in open_.values())

    clock.at = T0 + GRACE - dt.timedelta(seconds=1)
    assert {d.action for d in run(lab, w, clock).drift} == {"wait"}
    assert len(alarms(lab)) == 3  # the same alarms, not new ones

    clock.at = T0 + GRACE
    report = run(lab, w, clock)
    assert {d.item for d in report.repaired} == {"rogue", "fed99999-x", orphan.id}
    running = lab.fake_devices.device("prg-mx", ()).running.segments
    assert "rogue" not in running and "fed99999-x" not in running and "mgmt" in running
    assert compute.status(orphan.id) is NodeState.ABSENT
    assert {r.target for r in audit(lab) if r.action == "reconcile.remove"} == set(open_)
    assert hops(lab, sid)  # the slice's own segments untouched
    assert status(lab, sid).status is SliceStatus.ACTIVE


def test_a_missing_node_is_booted_again(lab: Context, settings: Settings) -> None:
    clock = Clock(T0)
    sid, w = active(lab, settings, clock, "nodes")
    host = next(h for h in lab.fake_hosts.hosts.values() if f"s{sid}-a" in h.nodes)
    spec = host.nodes.pop(f"s{sid}-a")[0]
    report = run(lab, w, clock)
    assert kinds(report) == {(host.name, "missing-node", f"s{sid}-a", "restore")}
    assert host.nodes[f"s{sid}-a"] == (spec, NodeState.RUNNING)


def test_slices_in_the_lifecycles_hands_are_left_alone(lab: Context, settings: Settings) -> None:
    """Releasing (the worker is taking it down), failed (its end event cleans up), shut
    down (emergency stop: kept for forensics): their segments and nodes, there or not,
    are no drift."""
    clock = Clock(T0)
    releasing, w = active(lab, settings, clock, "rel")
    failed, _ = active(lab, settings, clock, "fail")
    stopped, _ = active(lab, settings, clock, "stop")
    with transaction(lab.sessions) as s:
        sl = s.get(Slice, releasing)
        assert sl is not None
        runner.request_release(s, sl, T0)
        for sid, to in ((failed, SliceStatus.FAILED), (stopped, SliceStatus.SHUTDOWN)):
            other = s.get(Slice, sid)
            assert other is not None
            move(other, to, T0, "test")
    for sid in (releasing, failed, stopped):
        device = sorted(hops(lab, sid))[0]
        edit(lab, device, Change(remove=(f"fed{sid}-c",)))
    for h in lab.fake_hosts.hosts.values():
        h.nodes.pop(f"s{releasing}-a", None)
    clock.at = T0 + 2 * GRACE
    report = run(lab, w, clock)
    assert report.drift == [], report.drift
    assert alarms(lab) == {} and audit(lab) == []


def test_a_device_that_cannot_be_read_is_reported_and_keeps_its_alarms(
    lab: Context, settings: Settings
) -> None:
    clock = Clock(T0)
    sid, w = active(lab, settings, clock, "away")
    edit(lab, "prg-mx", Change(add=(Segment("rogue", (Attachment("ge-0/0/0", 3990),)),)))
    run(lab, w, clock)
    assert alarms(lab)["prg-mx segment rogue"].cleared_at is None
    lab.fake_devices.device("prg-mx", ()).reachable = False
    report = run(lab, w, clock)
    assert any(p.startswith("device prg-mx not checked") for p in report.problems)
    assert "prg-mx" not in report.checked
    assert alarms(lab)["prg-mx segment rogue"].cleared_at is None  # not known to be gone
    assert status(lab, sid).status is SliceStatus.ACTIVE


def test_a_release_waits_for_a_repair_in_progress(lab: Context, settings: Settings) -> None:
    """PostgreSQL: the repair holds its slice's row; a release that comes meanwhile waits
    (visible in pg_stat_activity), then goes ahead and takes the repaired part down."""
    if lab.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite: see federica/reconcile.py)")
    clock = Clock(T0)
    sid, w = active(lab, settings, clock, "race")
    seg = f"fed{sid}-c"
    device = sorted(hops(lab, sid))[0]
    edit(lab, device, Change(remove=(seg,)))
    reads = len(DEVICES)
    calls, entered, go = [0], threading.Event(), threading.Event()

    @contextlib.contextmanager
    def gated(names: Sequence[str]) -> Iterator[Mapping[str, DeviceDriver]]:
        calls[0] += 1
        if calls[0] > reads:  # past the reads: the repair
            entered.set()
            assert go.wait(60)
        with w.provisioner.devices(names) as drivers:
            yield drivers

    prov = Provisioner(gated, w.provisioner.compute)
    rec = Reconciler(lab, prov, grace_s=GRACE.total_seconds(), now=clock)
    result: list[Report] = []
    repair = threading.Thread(target=lambda: result.append(rec.run()))
    repair.start()
    assert entered.wait(60)

    def release() -> None:
        with transaction(lab.sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            runner.request_release(s, sl, clock())

    releasing = threading.Thread(target=release)
    releasing.start()
    deadline = time.monotonic() + 60
    with lab.engine.connect() as conn:
        while not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).scalar():
            assert time.monotonic() < deadline, "the release never waited"
            time.sleep(0.02)
    assert status(lab, sid).status is SliceStatus.ACTIVE  # not yet: it waits
    go.set()
    repair.join(60)
    releasing.join(60)
    assert [d.item for d in result[0].repaired] == [seg]
    assert status(lab, sid).status is SliceStatus.RELEASING
    assert seg in lab.fake_devices.device(device, ()).running.segments
    assert w.run_once() == 1  # the end: the repaired segment goes with the rest
    assert status(lab, sid).status is SliceStatus.ENDED
    assert hops(lab, sid) == {}
