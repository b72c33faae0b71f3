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
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

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


class Access(Protocol):
    def to_json(self) -> dict[str, object]: ...


class GatewayService(Protocol):
    """The slice's login endpoint (substrate/gateway.py)."""

    def open(
        self,
        slice_id: int,
        keys: Sequence[str],
        consoles: Mapping[str, Sequence[str]],
        default_node: str,
    ) -> Access: ...

    def close(self, slice_id: int) -> None: ...


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
    ssh_keys: tuple[str, ...] = ()
    gateway_node: str | None = None  # where a login without a node name lands

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
    access: dict[str, object] = field(default_factory=dict)


def segment_name(slice_id: int, circuit: str) -> str:
    return f"fed{slice_id}-{circuit}"


def node_id(slice_id: int, node: str) -> str:
    return f"s{slice_id}-{node}"


def interface_plan(
    endpoints: Mapping[str, Sequence[str]],
    fixed: Mapping[str, str] | None = None,
) -> dict[str, list[tuple[str, str, str]]]:
    """Per node, its interfaces: (name, circuit, IPv4 address). Circuit k (1-based, in
    request order) is 10.<k div 256>.<k mod 256>.0/24 and its j-th endpoint has host
    address j; a researcher can renumber at will, the addresses only make the slice
    usable at once."""
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for k, (circuit, nodes) in enumerate(endpoints.items(), start=1):
        for j, node in enumerate(nodes, start=1):
            ifname = f"eth{len(out[node]) + 1}"
            address = (fixed or {}).get(circuit) or f"10.{k // 256}.{k % 256}.{j}/24"
            out[node].append((ifname, circuit, address))
    return dict(out)


def plan(
    slice_id: int,
    slice_name: str,
    nodes: Sequence[tuple[str, str, str, str, int, int, str]],
    circuits: Sequence[CircuitPart],
    endpoints: Mapping[str, Sequence[str]],
    vlans: Mapping[tuple[str, str], int],
    ssh_keys: Sequence[str] = (),
    gateway_node: str | None = None,
    addresses: Mapping[str, str] | None = None,
) -> SlicePlan:
    """nodes: (name, host, driver, kind, vcpu, ram_mb, image); endpoints: circuit -> its
    nodes, in request order; vlans: (node, circuit) -> tag on the node's V-node uplink."""
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
    ifaces = interface_plan(endpoints, addresses)
    parts = []
    for name, host, driver, kind, vcpu, ram, image in nodes:
        specs = tuple(
            InterfaceSpec(
                ifname,
                circuit,
                vlans.get((name, circuit), 0),
                segment_name(slice_id, circuit),
                address,
            )
            for ifname, circuit, address in ifaces.get(name, ())
        )
        spec = NodeSpec(
            node_id(slice_id, name),
            slice_name,
            name,
            kind,
            vcpu,
            ram,
            image,
            specs,
            tuple(ssh_keys),
        )
        parts.append(NodePart(name, host, driver, spec))
    return SlicePlan(
        slice_id,
        slice_name,
        {d: tuple(s) for d, s in per_device.items()},
        tuple(parts),
        tuple(ssh_keys),
        gateway_node,
    )


def node_vlans_from(
    circuits: Sequence[CircuitPart],
    placement: Mapping[str, str],
    uplinks: Mapping[str, tuple[str, str]],
    endpoints: Mapping[str, Sequence[str]],
) -> dict[tuple[str, str], int]:
    """Which tag each (node, circuit) arrives with on the node's V-node uplink. A circuit
    kept inside one V-node has no hops there: no tag (0)."""
    out: dict[tuple[str, str], int] = {}
    for c in circuits:
        for node in endpoints.get(c.name, ()):
            device, port = uplinks[placement[node]]
            tags = [v for d, p, v in c.hops if (d, p) == (device, port)]
            out[(node, c.name)] = tags[0] if tags else 0
    return out


