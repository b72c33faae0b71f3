"""The emergency stop over HTTP on both databases, with the fake drivers (the emulated
facility's real devices and nodes are in tests/integration/test_estop.py): who may stop,
see and lift; selectors; bad input names its field and changes nothing; the owner's
changes are refused meanwhile; forensic hold keeps the slice past its end."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.alarms.models import Alarm
from federica.context import Context
from federica.db import transaction
from federica.slices.models import Slice
from federica.substrate.inventory import apply_topology
from federica.substrate.topology import parse_topology
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import table_dump
from tests.service.portal.browser import Browser

API = "/api/v1"
PASSWORD = "a long enough password 1"


@pytest.fixture
def lab(db: Context) -> Context:
    text = (EXAMPLES / "topologies" / "core4.yaml").read_text()
    text = text.replace("driver: ietf", "driver: fake").replace("driver: netns", "driver: fake")
    with transaction(db.sessions) as s:
        apply_topology(s, parse_topology(text))
    return db


@pytest.fixture
def owner(app: Flask, lab: Context) -> FlaskClient:
    return client_as(app, make_user(lab, "olga", projects=["lab"], password=PASSWORD))


@pytest.fixture
def member(app: Flask, lab: Context) -> FlaskClient:
    return client_as(app, make_user(lab, "mario", projects=["lab"]))


@pytest.fixture
def operator(app: Flask, lab: Context) -> FlaskClient:
    return client_as(app, make_user(lab, "nora", "operator"))


def pair(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "project": "lab",
        "window": {"start": "now", "duration": "2h"},
        "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "MIL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
    }


def active(lab: Context, client: FlaskClient, name: str) -> dict[str, Any]:
    r = client.post(f"{API}/slices", json=pair(name))
    assert r.status_code == 201, r.get_json()
    sid = r.get_json()["slice"]["id"]
    Worker(lab, name="w").run_once()
    body: dict[str, Any] = client.get(f"{API}/slices/{sid}").get_json()
    assert body["status"] == "active", body
    return body


DEVICES = ("prg-mx", "erl-mx", "mil-mx", "psn-mx", "prg-ex", "mil-ex")


def segments(lab: Context, sid: int) -> dict[str, bool]:
    out = {}
    for name in DEVICES:
        dev = lab.fake_devices.device(name, ())
        for seg_name, seg in dev.running.segments.items():
            if seg_name.startswith(f"fed{sid}-"):
                out[f"{name}/{seg_name}"] = seg.enabled
    return out


def runnings(lab: Context) -> dict[str, Any]:
    return {n: lab.fake_devices.device(n, ()).running for n in DEVICES}


def frozen(lab: Context, sid: int) -> set[str]:
    return {n for h in lab.fake_hosts.hosts.values() for n in h.frozen if n.startswith(f"s{sid}-")}


def test_stop_see_refuse_lift(
    app: Flask,
    lab: Context,
    owner: FlaskClient,
    member: FlaskClient,
    operator: FlaskClient,
) -> None:
    sl = active(lab, owner, "victim")
    sid = sl["id"]
    assert segments(lab, sid) and all(segments(lab, sid).values())

    # A researcher may not stop a slice, not even their own.
    r = owner.post(f"{API}/slices/{sid}/estop", json={"reason": "mine"})
    assert r.status_code == 403, r.get_json()

    r = operator.post(
        f"{API}/slices/{sid}/estop", json={"reason": "DDoS from 10.1.0.1", "ticket": "GMOC-7"}
    )
    assert r.status_code == 200, r.get_json()
    (stopped,) = r.get_json()["stopped"]
    assert stopped["isolated"] is True and stopped["slice_id"] == sid
    # Every segment disabled, not removed; every node frozen, not destroyed.
    assert segments(lab, sid) and not any(segments(lab, sid).values())
    assert frozen(lab, sid) == {f"s{sid}-a", f"s{sid}-b"}

    # The owner and the project's members see the stop and its reason.
    for who in (owner, member):
        body = who.get(f"{API}/slices/{sid}").get_json()
        assert body["status"] == "shutdown"
        assert body["emergency_stop"]["reason"] == "DDoS from 10.1.0.1"
        assert body["emergency_stop"]["ticket"] == "GMOC-7"
        assert "snapshot" not in body["emergency_stop"]  # the forensics are the staff's
    # ... and on the portal's slice page, with no release button.
    browser = Browser(app)
    browser.sign_in("olga", PASSWORD)
    page = browser.get(f"/slices/{sid}").get_data(as_text=True)
    assert "Emergency stop by nora" in page and "DDoS from 10.1.0.1" in page, page
    assert "GMOC-7" in page and "/release" not in page
    record = operator.get(f"{API}/slices/{sid}/estop").get_json()
    assert set(record["snapshot"]) == {"counters", "segments", "nodes"}
    assert record["snapshot"]["nodes"]["a"]["processes"]

    # The owner's changes are refused while it is stopped.
    assert owner.post(f"{API}/slices/{sid}/release").status_code == 409
    assert owner.post(f"{API}/slices/{sid}/extend", json={"by": "1h"}).status_code == 409
    assert owner.post(f"{API}/slices/{sid}/estop/lift", json={"reason": "x"}).status_code == 403
    assert owner.get(f"{API}/slices/{sid}").get_json()["status"] == "shutdown"

    r = operator.post(f"{API}/slices/{sid}/estop/lift", json={"reason": "cleared by GMOC"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["state"] == "lifted" and r.get_json()["lifted_by"] == "nora"
    assert all(segments(lab, sid).values()) and frozen(lab, sid) == set()
    assert owner.get(f"{API}/slices/{sid}").get_json()["status"] == "active"
    assert owner.get(f"{API}/slices/{sid}").get_json()["emergency_stop"] is None

    with transaction(lab.read_sessions) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.slice_id == sid)).all()
        mine = {e.action: json.loads(e.detail) for e in rows if e.action.startswith("estop")}
        assert mine["estop"]["reason"] == "DDoS from 10.1.0.1"
        assert mine["estop"]["ticket"] == "GMOC-7"
        assert mine["estop.lift"]["reason"] == "cleared by GMOC"
        assert {e.actor for e in rows if e.action.startswith("estop")} == {"nora"}


def test_a_device_that_does_not_answer_is_worked_around(
    lab: Context, owner: FlaskClient, operator: FlaskClient
) -> None:
    sl = active(lab, owner, "around")
    sid = sl["id"]
    # The device of node a's V-node uplink refuses every lock: its slice's link to the
    # V-node is cut at the V-node instead, and an alarm names it.
    a_host = next(n["v_node"] for n in sl["nodes"] if n["name"] == "a")
    first_hop = sl["circuits"][0]["hops"][0]["device"]
    lab.fake_devices.device(first_hop, ()).reachable = False
    r = operator.post(f"{API}/slices/{sid}/estop", json={"reason": "test"})
    assert r.status_code == 200, r.get_json()
    report = r.get_json()["stopped"][0]["report"]
    assert report["unreached"] == [first_hop]
    assert report["isolated"] is True, report
    hows = {f["how"] for f in report["fallbacks"]}
    assert "the slice's node links taken down at its V-node" in hows, report
    assert lab.fake_hosts.host(a_host).links_down == {f"s{sid}-a"}
    with transaction(lab.read_sessions) as s:
        alarm = s.scalars(select(Alarm).where(Alarm.kind == "estop-device")).one()
        assert alarm.subject == first_hop and alarm.cleared_at is None
        assert f"could not reach device {first_hop}" in alarm.detail
    lab.fake_devices.device(first_hop, ()).reachable = True
    r = operator.post(f"{API}/slices/{sid}/estop/lift", json={"reason": "ok"})
    assert r.status_code == 200, r.get_json()
    assert lab.fake_hosts.host(a_host).links_down == set()
    with transaction(lab.read_sessions) as s:
        alarm = s.scalars(select(Alarm).where(Alarm.kind == "estop-device")).one()
        assert alarm.cleared_at is not None


def test_selectors(lab: Context, owner: FlaskClient, operator: FlaskClient) -> None:
    one, two = active(lab, owner, "one"), active(lab, owner, "two")
    hop = one["circuits"][0]["hops"][0]
    r = operator.post(
        f"{API}/estop",
        json={"reason": "abuse", "vlan": hop["vlan"], "link": hop["link"]},
    )
    assert r.status_code == 200, r.get_json()
    assert [s["slice_id"] for s in r.get_json()["stopped"]] == [one["id"]]
    # A project: the one already stopped is listed as skipped.
    r = operator.post(f"{API}/estop", json={"reason": "abuse", "project": "lab"})
    assert r.status_code == 200, r.get_json()
    got = {s["slice_id"]: s["skipped"] for s in r.get_json()["stopped"]}
    assert got == {two["id"]: None} or got == {one["id"]: "slice is shutdown", two["id"]: None}


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/estop", {"reason": "x", "link": "nowhere"}, 422, "link"),
        ("/estop", {"reason": "x", "slice": "nosuch"}, 422, "slice"),
        ("/estop", {"reason": "x", "user": "nobody"}, 422, "user"),
        ("/estop", {"reason": "x", "vnode": "nowhere"}, 422, "vnode"),
        ("/estop", {"reason": "x", "project": "empty"}, 409, "project"),
        ("/estop", {"reason": "x"}, 422, "selector"),
        ("/estop", {"reason": "x", "project": "lab", "user": "olga"}, 422, "selector"),
        ("/estop", {"reason": "x", "colour": "red"}, 422, "colour"),
        ("/estop", {"reason": "", "project": "lab"}, 422, "reason"),
        ("/estop", {"reason": "x", "vlan": 5000, "link": "prg-mil"}, 422, "vlan"),
        # A time with no holder.
        (
            "/estop",
            {"reason": "x", "vlan": 3999, "link": "prg-erl", "at": "2020-01-01T00:00:00Z"},
            409,
            "at",
        ),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    lab: Context,
    owner: FlaskClient,
    operator: FlaskClient,
    path: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    active(lab, owner, "calm")
    before = table_dump(lab)
    devices = runnings(lab)
    r = operator.post(f"{API}{path}", json=body)
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    fields = [e["field"] for e in r.get_json().get("errors", [])]
    assert field in fields, r.get_json()
    assert table_dump(lab) == before
    assert runnings(lab) == devices


def test_lift_of_a_slice_not_shut_down_is_refused(
    lab: Context, owner: FlaskClient, operator: FlaskClient
) -> None:
    sid = active(lab, owner, "fine")["id"]
    before = table_dump(lab)
    r = operator.post(f"{API}/slices/{sid}/estop/lift", json={"reason": "x"})
    assert r.status_code == 409
    assert r.get_json()["detail"].startswith("slice: fine is active")
    assert table_dump(lab) == before


def test_forensic_hold_keeps_the_slice_past_its_end(
    lab: Context, owner: FlaskClient, operator: FlaskClient
) -> None:
    sl = active(lab, owner, "held")
    sid = sl["id"]
    assert operator.post(f"{API}/slices/{sid}/estop", json={"reason": "r"}).status_code == 200
    r = operator.post(f"{API}/slices/{sid}/estop/hold", json={"hold": True})
    assert r.status_code == 200 and r.get_json()["forensic_hold"] is True
    end = dt.datetime.fromisoformat(sl["end"])
    late = dataclasses.replace(lab)
    Worker(late, name="late", now=lambda: end + dt.timedelta(minutes=1)).run_once()
    with transaction(lab.read_sessions) as s:
        row = s.get(Slice, sid)
        assert row is not None and row.status.value == "shutdown"
    assert segments(lab, sid)  # nothing torn down
    # An operator's release ends it.
    r = operator.post(f"{API}/slices/{sid}/release")
    assert r.status_code == 202, r.get_json()
    Worker(late, name="late2", now=lambda: end + dt.timedelta(minutes=2)).run_once()
    assert operator.get(f"{API}/slices/{sid}").get_json()["status"] == "ended"
    assert segments(lab, sid) == {} and frozen(lab, sid) == set()
