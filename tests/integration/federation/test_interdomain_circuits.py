"""Circuits across the border: alice at alpha books a slice with one node at alpha and
one at beta, joined by a circuit stitched at the border (alpha's psn-mx:xe-2/0/0 facing
beta's tyo-sw:xe-2/0/0). Two real controller processes over mutual TLS, each with its
own database; the tag must be the same at both ends of the border and never given twice.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from federica.config import Settings
from federica.context import make_context
from federica.federation import assertion, identity
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import GuestBooking
from federica.slices.models import Reservation, Slice
from federica.substrate.models import Device, Port
from tests.conftest import REPO
from tests.integration.federation.test_booking_at_a_peer import KEY, get, post, rows, token_at
from tests.integration.federation.test_two_facilities import Controller, controllers
from tests.integration.federation.test_two_facilities import start as start_controller

pytestmark = [pytest.mark.integration]
__all__ = ["controllers"]  # the fixture, shared
ALPHA_BORDER = "psn-mx:xe-2/0/0"
BETA_BORDER = "tyo-sw:xe-2/0/0"  # 3000-3099, like alpha's
BETA_OTHER = "spr-sw:xe-2/0/0"  # 3100-3199: no tag in common with alpha's


def alpha_topology(tmp: Path) -> Path:
    """core4, its Poznan border port facing beta (not GTS)."""
    text = (REPO / "examples" / "topologies" / "core4.yaml").read_text()
    text = text.replace("- {name: gts, description: GEANT Testbeds Service (peer facility)}",
                        "- {name: beta, description: the peer under test}")  # fmt: skip
    text = text.replace("peer: gts", "peer: beta")
    out = tmp / "core4-beta.yaml"
    out.write_text(text)
    return out


def borders(alpha: Controller, beta: Controller, beta_port: str) -> None:
    alpha.cli("peer", "update", "beta", "--form", "integrated", "--border",
              f"{ALPHA_BORDER}={beta_port}")  # fmt: skip
    beta.cli("peer", "update", "alpha", "--form", "integrated", "--guest-quota", "30",
             "--border", f"{beta_port}={ALPHA_BORDER}")  # fmt: skip


@pytest.fixture
def stitched(
    controllers: tuple[Controller, Controller], tmp_path: Path
) -> tuple[Controller, Controller, str]:
    alpha, beta = controllers
    alpha.cli("substrate", "load", str(alpha_topology(tmp_path)))
    borders(alpha, beta, BETA_BORDER)
    return alpha, beta, token_at(alpha, "alice", "optics")


def across(name: str, day: int, *, there: str = "beta/TYO", bw: int = 100) -> dict[str, Any]:
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=day)).replace(
        minute=0, second=0, microsecond=0
    )
    return {
        "name": name,
        "window": {"start": start.isoformat(), "duration": "2h"},
        "nodes": [{"name": "home", "pop": "PRG"}, {"name": "tokyo", "pop": there}],
        "circuits": [{"name": "x", "endpoints": ["home", "tokyo"], "bandwidth_mbps": bw}],
        "ssh_keys": [KEY],
    }


def border_rows(c: Controller, label: str) -> list[tuple[int, int, dt.datetime, dt.datetime]]:
    """(slice id, tag, start, end) of every reservation at the border port, read straight
    from the controller's database: an audit independent of its API."""
    device, _, port = label.partition(":")
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        with context.sessions() as s:
            pid = s.scalar(
                select(Port.id).join(Device).where(Device.name == device, Port.name == port)
            )
            found = s.execute(
                select(Reservation.slice_id, Reservation.vlan, Reservation.start, Reservation.end)
                .join(Slice)
                .where(Reservation.port_id == pid, Slice.status.in_(["scheduled", "active"]))
            ).all()
            return [(int(a), int(b or 0), st, en) for a, b, st, en in found]
    finally:
        context.engine.dispose()


def no_overlap(held: list[tuple[int, int, dt.datetime, dt.datetime]]) -> None:
    for i, (sa, va, s1, e1) in enumerate(held):
        for sb, vb, s2, e2 in held[i + 1 :]:
            assert not (va == vb and s1 < e2 and s2 < e1), (sa, sb, va)