class Provisioner:
    def __init__(
        self,
        devices: DevicePool,
        compute: ComputeFactory,
        *,
        gateway: GatewayService | None = None,
        confirm_timeout_s: int = 30,
        parallel: int = 8,
    ) -> None:
        self.parallel = parallel
        self.devices = devices
        self.compute = compute
        self.gateway = gateway
        self.confirm_timeout_s = confirm_timeout_s
        # Hears each configuration transaction's phases ("locked", "validated", ...,
        # "failed"): for tracing, and for tests that act at a given point.
        self.observer: Callable[[str], None] | None = None

    def provision(self, p: SlicePlan) -> Outcome:
        """Configure the circuits (one NETCONF transaction) while the nodes start (they do
        not need the circuits to exist), then verify, then open the gateway. `netconf`
        and `spawn` in the timings overlap; each is its own duration."""
        out = Outcome(ok=True)
        t0 = mark = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            out.timings_ms[name] = round((now - mark) * 1000, 3)
            mark = now

        with ThreadPoolExecutor(max_workers=max(1, min(len(p.nodes), self.parallel))) as pool:
            per_node: dict[str, float] = {}  # each node's define and boot (threads: own keys)
            starts = [(part, pool.submit(self._start_node, part, per_node)) for part in p.nodes]
            try:
                self._configure(p)
                for segs in p.segments.values():
                    for s in segs:
                        out.circuits[s.name.split("-", 1)[1]] = (PartState.READY, "")
            except DriverError as exc:
                out.ok, out.reason = False, f"network configuration failed: {exc}"
            out.timings_ms["netconf"] = round((time.perf_counter() - t0) * 1000, 3)
            failures = {part.name: why for part, f in starts if (why := f.result())}
        out.timings_ms["spawn"] = round((time.perf_counter() - t0) * 1000, 3)
        out.timings_ms.update(sorted(per_node.items()))
        mark = time.perf_counter()
        for part in p.nodes:
            why = failures.get(part.name)
            ready = (PartState.READY, f"running on V-node {part.host}")
            out.nodes[part.name] = ready if why is None else (PartState.FAILED, why)
        if failures and out.ok:
            first = next(part for part in p.nodes if part.name in failures)
            out.ok = False
            out.reason = (
                f"node {first.name} could not start on V-node {first.host}: {failures[first.name]}"
            )
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
        if out.ok and self.gateway is not None and p.ssh_keys and p.nodes:
            try:
                consoles = {
                    part.name: self.compute(part.driver, part.host).console(part.spec.id)
                    for part in p.nodes
                }
                default = p.gateway_node or p.nodes[0].name
                out.access = self.gateway.open(p.slice_id, p.ssh_keys, consoles, default).to_json()
            except (ComputeError, RuntimeError, OSError) as exc:
                out.ok, out.reason = False, f"the slice's gateway could not start: {exc}"
            lap("gateway")
        if not out.ok:
            out.access = {}
            problems = self.deprovision(p)
            for parts in (out.nodes, out.circuits):
                for name, (part_state, _why) in parts.items():
                    if part_state is PartState.READY:
                        parts[name] = (PartState.REMOVED, "rolled back: the slice failed")
            if problems:
                out.reason += "; clean-up problems: " + "; ".join(problems)
            lap("rollback")
        return out

    def _configure(self, p: SlicePlan) -> None:
        if p.segments:
            with self.devices(sorted(p.segments)) as drivers:
                run_transaction(
                    drivers,
                    {d: Change(add=segs) for d, segs in p.segments.items()},
                    confirm_timeout_s=self.confirm_timeout_s,
                    observer=self.observer,
                )

    def _start_node(self, part: NodePart, took_ms: dict[str, float]) -> str | None:
        """Define and boot one node; None, or why it did not start. Several run at once
        (each driver serialises its own V-node). How long each step took goes into
        `took_ms` ("define <node>", "boot <node>"): where a slice's start goes."""
        try:
            driver = self.compute(part.driver, part.host)
            t0 = time.perf_counter()
            driver.define(part.spec)
            t1 = time.perf_counter()
            took_ms[f"define {part.name}"] = round((t1 - t0) * 1000, 3)
            driver.boot(part.spec.id)
            took_ms[f"boot {part.name}"] = round((time.perf_counter() - t1) * 1000, 3)
            return None
        except (ComputeError, KeyError, OSError) as exc:
            return exc.reason if isinstance(exc, ComputeError) else str(exc)

    def deprovision(self, p: SlicePlan) -> list[str]:
        """Remove everything of this slice, wherever it is; returns what could not be
        removed (empty: clean). Idempotent."""
        problems: list[str] = []
        if self.gateway is not None:
            try:
                self.gateway.close(p.slice_id)
            except OSError as exc:
                problems.append(f"gateway not closed: {exc}")
        for part in p.nodes:
            try:
                driver = self.compute(part.driver, part.host)
                if driver.status(part.spec.id) is not NodeState.ABSENT:
                    driver.destroy(part.spec.id)
            except (ComputeError, KeyError, OSError) as exc:
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
