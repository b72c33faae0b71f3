"""The device and node work of an emergency stop and of its lift, with no database.

Isolation is best effort and everywhere at once: one thread per device disables the
stopped slices' segments there (one commit per device, however many slices), while
other threads freeze the nodes and close the gateways. A device that has not answered
within `device_wait_s` (or refused) is not waited for: its slices are cut off around it
(`fallback`) and it is reported. Nothing here is all-or-nothing; the report says what
happened where.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from federica.slices.provision import SlicePlan
from federica.substrate.drivers.base import (
    Change,
    DeviceConfig,
    DeviceDriver,
    DriverError,
    LockDenied,
    Segment,
)
from federica.substrate.drivers.compute.base import ComputeDriver, ComputeError

log = logging.getLogger(__name__)

DevicePool = Callable[[Sequence[str]], AbstractContextManager[Mapping[str, DeviceDriver]]]
ComputeFactory = Callable[[str, str], ComputeDriver]  # (driver name, V-node) -> driver


class Gateways(Protocol):
    def open(
        self,
        slice_id: int,
        keys: Sequence[str],
        consoles: Mapping[str, Sequence[str]],
        default_node: str,
    ) -> Any: ...

    def close(self, slice_id: int) -> None: ...


@dataclass
class Toolkit:
    """What isolation works with: device sessions (a pool that keeps them open, so a stop
    pays no SSH handshake), compute drivers, the gateways, and how long a device may take
    before its slices are cut off around it."""

    devices: DevicePool
    compute: ComputeFactory
    gateways: Gateways | None
    device_wait_s: float = 1.5
    close: Callable[[], None] = lambda: None
    # Open sessions to these devices now; returns device -> why not.
    warm: Callable[[Sequence[str]], dict[str, str]] = lambda _names: {}


@dataclass(frozen=True)
class Uplink:
    host: str  # the V-node
    device: str
    port: str


@dataclass(frozen=True)
class LinkEnd:
    link: str
    device: str
    port: str
    peer_device: str
    peer_port: str


@dataclass(frozen=True)
class Target:
    """One slice to isolate: its plan and where its V-nodes and links attach."""

    plan: SlicePlan
    uplinks: tuple[Uplink, ...]  # the V-nodes its nodes run on
    link_ends: tuple[LinkEnd, ...]  # both directions of every link its circuits cross


@dataclass
class DeviceResult:
    ok: bool
    ms: float
    segments: dict[str, Any] = field(default_factory=dict)  # name -> as configured
    changed: list[str] = field(default_factory=list)
    error: str = ""
    steps_ms: dict[str, float] = field(default_factory=dict)  # read, lock, load, commit


@dataclass
class Report:
    """One slice's isolation, for its e-stop row (JSON) and for people."""

    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    collateral: list[str] = field(default_factory=list)  # other slices touched
    unreached: list[str] = field(default_factory=list)  # devices that did not answer
    not_isolated: list[str] = field(default_factory=list)  # what nothing could cut
    gateway: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        return not self.not_isolated

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "isolated": self.isolated}


def _segment_json(s: Segment) -> dict[str, Any]:
    return {
        "attachments": [{"port": a.port, "vlan": a.vlan} for a in s.attachments],
        "enabled": s.enabled,
        "bandwidth_mbps": s.bandwidth_mbps,
        "owner": s.owner,
    }


def set_segments(
    driver: DeviceDriver,
    names: Sequence[str],
    enabled: bool,
    deadline: float,
    ports: Sequence[tuple[str, bool]] = (),
) -> DeviceResult:
    """On one device: the named segments (those present) enabled or disabled, and any
    port states, in one plain commit (no confirmed commit: turning a slice off must not
    roll back by itself). The running segments as they were are returned for the
    snapshot. A lock held by another session is waited for until `deadline`."""
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    running: DeviceConfig = driver.get_config("running")
    steps["read"] = _ms(t0)
    present = [n for n in names if n in running.segments]
    seen = {n: _segment_json(running.segments[n]) for n in present}
    change = Change(
        segment_state=tuple(
            (n, enabled) for n in present if running.segments[n].enabled != enabled
        ),
        port_state=tuple((p, e) for p, e in ports if running.port_enabled.get(p, True) != e),
    )
    if change.is_empty():
        return DeviceResult(True, _ms(t0), seen, steps_ms=steps)
    while True:
        try:
            driver.lock()
            break
        except LockDenied:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # a transaction holds it; they last tens of milliseconds
    steps["lock"] = _ms(t0)
    try:
        driver.discard()  # the candidate is running's: nothing of someone else's rides along
        driver.load(change, base=running)
        steps["load"] = _ms(t0)
        driver.commit()
        steps["commit"] = _ms(t0)
    except DriverError:
        with contextlib.suppress(DriverError):
            driver.discard()
        raise
    finally:
        with contextlib.suppress(DriverError):
            driver.unlock()
    changed = [n for n, _ in change.segment_state] + [f"port {p}" for p, _ in change.port_state]
    return DeviceResult(True, _ms(t0), seen, changed, steps_ms=steps)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


