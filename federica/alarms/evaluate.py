"""Which alarms to raise, clear, suppress: a pure function of the latest states.

Conditions:
* device-unreachable (subject: the device): its SNMP agent failed N polls in a row.
* link-down (subject: the link): an end of an inventory link is oper-down while
  admin-up; both ends down is one alarm.
* port-down (subject: "device:port"): any other polled port oper-down while admin-up.

Rules:
* Deduplicated: a condition that holds with an alarm open for it raises nothing new.
* Cleared when its condition no longer holds, and only when that is known: a port's state
  read before its device stopped answering says nothing now, so its alarm stays.
* Suppressed by dependency: while a device is unreachable, alarms on its ports and links
  are marked suppressed (and new ones are not raised); they come back when it answers.
* Silent during maintenance: a condition on a subject under maintenance (the device, a
  link or either of its ends' devices) raises nothing; polling goes on, and an alarm open
  from before still clears when its condition goes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

UP = 1  # IF-MIB ifAdminStatus / ifOperStatus up(1)


class Kind(enum.StrEnum):
    DEVICE_UNREACHABLE = "device-unreachable"
    LINK_DOWN = "link-down"
    PORT_DOWN = "port-down"
    # Per slice (evaluate_slices):
    CIRCUIT_OVER_BOOKING = "circuit-over-booking"
    NODE_DIED = "node-died"


@dataclass(frozen=True)
class DeviceState:
    name: str
    consecutive_failures: int
    error: str = ""


@dataclass(frozen=True)
class PortState:
    device: str
    port: str
    admin_status: int | None
    oper_status: int | None
    link: str | None = None  # the inventory link this port is an end of


@dataclass(frozen=True)
class OpenAlarm:
    id: int
    kind: Kind
    subject: str
    suppressed: bool


@dataclass(frozen=True)
class Raise:
    kind: Kind
    subject: str
    device: str | None
    link: str | None
    detail: str
    # The inventory ports it concerns, "device:port" (for the slices it touches).
    ports: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()


@dataclass
class Decisions:
    raise_: list[Raise] = field(default_factory=list)
    clear: list[int] = field(default_factory=list)
    suppress: list[int] = field(default_factory=list)
    unsuppress: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Maintenance:
    """What is under maintenance now: device names and link names."""

    devices: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()


def evaluate(
    devices: Iterable[DeviceState],
    ports: Iterable[PortState],
    open_alarms: Sequence[OpenAlarm],
    *,
    unreachable_after: int,
    maintenance: Maintenance = Maintenance(),
) -> Decisions:
    if unreachable_after < 1:
        raise ValueError("unreachable_after must be at least 1")
    by_device = {d.name: d for d in devices}
    unreachable = {n for n, d in by_device.items() if d.consecutive_failures >= unreachable_after}
    # Devices whose port states are of their latest poll: the others' say nothing now.
    fresh = {n for n, d in by_device.items() if d.consecutive_failures == 0}

    # Each condition that holds now, by (kind, subject).
    holds: dict[tuple[Kind, str], Raise] = {}
    # Port and link conditions that cannot be known now (their device's states are old).
    unknown: set[tuple[Kind, str]] = set()
    # The devices each port/link condition depends on.
    depends: dict[tuple[Kind, str], set[str]] = {}
    for name in sorted(unreachable):
        d = by_device[name]
        holds[(Kind.DEVICE_UNREACHABLE, name)] = Raise(
            Kind.DEVICE_UNREACHABLE,
            name,
            name,
            None,
            f"no SNMP answer in {d.consecutive_failures} polls: {d.error}"[:500],
            devices=(name,),
        )
    down: dict[tuple[Kind, str], list[PortState]] = {}
    for p in sorted(ports, key=lambda p: (p.device, p.port)):
        key = (Kind.LINK_DOWN, p.link) if p.link else (Kind.PORT_DOWN, f"{p.device}:{p.port}")
        depends.setdefault(key, set()).add(p.device)
        if p.device not in fresh:
            unknown.add(key)
        elif p.admin_status == UP and p.oper_status is not None and p.oper_status != UP:
            down.setdefault(key, []).append(p)
    for (kind, subject), ends in down.items():
        named = ", ".join(f"{p.device}:{p.port}" for p in ends)
        holds[(kind, subject)] = Raise(
            kind,
            subject,
            ends[0].device,
            subject if kind == Kind.LINK_DOWN else None,
            f"oper-down while admin-up: {named}",
            ports=tuple(f"{p.device}:{p.port}" for p in ends),
        )

    def suppressed(key: tuple[Kind, str]) -> bool:
        return key[0] != Kind.DEVICE_UNREACHABLE and bool(depends.get(key, set()) & unreachable)

    def silenced(key: tuple[Kind, str]) -> bool:
        kind, subject = key
        if kind == Kind.DEVICE_UNREACHABLE:
            return subject in maintenance.devices
        if kind == Kind.LINK_DOWN and subject in maintenance.links:
            return True
        return bool(depends.get(key, set()) & maintenance.devices)

    out = Decisions()
    opened = {(a.kind, a.subject): a for a in open_alarms}
    for key, alarm in opened.items():
        if key in holds or key in unknown:
            hidden = suppressed(key)
            if hidden and not alarm.suppressed:
                out.suppress.append(alarm.id)
            elif not hidden and alarm.suppressed:
                out.unsuppress.append(alarm.id)
        else:
            out.clear.append(alarm.id)
    for key, new in holds.items():
        if key not in opened and not suppressed(key) and not silenced(key):
            out.raise_.append(new)
    return out


# -- per slice: a circuit carrying more than it booked, a slice's node that died ------------
#
# Evaluated apart from the facility's alarms (their open alarms are passed here, not to
# `evaluate`). Subjects are "s<slice id>:<circuit>" and "s<slice id>:<node>".
# * circuit-over-booking: the most any hop of the circuit sent out on it over the last
#   minute is over the booked rate by more than the tolerance (shaping failed).
# * node-died: a node of an active slice that its V-node reports in a state other than
#   running (failed, stopped, absent).
# A condition whose figure is unknown now (not polled lately, V-node not sampled) keeps its
# alarm as it is; one whose slice no longer holds the circuit or node is cleared.

SLICE_KINDS = frozenset({Kind.CIRCUIT_OVER_BOOKING, Kind.NODE_DIED})
OVER_BOOKING_TOLERANCE = 0.10  # a shaper's burst and the poll's timing


@dataclass(frozen=True)
class CircuitLoad:
    slice_id: int
    slice: str
    circuit: str
    booked_mbps: int
    carried_bps: float | None  # None: not known now
    where: str = ""  # the hop that carried it, "device:interface"


@dataclass(frozen=True)
class NodeHealth:
    slice_id: int
    slice: str
    node: str
    v_node: str
    state: str | None  # the V-node's word for it (running, failed, …); None: not known


def slice_subject(slice_id: int, part: str) -> str:
    return f"s{slice_id}:{part}"


def evaluate_slices(
    circuits: Iterable[CircuitLoad],
    nodes: Iterable[NodeHealth],
    open_alarms: Sequence[OpenAlarm],
    *,
    tolerance: float = OVER_BOOKING_TOLERANCE,
) -> Decisions:
    holds: dict[tuple[Kind, str], Raise] = {}
    unknown: set[tuple[Kind, str]] = set()
    for c in circuits:
        key = (Kind.CIRCUIT_OVER_BOOKING, slice_subject(c.slice_id, c.circuit))
        if c.carried_bps is None:
            unknown.add(key)
        elif c.carried_bps > c.booked_mbps * 1e6 * (1 + tolerance):
            holds[key] = Raise(
                key[0],
                key[1],
                c.where.split(":", 1)[0] or None,
                None,
                f"slice {c.slice} circuit {c.circuit} carried {c.carried_bps / 1e6:.2f} Mb/s "
                f"at {c.where}, booked {c.booked_mbps} Mb/s"[:500],
            )
    for n in nodes:
        key = (Kind.NODE_DIED, slice_subject(n.slice_id, n.node))
        if n.state is None:
            unknown.add(key)
        elif n.state != "running":
            holds[key] = Raise(
                key[0],
                key[1],
                None,
                None,
                f"slice {n.slice} node {n.node} on V-node {n.v_node} is {n.state}"[:500],
            )
    out = Decisions()
    opened = {(a.kind, a.subject): a for a in open_alarms if a.kind in SLICE_KINDS}
    for key, alarm in opened.items():
        if key not in holds and key not in unknown:
            out.clear.append(alarm.id)
    out.raise_.extend(new for key, new in holds.items() if key not in opened)
    return out
