"""Which alarms to raise, clear, suppress: a pure function of the latest states.

Conditions:
* device-unreachable (subject: the device): its SNMP agent failed N polls in a row, or
  the controller could not reach it over NETCONF (the reachability the worker and
  `federica device check` record) for as long as N polls take.
* link-down (subject: the link): an end of an inventory link is oper-down while
  admin-up; both ends down is one alarm.
* port-down (subject: "device:port"): any other polled port oper-down while admin-up.
* utilisation-high, errors-high, discards-high (subject: the link, or "device:port" for a
  port on no link): a rate over its threshold at every poll for a whole window (see
  `rate_conditions`).

Rules:
* Deduplicated: a condition that holds with an alarm open for it raises nothing new.
* Cleared when its condition no longer holds, and only when that is known: a port's state
  read before its device stopped answering says nothing now, so its alarm stays.
* Suppressed by dependency: while a device's SNMP agent is unreachable, alarms on its
  ports and links are marked suppressed (and new ones are not raised); they come back
  when it answers. A device unreachable over NETCONF only still answers SNMP: its ports'
  states are current, and their alarms are faults of their own, not hidden.
* Silent during maintenance: a condition on a subject under maintenance (the device, a
  link or either of its ends' devices) raises nothing; polling goes on, and an alarm open
  from before still clears when its condition goes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

UP = 1  # IF-MIB ifAdminStatus / ifOperStatus up(1)


class Kind(enum.StrEnum):
    DEVICE_UNREACHABLE = "device-unreachable"
    LINK_DOWN = "link-down"
    PORT_DOWN = "port-down"
    UTILISATION_HIGH = "utilisation-high"
    ERRORS_HIGH = "errors-high"
    DISCARDS_HIGH = "discards-high"
    # Raised by a service, not by a poll: cleared by that service (or acknowledged), never
    # by `evaluate` (no polled state says it no longer holds).
    ESTOP_DEVICE = "estop-device"  # an emergency stop could not reach a device
    # Reconciliation found a device's configuration or a V-node's nodes other than the
    # database's intent (and repaired it, or will when its grace period ends).
    CONFIG_DRIFT = "config-drift"
    # Per slice (evaluate_slices):
    CIRCUIT_OVER_BOOKING = "circuit-over-booking"
    NODE_DIED = "node-died"
    # Federation, raised by its services: a peer's alarm that concerns this facility (its
    # border link, or its slices' parts at the peer), and an emergency stop a peer has
    # not been told of yet.
    PEER_ALARM = "peer-alarm"
    PEER_ESTOP = "peer-estop-undelivered"


# Kinds whose subject is a link (then the alarm's `link` is set) or "device:port".
PORT_OR_LINK_KINDS = frozenset(
    {Kind.LINK_DOWN, Kind.PORT_DOWN, Kind.UTILISATION_HIGH, Kind.ERRORS_HIGH, Kind.DISCARDS_HIGH}
)
RAISED_BY_SERVICES = frozenset(
    {Kind.ESTOP_DEVICE, Kind.CONFIG_DRIFT, Kind.PEER_ALARM, Kind.PEER_ESTOP}
)
# Kinds whose slices the raising service names (nothing here holds their subject).
SLICES_GIVEN = frozenset({Kind.PEER_ALARM, Kind.PEER_ESTOP})


@dataclass(frozen=True)
class DeviceState:
    name: str
    consecutive_failures: int  # SNMP polls in a row without an answer
    error: str = ""
    # Why the controller has not reached it over NETCONF for N polls' time ("": it has,
    # or not for that long).
    netconf_unreachable: str = ""


@dataclass(frozen=True)
class PortState:
    device: str
    port: str
    admin_status: int | None
    oper_status: int | None
    link: str | None = None  # the inventory link this port is an end of


@dataclass(frozen=True)
class RateSample:
    """One stored raw rate of a port: per second over [start, end) (seconds since any
    fixed origin; only differences matter)."""

    start: float
    end: float
    in_octets: float | None
    out_octets: float | None
    errors: float | None  # in + out
    discards: float | None  # in + out


@dataclass(frozen=True)
class PortRates:
    device: str
    port: str
    capacity_mbps: float | None  # the link's capacity, else the port's speed
    samples: tuple[RateSample, ...]  # oldest first
    link: str | None = None


@dataclass(frozen=True)
class Thresholds:
    window_s: float
    utilisation_percent: float
    errors_per_s: float
    discards_per_s: float


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
    rates: Iterable[PortRates] | None = None,
    thresholds: Thresholds | None = None,
) -> Decisions:
    if unreachable_after < 1:
        raise ValueError("unreachable_after must be at least 1")
    by_device = {d.name: d for d in devices}
    # Hides the device's ports: their states are stale.
    unreachable = {n for n, d in by_device.items() if d.consecutive_failures >= unreachable_after}
    alarmed = unreachable | {n for n, d in by_device.items() if d.netconf_unreachable}
    # Devices whose port states are of their latest poll: the others' say nothing now.
    fresh = {n for n, d in by_device.items() if d.consecutive_failures == 0}

    # Each condition that holds now, by (kind, subject).
    holds: dict[tuple[Kind, str], Raise] = {}
    # Port and link conditions that cannot be known now (their device's states are old).
    unknown: set[tuple[Kind, str]] = set()
    # The devices each port/link condition depends on.
    depends: dict[tuple[Kind, str], set[str]] = {}
    for name in sorted(alarmed):
        d = by_device[name]
        why = []
        if name in unreachable:
            why.append(f"no SNMP answer in {d.consecutive_failures} polls: {d.error}")
        if d.netconf_unreachable:
            why.append(f"NETCONF: {d.netconf_unreachable}")
        holds[(Kind.DEVICE_UNREACHABLE, name)] = Raise(
            Kind.DEVICE_UNREACHABLE, name, name, None, "; ".join(why)[:500], devices=(name,)
        )
    if rates is not None and thresholds is not None:
        rate_conditions(rates, fresh, thresholds, holds, unknown, depends)
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
        if kind in PORT_OR_LINK_KINDS and subject in maintenance.links:
            return True
        return bool(depends.get(key, set()) & maintenance.devices)

    out = Decisions()
    opened = {(a.kind, a.subject): a for a in open_alarms}
    for key, alarm in opened.items():
        if key[0] in RAISED_BY_SERVICES:
            continue
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


Key = tuple[Kind, str]
# Coverage of the window the samples must have for "every poll over the window".
COVERED = 0.9


def rate_conditions(
    rates: Iterable[PortRates],
    fresh: set[str],
    thresholds: Thresholds,
    holds: dict[Key, Raise],
    unknown: set[Key],
    depends: dict[Key, set[str]],
) -> None:
    """Add the rate conditions that hold (into `holds`), or cannot be known (`unknown`:
    the device's latest poll failed), with the devices they depend on.

    A condition holds when each sample in the last `window_s` (back from the newest one)
    is over its threshold and they cover at least 90 % of the window: sustained, not a
    burst averaged over. An alarm raised stays while the newest sample is over, and
    clears at the first one under it. A link's alarm holds when either end's does; the
    ends over it are named."""
    over: dict[Key, list[str]] = {}
    for r in sorted(rates, key=lambda r: (r.device, r.port)):
        subject = r.link or f"{r.device}:{r.port}"
        for kind, limit, unit, value in _measures(r, thresholds):
            key = (kind, subject)
            depends.setdefault(key, set()).add(r.device)
            if r.device not in fresh:
                unknown.add(key)
                continue
            lowest = _sustained(r.samples, thresholds.window_s, value)
            latest = value(r.samples[-1]) if r.samples else None
            if lowest is not None and lowest > limit:
                over.setdefault(key, []).append(f"{r.device}:{r.port} {lowest:.3g}{unit}")
            elif latest is not None and latest > limit:
                # Over now, not for a whole window yet: an open alarm stays, none is raised.
                unknown.add(key)
    for (kind, subject), ends in over.items():
        unknown.discard((kind, subject))
        link = None if ":" in subject else subject
        device = ends[0].split(":", 1)[0]
        limit_text = {
            Kind.UTILISATION_HIGH: f"{thresholds.utilisation_percent:g} %",
            Kind.ERRORS_HIGH: f"{thresholds.errors_per_s:g}/s",
            Kind.DISCARDS_HIGH: f"{thresholds.discards_per_s:g}/s",
        }[kind]
        holds[(kind, subject)] = Raise(
            kind,
            subject,
            device,
            link,
            f"over {limit_text} for {thresholds.window_s:g} s (lowest): {', '.join(ends)}"[:500],
            ports=tuple(e.split(" ", 1)[0] for e in ends),
        )


def _measures(r: PortRates, t: Thresholds) -> list[tuple[Kind, float, str, Any]]:
    def utilisation(s: RateSample) -> float | None:
        if not r.capacity_mbps or s.in_octets is None or s.out_octets is None:
            return None
        return max(s.in_octets, s.out_octets) * 8 / (r.capacity_mbps * 1e6) * 100

    return [
        (Kind.UTILISATION_HIGH, t.utilisation_percent, " %", utilisation),
        (Kind.ERRORS_HIGH, t.errors_per_s, "/s", lambda s: s.errors),
        (Kind.DISCARDS_HIGH, t.discards_per_s, "/s", lambda s: s.discards),
    ]


def _sustained(
    samples: Sequence[RateSample], window_s: float, value: Callable[[RateSample], float | None]
) -> float | None:
    """The lowest value over the window back from the newest sample; None when the
    samples do not cover the window or one lacks the value."""
    if not samples:
        return None
    since = samples[-1].end - window_s
    inside = [s for s in samples if s.end > since]
    covered = sum(s.end - max(s.start, since) for s in inside)
    values = [value(s) for s in inside]
    if covered < COVERED * window_s or any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)


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
