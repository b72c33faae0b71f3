"""The compute driver contract. A driver manages the virtual nodes on one V-node.

Node ids are deterministic (`<slice>-<node>`), so a controller that died half-way can find
and remove what it started. `destroy` of an absent node is not an error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class NodeState(enum.StrEnum):
    ABSENT = "absent"
    DEFINED = "defined"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class InterfaceSpec:
    """One interface of a node, on the V-node's uplink with this VLAN tag."""

    name: str  # inside the node, e.g. eth1
    circuit: str
    vlan: int


@dataclass(frozen=True)
class NodeSpec:
    id: str  # <slice>-<node>, unique on the host
    slice: str
    name: str
    kind: str  # router | host
    vcpu: int
    ram_mb: int
    image: str
    interfaces: tuple[InterfaceSpec, ...] = ()
    ssh_keys: tuple[str, ...] = ()


class ComputeError(Exception):
    def __init__(self, host: str, node: str, reason: str) -> None:
        self.host, self.node, self.reason = host, node, reason
        super().__init__(f"V-node {host}: node {node}: {reason}")


class ComputeDriver(Protocol):
    host: str

    def define(self, spec: NodeSpec) -> None: ...
    def boot(self, node_id: str) -> None: ...
    def stop(self, node_id: str) -> None: ...
    def destroy(self, node_id: str) -> None: ...
    def status(self, node_id: str) -> NodeState: ...
    def nodes(self) -> list[str]: ...
