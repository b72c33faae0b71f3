"""The per-slice alarms through the real database, with the fake drivers: a circuit
whose hops forward more than it booked raises circuit-over-booking (and clears when it
is back within), a node its V-node no longer runs raises node-died; each lists its slice,
which its project's researchers see, and ends with the slice."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select

from federica.alarms import service as alarms
from federica.alarms.models import Alarm
from federica.app import create_app
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.db import transaction
from federica.monitoring.models import MonitoredHost
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.service import Recorder
from federica.slices import runner, service
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.substrate.drivers.compute.fake import FakeCompute
from federica.substrate.inventory import apply_topology
from federica.substrate.models import ComputeHost
from federica.substrate.topology import parse_topology
from federica.worker import Worker
from tests.accounts import client_as, ensure_project, make_user
from tests.conftest import EXAMPLES

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
BOOKED_MBPS = 10


@pytest.fixture
def lab(db: Context) -> Context:
    text = (EXAMPLES / "topologies" / "core4.yaml").read_text()
    text = text.replace("driver: ietf", "driver: fake").replace("driver: netns", "driver: fake")
    with transaction(db.sessions) as s:
        apply_topology(s, parse_topology(text))
    return make_context(db.settings, engine=db.engine, clock=MovableClock(T0))


def active_slice(ctx: Context) -> dict[str, Any]:
    doc = {
        "name": "busy",
        "project": "lab",
        "window": {"start": T0.isoformat(), "duration": "4h"},
        "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "ERL"}],
        "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": BOOKED_MBPS}],
    }
    ensure_project(ctx, "lab")
    with transaction(ctx.sessions) as s:
        booked = service.book(s, ctx.settings, doc, now=ctx.now())
        assert booked.slice is not None
        sid = booked.slice.id
    Worker(ctx, name="w", now=ctx.now).run_once()
    with transaction(ctx.read_sessions) as s:
        sl = s.get(Slice, sid)
        assert sl is not None and sl.status is SliceStatus.ACTIVE, sl and sl.failure_reason
        return service.describe(sl)


def poll(ctx: Context, rec: Recorder, body: dict[str, Any], n: int, octets: float) -> None:
    """Round n (every 30 s): each hop's VLAN unit has sent `octets` per second so far."""
    clock = ctx.clock
    assert isinstance(clock, MovableClock)
    clock.set(T0 + dt.timedelta(seconds=30 * n))
    by_device: dict[str, list[Interface]] = {}
    for k, h in enumerate(body["circuits"][0]["hops"]):
        counters = {"in_octets": 0, "out_octets": int(octets * 30 * n)}
        name = f"{h['port']}.{h['vlan']}"
        by_device.setdefault(h["device"], []).append(
            Interface(10_000 + k, name, "", counters, 1, 1, 1000)
        )
    samples = [
        DeviceSample(d, clock.now(), 100_000 + 3000 * n, ifaces, n == 0)
        for d, ifaces in by_device.items()
    ]
    rec.record(Round(n + 1, clock.now(), samples=samples))


def later(ctx: Context, seconds: float) -> None:
    clock = ctx.clock
    assert isinstance(clock, MovableClock)
    clock.set(clock.now() + dt.timedelta(seconds=seconds))


def open_alarms(ctx: Context) -> dict[tuple[str, str], Alarm]:
    with transaction(ctx.read_sessions) as s:
        rows = alarms.listing(s)
        s.expunge_all()
    return {(a.kind, a.subject): a for a in rows}


