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
    vlan: int  # 0: the circuit stays inside this V-node (no tag on the uplink)
    segment: str = ""  # the circuit's name on the devices, unique across slices
    address: str | None = None  # IPv4 address/prefix the node starts with, if any


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


@dataclass(frozen=True)
class InterfaceState:
    name: str
    circuit: str
    address: str | None
    up: bool


@dataclass(frozen=True)
class NodeUsage:
    """What a node uses now: its state, CPU time so far and memory (None: not counted)."""

    state: NodeState
    cpu_seconds: float | None = None
    memory_bytes: int | None = None


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
    def interfaces(self, node_id: str) -> list[InterfaceState]: ...

    def usage(self, node_id: str) -> NodeUsage:
        """The node's state and resource use now (monitoring samples it each round)."""
        ...

    def console(self, node_id: str) -> tuple[str, ...]:
        """The command, run on the controller's machine, that opens a shell (or the
        console) of the node: what the slice's gateway runs for a researcher."""
        ...

    # The emergency stop's verbs.
    def freeze(self, node_id: str) -> None:
        """Stop every process of the node where it is, memory kept; not killed."""
        ...

    def thaw(self, node_id: str) -> None: ...
    def is_frozen(self, node_id: str) -> bool: ...
    def processes(self, node_id: str) -> list[dict[str, object]]:
        """What runs in the node (pid, state, cmdline) as far as the V-node can see: for
        the forensic snapshot. Empty where the driver cannot look inside (a VM)."""
        ...

    def set_links(self, node_id: str, up: bool) -> list[str]:
        """Take the node's interfaces down (or up) at the V-node's end; returns their
        names. ComputeError where the driver cannot."""
        ...

    def probe(self, node_id: str) -> tuple[str, ...]:
        """The command prefix that runs a command with the node's network but outside its
        processes (not frozen with them): what the e-stop drill measures traffic with.
        Where the driver cannot (a VM), the console."""
        ...
