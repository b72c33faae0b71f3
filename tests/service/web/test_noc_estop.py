"""The emergency stop from the NOC's slice page (fake drivers; the real devices and nodes
are in tests/integration/test_estop.py and the NOC's browser test): reason, ticket and a
confirmation required, each named at its field when missing, nothing changed; the stop
and the lift audited; forensic hold toggled; researchers refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.context import Context
from federica.db import transaction
from federica.substrate.inventory import apply_topology
from federica.substrate.topology import parse_topology
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import table_dump
from tests.service.portal.browser import Browser

PASSWORD = "a long enough passphrase"


@pytest.fixture
def lab(db: Context) -> Context:
    text = (EXAMPLES / "topologies" / "core4.yaml").read_text()
    text = text.replace("driver: ietf", "driver: fake").replace("driver: netns", "driver: fake")
    with transaction(db.sessions) as s:
        apply_topology(s, parse_topology(text))
    return db


def browser(app: Flask, lab: Context, name: str, role: str, **kw: Any) -> Browser:
    make_user(lab, name, role, password=PASSWORD, **kw)
    b = Browser(app)
    b.sign_in(name, PASSWORD)
    return b


def segments_enabled(lab: Context, sid: int) -> set[bool]:
    out = set()
    for name in ("prg-mx", "erl-mx", "mil-mx", "psn-mx", "prg-ex", "mil-ex"):
        for seg_name, seg in lab.fake_devices.device(name, ()).running.segments.items():
            if seg_name.startswith(f"fed{sid}-"):
                out.add(seg.enabled)
    return out


def test_an_operator_stops_holds_and_lifts_a_slice_from_its_noc_page(
    app: Flask, lab: Context
) -> None:
    token = make_user(lab, "olga", projects=["lab"], password=PASSWORD)
    booked = client_as(app, token).post(
        "/api/v1/slices",
        json={
            "name": "pair", "project": "lab", "window": {"start": "now", "duration": "2h"},
            "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "MIL"}],
            "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
        },
    )  # fmt: skip
    assert booked.status_code == 201, booked.get_json()
    sid = booked.get_json()["slice"]["id"]
    Worker(lab, name="w").run_once()
    nora = browser(app, lab, "nora", "operator")
    page = nora.get(f"/noc/slices/{sid}")
    assert page.status_code == 200 and 'id="estop-form"' in page.text
    # Its circuit's traffic and each node's CPU and memory are charted (empty here).
    for title in ("circuit c: traffic", "node a (", "node a: memory", "node b: memory"):
        assert title in page.text, title
    assert segments_enabled(lab, sid) == {True}

    before = table_dump(lab)
    for form, field in [
        ({"reason": "", "confirm": "yes"}, "f-reason"),
        ({"reason": "abuse", "ticket": "x" * 101, "confirm": "yes"}, "f-ticket"),
        ({"reason": "abuse"}, "f-confirm"),
    ]:
        r = nora.post(f"/noc/slices/{sid}/estop", form)
        assert r.status_code == 422 and f'id="{field}-error"' in r.text, (form, r.text[-1500:])
    assert table_dump(lab) == before and segments_enabled(lab, sid) == {True}

    stop = {"reason": "scanning the internet", "ticket": "GMOC-42", "confirm": "yes"}
    r = nora.post(f"/noc/slices/{sid}/estop", stop)
    assert r.status_code == 303, r.text[-1500:]
    shown = nora.get(f"/noc/slices/{sid}").text
    assert "status-shutdown" in shown and "scanning the internet" in shown and "GMOC-42" in shown
    assert segments_enabled(lab, sid) == {False}
    # The owner sees why, in the portal.
    olga = Browser(app)
    olga.sign_in("olga", PASSWORD)
    assert "scanning the internet" in olga.get(f"/slices/{sid}").text
    # A researcher cannot lift it (nor reach the NOC at all).
    assert olga.post(f"/noc/slices/{sid}/lift", {"lift_reason": "mine"}).status_code == 403

    assert nora.post(f"/noc/slices/{sid}/hold", {"hold": "on"}).status_code == 303
    assert "Forensic hold: on" in nora.get(f"/noc/slices/{sid}").text
    refused = nora.post(f"/noc/slices/{sid}/lift", {"lift_reason": ""})
    assert refused.status_code == 422 and 'id="f-lift_reason-error"' in refused.text
    r = nora.post(f"/noc/slices/{sid}/lift", {"lift_reason": "owner cleaned up"})
    assert r.status_code == 303, r.text[-1500:]
    assert "status-active" in nora.get(f"/noc/slices/{sid}").text
    assert segments_enabled(lab, sid) == {True}
    with transaction(lab.read_sessions) as s:
        actions = [
            (e.action, e.actor, e.status)
            for e in s.scalars(select(AuditEntry).where(AuditEntry.slice_id == sid))
        ]
    assert ("estop.lift", "nora", 200) in actions
    assert any(a == "slice.estop" and who == "nora" for a, who, _ in actions), actions
    # A lift of a slice that is not shut down: 409, said, nothing changed.
    again = nora.post(f"/noc/slices/{sid}/lift", {"lift_reason": "twice"})
    assert again.status_code == 409 and re.search("not under an emergency stop", again.text)
