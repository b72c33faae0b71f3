"""E-stop propagation through the real mutual-TLS listener and client in one process:
alpha (the home facility) stops its guest booking at beta (the facility under test), and
beta's own stop of a guest slice is queued for alpha, retried with back-off while alpha
cannot be reached, never blocking the stop."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.alarms.models import Alarm
from federica.clock import MovableClock
from federica.context import Context
from federica.errors import InvalidInput
from federica.estop import service as estop
from federica.federation import estop_relay, identity
from federica.federation.client import PeerClient, PeerError
from federica.federation.relay_models import EStopRelay
from federica.slices.models import Slice
from federica.web.federation.openapi import GuestEStopAnswer
from tests.service.federation.test_peer_calendar_and_booking import (
    clock,
    request,
    served,
    sign,
)

__all__ = ["clock", "served"]  # the fixtures, shared
Facilities = dict[str, identity.Facility]


def booked(
    alpha: PeerClient, home: identity.Facility, beta: identity.Facility, now: dt.datetime,
    request_id: str,
) -> dict[str, Any]:  # fmt: skip
    alpha.hold(request_id, sign(home, beta, now), request(request_id, "TYO"), 60)
    return alpha.commit(request_id)


def test_alpha_stops_its_guest_booking_at_beta_idempotently(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served
    part = booked(alpha, facilities["alpha"], beta, clock.now(), "req-stop-0001")
    path = "/federation/v1/bookings/req-stop-0001/estop"

    answer = alpha.post(path, {"reason": "floods", "by": "oscar"})
    GuestEStopAnswer.model_validate(answer)  # what the OpenAPI document says
    assert (answer["stopped"], answer["slice"]["status"]) == (True, "shutdown")
    again = alpha.post(path, {"reason": "floods", "by": "oscar"})
    assert (again["stopped"], again["slice"]["status"]) == (False, "shutdown")
    with context.sessions() as s:
        sl = s.get(Slice, part["slice"]["id"])
        assert sl is not None and sl.status.value == "shutdown"
        row = estop.in_force(s, sl.id)
        assert row is not None and row.by == "peer:alpha" and row.via == "federation"
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "federation.estop")))
    assert [json.loads(r.detail)["stopped"] for r in rows] == [True, False]
    assert {json.loads(r.detail)["home"] for r in rows} == {"alpha"}


def test_malformed_relays_are_refused_naming_each_field() -> None:
    for body, fields in (
        ({"reason": "", "by": "x"}, {"reason"}),
        ({"reason": "r", "by": "x", "extra": 1}, {"extra"}),
        ({"reason": "r" * 501}, {"reason", "by"}),
        ([], {"body"}),
    ):
        with pytest.raises(InvalidInput) as exc:
            estop_relay.checked_body(body)
        assert {e["field"] for e in exc.value.problem()["errors"]} == fields


def test_betas_stop_of_a_guest_slice_is_queued_and_retried_while_alpha_is_away(
    served: tuple[Context, PeerClient], facilities: Facilities, beta: identity.Facility,
    clock: MovableClock,
) -> None:  # fmt: skip
    context, alpha = served  # alpha's registered URL (port 1) answers nobody
    part = booked(alpha, facilities["alpha"], beta, clock.now(), "req-stop-0002")
    operator = Principal("bea", Role.OPERATOR)
    ctx: Any = dataclasses.replace(context, estop_hooks=[])  # the relay is called below
    stopped = estop.stop(ctx, _no_toolkit(), estop.Selector(slice=str(part["slice"]["id"])),
                         operator, "attacks Osaka")  # fmt: skip
    (relay_id,) = estop_relay.after_stop(context, stopped, operator, "attacks Osaka")

    def row() -> EStopRelay:
        with context.sessions() as s:
            found = s.get(EStopRelay, relay_id)
            assert found is not None
            s.expunge(found)
            return found

    deadline = time.monotonic() + 60
    while row().attempts == 0:  # the delivery thread's first attempt
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first = row()
    assert (first.state.value, first.direction.value, first.peer) == ("pending", "to-home",
                                                                      "alpha")  # fmt: skip
    assert "unreachable" in first.last_error
    assert first.next_attempt_at == clock.now() + dt.timedelta(seconds=5)
    assert estop_relay.deliver(context) == {}  # not due yet: nothing is tried
    clock.advance(dt.timedelta(seconds=5))
    assert estop_relay.deliver(context) == {relay_id: "pending"}
    assert row().attempts == 2
    with context.sessions() as s:
        (alarm,) = s.scalars(select(Alarm).where(Alarm.kind == "peer-estop-undelivered"))
        assert alarm.subject == "alpha:req-stop-0002" and alarm.cleared_at is None
        assert [x["id"] for x in json.loads(alarm.slices)] == [part["slice"]["id"]]
    # Never relayed back to the peer that asked for a stop.
    asked = Principal("peer:alpha", Role.RESEARCHER, via="federation")
    assert estop_relay.after_stop(context, stopped, asked, "again") == []
    with pytest.raises(PeerError, match=r"\(404\)"):  # alpha may not stop beta's part
        alpha.post("/federation/v1/parts/req-stop-0002/estop", {"reason": "r", "by": "o"})


def _no_toolkit() -> Any:
    """The slice was booked for later: nothing is built, so isolation has nothing to do."""
    return None
