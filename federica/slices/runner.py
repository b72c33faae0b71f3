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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.db import transaction
from federica.errors import Conflict
from federica.slices import events, service
from federica.slices.lifecycle import (
    EventKind,
    PartState,
    SliceStatus,
    derived_status,
    move,
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


@dataclass(frozen=True)
class _Host:
    name: str
    driver: str


HostRows = Sequence[tuple[int, str, str, str, str]]


def host_rows(session: Session) -> HostRows:
    """Every V-node with its uplink: (id, name, driver, device, port)."""
    return [
        (hid, name, driver, device, port)
        for hid, name, driver, device, port in session.execute(
            select(ComputeHost.id, ComputeHost.name, ComputeHost.driver, Device.name, Port.name)
            .join(Port, ComputeHost.uplink_port_id == Port.id)
            .join(Device, Port.device_id == Device.id)
        )
    ]


def plan_of(session: Session, sl: Slice, rows: HostRows | None = None) -> SlicePlan:
    """`rows`: host_rows(session), when the caller plans many slices at once."""
    # One query for every V-node with its uplink (device, port): loading the hosts and
    # then each uplink and its device lazily cost the worker ~2 ms per slice.
    if rows is None:
        rows = host_rows(session)
    hosts = {hid: _Host(name, driver) for hid, name, driver, _, _ in rows}
    uplinks = {name: (device, port) for _, name, _, device, port in rows}
    req = SliceRequest.model_validate_json(sl.request)
    placement = {n.name: hosts[n.host_id].name for n in sl.nodes}
    circuits = circuit_parts([(c.name, c.bandwidth_mbps, c.mapping) for c in sl.circuits])
    endpoints = {c.name: list(c.endpoints) for c in req.circuits}
    addresses: dict[str, str] = {}
    uplink_ports = set(uplinks.values())
    for c in circuits:
        if c.name not in endpoints:
            # A circuit across the border (stitched at a border port): its end here is the
            # node whose V-node uplink it crosses.
            ports = {(d, p) for d, p, _ in c.hops}
            endpoints[c.name] = [n for n, h in placement.items() if uplinks[h] in ports][:1]
            # One subnet at both facilities, from the border tag (the same at both ends of
            # the border): .1 at the home facility's node, .2 at the visited one's (its
            # slice is in a guest project).
            hops = json.loads(next(x.mapping for x in sl.circuits if x.name == c.name))
            tag = next(
                (h["vlan"] for h in hops
                 if h.get("link") is None and (h["device"], h["port"]) not in uplink_ports),
                0,
            )  # fmt: skip
            if tag:
                host = 2 if (sl.project or "").startswith("guest-") else 1
                addresses[c.name] = f"10.{200 + tag // 256}.{tag % 256}.{host}/24"
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
        addresses,
    )


def start(
    sessions: sessionmaker[Session],
    provisioner: Provisioner,
    slice_id: int,
    now: Clock,
    gate: Callable[[int], str | None] | None = None,
) -> str:
    """`gate`: called once this facility's part is built, before the slice is ACTIVE
    (outside any transaction); it answers why the slice cannot be ACTIVE (its part at a
    peer failed), or None. A slice across the border waits there for its other part."""

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
            # Not removable yet (a device away; the dead worker's confirmed commit still
            # pending until its timeout rolls it back): the event is tried again after
            # its back-off, and given up (cleaned up, failed) after the last attempt.
            raise LeftoversRemain("interrupted provisioning left " + "; ".join(problems))
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
        if outcome.ok and status is S.ACTIVE and gate is None:
            move(sl, S.ACTIVE, now(), "every node runs and every circuit is configured")
            return "active"
        ready = outcome.ok and status is S.ACTIVE
    if ready and gate is not None:
        why = gate(slice_id)
        with transaction(sessions) as s:
            sl = s.get(Slice, slice_id)
            assert sl is not None
            if sl.status is not S.PROVISIONING:
                return f"provisioned, but the slice is now {sl.status.value}"
            if why is None:
                move(sl, S.ACTIVE, now(), "every part runs, here and at the peers")
                return "active"
        problems = provisioner.deprovision(p)
        return _fail(sessions, slice_id, now, "; ".join([why, *problems]))
    reason = outcome.reason or "a part is not ready"
    # The timings are already on the slice (recorded above), failed or not.
    return _fail(sessions, slice_id, now, reason)


def _fail(
    sessions: sessionmaker[Session],
    slice_id: int,
    now: Clock,
    reason: str,
) -> str:
    with transaction(sessions) as s:
        sl = s.get(Slice, slice_id)
        assert sl is not None
        at = now()
        move(sl, S.FAILED, at, reason)
        sl.failure_reason = reason
        service.free_from(s, sl, at)  # the reservations are free again
        # The end event stays: at the window's end it removes anything left behind
        # (idempotent) and ends the slice; until then the owner sees it failed, and why.
        return f"{events.FAILED}: {reason}"


LEASE_LOST = "lease lost: another worker took the event over"


class LeftoversRemain(RuntimeError):
    """What an interrupted provisioning built could not all be removed yet."""


