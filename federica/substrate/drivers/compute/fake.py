"""`fake` compute driver: in-memory nodes for fast service tests, with fault injection.
It passes the compute conformance suite; it never counts as the feature."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from federica.substrate.drivers.compute.base import (
    ComputeError,
    InterfaceState,
    NodeSpec,
    NodeState,
    NodeUsage,
)


@dataclass
class FakeHost:
    name: str
    nodes: dict[str, tuple[NodeSpec, NodeState]] = field(default_factory=dict)
    fail: dict[str, str] = field(default_factory=dict)  # verb -> reason (every call)
    frozen: set[str] = field(default_factory=set)
    links_down: set[str] = field(default_factory=set)
    guard: threading.Lock = field(default_factory=threading.Lock)


class FakeLab:
    def __init__(self) -> None:
        self.hosts: dict[str, FakeHost] = {}
        self.guard = threading.Lock()

    def host(self, name: str) -> FakeHost:
        with self.guard:
            return self.hosts.setdefault(name, FakeHost(name))

    def reset(self) -> None:
        with self.guard:
            self.hosts.clear()


IMAGES = ("debian", "frr", "bird")  # as the netns driver offers


class FakeCompute:
    def __init__(self, host: FakeHost) -> None:
        self.host = host.name
        self._h = host

    def _check(self, verb: str, node: str) -> None:
        if verb in self._h.fail:
            raise ComputeError(self.host, node, self._h.fail[verb])

    def define(self, spec: NodeSpec) -> None:
        if spec.image not in IMAGES:
            raise ComputeError(self.host, spec.id, f"image {spec.image!r} is not available")
        with self._h.guard:
            self._check("define", spec.id)
            have = self._h.nodes.get(spec.id)
            if have is not None:
                if have[0] != spec:
                    raise ComputeError(self.host, spec.id, "a different node with this id")
                return
            self._h.nodes[spec.id] = (spec, NodeState.DEFINED)

    def _set(self, verb: str, node_id: str, state: NodeState) -> None:
        with self._h.guard:
            self._check(verb, node_id)
            if node_id not in self._h.nodes:
                raise ComputeError(self.host, node_id, "no such node")
            self._h.nodes[node_id] = (self._h.nodes[node_id][0], state)

    def boot(self, node_id: str) -> None:
        self._set("boot", node_id, NodeState.RUNNING)

    def stop(self, node_id: str) -> None:
        self._set("stop", node_id, NodeState.STOPPED)

    def destroy(self, node_id: str) -> None:
        with self._h.guard:
            self._check("destroy", node_id)
            self._h.nodes.pop(node_id, None)
            self._h.frozen.discard(node_id)
            self._h.links_down.discard(node_id)

    def _mark(self, verb: str, node_id: str, marks: set[str], on: bool) -> None:
        with self._h.guard:
            self._check(verb, node_id)
            if node_id not in self._h.nodes:
                raise ComputeError(self.host, node_id, "no such node")
            if on:
                marks.add(node_id)
            else:
                marks.discard(node_id)

    def freeze(self, node_id: str) -> None:
        self._mark("freeze", node_id, self._h.frozen, True)

    def thaw(self, node_id: str) -> None:
        self._mark("thaw", node_id, self._h.frozen, False)

    def is_frozen(self, node_id: str) -> bool:
        with self._h.guard:
            return node_id in self._h.frozen

    def processes(self, node_id: str) -> list[dict[str, object]]:
        if self.status(node_id) is not NodeState.RUNNING:
            return []
        state = "D" if self.is_frozen(node_id) else "S"
        return [{"pid": 1, "state": state, "cmdline": f"fake-init {node_id}"}]

    def probe(self, node_id: str) -> tuple[str, ...]:
        return self.console(node_id)

    def set_links(self, node_id: str, up: bool) -> list[str]:
        self._mark("set_links", node_id, self._h.links_down, not up)
        with self._h.guard:
            spec = self._h.nodes[node_id][0]
        return [i.name for i in spec.interfaces]

    def status(self, node_id: str) -> NodeState:
        with self._h.guard:
            entry = self._h.nodes.get(node_id)
            return NodeState.ABSENT if entry is None else entry[1]

    def usage(self, node_id: str) -> NodeUsage:
        # Nothing runs: a running fake node uses no CPU and the RAM it was given.
        with self._h.guard:
            entry = self._h.nodes.get(node_id)
        if entry is None:
            return NodeUsage(NodeState.ABSENT)
        spec, state = entry
        if state is not NodeState.RUNNING:
            return NodeUsage(state)
        return NodeUsage(state, 0.0, spec.ram_mb * 1024 * 1024)

    def nodes(self) -> list[str]:
        with self._h.guard:
            return sorted(self._h.nodes)

    def interfaces(self, node_id: str) -> list[InterfaceState]:
        with self._h.guard:
            entry = self._h.nodes.get(node_id)
        if entry is None:
            raise ComputeError(self.host, node_id, "no such node")
        spec, state = entry
        up = state is NodeState.RUNNING and node_id not in self._h.links_down
        return [InterfaceState(i.name, i.circuit, i.address, up) for i in spec.interfaces]

    def console(self, node_id: str) -> tuple[str, ...]:
        if self.status(node_id) is NodeState.ABSENT:
            raise ComputeError(self.host, node_id, "no such node")
        # Nothing to enter: commands run on the controller's machine, labelled.
        return ("env", f"FEDERICA_FAKE_NODE={node_id}")
