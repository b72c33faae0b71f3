"""`fake` driver: an in-memory NETCONF-like device for fast service tests.

It keeps running and candidate datastores, candidate locks per session, and confirmed
commits that roll back on a timer, and rejects what netconfd with the federica-l2 model
rejects. It passes the same conformance suite as the real drivers; it never counts as
the feature. Fault injection (`FakeDevice.fail`) lets tests make any verb fail.
"""

from __future__ import annotations

import difflib
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from federica.substrate.drivers.base import (
    CAP_CANDIDATE,
    CAP_CONFIRMED_COMMIT,
    CAP_VALIDATE,
    Change,
    CommitFailed,
    ConfigIssue,
    ConfigRejected,
    DeviceConfig,
    DomainOperations,
    DriverError,
    InterfaceState,
    LockDenied,
    Unreachable,
)

_sessions = itertools.count(1)


@dataclass
class _Pending:
    persist: str | None
    session: int
    before: DeviceConfig
    timer: threading.Timer


@dataclass
class FakeDevice:
    name: str
    ports: Iterable[str]
    vlan_translation: bool = True
    # verb name -> exception to raise once (fault injection)
    fail: dict[str, DriverError] = field(default_factory=dict)
    reachable: bool = True

    def __post_init__(self) -> None:
        self.ports = tuple(self.ports)
        self.guard = threading.RLock()
        self.running = DeviceConfig(port_enabled={p: True for p in self.ports})
        self.candidate = self.running
        self.lock_owner: int | None = None
        self.pending: _Pending | None = None
        self.commits = 0

    def check(self, cfg: DeviceConfig) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        held: dict[tuple[str, int], str] = {}
        for seg in cfg.segments.values():
            for a in seg.attachments:
                where = f"/l2/attachment[interface='{a.port}'][vlan='{a.vlan}']"
                if a.port not in cfg.port_enabled:
                    issues.append(ConfigIssue(where, "required value instance not found"))
                if not 1 <= a.vlan <= 4094:
                    issues.append(ConfigIssue(where, "value not in range"))
                if (a.port, a.vlan) in held:
                    issues.append(
                        ConfigIssue(where, f"data exists (used by {held[(a.port, a.vlan)]})")
                    )
                held[(a.port, a.vlan)] = seg.name
            if not self.vlan_translation and len({a.vlan for a in seg.attachments}) > 1:
                issues.append(
                    ConfigIssue(
                        f"/l2/cross-connect[name='{seg.name}']",
                        "this device cannot translate VLAN tags: all attachments of a "
                        "cross-connect must use the same VLAN",
                    )
                )
            if seg.bandwidth_mbps is not None and not 1 <= seg.bandwidth_mbps <= 100_000:
                issues.append(
                    ConfigIssue(
                        f"/l2/cross-connect[name='{seg.name}']/bandwidth-mbps", "value not in range"
                    )
                )
        return issues

    def rollback(self, session: int | None = None) -> None:
        with self.guard:
            p = self.pending
            if p is None or (session is not None and p.session != session):
                return
            p.timer.cancel()
            self.running = p.before
            self.candidate = p.before
            self.pending = None


def render(cfg: DeviceConfig) -> str:
    lines = [
        f"port {p} {'enabled' if e else 'disabled'}" for p, e in sorted(cfg.port_enabled.items())
    ]
    for s in sorted(cfg.segments.values(), key=lambda s: s.name):
        atts = " ".join(f"{a.port}.{a.vlan}" for a in s.attachments)
        lines.append(
            f"segment {s.name} owner={s.owner or '-'} enabled={s.enabled} "
            f"bw={s.bandwidth_mbps or '-'} {atts}"
        )
    return "\n".join(lines) + "\n"


