"""Rounds of the poller stored as rates, rolled up, pruned and read back (both databases).

The rounds are built here (the poller's own tests read real agents); what is under test is
the recorder and the store on a real database."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.monitoring import store
from federica.monitoring.models import (
    RAW,
    InterfaceRate,
    MonitoredDevice,
    MonitoredInterface,
    RollupMark,
)
from federica.monitoring.poller import DeviceFailure, DeviceSample, Interface, Round
from federica.monitoring.service import Recorder
from federica.substrate.models import Device, Port
from tests.conftest import EXAMPLES
from tests.helpers import load_file

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
UP0 = 1_000_000  # the agent's sysUpTime at T0 (ticks)


@pytest.fixture
def mon(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return make_context(db.settings, engine=db.engine, clock=MovableClock(T0))


def sample(after_s: float, octets: dict[str, int], *, device: str = "prg-mx") -> DeviceSample:
    """prg-mx's answer `after_s` seconds after T0; `octets` by port name (in = out)."""
    interfaces = [
        Interface(
            i,
            name,
            f"to {name}",
            {"in_octets": n, "out_octets": 2 * n, "in_errors": 0, "out_errors": 0},
            1,
            1,
            1000,
        )
        for i, (name, n) in enumerate(octets.items(), start=1)
    ]
    return DeviceSample(
        device, T0 + dt.timedelta(seconds=after_s), UP0 + int(after_s * 100), interfaces, False
    )


def feed(rec: Recorder, clock: MovableClock, seconds: list[float], rate: float) -> None:
    """Rounds at these offsets, ge-0/0/0 counting `rate` octets/s in."""
    for n, s in enumerate(seconds):
        clock.set(T0 + dt.timedelta(seconds=s))
        rec.record(Round(n + 1, clock.now(), samples=[sample(s, {"ge-0/0/0": int(rate * s)})]))


def rates(db: Context, resolution: int) -> list[InterfaceRate]:
    with db.read_sessions() as s:
        return list(
            s.scalars(
                select(InterfaceRate)
                .where(InterfaceRate.resolution_s == resolution)
                .order_by(InterfaceRate.start)
            )
        )


def test_two_rounds_store_a_rate_per_interface_with_its_port(mon: Context) -> None:
    rec = Recorder(mon)
    assert rec.record(Round(1, T0, samples=[sample(0, {"ge-0/0/0": 0, "vlan-x": 0})])) == 0
    n = rec.record(Round(2, T0, samples=[sample(30, {"ge-0/0/0": 30_000, "vlan-x": 300})]))
    assert n == 2
    with mon.read_sessions() as s:
        ifaces = {i.name: i for i in s.scalars(select(MonitoredInterface))}
        port = s.scalar(
            select(Port).join(Device).where(Device.name == "prg-mx", Port.name == "ge-0/0/0")
        )
        state = s.scalar(select(MonitoredDevice))
    assert port is not None and ifaces["ge-0/0/0"].port_id == port.id
    # An IF-MIB row that is no inventory port (a per-VLAN interface) is kept all the same.
    assert ifaces["vlan-x"].port_id is None and ifaces["vlan-x"].oper_status == 1
    assert state is not None and state.consecutive_failures == 0
    assert state.last_ok_at == T0 + dt.timedelta(seconds=30) and state.uptime_ticks == UP0 + 3000
    by_iface = {r.interface_id: r for r in rates(mon, RAW)}
    row = by_iface[ifaces["ge-0/0/0"].id]
    assert row.in_octets == pytest.approx(1000.0) and row.out_octets == pytest.approx(2000.0)
    assert (row.start, row.end, row.covered_s) == (T0, T0 + dt.timedelta(seconds=30), 30.0)
    # Columns the agent did not give stay empty, not zero.
    assert row.in_discards is None


def test_a_failed_poll_is_recorded_on_the_device_and_writes_no_rate(mon: Context) -> None:
    rec = Recorder(mon)
    failure = DeviceFailure("erl-mx", T0, "no SNMP response", consecutive=3, retry_in_rounds=4)
    assert rec.record(Round(1, T0, failures=[failure])) == 0
    with mon.read_sessions() as s:
        state = s.scalar(select(MonitoredDevice))
    assert state is not None
    assert (state.consecutive_failures, state.error, state.last_ok_at) == (
        3,
        "no SNMP response",
        None,
    )


def test_an_agent_restart_between_rounds_writes_no_rate(mon: Context) -> None:
    rec = Recorder(mon)
    rec.record(Round(1, T0, samples=[sample(0, {"ge-0/0/0": 10**9})]))
    restarted = dataclasses.replace(sample(30, {"ge-0/0/0": 500}), uptime_ticks=1500)
    assert rec.record(Round(2, T0, samples=[restarted])) == 0
    later = dataclasses.replace(sample(60, {"ge-0/0/0": 3500}), uptime_ticks=4500)
    assert rec.record(Round(3, T0, samples=[later])) == 1
    (row,) = rates(mon, RAW)
    assert row.in_octets == pytest.approx(100.0)