def _device_job(
    tk: Toolkit, device: str, names: Sequence[str], enabled: bool, deadline: float
) -> DeviceResult:
    with tk.devices([device]) as drivers:
        return set_segments(drivers[device], names, enabled, deadline)


def isolate(tk: Toolkit, targets: Sequence[Target]) -> dict[int, Report]:
    """Every target cut off at once: segments disabled, nodes frozen, gateways closed;
    a device that does not answer in time is worked around. Returns a report per slice."""
    t0 = time.perf_counter()
    reports = {t.plan.slice_id: Report() for t in targets}
    per_device: dict[str, list[str]] = defaultdict(list)
    for t in targets:
        for device, segs in t.plan.segments.items():
            per_device[device] += [s.name for s in segs]
    nodes = [(t.plan.slice_id, part) for t in targets for part in t.plan.nodes]
    workers = max(1, len(per_device) + len(nodes) + len(targets))
    pool = ThreadPoolExecutor(max_workers=min(workers, 64), thread_name_prefix="estop")
    try:
        deadline = time.monotonic() + tk.device_wait_s
        dev_futures = {
            d: pool.submit(_device_job, tk, d, names, False, deadline)
            for d, names in sorted(per_device.items())
        }
        node_futures = {
            (sid, part.name): pool.submit(_freeze_node, tk, part.driver, part.host, part.spec.id)
            for sid, part in nodes
        }
        gw_futures = {
            t.plan.slice_id: pool.submit(_close_gateway, tk, t.plan.slice_id) for t in targets
        }
        wait(list(dev_futures.values()), timeout=tk.device_wait_s)
        failed: dict[str, str] = {}
        for device, dev_fut in dev_futures.items():
            result = _result_or_failure(dev_fut, tk.device_wait_s)
            if not result.ok:
                failed[device] = result.error
            for t in targets:
                mine = {s.name for s in t.plan.segments.get(device, ())}
                if mine:
                    reports[t.plan.slice_id].devices[device] = {
                        "ok": result.ok,
                        "ms": result.ms,
                        "error": result.error,
                        "disabled": [n for n in result.changed if n in mine],
                        "steps_ms": result.steps_ms,
                    }
        data_plane_ms = _ms(t0)
        if failed:
            _fallback(tk, targets, failed, dev_futures, reports)
        isolated_ms = _ms(t0)
        for (sid, node), node_fut in node_futures.items():
            reports[sid].nodes[node] = node_fut.result()
        frozen_ms = _ms(t0)
        for sid, gw_fut in gw_futures.items():
            reports[sid].gateway = gw_fut.result()
        for r in reports.values():
            r.timings_ms.update(
                data_plane=data_plane_ms, isolated=isolated_ms, frozen=frozen_ms, total=_ms(t0)
            )
        return reports
    finally:
        # A device that does not answer keeps its thread until its RPC times out; nobody
        # waits for it.
        pool.shutdown(wait=False)


def _result_or_failure(fut: Future[DeviceResult], waited_s: float) -> DeviceResult:
    if not fut.done():
        return DeviceResult(False, waited_s * 1000, error=f"no answer within {waited_s} s")
    exc = fut.exception()
    if exc is None:
        return fut.result()
    why = exc.reason if isinstance(exc, DriverError) else f"{type(exc).__name__}: {exc}"
    return DeviceResult(False, 0.0, error=why)


