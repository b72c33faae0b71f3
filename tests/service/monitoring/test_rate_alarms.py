"""Rate alarms from stored polls: counters given to the real Recorder poll after poll (the
context's clock moved by one interval each), rates computed and stored as in production,
then the alarms checked against the real database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest

from federica.alarms import service
from federica.app import create_app
from federica.clock import MovableClock
from federica.config import SettingsError
from federica.context import Context, make_context
from federica.db import transaction
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.service import Recorder
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file

UP = 1
INTERVAL = 30.0
COUNTER_NAMES = ("in_octets", "out_octets", "in_ucast_pkts", "out_ucast_pkts",
                 "in_errors", "out_errors", "in_discards", "out_discards")  # fmt: skip


class Traffic:
    """prg-mx's ge-0/0/0 (an end of prg-erl, 1000 Mbit/s) and ge-1/0/1 (a V-node's
    uplink, on no link), polled every INTERVAL seconds."""

    def __init__(self, ctx: Context, clock: MovableClock) -> None:
        self.ctx, self.clock = ctx, clock
        self.recorder = Recorder(ctx)
        self.rounds = 0
        self.counters = {p: dict.fromkeys(COUNTER_NAMES, 0) for p in ("ge-0/0/0", "ge-1/0/1")}

    def poll(self, n: int = 1, **per_s: dict[str, float]) -> None:
        """`n` rounds, each port's counters growing by its rates per second
        (e.g. ge_0_0_0={"in_octets": ...})."""
        for _ in range(n):
            self.rounds += 1
            self.clock.advance(dt.timedelta(seconds=INTERVAL))
            at = self.clock.now()
            for port, counters in self.counters.items():
                for name, rate in per_s.get(port.replace("-", "_").replace("/", "_"), {}).items():
                    counters[name] += int(rate * INTERVAL)
            ifaces = [
                Interface(i, port, "", dict(c), UP, UP, 1000)
                for i, (port, c) in enumerate(self.counters.items(), start=1)
            ]
            rnd = Round(self.rounds, at)
            rnd.samples.append(DeviceSample("prg-mx", at, int(self.rounds * INTERVAL * 100),
                                            ifaces, True))  # fmt: skip
            self.recorder.record(rnd)
            service.check(self.ctx)

    def alarms(self, include_cleared: bool = False) -> list[dict[str, Any]]:
        with transaction(self.ctx.read_sessions) as s:
            return [
                service.describe(a) for a in service.listing(s, include_cleared=include_cleared)
            ]


@pytest.fixture
def traffic(db: Context) -> Traffic:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    clock = MovableClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    settings = dataclasses.replace(
        db.settings,
        monitor_interval_s=INTERVAL,
        alarm_rate_window_s=150,
        alarm_utilisation_percent=80,
        alarm_error_rate_per_s=1,
        alarm_discard_rate_per_s=5,
    )
    return Traffic(make_context(settings, engine=db.engine, clock=clock), clock)


FULL = 900e6 / 8  # octets/s: 90 % of 1000 Mbit/s


def test_a_link_busy_for_the_window_is_an_alarm_naming_it_and_its_slices(traffic: Traffic) -> None:
    app = create_app(traffic.ctx.settings, context=traffic.ctx)
    ann = client_as(app, make_user(traffic.ctx, "ann", projects=["alpha"]))
    r = ann.post("/api/v1/slices", json={
        "name": f"busy-{uuid.uuid4().hex[:6]}", "project": "alpha",
        "window": {"start": "now", "duration": "2h"},
        "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "ERL"}],
        "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
    })  # fmt: skip
    assert r.status_code == 201, r.get_json()
    traffic.poll()  # the first answer: no rate yet
    traffic.poll(4, ge_0_0_0={"out_octets": FULL})
    assert traffic.alarms() == []  # 120 s of a 150 s window
    traffic.poll(1, ge_0_0_0={"out_octets": FULL})
    (alarm,) = traffic.alarms()
    assert (alarm["kind"], alarm["subject"], alarm["link"]) == (
        "utilisation-high", "prg-erl", "prg-erl")  # fmt: skip
    assert "prg-mx:ge-0/0/0 90 %" in alarm["detail"], alarm["detail"]
    assert [s["name"] for s in alarm["slices"]] == [r.get_json()["slice"]["name"]]
    listed = ann.get("/api/v1/monitoring/alarms").get_json()
    assert [a["id"] for a in listed] == [alarm["id"]]
    traffic.poll(2, ge_0_0_0={"out_octets": FULL})
    assert [a["id"] for a in traffic.alarms()] == [alarm["id"]]  # deduplicated
    traffic.poll(1, ge_0_0_0={"out_octets": FULL / 10})
    assert traffic.alarms() == []
    assert traffic.alarms(include_cleared=True)[0]["state"] == "cleared"


def test_a_burst_shorter_than_the_window_raises_nothing(traffic: Traffic) -> None:
    traffic.poll()
    for _ in range(4):
        traffic.poll(3, ge_0_0_0={"in_octets": FULL})
        traffic.poll(1, ge_0_0_0={"in_octets": FULL / 100})
    assert traffic.alarms(include_cleared=True) == []


def test_errors_and_discards_on_a_port_on_no_link(traffic: Traffic) -> None:
    traffic.poll()
    traffic.poll(6, ge_1_0_1={"in_errors": 1.5, "out_discards": 3, "in_discards": 3})
    assert sorted((a["kind"], a["subject"], a["link"]) for a in traffic.alarms()) == [
        ("discards-high", "prg-mx:ge-1/0/1", None),
        ("errors-high", "prg-mx:ge-1/0/1", None),
    ]
    traffic.poll(1, ge_1_0_1={"in_errors": 1.5})
    assert [a["kind"] for a in traffic.alarms()] == ["errors-high"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"alarm_rate_window_s": 10.0}, "FEDERICA_ALARM_RATE_WINDOW_S"),
        ({"alarm_utilisation_percent": 0.0}, "FEDERICA_ALARM_UTILISATION_PERCENT"),
        ({"alarm_utilisation_percent": 120.0}, "FEDERICA_ALARM_UTILISATION_PERCENT"),
        ({"alarm_error_rate_per_s": -1.0}, "FEDERICA_ALARM_ERROR_RATE_PER_S"),
        ({"alarm_discard_rate_per_s": -1.0}, "FEDERICA_ALARM_DISCARD_RATE_PER_S"),
    ],
)
def test_impossible_thresholds_are_refused_naming_the_setting(
    traffic: Traffic, change: dict[str, Any], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        service.check_settings(dataclasses.replace(traffic.ctx.settings, **change))