class FakeDriver(DomainOperations):
    def __init__(self, device: FakeDevice) -> None:
        self.device = device.name
        self.dev = device
        self.session: int | None = None

    def _enter(self, verb: str) -> int:
        if self.session is None:
            raise Unreachable(self.device, f"{verb}: no open session")
        if not self.dev.reachable:
            raise Unreachable(self.device, f"{verb}: session lost")
        exc = self.dev.fail.pop(verb, None)
        if exc is not None:
            raise exc
        return self.session

    def _writable(self, session: int) -> None:
        if self.dev.lock_owner not in (None, session):
            raise LockDenied(
                self.device,
                f"candidate is locked by another session (held by session {self.dev.lock_owner})",
            )

    def open(self) -> None:
        if self.session is not None:
            return
        if not self.dev.reachable:
            raise Unreachable(self.device, "connect: connection refused")
        self.session = next(_sessions)

    def close(self) -> None:
        s, self.session = self.session, None
        if s is None:
            return
        with self.dev.guard:
            if self.dev.lock_owner == s:
                self.dev.lock_owner = None
                self.dev.candidate = self.dev.running
            if self.dev.pending and self.dev.pending.persist is None:
                self.dev.rollback(s)

    def capabilities(self) -> frozenset[str]:
        self._enter("capabilities")
        return frozenset({CAP_CANDIDATE, CAP_CONFIRMED_COMMIT, CAP_VALIDATE})

    def get_config(self, source: str = "running") -> DeviceConfig:
        self._enter("get_config")
        with self.dev.guard:
            return self.dev.running if source == "running" else self.dev.candidate

    def get_config_text(self, source: str = "running") -> str:
        return render(self.get_config(source))

    def interfaces(self) -> list[InterfaceState]:
        return [InterfaceState(p, up) for p, up in sorted(self.get_config().port_enabled.items())]

    def lock(self) -> None:
        s = self._enter("lock")
        with self.dev.guard:
            if self.dev.lock_owner not in (None, s):
                raise LockDenied(
                    self.device,
                    f"candidate is locked by another session "
                    f"(held by session {self.dev.lock_owner})",
                )
            if self.dev.candidate != self.dev.running and self.dev.lock_owner is None:
                raise LockDenied(self.device, "the candidate has uncommitted changes")
            self.dev.lock_owner = s

    def unlock(self) -> None:
        s = self._enter("unlock")
        with self.dev.guard:
            if self.dev.lock_owner == s:
                self.dev.lock_owner = None

    def load(self, change: Change, base: DeviceConfig | None = None) -> None:
        s = self._enter("load")
        with self.dev.guard:
            self._writable(s)
            cur = self.dev.candidate
            # "create" semantics: an attachment another segment holds is refused.
            holders = {
                (a.port, a.vlan): seg.name for seg in cur.segments.values() for a in seg.attachments
            }
            issues = [
                ConfigIssue(
                    f"/l2/attachment[interface='{a.port}'][vlan='{a.vlan}']",
                    f"data exists (used by {holders[(a.port, a.vlan)]})",
                )
                for seg in change.add
                for a in seg.attachments
                if holders.get((a.port, a.vlan), seg.name) != seg.name
                and holders[(a.port, a.vlan)] not in change.remove
            ]
            new = change.apply_to(cur)
            new = DeviceConfig(
                port_enabled={
                    p: e
                    for p, e in new.port_enabled.items()
                    if p in self.dev.ports or p in cur.port_enabled
                },
                segments=new.segments,
            )
            issues += [
                ConfigIssue(
                    f"/interfaces/interface[name='{p}']", "required value instance not found"
                )
                for p, _ in change.port_state
                if p not in self.dev.ports
            ]
            issues += self.dev.check(new)
            if issues:
                raise ConfigRejected(self.device, issues)
            self.dev.candidate = new

    def diff(self) -> str:
        run = self.get_config_text("running").splitlines()
        cand = self.get_config_text("candidate").splitlines()
        return "\n".join(difflib.unified_diff(run, cand, "running", "candidate", lineterm=""))

    def validate(self) -> None:
        self._enter("validate")
        issues = self.dev.check(self.dev.candidate)
        if issues:
            raise ConfigRejected(self.device, issues)

    def commit_confirmed(self, timeout_s: int, persist: str) -> None:
        s = self._enter("commit_confirmed")
        with self.dev.guard:
            self._writable(s)
            if self.dev.pending is not None:
                raise CommitFailed(self.device, "a confirmed commit is already pending")
            timer = threading.Timer(timeout_s, self.dev.rollback)
            timer.daemon = True
            self.dev.pending = _Pending(persist, s, self.dev.running, timer)
            self.dev.running = self.dev.candidate
            self.dev.commits += 1
            timer.start()

    def confirm(self, persist: str) -> None:
        self._enter("confirm")
        with self.dev.guard:
            p = self.dev.pending
            if p is None or p.persist != persist:
                raise CommitFailed(self.device, f"no confirmed commit {persist!r} is pending")
            p.timer.cancel()
            self.dev.pending = None

    def cancel_commit(self, persist: str) -> None:
        self._enter("cancel_commit")
        with self.dev.guard:
            p = self.dev.pending
            if p is None or p.persist != persist:
                raise CommitFailed(self.device, f"no confirmed commit {persist!r} is pending")
            self.dev.rollback()

    def commit(self) -> None:
        s = self._enter("commit")
        with self.dev.guard:
            self._writable(s)
            self.dev.running = self.dev.candidate
            self.dev.commits += 1

    def discard(self) -> None:
        s = self._enter("discard")
        with self.dev.guard:
            self._writable(s)
            self.dev.candidate = self.dev.running


class FakeLab:
    """The fake devices of this process, by name: every fake driver for a device name
    talks to the same FakeDevice (as real drivers share one real device)."""

    def __init__(self) -> None:
        self._devices: dict[str, FakeDevice] = {}
        self._guard = threading.Lock()

    def device(self, name: str, ports: Iterable[str], vlan_translation: bool = True) -> FakeDevice:
        with self._guard:
            if name not in self._devices:
                self._devices[name] = FakeDevice(name, ports, vlan_translation)
            return self._devices[name]

    def reset(self) -> None:
        with self._guard:
            for d in self._devices.values():
                if d.pending is not None:
                    d.pending.timer.cancel()
            self._devices.clear()
