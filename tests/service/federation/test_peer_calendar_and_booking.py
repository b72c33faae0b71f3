"""The peer API's calendar, identity and booking operations, through the real mutual-TLS
listener and client in one process: beta (the facility under test, tests/data/jgn3.yaml)
answers alpha (a registered peer) for alpha's users."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from federica.aaa.models import AuditEntry
from federica.alarms.models import Alarm
from federica.app import federation_server
from federica.clock import MovableClock
from federica.context import Context
from federica.db import transaction
from federica.federation import assertion, identity, peers
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import GuestBooking, SeenAssertion
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.web.federation.openapi import (
    GuestBookingAnswer,
    PeerAlarms,
    PeerAvailability,
    PeerSlot,
)

Facilities = dict[str, identity.Facility]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def served(
    db: Context, beta: identity.Facility, facilities: Facilities, clock: MovableClock
) -> Iterator[tuple[Context, PeerClient]]:
    """Beta's listener on a movable clock; alpha registered (integrated, TYO and OSA,
    a guest quota of 3); alpha's client."""
    context = dataclasses.replace(db, clock=clock)
    alpha = facilities["alpha"]
    with transaction(db.sessions) as s:
        peers.add(s, "alpha", peers.Agreement(url="https://127.0.0.1:1", form="integrated",
                                              ca_pem=alpha.ca_pem, pops=["TYO", "OSA"],
                                              guest_quota=3))  # fmt: skip
    server = federation_server(context, "127.0.0.1", 0)
    server.expiration_interval = 0.05  # stop() waits up to one (cheroot's: 0.5 s)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.bind_addr[1]}"
    try:
        yield context, PeerClient(url, beta.ca_pem, alpha.files.client_cert, alpha.files.client_key)
    finally:
        server.stop()
        thread.join(timeout=30)


def sign(alpha: identity.Facility, beta: identity.Facility, now: dt.datetime, **kw: Any) -> str:
    args: dict[str, Any] = {
        "username": "alice",
        "projects": ["optics"],
        "attributes": {"email": "alice@alpha.example", "ssh_keys": [KEY]},
        "audience": beta.urn,
        "now": now,
    } | kw
    return assertion.sign(alpha, **args)


def request(name: str, *pops: str, hours: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "window": {"duration": f"{hours}h"},
        "nodes": [{"name": f"n{i}", "pop": pop, "vcpu": 1, "ram_mb": 1024}
                  for i, pop in enumerate(pops)],
        "circuits": [{"name": "c0", "endpoints": ["n0", "n1"], "bandwidth_mbps": 100}]
        if len(pops) > 1 else [],
    }  # fmt: skip


def audit_rows(db: Context, action: str) -> list[AuditEntry]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_availability_and_find_slot_stay_inside_the_agreements_pops(
    served: tuple[Context, PeerClient], clock: MovableClock
) -> None:
    _context, alpha = served
    now = clock.now()
    free = alpha.availability(now.isoformat(), (now + dt.timedelta(hours=1)).isoformat())
    PeerAvailability.model_validate(free)  # what the OpenAPI document says, nothing more
    assert [p["name"] for p in free["pops"]] == ["OSA", "TYO"]  # never SPR
    osa = free["pops"][0]
    assert sorted(h["host"] for h in osa["hosts"]) == ["osa-v1", "osa-v2"]
    assert (osa["cpu_free"], osa["ram_free_mb"]) == (12, 49152)
    assert [(lk["a_pop"], lk["b_pop"]) for lk in free["links"]] == [("TYO", "OSA")]

    slot = alpha.find_slot(request("probe", "TYO", "OSA"))
    PeerSlot.model_validate(slot)
    assert dt.datetime.fromisoformat(slot["start"]) == now
    with pytest.raises(PeerError, match=r"\(422\).*nodes\[1\]\.pop.*shows no 'SPR'"):
        alpha.find_slot(request("probe", "TYO", "SPR"))
    with pytest.raises(PeerError, match=r"\(422\).*end.*must be after start"):
        alpha.availability(now.isoformat(), now.isoformat())
    with pytest.raises(PeerError, match=r"\(422\).*start.*has no time zone"):
        alpha.availability("2030-01-01T00:00", (now + dt.timedelta(hours=1)).isoformat())


