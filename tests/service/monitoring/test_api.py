"""GET /api/v1/monitoring/…: operators read stored rates; bad windows are 422 naming the
field and change nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

from federica.app import create_app
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.rollup import floor
from federica.monitoring.service import Recorder
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump

# Near the real time: the API tokens are issued by the real clock.
T0 = floor(dt.datetime.now(dt.UTC), 3600) - dt.timedelta(hours=1)


def sample(device: str, after_s: float, octets: dict[str, int]) -> DeviceSample:
    return DeviceSample(
        device,
        T0 + dt.timedelta(seconds=after_s),
        100_000 + int(after_s * 100),
        [
            Interface(i, name, "", {"in_octets": n, "out_octets": 3 * n}, 1, 1, 1000)
            for i, (name, n) in enumerate(octets.items(), start=1)
        ],
        False,
    )


@pytest.fixture
def mon(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    context = make_context(db.settings, engine=db.engine, clock=MovableClock(T0))
    clock = context.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(context)
    # 10 minutes of 30 s polls: prg-mx ge-0/0/0 (to erl-mx) sends 1000 B/s and receives
    # 3000 B/s; erl-mx's ge-0/0/0 the other way round.
    for n in range(21):
        s = 30.0 * n
        clock.set(T0 + dt.timedelta(seconds=s))
        samples = [
            sample("prg-mx", s, {"ge-0/0/0": int(1000 * s), "ge-0/0/1": 0}),
            sample("erl-mx", s, {"ge-0/0/0": int(3000 * s)}),
        ]
        rec.record(Round(n + 1, clock.now(), samples=samples))
    return context


@pytest.fixture
def operator(mon: Context) -> FlaskClient:
    app = create_app(mon.settings, context=mon)
    return client_as(app, make_user(mon, "noc", "operator"))


def window(**kw: str) -> dict[str, str]:
    return {"from": T0.isoformat(), "to": (T0 + dt.timedelta(minutes=10)).isoformat(), **kw}


def test_a_device_s_interfaces_with_rates_per_step(operator: FlaskClient) -> None:
    r = operator.get("/api/v1/monitoring/devices/prg-mx/interfaces", query_string=window(step="5m"))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["step_s"] == 300 and body["polling"]["consecutive_failures"] == 0
    ifaces = {i["name"]: i for i in body["interfaces"]}
    assert set(ifaces) == {"ge-0/0/0", "ge-0/0/1"}
    points = ifaces["ge-0/0/0"]["points"]
    assert [p["start"] for p in points] == [
        T0.isoformat(),
        (T0 + dt.timedelta(minutes=5)).isoformat(),
    ]
    for p in points:
        assert p["covered_s"] == 300
        assert p["in_octets_per_s"] == pytest.approx(1000)
        assert p["out_octets_per_s"] == pytest.approx(3000)
    assert ifaces["ge-0/0/1"]["points"][0]["in_octets_per_s"] == 0
    one = operator.get(
        "/api/v1/monitoring/devices/prg-mx/interfaces",
        query_string=window(step="60", interface="ge-0/0/1"),
    ).get_json()
    assert [i["name"] for i in one["interfaces"]] == ["ge-0/0/1"]
    assert len(one["interfaces"][0]["points"]) == 10


def test_a_link_s_two_ends_agree(operator: FlaskClient) -> None:
    r = operator.get("/api/v1/monitoring/links/prg-erl", query_string=window(step="10m"))
    assert r.status_code == 200, r.get_json()
    ends = {(e["device"], e["port"]): e for e in r.get_json()["ends"]}
    prg, erl = ends[("prg-mx", "ge-0/0/0")], ends[("erl-mx", "ge-0/0/0")]
    (p,), (e,) = prg["points"], erl["points"]
    # What one end sent the other received (here by construction: 3000 B/s erl -> prg).
    assert p["out_octets_per_s"] == pytest.approx(e["in_octets_per_s"])
    assert p["out_octets_per_s"] == pytest.approx(3000)


def test_default_window_is_the_last_hour_per_minute(operator: FlaskClient, mon: Context) -> None:
    assert isinstance(mon.clock, MovableClock)
    mon.clock.set(T0 + dt.timedelta(minutes=30))
    body = operator.get("/api/v1/monitoring/devices/prg-mx/interfaces").get_json()
    assert body["step_s"] == 60
    assert body["to"] == (T0 + dt.timedelta(minutes=30)).isoformat()
    assert len(body["interfaces"][0]["points"]) == 10


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-11-30T12:00:00"}, "to"),
        ({"step": "fast"}, "step"),
        ({"step": "0"}, "step"),
        ({"step": "-60"}, "step"),
        ({"step": "1"}, "step"),  # 600 periods of 1 s are fine, 36000 are not:
        ({"from": "2026-11-30T13:00:00Z", "to": "2026-11-30T12:00:00Z"}, "from"),
    ],
)
def test_a_bad_window_is_422_naming_the_field_and_changes_nothing(
    operator: FlaskClient, mon: Context, query: dict[str, str], field: str
) -> None:
    if query == {"step": "1"}:
        query = {"from": T0.isoformat(), "to": (T0 + dt.timedelta(hours=10)).isoformat(), **query}
    before = table_dump(mon)
    for url in ("/api/v1/monitoring/devices/prg-mx/interfaces", "/api/v1/monitoring/links/prg-erl"):
        r = operator.get(url, query_string=query)
        assert r.status_code == 422, r.get_json()
        assert r.mimetype == "application/problem+json"
        assert [e["field"] for e in r.get_json()["errors"]] == [field]
    assert table_dump(mon) == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/monitoring/devices/nowhere/interfaces",
        "/api/v1/monitoring/devices/prg-mx/interfaces?interface=ge-9/9/9",
        "/api/v1/monitoring/links/nowhere",
    ],
)
def test_unknown_things_are_404(operator: FlaskClient, url: str) -> None:
    r = operator.get(url)
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_researchers_do_not_see_the_facility_s_monitoring(mon: Context) -> None:
    app = create_app(mon.settings, context=mon)
    researcher = client_as(app, make_user(mon, "alice", projects=["alpha"]))
    r: Any = researcher.get("/api/v1/monitoring/devices/prg-mx/interfaces")
    assert r.status_code == 403