def test_a_circuit_over_its_booking_raises_and_clears(lab: Context) -> None:
    body = active_slice(lab)
    sid = body["id"]
    rec = Recorder(lab)
    within = BOOKED_MBPS * 1e6 / 8 * 0.9
    for n in range(4):
        poll(lab, rec, body, n, within)
    alarms.check(lab)
    assert ("circuit-over-booking", f"s{sid}:ab") not in open_alarms(lab)
    # Twice the booking from now on: the last minute's average is well over it.
    base = within * 30 * 3
    for n in range(4, 8):
        clock_s = 30 * n
        poll(lab, rec, body, n, (base + 2 * within / 0.9 * (clock_s - 90)) / clock_s)
    alarms.check(lab)
    alarm = open_alarms(lab)[("circuit-over-booking", f"s{sid}:ab")]
    assert f"booked {BOOKED_MBPS} Mb/s" in alarm.detail and "busy" in alarm.detail
    assert json.loads(alarm.slices) == [{"id": sid, "name": "busy", "project": "lab"}]
    app = create_app(lab.settings, context=lab)
    mine = client_as(app, make_user(lab, "res", projects=["lab"]))
    other = client_as(app, make_user(lab, "oth", projects=["elsewhere"]))
    assert [a["subject"] for a in mine.get("/api/v1/monitoring/alarms").get_json()] == [
        f"s{sid}:ab"
    ]
    assert other.get("/api/v1/monitoring/alarms").get_json() == []
    # Back within the booking for a minute and more: cleared.
    sent = base + 2 * within / 0.9 * (30 * 7 - 90)
    for n in range(8, 12):
        sent += within * 30
        poll(lab, rec, body, n, sent / (30 * n))
    alarms.check(lab)
    assert ("circuit-over-booking", f"s{sid}:ab") not in open_alarms(lab)


def test_a_node_that_died_raises_until_the_slice_ends(lab: Context) -> None:
    body = active_slice(lab)
    sid = body["id"]
    rec = Recorder(lab)
    rec.sample_nodes()
    alarms.check(lab)
    assert not [k for k in open_alarms(lab) if k[0] == "node-died"]
    v_node = next(n["v_node"] for n in body["nodes"] if n["name"] == "b")
    FakeCompute(lab.fake_hosts.host(v_node)).destroy(f"s{sid}-b")
    later(lab, 30)
    rec.sample_nodes()
    alarms.check(lab)
    alarm = open_alarms(lab)[("node-died", f"s{sid}:b")]
    assert v_node in alarm.detail and "absent" in alarm.detail
    # Still dead: one alarm, not a second.
    later(lab, 30)
    rec.sample_nodes()
    alarms.check(lab)
    assert [k for k in open_alarms(lab) if k[0] == "node-died"] == [("node-died", f"s{sid}:b")]
    with transaction(lab.sessions) as s:
        runner.request_release(s, service.get(s, sid), lab.now())
    Worker(lab, name="w", now=lab.now).run_once()
    with transaction(lab.read_sessions) as s:
        assert service.get(s, sid).status is SliceStatus.ENDED
    alarms.check(lab)
    assert ("node-died", f"s{sid}:b") not in open_alarms(lab)


def test_a_v_node_that_cannot_be_sampled_leaves_its_nodes_unknown(lab: Context) -> None:
    body = active_slice(lab)
    sid = body["id"]
    rec = Recorder(lab)
    rec.sample_nodes()
    v_node = next(n["v_node"] for n in body["nodes"] if n["name"] == "a")
    with transaction(lab.sessions) as s:
        host = s.scalars(select(ComputeHost).where(ComputeHost.name == v_node)).one()
        host.driver = "retired"  # no such driver any more: this V-node cannot be asked
    later(lab, 30)
    rec.sample_nodes()  # the other V-nodes are sampled all the same
    with transaction(lab.read_sessions) as s:
        state = s.get(MonitoredHost, host.id)
        assert state is not None and "retired" in state.error and state.nodes == 0
    alarms.check(lab)
    assert not [k for k in open_alarms(lab) if k[0] == "node-died"]
    app = create_app(lab.settings, context=lab)
    noc = client_as(app, make_user(lab, "noc", "operator"))
    nodes = noc.get(f"/api/v1/slices/{sid}/metrics").get_json()["nodes"]
    assert {n["name"]: n["health"] for n in nodes} == {"a": "unknown", "b": "running"}