def test_rollups_average_and_prune_keeps_each_resolution_its_time(mon: Context) -> None:
    clock = mon.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(mon)
    # 30 s polls for 20 minutes at 1000 B/s.
    feed(rec, clock, [30.0 * i for i in range(41)], 1000.0)
    five = rates(mon, store.FIVE_MIN)
    # Rolled up while polling: periods that ended at least two intervals ago.
    assert [r.start for r in five] == [T0 + dt.timedelta(minutes=5 * i) for i in range(3)]
    assert all(r.in_octets == pytest.approx(1000.0) and r.covered_s == 300 for r in five)
    # An hour and a bit later (no polls meanwhile) the hour is rolled up from the 5-minute
    # periods, and raw rows stay for their 24 h.
    clock.set(T0 + dt.timedelta(hours=1, minutes=10))
    rec.maintain()
    (hour,) = rates(mon, store.HOUR)
    assert hour.start == T0 and hour.covered_s == pytest.approx(1200)
    assert hour.in_octets == pytest.approx(1000.0)
    assert len(rates(mon, RAW)) == 40
    clock.set(T0 + dt.timedelta(hours=24, minutes=21))
    rec.maintain()
    assert rates(mon, RAW) == [] and len(rates(mon, store.FIVE_MIN)) == 4
    clock.set(T0 + dt.timedelta(days=366))
    rec.maintain()
    with mon.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(InterfaceRate)) == 0
        marks = {m.resolution_s: m.done_until for m in s.scalars(select(RollupMark))}
    # Roll-ups never go back over what they did: the marks only moved forward.
    assert marks[store.FIVE_MIN] > marks[store.HOUR] >= T0 + dt.timedelta(hours=1)


def test_series_joins_rollups_and_recent_raw_rates(mon: Context) -> None:
    clock = mon.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(mon)
    feed(rec, clock, [30.0 * i for i in range(41)], 800.0)
    with mon.read_sessions() as s:
        (iface,) = s.scalars(select(MonitoredInterface.id)).all()
        window = (T0, T0 + dt.timedelta(minutes=20))
        plan = store.plan_sources(s, window, 300, clock.now(), mon.settings)
        # 5-minute periods where rolled up, raw rows after them.
        assert [r for r, _ in plan] == [store.FIVE_MIN, RAW]
        five = store.series(s, [iface], window, 300, clock.now(), mon.settings)[iface]
        fine = store.series(s, [iface], window, 60, clock.now(), mon.settings)[iface]
    assert [p.start for p in five] == [T0 + dt.timedelta(minutes=5 * i) for i in range(4)]
    assert all(p.values["in_octets"] == pytest.approx(800.0) for p in five)
    assert all(p.covered_s == pytest.approx(300) for p in five)
    assert len(fine) == 20 and all(p.values["in_octets"] == pytest.approx(800.0) for p in fine)
    assert store.series(s, [], window, 60, clock.now(), mon.settings) == {}


def test_a_window_that_cuts_a_rolled_up_period_takes_its_edge_from_raw_rates(
    mon: Context,
) -> None:
    """The poller starts a minute before a 5-minute boundary; once that period is rolled up,
    a window from the first poll must still see every second of it (the roll-up says it
    had 60 s of data, not which 60 s: cutting it pro rata would keep 12)."""
    clock = mon.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(mon)
    polls = [240.0 + 10 * i for i in range(19)]  # T0+4 min to T0+7 min
    feed(rec, clock, polls, 1000.0)
    clock.set(T0 + dt.timedelta(minutes=10))
    rec.maintain()
    (five,) = [r for r in rates(mon, store.FIVE_MIN) if r.start == T0]
    assert five.covered_s == pytest.approx(60)  # the period [T0, T0+5 min) was rolled up
    window = (T0 + dt.timedelta(seconds=polls[0]), T0 + dt.timedelta(seconds=polls[-1]))
    with mon.read_sessions() as s:
        (iface,) = s.scalars(select(MonitoredInterface.id)).all()
        plan = store.plan_sources(s, window, 3600, clock.now(), mon.settings)
        (period,) = store.series(s, [iface], window, 3600, clock.now(), mon.settings)[iface]
    # Whole 5-minute periods from the roll-up (none lies inside), the cut edges raw.
    assert plan == [(RAW, window)]
    assert period.covered_s == pytest.approx(polls[-1] - polls[0])
    assert period.values["in_octets"] == pytest.approx(1000.0)


def test_rollups_skip_time_without_data_at_once(mon: Context) -> None:
    clock = mon.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(mon)
    feed(rec, clock, [0.0, 30.0], 100.0)
    # The poller stopped for three weeks, then polls again.
    later = 21 * 24 * 3600.0
    for n, s in enumerate([later, later + 30, later + 60]):
        clock.set(T0 + dt.timedelta(seconds=s))
        rec.record(
            Round(n + 3, clock.now(), samples=[sample(s, {"ge-0/0/0": int(100 * (s - later))})])
        )
    clock.set(T0 + dt.timedelta(seconds=later + 900))
    rec.maintain()
    # A handful of rounds roll up both stretches (not 6 hours of empty time per round).
    starts = [r.start for r in rates(mon, store.FIVE_MIN)]
    assert starts == [T0, T0 + dt.timedelta(seconds=later)]
    assert all(r.in_octets == pytest.approx(100.0) for r in rates(mon, store.FIVE_MIN))
