"""The device-driver contract: typed results, domain errors, and the verbs every driver
(ietf, junos, fake) implements. Drivers do I/O only and never import services.

Verbs follow NAPALM's shape (load into the candidate, diff, validate, commit, discard) with
NETCONF's confirmed commit, plus the domain operations the controller needs: add/remove a
circuit segment, set a port's or a segment's admin state, read interface state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable

Datastore = Literal["running", "candidate"]

CAP_CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CAP_CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
CAP_VALIDATE = "urn:ietf:params:netconf:capability:validate:1.1"
# What the transaction manager needs, in any version (Junos speaks the 1.0 ones).
REQUIRED_CAPABILITIES = {
    "candidate": ("urn:ietf:params:netconf:capability:candidate:1.0",),
    "confirmed-commit": (
        "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
        "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    ),
    "validate": (
        "urn:ietf:params:netconf:capability:validate:1.0",
        "urn:ietf:params:netconf:capability:validate:1.1",
    ),
}


def missing_capabilities(caps: frozenset[str] | set[str]) -> list[str]:
    """Names of required capabilities a device does not offer (capability URIs may carry
    ?query parameters)."""
    bare = {c.split("?", 1)[0] for c in caps}
    return [name for name, uris in REQUIRED_CAPABILITIES.items() if not bare & set(uris)]


# -- results -------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Attachment:
    """One (port, VLAN) end of a segment on one device."""

    port: str
    vlan: int


@dataclass(frozen=True)
class Segment:
    """A device's part of a circuit: (port, VLAN) attachments bridged together."""

    name: str
    attachments: tuple[Attachment, ...]
    owner: str = ""
    enabled: bool = True
    bandwidth_mbps: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attachments", tuple(sorted(self.attachments)))


@dataclass(frozen=True)
class DeviceConfig:
    """What a datastore says about ports (admin state) and segments."""

    port_enabled: Mapping[str, bool] = field(default_factory=dict)
    segments: Mapping[str, Segment] = field(default_factory=dict)


@dataclass(frozen=True)
class InterfaceState:
    name: str
    admin_up: bool
    oper_up: bool | None = None  # None: the driver cannot tell


@dataclass(frozen=True)
class Change:
    """What one transaction does to one device. Idempotent by construction: adding a
    segment that exists identically, or removing one that is absent, changes nothing."""

    add: tuple[Segment, ...] = ()
    remove: tuple[str, ...] = ()
    port_state: tuple[tuple[str, bool], ...] = ()
    segment_state: tuple[tuple[str, bool], ...] = ()

    def is_empty(self) -> bool:
        return not (self.add or self.remove or self.port_state or self.segment_state)

    def apply_to(self, cfg: DeviceConfig) -> DeviceConfig:
        """The configuration after this change (what a device should end up with)."""
        segments = {n: s for n, s in cfg.segments.items() if n not in self.remove}
        segments.update({s.name: s for s in self.add})
        for name, enabled in self.segment_state:
            if name in segments:
                segments[name] = replace(segments[name], enabled=enabled)
        ports = dict(cfg.port_enabled)
        ports.update(dict(self.port_state))
        return DeviceConfig(port_enabled=ports, segments=segments)


def change_between(before: DeviceConfig, after: DeviceConfig) -> Change:
    """The change that turns `before` into `after` (used to undo a transaction)."""
    add = tuple(s for n, s in after.segments.items() if before.segments.get(n) != s)
    remove = tuple(n for n in before.segments if n not in after.segments)
    ports = tuple(
        (p, e) for p, e in after.port_enabled.items() if before.port_enabled.get(p, True) != e
    )
    return Change(add=add, remove=remove, port_state=ports)


# -- errors --------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} at {self.path}" if self.path else self.message


class DriverError(Exception):
    """A device refused or failed; always names the device and the reason."""

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"device {device}: {reason}")
        self.device = device
        self.reason = reason


class Unreachable(DriverError):
    pass


class HostKeyRejected(DriverError):
    pass


class ConfigRejected(DriverError):
    def __init__(self, device: str, issues: Iterable[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__(device, "configuration rejected: " + "; ".join(map(str, self.issues)))


class LockDenied(DriverError):
    pass


class CommitFailed(DriverError):
    pass


# -- the contract --------------------------------------------------------------------
@runtime_checkable
class DeviceDriver(Protocol):
    device: str

    def open(self) -> None: ...
    def close(self) -> None: ...
    def capabilities(self) -> frozenset[str]: ...

    def get_config(self, source: Datastore = "running") -> DeviceConfig: ...
    def get_config_text(self, source: Datastore = "running") -> str:
        """The datastore as the device shows it (XML or text), for people and exact checks."""
        ...

    def lock(self) -> None: ...
    def unlock(self) -> None: ...
    def load(self, change: Change, base: DeviceConfig | None = None) -> None:
        """Merge `change` into the candidate (the device may reject it: ConfigRejected).
        `base`: the candidate's content if the caller knows it (saves reading it)."""
        ...

    def diff(self) -> str:
        """Candidate against running; empty when the candidate changes nothing."""
        ...

    def validate(self) -> None: ...
    def commit_confirmed(self, timeout_s: int, persist: str) -> None: ...
    def confirm(self, persist: str) -> None: ...
    def cancel_commit(self, persist: str) -> None: ...
    def commit(self) -> None: ...
    def discard(self) -> None: ...
    def interfaces(self) -> list[InterfaceState]: ...

    # Domain operations: each stages into the candidate like load().
    def add_segment(self, segment: Segment) -> None: ...
    def remove_segment(self, name: str) -> None: ...
    def set_port_state(self, port: str, enabled: bool) -> None: ...
    def set_segment_state(self, name: str, enabled: bool) -> None: ...


class DomainOperations:
    """The domain verbs in terms of load(); drivers inherit them."""

    def load(self, change: Change, base: DeviceConfig | None = None) -> None:
        raise NotImplementedError

    def add_segment(self, segment: Segment) -> None:
        self.load(Change(add=(segment,)))

    def remove_segment(self, name: str) -> None:
        self.load(Change(remove=(name,)))

    def set_port_state(self, port: str, enabled: bool) -> None:
        self.load(Change(port_state=((port, enabled),)))

    def set_segment_state(self, name: str, enabled: bool) -> None:
        self.load(Change(segment_state=((name, enabled),)))
