"""Starting and ending slices (what the worker does when a calendar event is due).

Each use case is: a short transaction that moves the slice into the in-between state and
reads the plan; the device and V-node work with no transaction open; a short transaction
that records the outcome. A crash in the middle leaves the slice PROVISIONING or
RELEASING with its event still pending; the next worker to claim the event cleans up
first (deprovisioning is idempotent), so no slice stays half-built.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.db import transaction
from federica.slices import events, service
from federica.slices.lifecycle import (
    EventKind,
    PartState,
    SliceStatus,
    check_transition,
    derived_status,
)
from federica.slices.models import Slice, SliceEvent
from federica.slices.provision import (
    Provisioner,
    SlicePlan,
    circuit_parts,
    node_vlans_from,
    plan,
)
from federica.slices.request import SliceRequest
from federica.substrate.models import ComputeHost, Device, Port

log = logging.getLogger(__name__)
S = SliceStatus
Clock = Callable[[], dt.datetime]


def move(sl: Slice, new: SliceStatus, now: dt.datetime, reason: str) -> None:
    """The one way a slice changes status: checked against the transition table."""
    check_transition(sl.status, new, sl.name)
    sl.record_status(new, now, reason)


@dataclass(frozen=True)
class _Host:
    name: str
    driver: str


def plan_of(session: Session, sl: Slice) -> SlicePlan:
    # One query for every V-node with its uplink (device, port): loading the hosts and
    # then each uplink and its device lazily cost the worker ~2 ms per slice.
    rows = session.execute(
        select(ComputeHost.id, ComputeHost.name, ComputeHost.driver, Device.name, Port.name)
        .join(Port, ComputeHost.uplink_port_id == Port.id)
        .join(Device, Port.device_id == Device.id)
    ).all()
    hosts = {hid: _Host(name, driver) for hid, name, driver, _, _ in rows}
    uplinks = {name: (device, port) for _, name, _, device, port in rows}
    req = SliceRequest.model_validate_json(sl.request)
    placement = {n.name: hosts[n.host_id].name for n in sl.nodes}
    circuits = circuit_parts([(c.name, c.bandwidth_mbps, c.mapping) for c in sl.circuits])
    endpoints = {c.name: list(c.endpoints) for c in req.circuits}
    return plan(
        sl.id,
        sl.name,
        [
            (
                n.name,
                hosts[n.host_id].name,
                hosts[n.host_id].driver,
                n.kind,
                n.vcpu,
                n.ram_mb,
                n.image,
            )
            for n in sl.nodes
        ],
        circuits,
        endpoints,
        node_vlans_from(circuits, placement, uplinks, endpoints),
        req.ssh_keys,
        req.gateway.node if req.gateway else None,
    )


def start(
    sessions: sessionmaker[Session], provisioner: Provisioner, slice_id: int, now: Clock
) -> str:
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        if sl is None:
            return "slice gone"
        resuming = sl.status is S.PROVISIONING
        if sl.status is S.SCHEDULED:
            move(sl, S.PROVISIONING, now(), "window started")
        elif not resuming:
            return f"nothing to do: slice is {sl.status.value}"
        p = plan_of(s, sl)
    if resuming:
        # A worker died while provisioning: start again from nothing.
        problems = provisioner.deprovision(p)
        if problems:
            return _fail(
                sessions, slice_id, now, "interrupted provisioning left " + "; ".join(problems), {}
            )
    outcome = provisioner.provision(p)
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        assert sl is not None
        if sl.status is not S.PROVISIONING:
            # Released (or stopped) while we worked: the end event removes what we built.
            return f"provisioned, but the slice is now {sl.status.value}"
        for n in sl.nodes:
            n.state, n.detail = outcome.nodes.get(n.name, (PartState.PLANNED, "not started"))
        for c in sl.circuits:
            c.state, c.detail = outcome.circuits.get(c.name, (PartState.PLANNED, ""))
        _record_timings(sl, "provisioning", outcome.timings_ms)
        sl.access = json.dumps(outcome.access)
        parts = [n.state for n in sl.nodes] + [c.state for c in sl.circuits]
        status = derived_status(sl.status, parts)
        if outcome.ok and status is S.ACTIVE:
            move(sl, S.ACTIVE, now(), "every node runs and every circuit is configured")
            return "active"
    reason = outcome.reason or "a part is not ready"
    return _fail(sessions, slice_id, now, reason, outcome.timings_ms)


def _fail(
    sessions: sessionmaker[Session],
    slice_id: int,
    now: Clock,
    reason: str,
    timings: dict[str, float],
) -> str:
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        assert sl is not None
        at = now()
        move(sl, S.FAILED, at, reason)
        sl.failure_reason = reason
        service.free_from(s, sl, at)  # the reservations are free again
        events.cancel_pending(sl, at, "the slice failed")
        return f"failed: {reason}"


def _record_timings(sl: Slice, phase: str, timings: dict[str, float]) -> None:
    data = json.loads(sl.timings or "{}")
    data[phase] = timings
    sl.timings = json.dumps(data)


def end(
    sessions: sessionmaker[Session],
    provisioner: Provisioner,
    slice_id: int,
    now: Clock,
    reason: str = "window ended",
) -> str:
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        if sl is None:
            return "slice gone"
        if sl.status is S.ENDED:
            return "already ended"
        if sl.status is S.SCHEDULED:
            service.release(s, sl, now=now(), reason=reason)
            return "ended before it started"
        if sl.status is not S.RELEASING:
            move(sl, S.RELEASING, now(), reason)
        p = plan_of(s, sl)
    problems = provisioner.deprovision(p)
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        assert sl is not None
        at = now()
        if problems:
            why = "release incomplete (release it again to retry): " + "; ".join(problems)
            move(sl, S.FAILED, at, why)
            sl.failure_reason = why
            return why
        sl.access = "{}"
        for n in sl.nodes:
            n.state = PartState.REMOVED
        for c in sl.circuits:
            c.state = PartState.REMOVED
        move(sl, S.ENDED, at, reason)
        service.free_from(s, sl, at)
        events.cancel_pending(sl, at, "the slice ended")
        return "ended"


def warn(sessions: sessionmaker[Session], slice_id: int, now: Clock) -> str:
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        if sl is None or sl.status not in (S.SCHEDULED, S.PROVISIONING, S.ACTIVE):
            return "no warning: the slice is not running"
        left = sl.end - now()
        minutes = max(0, int(left.total_seconds() // 60))
        log.warning(
            "slice %s ends in %d min (%s UTC)", sl.name, minutes, f"{sl.end:%Y-%m-%d %H:%M}"
        )
        return f"warned: ends at {sl.end:%Y-%m-%d %H:%M} UTC ({minutes} min left)"


def request_release(session: Session, sl: Slice, now: dt.datetime) -> Slice:
    """A user's release. Nothing built yet: ended at once. Otherwise the slice is marked
    releasing and an end event due now makes a worker take it down (idempotent)."""
    if sl.status in (S.ENDED, S.RELEASING):
        return sl
    if sl.status is S.SCHEDULED:
        return service.release(session, sl, now=now)
    move(sl, S.RELEASING, now, "released by the user")
    events.cancel_pending(sl, now, "released")
    sl.events.append(SliceEvent(kind=EventKind.END, due=now))
    session.flush()
    return sl