def test_a_circuit_across_the_border_is_stitched_with_one_tag_at_both_sides(
    stitched: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = stitched
    status, body = post(alpha, "/api/v1/slices", across("jp-x", 1), alice)
    assert status == 201, body
    (part,) = body["remote"]
    assert (part["peer"], part["state"]) == ("beta", "committed")
    # Alpha's part: home, and circuit x from home's V-node to the border port.
    (circuit,) = body["slice"]["circuits"]
    assert circuit["name"] == "x"
    here = border_rows(alpha, ALPHA_BORDER)
    there = border_rows(beta, BETA_BORDER)
    assert len(here) == len(there) == 1
    tag = here[0][1]
    assert 3000 <= tag <= 3099
    assert there[0][1] == tag  # one tag on the border link, both ends
    assert (here[0][2], here[0][3]) == (there[0][2], there[0][3])  # one window
    # What beta says of its part: the border circuit and its tag.
    client_answer = json.loads(
        alpha.cli("peer", "show-advertisement", "beta").stdout
    )  # the border shows the agreed range and the other side
    (bp,) = client_answer["border_ports"]
    assert (bp["port"], bp["peer_port"]) == (BETA_BORDER, ALPHA_BORDER)
    status, now = get(alpha, f"/api/v1/slices/{body['slice']['id']}/remote", alice)
    assert status == 200, now
    (p,) = now["remote"]
    assert p["state"] == "committed"

    # A second slice in the same window takes another tag at both sides.
    status, second = post(alpha, "/api/v1/slices", across("jp-y", 1), alice)
    assert status == 201, second
    here = border_rows(alpha, ALPHA_BORDER)
    there = border_rows(beta, BETA_BORDER)
    assert sorted(v for _s, v, *_ in here) == sorted(v for _s, v, *_ in there)
    assert len({v for _s, v, *_ in here}) == 2

    # Released at alpha: nothing of either left at the border, on both sides.
    for b in (body, second):
        status, released = post(alpha, f"/api/v1/slices/{b['slice']['id']}/release", {}, alice)
        assert status == 200, released
        assert released["remote"][0]["state"] == "aborted"
    assert border_rows(alpha, ALPHA_BORDER) == []
    assert border_rows(beta, BETA_BORDER) == []


def test_no_common_tag_at_the_border_is_refused_naming_the_hop_and_the_tags(
    stitched: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = stitched
    borders(alpha, beta, BETA_OTHER)  # beta's Sapporo border: 3100-3199
    before = rows(alpha, Slice), rows(beta, Slice)
    status, problem = post(alpha, "/api/v1/slices", across("nocommon", 1), alice)
    assert status == 409, problem
    assert problem["facility"] == "beta"
    assert problem["hop"] == f"beta:{BETA_OTHER}"
    assert problem["offered"] == "3000-3099"
    assert problem["free"] == "3100-3199"
    assert BETA_OTHER in problem["detail"]
    # Nothing held anywhere: no slice, no border tag, no guest booking.
    assert (rows(alpha, Slice), rows(beta, Slice)) == before
    assert rows(beta, GuestBooking) == 0
    assert border_rows(alpha, ALPHA_BORDER) == []


def test_a_stitched_hold_never_committed_expires_at_the_peer(
    stitched: tuple[Controller, Controller, str],
) -> None:
    """What beta sees when alpha dies between the phases (or cannot reach it after the
    hold): a hold that is never committed; beta frees it itself when it runs out."""
    alpha, beta, _alice = stitched
    client = PeerClient(beta.peer_url, (beta.files / "ca.pem").read_text(),
                        alpha.files / "client.pem", alpha.files / "client.key")  # fmt: skip
    home = identity.load(alpha.data_dir)

    def token() -> str:  # a fresh one per call (each is used up)
        return assertion.sign(home, username="alice", projects=["optics"], attributes={},
                              audience="urn:publicid:IDN+beta.example+authority+am",
                              now=dt.datetime.now(dt.UTC))  # fmt: skip

    doc = across("orphan", 2)
    start = dt.datetime.fromisoformat(doc["window"]["start"])
    request = {"name": "orphan", "window": {"start": start.isoformat(),
               "end": (start + dt.timedelta(hours=2)).isoformat()},
               "nodes": [{"name": "tokyo", "pop": "TYO"}]}  # fmt: skip
    border = [{"circuit": "x", "node": "tokyo", "port": BETA_BORDER, "vlans": "3010-3020",
               "bandwidth_mbps": 100}]  # fmt: skip
    answer = client.hold_stitched("orphan-hold-01", token(), request, 3, border)
    assert answer["state"] == "held"
    (st,) = answer["stitching"]
    assert (st["port"], st["vlan"]) == (BETA_BORDER, 3010)
    assert [v for _s, v, *_ in border_rows(beta, BETA_BORDER)] == [3010]
    # A border port that does not face alpha is refused, naming it; nothing held.
    other = [dict(border[0], port="tyo-sw:xe-2/0/1")]
    with pytest.raises(PeerError, match=r"\(422\).*not a border port facing alpha"):
        client.hold_stitched("orphan-hold-02", token(), dict(request, name="other"), 3, other)
    deadline = time.monotonic() + 60
    while True:  # the hold runs out after 3 s; beta frees it at its next peer call
        seen = client.get("/federation/v1/stitched-bookings/orphan-hold-01")
        if seen["state"] == "aborted":
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.5)
    assert border_rows(beta, BETA_BORDER) == []
    with pytest.raises(PeerError, match=r"\(409\)"):
        client.commit("orphan-hold-01")


def test_concurrent_bookings_for_one_border_never_share_a_tag(
    stitched: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = stitched

    def book(i: int) -> tuple[int, Any]:
        # One window for all: they contend for the border's tags at both sides (and
        # beta's V-nodes: 8 cores at TYO, 12 at OSA).
        there = "beta/TYO" if i % 2 else "beta/OSA"
        return post(alpha, "/api/v1/slices", across(f"c{i}", 3, there=there, bw=10), alice)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(book, range(20)))
    ok = [b for status, b in answers if status == 201]
    for status, b in answers:
        assert status in (201, 409), (status, b)
    assert ok, answers
    here = border_rows(alpha, ALPHA_BORDER)
    there = border_rows(beta, BETA_BORDER)
    no_overlap(here)
    no_overlap(there)
    assert len(here) == len(there) == len(ok)
    assert sorted(v for _s, v, *_ in here) == sorted(v for _s, v, *_ in there)
    # Each booked slice's tag is the same at both sides (alpha's slice -> beta's part).
    context = make_context(Settings(data_dir=beta.data_dir))
    try:
        with context.sessions() as s:
            beta_tag = {
                name: vlan
                for name, vlan in s.execute(
                    select(Slice.name, Reservation.vlan)
                    .join(Reservation)
                    .where(Reservation.port_id.is_not(None), Reservation.vlan >= 3000)
                )
            }
    finally:
        context.engine.dispose()
    alpha_tag = {}
    by_id = {b["slice"]["id"]: b["slice"]["name"] for b in ok}
    for sid, vlan, *_ in here:
        alpha_tag[f"alpha-{by_id[sid]}"] = vlan
    assert alpha_tag == {k: v for k, v in beta_tag.items() if k in alpha_tag}
    assert set(alpha_tag) <= set(beta_tag)


def test_a_peer_that_dies_after_its_hold_frees_it_when_it_returns(
    stitched: tuple[Controller, Controller, str], tmp_path: Path
) -> None:
    """Beta holds a stitched part, then dies (SIGKILL) before alpha commits; alpha's abort
    cannot reach it (and a booking through alpha now fails, leaving nothing at alpha).
    Back up, beta finds the hold run out and frees its border tag itself."""
    alpha, beta, alice = stitched
    client = PeerClient(beta.peer_url, (beta.files / "ca.pem").read_text(),
                        alpha.files / "client.pem", alpha.files / "client.key")  # fmt: skip
    token = assertion.sign(identity.load(alpha.data_dir), username="alice",
                           projects=["optics"], attributes={},
                           audience="urn:publicid:IDN+beta.example+authority+am",
                           now=dt.datetime.now(dt.UTC))  # fmt: skip
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    request = {"name": "doomed", "window": {"start": start.isoformat(),
               "end": (start + dt.timedelta(hours=2)).isoformat()},
               "nodes": [{"name": "tokyo", "pop": "TYO"}]}  # fmt: skip
    border = [{"circuit": "x", "node": "tokyo", "port": BETA_BORDER, "vlans": "3000-3099",
               "bandwidth_mbps": 100}]  # fmt: skip
    held = client.hold_stitched("doomed-hold-01", token, request, 5, border)
    assert held["state"] == "held"
    assert beta.proc is not None
    beta.proc.kill()
    beta.proc.wait()
    with pytest.raises(PeerError, match="unreachable"):
        client.abort("doomed-hold-01")  # what alpha's abort meets
    before = rows(alpha, Slice)
    status, problem = post(alpha, "/api/v1/slices", across("while-dead", 2), alice)
    assert status == 502, problem
    assert rows(alpha, Slice) == before
    assert border_rows(alpha, ALPHA_BORDER) == []
    # Still held in beta's database while it is down ...
    assert [v for _s, v, *_ in border_rows(beta, BETA_BORDER)] == [3000]
    beta.proc = start_controller(beta, tmp_path / "beta-again.log")
    deadline = time.monotonic() + 120
    while client.get("/federation/v1/stitched-bookings/doomed-hold-01")["state"] != "aborted":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert border_rows(beta, BETA_BORDER) == []