def give_up(
    sessions: sessionmaker[Session],
    provisioner: Provisioner,
    event_id: int,
    worker: str,
    now: Clock,
    why: str,
) -> str:
    """An event that kept failing is done with, as failed: a start fails the slice (what
    it built removed, its reservations freed when that worked); an end leaves it failed
    with its resources held, to be released again; a warning is just not sent. The
    slice's end is never left waiting behind its start."""
    with transaction(sessions) as s:
        ev = s.get(SliceEvent, event_id)
        assert ev is not None
        # A start that got as far as provisioning may have built something.
        built = ev.kind is EventKind.START and ev.slice.status is S.PROVISIONING
        plan = _plan_or_none(s, ev.slice) if built else None
    problems: list[str] = []
    if plan is not None:
        problems = _clean_up(provisioner, plan)
    elif built:
        problems = ["its plan could not be read, so nothing was removed"]
    with transaction(sessions) as s:
        ev = s.get(SliceEvent, event_id, with_for_update=True)
        assert ev is not None
        if ev.claimed_by != worker or ev.done_at is not None:
            return LEASE_LOST  # another worker took the event over: its outcome counts
        sl, at = ev.slice, now()
        if ev.kind is EventKind.START and sl.status in (S.SCHEDULED, S.PROVISIONING):
            result = _start_failed(s, sl, at, why, problems)
        elif ev.kind is EventKind.END and sl.status is not S.ENDED:
            result = _end_failed(sl, at, why)
        else:
            result = f"{events.FAILED}: {why}"
        ev.done_at, ev.result = at, result[:2000]
        return result


def _plan_or_none(s: Session, sl: Slice) -> SlicePlan | None:
    try:
        return plan_of(s, sl)
    except Exception:  # the failure being given up on may be this very one
        log.exception("slice %d (%s): its plan could not be read for the clean-up", sl.id, sl.name)
        return None


def _clean_up(provisioner: Provisioner, plan: SlicePlan) -> list[str]:
    try:
        return provisioner.deprovision(plan)
    except Exception as exc:
        log.exception("slice %d (%s): clean-up raised", plan.slice_id, plan.slice_name)
        return [f"the clean-up raised {type(exc).__name__}"]


def _start_failed(s: Session, sl: Slice, at: dt.datetime, why: str, problems: list[str]) -> str:
    reason = f"could not start: {why}"
    if problems:
        reason += (
            "; what it built may be left, so its resources stay held until it is released: "
            + "; ".join(problems)
        )
    move(sl, S.FAILED, at, reason)
    sl.failure_reason, sl.access = reason, "{}"
    if not problems:
        service.free_from(s, sl, at)
    return f"{events.FAILED}: {reason}"


def _end_failed(sl: Slice, at: dt.datetime, why: str) -> str:
    """Resources stay held: whatever could not be removed may still use them."""
    reason = f"release incomplete (release it again to retry): {why}"
    if sl.status is S.FAILED:
        sl.note(at, reason)
    else:
        move(sl, S.FAILED, at, reason)
    earlier = sl.failure_reason
    keep = earlier and not earlier.startswith("release incomplete")  # why it failed first
    sl.failure_reason = f"{earlier}; then {reason}" if keep else reason
    return f"{events.FAILED}: {reason}"


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
            return _end_failed(sl, at, "; ".join(problems))
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


class UnderEmergencyStop(Conflict):
    title = "Under emergency stop"
    type_slug = "under-emergency-stop"


def request_release(session: Session, sl: Slice, now: dt.datetime, *, staff: bool = False) -> Slice:
    """A user's release. Nothing built yet: ended at once. Otherwise the slice is marked
    releasing and an end event due now makes a worker take it down (idempotent). A slice
    under emergency stop is kept for the operators: only they (`staff`) may release it."""
    if sl.status is S.SHUTDOWN and not staff:
        raise UnderEmergencyStop(
            f"slice {sl.name} is under an emergency stop: it is kept as it is until the "
            "facility's operators lift or release it"
        )
    if sl.status in (S.ENDED, S.RELEASING):
        return sl
    if sl.status is S.SCHEDULED:
        return service.release(session, sl, now=now)
    move(sl, S.RELEASING, now, "released by the user")
    events.cancel_pending(sl, now, "released")
    sl.events.append(SliceEvent(kind=EventKind.END, due=now))
    session.flush()
    log.info("slice %d (%s) released: a worker takes it down", sl.id, sl.name)
    return sl


def lost_with_facility(sessions: sessionmaker[Session], now: Clock, why: str) -> list[str]:
    """The facility under these slices went away as a whole (the demo stopping takes its
    emulated facility and every node with it): what was built or being built is gone, so
    the database must not go on saying ACTIVE. Each such slice fails with `why`, its
    parts removed and the rest of its window given back; its end event still ends it."""
    with transaction(sessions) as s:
        at = now()
        lost = s.scalars(
            select(Slice).where(Slice.status.in_([S.PROVISIONING, S.ACTIVE])).order_by(Slice.id)
        ).all()
        for sl in lost:
            move(sl, S.FAILED, at, why)
            sl.failure_reason, sl.access = why, "{}"
            for node in sl.nodes:
                node.state, node.detail = PartState.REMOVED, why
            for circuit in sl.circuits:
                circuit.state, circuit.detail = PartState.REMOVED, why
            service.free_from(s, sl, at)
        return [sl.name for sl in lost]