def test_a_guest_books_in_two_phases_and_beta_audits_who(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served
    home = facilities["alpha"]
    doc = request("exp1", "TYO", "OSA")
    held = alpha.hold("req-0001-aaaa", sign(home, beta, clock.now()), doc, 60)
    GuestBookingAnswer.model_validate(held)
    assert held["state"] == "held"
    assert held["user"] == "urn:publicid:IDN+alpha.example+user+alice"
    assert held["slice"]["project"] == "guest-alpha"
    assert held["slice"]["name"] == "alpha-exp1"
    assert sorted(n["pop"] for n in held["slice"]["nodes"]) == ["OSA", "TYO"]
    # Held, not built: no event of the slice is pending.
    with context.sessions() as s:
        sl = s.scalars(select(Slice).where(Slice.name == "alpha-exp1")).one()
        assert all(e.done_at is not None for e in sl.events)
        assert json.loads(sl.request)["ssh_keys"] == [KEY]
    # A lost answer: the same hold again is answered, not booked twice.
    again = alpha.hold("req-0001-aaaa", sign(home, beta, clock.now()), doc, 60)
    assert again["slice"]["id"] == held["slice"]["id"]
    with pytest.raises(PeerError, match=r"\(409\).*used for another request"):
        alpha.hold("req-0001-aaaa", sign(home, beta, clock.now()), request("exp2", "TYO"), 60)

    done = alpha.commit("req-0001-aaaa")
    assert done["state"] == "committed"
    assert alpha.commit("req-0001-aaaa")["state"] == "committed"  # idempotent
    with context.sessions() as s:
        sl = s.scalars(select(Slice).where(Slice.name == "alpha-exp1")).one()
        assert sorted(e.kind.value for e in sl.events if e.done_at is None) == [
            "end", "start", "warn"
        ]  # fmt: skip

    (hold_row,) = audit_rows(context, "federation.hold")
    assert hold_row.actor == "alice@alpha" and hold_row.via == "federation"
    detail = json.loads(hold_row.detail)
    assert (detail["user"], detail["home"]) == ("urn:publicid:IDN+alpha.example+user+alice",
                                                "alpha")  # fmt: skip
    assert detail["home_urn"] == home.urn
    assert len(audit_rows(context, "federation.commit")) == 2

    aborted = alpha.abort("req-0001-aaaa")
    assert (aborted["state"], aborted["slice"]["status"]) == ("aborted", "ended")
    with pytest.raises(PeerError, match=r"\(409\).*aborted"):
        alpha.commit("req-0001-aaaa")
    with pytest.raises(PeerError, match=r"\(404\).*no booking"):
        alpha.commit("req-9999-zzzz")


def test_a_hold_not_committed_in_time_is_released(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served
    alpha.hold("req-late-0001", sign(facilities["alpha"], beta, clock.now()),
               request("late", "TYO"), 30)  # fmt: skip
    clock.advance(dt.timedelta(seconds=31))
    shown = alpha.booking("req-late-0001")
    assert (shown["state"], shown["slice"]["status"]) == ("aborted", "ended")
    with pytest.raises(PeerError, match=r"\(409\).*timed out"):
        alpha.commit("req-late-0001")
    assert len(audit_rows(context, "federation.expire")) == 1


def test_the_guest_quota_holds_under_concurrent_bookings(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served
    home = facilities["alpha"]

    def one(i: int) -> str:
        try:
            alpha.hold(f"req-conc-{i:04d}", sign(home, beta, clock.now()),
                       request(f"c{i}", "OSA", hours=1), 120)  # fmt: skip
            return "held"
        except PeerError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(10)))
    assert results.count("held") == 3, results
    assert all("guest quota" in r for r in results if r != "held"), results
    with context.sessions() as s:
        assert s.scalar(select(func.count(GuestBooking.id))) == 3
        live = s.scalar(select(func.count(Slice.id)).where(Slice.status == SliceStatus.SCHEDULED))
        assert live == 3
    refused = audit_rows(context, "federation.refused")
    assert len(refused) == 7
    assert all(json.loads(r.detail)["user"].endswith("+user+alice") for r in refused)


def test_bad_assertions_are_refused_naming_why_and_change_nothing(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served
    home, gamma = facilities["alpha"], facilities["gamma"]
    now = clock.now()
    good = sign(home, beta, now)
    assert alpha.check_identity(good)["guest_project"] == "guest-alpha"
    header, _payload, signature = good.split(".")
    tampered_payload = json.dumps({"iss": home.urn, "sub": "x"}).encode()
    forged = ".".join(
        [header, base64.urlsafe_b64encode(tampered_payload).decode().rstrip("="), signature]
    )
    cases = {
        "replayed": good,
        "not a compact JWS": "garbage",
        "bad signature": forged,
        # Signed by another facility's key: not alpha's, whoever forwards it.
        "issued by another CA": sign(gamma, beta, now),
        "expired at": sign(home, beta, now - dt.timedelta(minutes=6)),
        "its audience is not this facility": sign(home, beta, now, audience=home.urn),
        "lives longer than": sign(home, beta, now, lifetime=dt.timedelta(hours=1)),
        "larger than 8192 bytes": sign(home, beta, now, attributes={"x": "y" * 9000}),
    }
    for why, token in cases.items():
        with pytest.raises(PeerError, match=r"\(401\).*identity assertion refused") as exc:
            alpha.check_identity(token)
        assert why in str(exc.value), (why, str(exc.value))
        with pytest.raises(PeerError, match=why):
            alpha.hold("req-bad-00001", token, request("bad", "TYO"), 60)
    with context.sessions() as s:
        assert s.scalar(select(func.count(GuestBooking.id))) == 0
        assert s.scalar(select(func.count(Slice.id))) == 0
        assert s.scalar(select(func.count(SeenAssertion.id))) == 1  # the good one
    assert len(audit_rows(context, "federation.refused")) == 2 * len(cases)
    # A malformed body names its fields.
    with pytest.raises(PeerError, match=r"\(422\).*request_id.*hold_seconds"):
        alpha.post("/federation/v1/bookings", {"request_id": "x", "request": {},
                                                "hold_seconds": 0})  # fmt: skip


def test_alarms_on_the_border_facing_the_peer_and_on_its_guests_slices_are_shown(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served
    held = alpha.hold("req-alarm-0001", sign(facilities["alpha"], beta, clock.now()),
                      request("watched", "TYO"), 60)  # fmt: skip
    guest = {"id": held["slice"]["id"], "name": "alpha-watched", "project": "guest-alpha"}
    other = {"id": 999, "name": "theirs", "project": "optics"}
    at = clock.now()
    with transaction(context.sessions) as s:
        s.add_all([
            Alarm(kind="port-down", subject="tyo-sw:xe-2/0/0", device="tyo-sw", raised_at=at,
                  detail="oper-down while admin-up"),
            # gamma's border: none of alpha's business.
            Alarm(kind="port-down", subject="tyo-sw:xe-2/0/1", device="tyo-sw", raised_at=at),
            Alarm(kind="link-down", subject="tyo-osa", link="tyo-osa", raised_at=at,
                  slices=json.dumps([guest, other])),
            Alarm(kind="link-down", subject="osa-spr", link="osa-spr", raised_at=at,
                  slices=json.dumps([other])),
            Alarm(kind="port-down", subject="tyo-sw:xe-2/0/0", device="tyo-sw",
                  raised_at=at - dt.timedelta(hours=1), cleared_at=at),
        ])  # fmt: skip
    answer = alpha.alarms()
    PeerAlarms.model_validate(answer)
    shown = sorted((a["kind"], a["subject"], a["border"], tuple(
        (x["name"], x["request_id"]) for x in a["slices"])) for a in answer["alarms"])  # fmt: skip
    assert shown == [
        ("link-down", "tyo-osa", False, (("alpha-watched", "req-alarm-0001"),)),
        ("port-down", "tyo-sw:xe-2/0/0", True, ()),
    ]
