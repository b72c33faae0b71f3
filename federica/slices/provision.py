"""Turning a booked slice into configuration and running nodes, and back.

`plan` is pure: per device, the segments (one per circuit that crosses it); per V-node,
the nodes to run. `provision` applies it: one all-or-nothing NETCONF transaction across
the devices, then the nodes (define, boot), then a check that every node runs. Any
failure undoes everything and says which part failed where. `deprovision` removes what a
slice may have left anywhere; it is idempotent, so it also cleans up after a crash.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from federica.slices.lifecycle import PartState
from federica.substrate.drivers.base import Attachment, Change, DeviceDriver, DriverError, Segment
from federica.substrate.drivers.compute.base import (
    ComputeDriver,
    ComputeError,
    InterfaceSpec,
    NodeSpec,
    NodeState,
)
from federica.substrate.transaction import run_transaction

log = logging.getLogger(__name__)

DevicePool = Callable[[Sequence[str]], AbstractContextManager[Mapping[str, DeviceDriver]]]
ComputeFactory = Callable[[str, str], ComputeDriver]  # (driver name, V-node) -> driver


@dataclass(frozen=True)
class NodePart:
    name: str
    host: str
    driver: str
    spec: NodeSpec


@dataclass(frozen=True)
class CircuitPart:
    name: str
    bandwidth_mbps: int
    hops: tuple[tuple[str, str, int], ...]  # (device, port, vlan)


@dataclass(frozen=True)
class SlicePlan:
    slice_id: int
    slice_name: str
    segments: Mapping[str, tuple[Segment, ...]]  # device -> its segments of this slice
    nodes: tuple[NodePart, ...]

    @property
    def segment_names(self) -> tuple[str, ...]:
        return tuple(sorted({s.name for segs in self.segments.values() for s in segs}))


@dataclass
class Outcome:
    ok: bool
    reason: str = ""
    nodes: dict[str, tuple[PartState, str]] = field(default_factory=dict)
    circuits: dict[str, tuple[PartState, str]] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)


def segment_name(slice_id: int, circuit: str) -> str:
    return f"fed{slice_id}-{circuit}"


def node_id(slice_id: int, node: str) -> str:
    return f"s{slice_id}-{node}"


def plan(
    slice_id: int,
    slice_name: str,
    nodes: Sequence[tuple[str, str, str, str, int, int, str]],
    circuits: Sequence[CircuitPart],
    node_vlans: Mapping[str, Sequence[tuple[str, int]]],
) -> SlicePlan:
    """nodes: (name, host, driver, kind, vcpu, ram_mb, image); node_vlans: node ->
    (circuit, vlan on its V-node's uplink)."""
    per_device: dict[str, list[Segment]] = defaultdict(list)
    for c in circuits:
        by_device: dict[str, set[Attachment]] = defaultdict(set)
        for device, port, vlan in c.hops:
            by_device[device].add(Attachment(port, vlan))
        for device, atts in sorted(by_device.items()):
            per_device[device].append(
                Segment(
                    segment_name(slice_id, c.name),
                    tuple(atts),
                    owner=f"slice {slice_name} ({slice_id})",
                    bandwidth_mbps=c.bandwidth_mbps,
                )
            )
    parts = []
    for name, host, driver, kind, vcpu, ram, image in nodes:
        ifaces = tuple(
            InterfaceSpec(f"eth{i + 1}", circuit, vlan)
            for i, (circuit, vlan) in enumerate(node_vlans.get(name, ()))
        )
        spec = NodeSpec(node_id(slice_id, name), slice_name, name, kind, vcpu, ram, image, ifaces)
        parts.append(NodePart(name, host, driver, spec))
    return SlicePlan(
        slice_id,
        slice_name,
        {d: tuple(s) for d, s in per_device.items()},
        tuple(parts),
    )


def node_vlans_from(
    circuits: Sequence[CircuitPart],
    placement: Mapping[str, str],
    uplinks: Mapping[str, tuple[str, str]],
    endpoints: Mapping[str, Sequence[str]],
) -> dict[str, list[tuple[str, int]]]:
    """Which tag each node's circuit arrives with on its V-node's uplink."""
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for c in circuits:
        for node in endpoints.get(c.name, ()):
            host = placement[node]
            device, port = uplinks[host]
            tags = [v for d, p, v in c.hops if (d, p) == (device, port)]
            # A circuit kept inside one V-node has no hops: it needs no tag on the uplink,
            # and the node side uses 0 ("internal").
            out[node].append((c.name, tags[0] if tags else 0))
    return out


class Provisioner:
    def __init__(
        self,
        devices: DevicePool,
        compute: ComputeFactory,
        *,
        confirm_timeout_s: int = 30,
    ) -> None:
        self.devices = devices
        self.compute = compute
        self.confirm_timeout_s = confirm_timeout_s

    def provision(self, p: SlicePlan) -> Outcome:
        out = Outcome(ok=True)
        t0 = time.perf_counter()

        def lap(name: str) -> None:
            out.timings_ms[name] = round(
                (time.perf_counter() - t0) * 1000 - sum(out.timings_ms.values()), 3
            )

        try:
            if p.segments:
                with self.devices(sorted(p.segments)) as drivers:
                    run_transaction(
                        drivers,
                        {d: Change(add=segs) for d, segs in p.segments.items()},
                        confirm_timeout_s=self.confirm_timeout_s,
                    )
            for segs in p.segments.values():
                for s in segs:
                    out.circuits[s.name.split("-", 1)[1]] = (PartState.READY, "")
        except DriverError as exc:
            out.ok, out.reason = False, f"network configuration failed: {exc}"
            lap("netconf")
            return out  # the transaction changed nothing anywhere
        lap("netconf")
        started: list[NodePart] = []
        for part in p.nodes:
            try:
                driver = self.compute(part.driver, part.host)
                driver.define(part.spec)
                started.append(part)
                driver.boot(part.spec.id)
                out.nodes[part.name] = (PartState.READY, f"running on V-node {part.host}")
            except (ComputeError, KeyError) as exc:
                why = exc.reason if isinstance(exc, ComputeError) else str(exc)
                out.nodes[part.name] = (PartState.FAILED, why)
                out.ok = False
                out.reason = f"node {part.name} could not start on V-node {part.host}: {why}"
                break
        lap("spawn")
        if out.ok:
            for part in p.nodes:
                state = self.compute(part.driver, part.host).status(part.spec.id)
                if state is not NodeState.RUNNING:
                    out.nodes[part.name] = (PartState.FAILED, f"is {state.value}, not running")
                    out.ok = False
                    out.reason = (
                        f"node {part.name} on V-node {part.host} is {state.value} after boot"
                    )
                    break
        lap("verify")
        if not out.ok:
            problems = self.deprovision(p)
            if problems:
                out.reason += "; clean-up problems: " + "; ".join(problems)
            lap("rollback")
        return out

    def deprovision(self, p: SlicePlan) -> list[str]:
        """Remove everything of this slice, wherever it is; returns what could not be
        removed (empty: clean). Idempotent."""
        problems: list[str] = []
        for part in p.nodes:
            try:
                driver = self.compute(part.driver, part.host)
                if driver.status(part.spec.id) is not NodeState.ABSENT:
                    driver.destroy(part.spec.id)
            except (ComputeError, KeyError) as exc:
                problems.append(str(exc))
        if p.segments:
            names = p.segment_names
            try:
                with self.devices(sorted(p.segments)) as drivers:
                    run_transaction(
                        drivers,
                        dict(_present(drivers, names)),
                        confirm_timeout_s=self.confirm_timeout_s,
                    )
            except DriverError as exc:
                problems.append(f"network configuration not removed: {exc}")
        return problems


def _present(
    drivers: Mapping[str, DeviceDriver], names: Sequence[str]
) -> Iterator[tuple[str, Change]]:
    """Per device, a removal of this slice's segments that are really there."""
    for device, driver in drivers.items():
        running = driver.get_config("running")
        there = tuple(n for n in names if n in running.segments)
        if there:
            yield device, Change(remove=there)


def circuit_parts(rows: Sequence[tuple[str, int, str]]) -> list[CircuitPart]:
    """From (name, bandwidth, mapping JSON) rows."""
    return [
        CircuitPart(
            name,
            bw,
            tuple((h["device"], h["port"], int(h["vlan"])) for h in json.loads(mapping)),
        )
        for name, bw, mapping in rows
    ]
