"""The NOC's pages on Flask's test client and a real database, fed by real poll rounds
through the recorder: the map colours a link by its measured load, device health and
alarms show and acknowledge, attribution finds slices and their people, charts carry the
stored rates; researchers get 403 on every NOC page and bad input is named."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from flask import Flask

from federica.alarms import service as alarms
from federica.app import create_app
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.service import Recorder
from tests.accounts import make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump
from tests.service.portal.browser import Browser

T0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
PASSWORD = "a long enough passphrase"
UP, DOWN = 1, 2
# prg-mil is prg-mx ge-0/0/1 <-> mil-mx ge-0/0/0 in core4; prg-erl is ge-0/0/0 on both.
PORTS = {"prg-mx": ["ge-0/0/0", "ge-0/0/1"], "mil-mx": ["ge-0/0/0"], "erl-mx": ["ge-0/0/0"]}
# What prg-mx sends towards MIL, in octets per second: 700 Mb/s on a 1 Gb/s link.
PRG_TO_MIL = 700e6 / 8


class Feed:
    """Poll rounds as the SNMP poller would deliver them, every 30 s of a movable clock."""

    def __init__(self, ctx: Context, clock: MovableClock) -> None:
        self.ctx, self.clock = ctx, clock
        self.recorder = Recorder(ctx)
        self.n = 0
        self.octets: dict[tuple[str, str], int] = {}

    def poll(self, down: tuple[str, ...] = ()) -> None:
        self.n += 1
        self.clock.set(T0 + dt.timedelta(seconds=30 * self.n))
        at = self.clock.now()
        rnd = Round(self.n, at)
        for device, ports in PORTS.items():
            ifaces = []
            for i, port in enumerate(ports, start=1):
                rate = PRG_TO_MIL if (device, port) == ("prg-mx", "ge-0/0/1") else 1000.0
                key = (device, port)
                self.octets[key] = self.octets.get(key, 0) + int(rate * 30)
                mil_in = device == "mil-mx" and port == "ge-0/0/0"
                counters = {
                    "in_octets": int(PRG_TO_MIL * 30 * self.n) if mil_in else 0,
                    "out_octets": self.octets[key],
                }
                oper = DOWN if f"{device}:{port}" in down else UP
                ifaces.append(Interface(i, port, "", counters, UP, oper, 1000))
            rnd.samples.append(DeviceSample(device, at, 100 * 30 * self.n, ifaces, True))
        self.recorder.record(rnd)
        alarms.check(self.ctx)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def noc_ctx(db: Context, clock: MovableClock) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return make_context(dataclasses.replace(db.settings), engine=db.engine, clock=clock)


@pytest.fixture
def noc_app(noc_ctx: Context) -> Flask:
    app = create_app(noc_ctx.settings, context=noc_ctx)
    app.config["TESTING"] = True
    return app


def signed_in(app: Flask, ctx: Context, name: str, role: str, **kw: object) -> Browser:
    make_user(ctx, name, role, password=PASSWORD, **kw)  # type: ignore[arg-type]
    browser = Browser(app)
    browser.sign_in(name, PASSWORD)
    return browser


def test_the_map_colours_a_link_by_its_measured_load_and_refreshes_as_json(
    noc_app: Flask, noc_ctx: Context, clock: MovableClock
) -> None:
    feed = Feed(noc_ctx, clock)
    for _ in range(12):  # six minutes of rounds: the last five make the average
        feed.poll()
    op = signed_in(noc_app, noc_ctx, "nora", "operator")
    page = op.get("/noc/")
    assert page.status_code == 200, page.text
    body = page.text
    # prg-mil at 70 %: "busy" on the map and in the table, with its rate written out.
    assert re.search(r'class="link level-busy" data-link="prg-mil"', body), body
    assert re.search(r'<tr data-link="prg-mil" class="level-busy">', body)
    assert "70 %" in body and "700 Mb/s" in body
    assert re.search(r'<tr data-device="prg-mx"[^>]*>\s*<th[^>]*>.*?</th>\s*<td>PRG</td>', body)
    # A link whose ends were never polled has no data, and says so.
    assert re.search(r'class="link level-unknown" data-link="mil-psn"', body)
    state = op.get("/noc/state.json").get_json()
    prg_mil = next(lk for lk in state["links"] if lk["name"] == "prg-mil")
    assert prg_mil["level"] == "busy" and prg_mil["a_to_b_bps"] == pytest.approx(700e6, rel=1e-6)
    assert {d["name"]: d["snmp"] for d in state["devices"]}["prg-mx"] == "yes"
    assert {d["name"]: d["snmp"] for d in state["devices"]}["psn-mx"] == "unknown"


def test_a_link_down_is_an_alarm_on_the_map_and_the_list_and_is_acknowledged(
    noc_app: Flask, noc_ctx: Context, clock: MovableClock
) -> None:
    feed = Feed(noc_ctx, clock)
    feed.poll()
    feed.poll(down=("prg-mx:ge-0/0/1", "mil-mx:ge-0/0/0"))
    op = signed_in(noc_app, noc_ctx, "nora", "operator")
    state = op.get("/noc/state.json").get_json()
    assert {lk["name"]: lk["level"] for lk in state["links"]}["prg-mil"] == "down"
    assert [a["kind"] for a in state["alarms"]["list"]] == ["link-down"]
    assert state["alarms"]["list"][0]["severity"] == "major"
    page = op.get("/noc/alarms")
    assert page.status_code == 200
    assert 'data-kind="link-down" data-subject="prg-mil"' in page.text
    assert 'id="alarm-count" data-count="1"' in page.text  # in every NOC page's header
    alarm_id = state["alarms"]["list"][0]["id"]
    acked = op.post(f"/noc/alarms/{alarm_id}/ack", {"next": "/noc/alarms"})
    assert acked.status_code == 303 and acked.headers["Location"] == "/noc/alarms"
    assert "nora, " in op.get("/noc/alarms").text
    again = op.post(f"/noc/alarms/{alarm_id}/ack", {"next": "/noc/alarms"})
    assert again.status_code == 409  # acknowledged already: said, nothing changed
    feed.poll()  # up again: cleared
    assert op.get("/noc/state.json").get_json()["alarms"]["open"] == 0


def test_device_and_link_pages_chart_the_stored_rates(
    noc_app: Flask, noc_ctx: Context, clock: MovableClock
) -> None:
    feed = Feed(noc_ctx, clock)
    for _ in range(4):
        feed.poll()
    op = signed_in(noc_app, noc_ctx, "nora", "operator")
    page = op.get("/noc/devices/prg-mx?port=ge-0/0/1&range=1h")
    assert page.status_code == 200, page.text
    assert '<g class="series series-tx" data-series="tx"><path d="M' in page.text
    assert "700 Mb/s" in page.text  # the latest tx rate, written out under the chart
    link = op.get("/noc/links/prg-mil?range=24h")
    assert link.status_code == 200 and "prg-mx:ge-0/0/1 — mil-mx:ge-0/0/0" in link.text
    for bad, field in [
        ("/noc/devices/prg-mx?range=2y", "range"),
        ("/noc/devices/prg-mx?port=xe-9/9/9", "port"),
    ]:
        r = op.get(bad)
        assert r.status_code == 422 and field in r.text, (bad, r.text)
    assert op.get("/noc/devices/nope").status_code == 404
    assert op.get("/noc/links/nope").status_code == 404


def test_attribution_finds_the_slice_and_its_people_by_vlan_node_user_and_address(
    noc_app: Flask, noc_ctx: Context, clock: MovableClock
) -> None:
    ann = signed_in(noc_app, noc_ctx, "ann", "researcher", projects=["alpha"])
    form = {
        "name": "lab", "project": "alpha", "start_mode": "now", "duration": "2h",
        "mode": "form", "action": "book",
        "nodes-0-name": "a", "nodes-0-kind": "host", "nodes-0-vcpu": "1",
        "nodes-0-ram_mb": "256", "nodes-0-pop": "PRG",
        "nodes-1-name": "b", "nodes-1-kind": "host", "nodes-1-vcpu": "1",
        "nodes-1-ram_mb": "256", "nodes-1-pop": "MIL",
        "circuits-0-name": "ab", "circuits-0-endpoints": "a, b",
        "circuits-0-bandwidth_mbps": "10",
    }  # fmt: skip
    booked = ann.post("/slices/new", form)
    assert booked.status_code == 303, booked.text[-2000:]
    clock.set(T0 + dt.timedelta(minutes=5))
    op = signed_in(noc_app, noc_ctx, "nora", "operator")
    slices = op.get("/noc/slices").text
    assert 'data-slice="lab"' in slices and "prg-mil" in slices
    link = op.get("/noc/links/prg-mil").text
    vlan = re.search(r"VLAN <a href=\"[^\"]+\">(\d+)</a>", link)
    assert vlan, link
    at = "2026-12-01T09:05"
    for query in (
        f"vlan={vlan.group(1)}&link=prg-mil",
        "node=a",
        "user=ann",
        "port=prg-mx:ge-0/0/1",
    ):
        page = op.get(f"/noc/attribution?at={at}&{query}")
        assert page.status_code == 200, (query, page.text[-1500:])
        assert 'data-slice="lab"' in page.text and "ann" in page.text, query
    # Before the booking, nothing held that tag there.
    early = op.get(f"/noc/attribution?at=2026-12-01T08:00&vlan={vlan.group(1)}&link=prg-mil")
    assert "Nothing held that then." in early.text
    # Bad input is named at its field, and changes nothing.
    before = table_dump(noc_ctx)
    for query, field in [
        ("vlan=5000&link=prg-mil", "f-vlan"),
        ("vlan=12", "f-vlan"),
        ("address=300.1.1.1", "f-address"),
        ("at=yesterday&node=a", "f-at"),
        ("user=nobody", "f-query"),
    ]:
        r = op.get(f"/noc/attribution?{query}")
        assert r.status_code == 422 and f'id="{field}-error"' in r.text, (query, r.text[-1500:])
    assert table_dump(noc_ctx) == before


def test_a_researcher_gets_403_on_every_noc_page(noc_app: Flask, noc_ctx: Context) -> None:
    bob = signed_in(noc_app, noc_ctx, "bob", "researcher", projects=["beta"])
    routes = [
        (rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        for rule in noc_app.url_map.iter_rules()
        if rule.endpoint.startswith("noc.") and rule.endpoint != "noc.static"
    ]
    assert len(routes) >= 8
    args = {
        "name": "prg-mx",
        "alarm_id": "1",
        "window_id": "1",
        "project": "beta",
        "username": "bob",
        "ref": "1",
    }
    before = table_dump(noc_ctx)
    for rule, methods in routes:
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: args[m.group(1)], rule.rule)
        for method in methods:
            r = bob.get(url) if method == "GET" else bob.post(url)
            assert r.status_code == 403, (method, url, r.status_code)
    assert table_dump(noc_ctx) == before
    # And the portal offers them no way in.
    assert "/noc/" not in bob.get("/slices").text


def test_operators_manage_maintenance_and_quotas_admins_people_in_the_browser(
    noc_app: Flask, noc_ctx: Context, clock: MovableClock
) -> None:
    signed_in(noc_app, noc_ctx, "ann", "researcher", projects=["alpha"])
    op = signed_in(noc_app, noc_ctx, "nora", "operator")
    assert op.get("/noc/maintenance").status_code == 200
    window = {
        "target_kind": "link", "target": "prg-mil", "start": "",
        "end": "2026-12-02T09:00", "reason": "fibre works",
    }  # fmt: skip
    before = table_dump(noc_ctx)
    for bad, field in [
        ({"target": "nowhere"}, "f-target"),
        ({"target_kind": "planet"}, "f-target_kind"),
        ({"end": "2026-11-30T09:00"}, "f-end"),
        ({"reason": ""}, "f-reason"),
    ]:
        r = op.post("/noc/maintenance", window | bad)
        assert r.status_code == 422 and f'id="{field}-error"' in r.text, (bad, r.text[-1500:])
    assert table_dump(noc_ctx) == before
    r = op.post("/noc/maintenance", window)
    assert r.status_code == 303
    page = op.get("/noc/maintenance").text
    assert "link prg-mil" in page and "fibre works" in page
    window_id = re.search(r'data-window="(\d+)"', page)
    assert window_id
    assert op.post(f"/noc/maintenance/{window_id.group(1)}/cancel").status_code == 303
    assert "No maintenance ahead." in op.get("/noc/maintenance").text

    assert 'data-project="alpha"' in op.get("/noc/quotas").text
    refused = op.post("/noc/quotas/alpha", {"max_nodes": "-3"})
    assert refused.status_code == 422 and 'id="f-max_nodes-error"' in refused.text
    assert op.post("/noc/quotas/alpha", {"max_nodes": "4"}).status_code == 303
    assert 'name="max_nodes" inputmode="numeric" value="4"' in op.get("/noc/quotas").text
    assert op.post("/noc/quotas/nope", {"max_nodes": "4"}).status_code == 404
    # Each change is in the audit log, which the NOC shows.
    audit = op.get("/noc/audit?user=nora").text
    assert "<code>quota.manage</code>" in audit and "/noc/quotas/alpha" in audit, audit[-3000:]

    assert op.get("/noc/people").status_code == 403  # operators: no; admins: yes
    admin = signed_in(noc_app, noc_ctx, "root", "admin")
    assert 'data-user="ann"' in admin.get("/noc/people").text
    assert admin.post("/noc/people/ann", {"role": "pope"}).status_code == 422
    assert admin.post("/noc/people/ann", {"role": "researcher", "active": "no"}).status_code == 303
    assert '<option value="no" selected>' in admin.get("/noc/people").text