def _freeze_node(tk: Toolkit, driver: str, host: str, node_id: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        compute = tk.compute(driver, host)
        compute.freeze(node_id)
        frozen_ms = _ms(t0)
        procs = compute.processes(node_id)
        return {"frozen": True, "ms": frozen_ms, "processes": procs, "host": host}
    except (ComputeError, KeyError, OSError) as exc:
        why = exc.reason if isinstance(exc, ComputeError) else str(exc)
        log.warning("e-stop: node %s on V-node %s not frozen: %s", node_id, host, why)
        return {"frozen": False, "ms": _ms(t0), "error": why, "host": host}


def _close_gateway(tk: Toolkit, slice_id: int) -> str:
    if tk.gateways is None:
        return "no gateway service"
    try:
        tk.gateways.close(slice_id)
        return "closed"
    except OSError as exc:
        return f"not closed: {exc}"


def _fallback(
    tk: Toolkit,
    targets: Sequence[Target],
    failed: Mapping[str, str],
    dev_futures: Mapping[str, Future[DeviceResult]],
    reports: dict[int, Report],
) -> None:
    """Each slice's attachments on a device that did not answer, cut from the other side:
    a V-node uplink by taking the slice's own node links down at the V-node (no one else
    affected); a link by the neighbour's segment, already disabled if it answered, and
    last by the neighbour's physical port (every slice on that link is cut: collateral)."""
    ok_devices = {d for d, f in dev_futures.items() if d not in failed and f.done()}
    for t in targets:
        r = reports[t.plan.slice_id]
        for device, segs in t.plan.segments.items():
            if device not in failed:
                continue
            r.unreached.append(device)
            ports = {a.port for s in segs for a in s.attachments}
            for up in t.uplinks:
                if up.device != device or up.port not in ports:
                    continue
                ports.discard(up.port)
                _cut_vnode(tk, t, up, r)
            for end in t.link_ends:
                if end.device != device or end.port not in ports:
                    continue
                ports.discard(end.port)
                if end.peer_device in ok_devices:
                    r.fallbacks.append(
                        {
                            "device": device,
                            "how": "segment disabled at the neighbour",
                            "at": f"{end.peer_device}:{end.peer_port}",
                            "link": end.link,
                        }
                    )
                    continue
                _cut_port(tk, end, r)
            for port in sorted(ports):
                r.not_isolated.append(f"{device}:{port}: no way around the device")


def _cut_vnode(tk: Toolkit, t: Target, up: Uplink, r: Report) -> None:
    for part in t.plan.nodes:
        if part.host != up.host:
            continue
        try:
            links = tk.compute(part.driver, part.host).set_links(part.spec.id, False)
            r.fallbacks.append(
                {
                    "device": up.device,
                    "how": "the slice's node links taken down at its V-node",
                    "at": f"V-node {up.host}",
                    "node": part.name,
                    "links": links,
                }
            )
        except (ComputeError, KeyError, OSError) as exc:
            why = exc.reason if isinstance(exc, ComputeError) else str(exc)
            r.not_isolated.append(f"{up.device}:{up.port} (V-node {up.host}): {why}")


def _cut_port(tk: Toolkit, end: LinkEnd, r: Report) -> None:
    try:
        with tk.devices([end.peer_device]) as drivers:
            set_segments(
                drivers[end.peer_device],
                [],
                True,
                time.monotonic() + tk.device_wait_s,
                ports=[(end.peer_port, False)],
            )
        r.fallbacks.append(
            {
                "device": end.device,
                "how": "physical port disabled at the neighbour",
                "at": f"{end.peer_device}:{end.peer_port}",
                "link": end.link,
                "port_disabled": True,
            }
        )
        r.collateral.append(f"link {end.link}")
    except DriverError as exc:
        r.not_isolated.append(f"{end.device}:{end.port} (link {end.link}): {exc.reason}")


@dataclass
class LiftResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    access: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)


def restore(tk: Toolkit, target: Target, report: Mapping[str, Any]) -> LiftResult:
    """Undo an isolation: segments enabled on every device, fallback ports and node links
    back up, nodes thawed, the gateway opened again. Idempotent; every problem is named."""
    t0 = time.perf_counter()
    out = LiftResult(ok=True)
    p = target.plan
    ports: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for fb in report.get("fallbacks", []):
        if fb.get("port_disabled"):
            device, _, port = str(fb["at"]).partition(":")
            ports[device].append((port, True))
    devices = sorted(set(p.segments) | set(ports))
    with ThreadPoolExecutor(max_workers=max(1, min(len(devices) + len(p.nodes), 32))) as pool:
        futures: dict[str, Future[Any]] = {}
        for device in devices:
            names = [s.name for s in p.segments.get(device, ())]

            def job(d: str = device, n: list[str] = names) -> DeviceResult:
                with tk.devices([d]) as drivers:
                    deadline = time.monotonic() + max(tk.device_wait_s, 5.0)
                    return set_segments(drivers[d], n, True, deadline, ports=ports.get(d, []))

            futures[f"device {device}"] = pool.submit(job)
        for part in p.nodes:

            def node_job(part: Any = part) -> None:
                compute = tk.compute(part.driver, part.host)
                if _links_down(report, part.name):
                    compute.set_links(part.spec.id, True)
                compute.thaw(part.spec.id)

            futures[f"node {part.name}"] = pool.submit(node_job)
        for what, fut in futures.items():
            exc = fut.exception()
            if exc is not None:
                why = exc.reason if isinstance(exc, DriverError | ComputeError) else str(exc)
                out.problems.append(f"{what}: {why}")
    out.timings_ms["restored"] = _ms(t0)
    if not out.problems and tk.gateways is not None and p.ssh_keys and p.nodes:
        try:
            consoles = {part.name: tk.compute(part.driver, part.host).console(part.spec.id)
                        for part in p.nodes}  # fmt: skip
            default = p.gateway_node or p.nodes[0].name
            out.access = tk.gateways.open(p.slice_id, p.ssh_keys, consoles, default).to_json()
        except (ComputeError, RuntimeError, OSError) as exc:
            out.problems.append(f"the gateway could not open: {exc}")
        out.timings_ms["gateway"] = _ms(t0)
    out.ok = not out.problems
    return out


def _links_down(report: Mapping[str, Any], node: str) -> bool:
    return any(fb.get("node") == node for fb in report.get("fallbacks", []))
