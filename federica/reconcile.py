"""Reconciliation: the devices' running configuration and the V-nodes' nodes against the
database's intent, and drift repaired.

Intent is what the slices that should be built now say: every ACTIVE slice's circuit
segments on each hop (their attachments, enabled) and its nodes on their V-nodes. One
pass reads each device's running datastore (get-config, through the worker's drivers)
and each V-node's node list, then the database (in that order: anything the controller
builds has its slice row before it touches a device, so a `fed<slice>-…` segment seen
on a device always belongs to a slice the database already shows). Then:

* a segment of an ACTIVE slice missing on a hop, or changed there (attachments, shut
  down), is put back as intended, at once;
* an unknown segment in the controller-managed range (named `fed<slice>-…`, or with a
  VLAN inside a link's or border port's VLAN range) that no slice wants is removed once
  it has been seen for the grace period (`reconcile_grace_s`), so a change in flight is
  never torn down; its alarm, raised when first seen, holds when that was;
* a node of an ACTIVE slice that is gone from its V-node is defined and booted again;
* a node (namespace, processes, cgroup) on a V-node that no slice wants is removed after
  the same grace period (only one named as the controller names nodes, `s<slice>-…`).

It never fights the lifecycle: a slice that is being provisioned or released, is
scheduled, failed (its end event still cleans it) or under an emergency stop is left
alone entirely, and every repair of a slice's part first takes the slice's row (an
UPDATE that only matches while it is still ACTIVE), holding it while the device or
V-node is changed, so a release waits for the repair and then removes it. Configuration
changes go through the same all-or-nothing transaction as provisioning, under the
devices' NETCONF locks (a locked device is skipped this pass and tried again next).

Each repair raises a `config-drift` alarm (subject "<device> segment <name>" or
"<V-node> node <id>") and writes an audit row naming the device, what and why; the alarm
clears on the next pass that finds that drift gone. A dry run reports the drift and
changes nothing (no alarm, no audit, no repair).

On SQLite (one machine) the slice's row is only read, not held: a release that lands
between that check and the repair leaves the repaired segment behind its ended slice,
which the next passes see as unknown and remove after the grace period.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from federica.aaa import audit
from federica.aaa.models import Role
from federica.aaa.policy import Principal
from federica.alarms import service as alarms
from federica.alarms.evaluate import Kind
from federica.alarms.models import Alarm
from federica.config import Settings
from federica.db import transaction
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.slices.provision import NodePart, Provisioner, SlicePlan
from federica.slices.runner import host_rows, plan_of
from federica.substrate.drivers.base import Change, DriverError, Segment
from federica.substrate.drivers.compute.base import ComputeError, NodeState
from federica.substrate.models import BorderPort, Device, Link, Port
from federica.substrate.transaction import run_transaction

log = logging.getLogger(__name__)
S = SliceStatus
SEGMENT_NAME = re.compile(r"^fed(\d+)-")
NODE_ID = re.compile(r"^s(\d+)-")
PRINCIPAL = Principal("reconciler", Role.OPERATOR, via="worker")

MISSING_SEGMENT = "missing-segment"
CHANGED_SEGMENT = "changed-segment"
UNKNOWN_SEGMENT = "unknown-segment"
MISSING_NODE = "missing-node"
ORPHAN_NODE = "orphan-node"
NODE_NOT_RUNNING = "node-not-running"


class Context(Protocol):
    """What reconciliation needs of the application context (federica/context.py)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def sessions(self) -> sessionmaker[Session]: ...
    @property
    def read_sessions(self) -> sessionmaker[Session]: ...
    def now(self) -> dt.datetime: ...


@dataclass(frozen=True)
class Drift:
    where: str  # a device or a V-node
    kind: str  # one of the constants above
    item: str  # a segment's name or a node's id
    why: str
    slice_id: int | None = None
    # restore | remove | wait (grace period not over) | report (nothing to do here)
    action: str = "report"

    @property
    def subject(self) -> str:
        noun = "node" if self.kind in (MISSING_NODE, ORPHAN_NODE, NODE_NOT_RUNNING) else "segment"
        return f"{self.where} {noun} {self.item}"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} {self.item}: {self.why} [{self.action}]"


@dataclass
class Report:
    drift: list[Drift] = field(default_factory=list)
    repaired: list[Drift] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be read or repaired
    checked: list[str] = field(default_factory=list)  # devices and V-nodes read


@dataclass(frozen=True)
class _Intent:
    plans: dict[int, SlicePlan]  # ACTIVE slices
    projects: dict[int, str | None]
    hands_off: set[int]  # slices in the lifecycle's hands (neither ACTIVE nor ENDED)
    ranges: dict[tuple[str, str], list[tuple[int, int]]]  # (device, port) -> VLAN ranges
    every_range: list[tuple[int, int]]
    uplinks: set[tuple[str, str]]
    hosts: dict[str, str]  # V-node -> compute driver


class Reconciler:
    def __init__(
        self,
        ctx: Context,
        provisioner: Provisioner,
        *,
        grace_s: float | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.ctx = ctx
        self.provisioner = provisioner
        self.grace = dt.timedelta(
            seconds=ctx.settings.reconcile_grace_s if grace_s is None else grace_s
        )
        self.now = now or ctx.now
        # PostgreSQL: a repair holds its slice's row (FOR UPDATE) in a write transaction.
        # SQLite: only reads it; a write transaction there would hold the database's one
        # write lock (BEGIN IMMEDIATE) across the device's transaction, stalling everyone.
        with ctx.read_sessions() as s:
            holds_rows = s.get_bind().dialect.name == "postgresql"
        self._check_sessions = ctx.sessions if holds_rows else ctx.read_sessions

    # -- one pass ------------------------------------------------------------------------
    def run(self, dry_run: bool = False) -> Report:
        report = Report()
        with transaction(self.ctx.read_sessions) as s:
            device_names = list(s.scalars(select(Device.name).order_by(Device.name)))
            hosts = {name: driver for _, name, driver, _, _ in host_rows(s)}
            # Slices not ended before the substrate is read: one that ends meanwhile may
            # still show on a device or V-node (its teardown in flight), and is no drift.
            live_before = set(s.scalars(select(Slice.id).where(Slice.status != S.ENDED)))
        # The substrate first, then the database (see the module's docstring).
        running: dict[str, dict[str, Segment]] = {}
        for name in device_names:
            try:
                with self.provisioner.devices([name]) as drivers:
                    running[name] = dict(drivers[name].get_config("running").segments)
                report.checked.append(name)
            except DriverError as exc:
                report.problems.append(f"device {name} not checked: {exc}")
        on_hosts: dict[str, dict[str, NodeState]] = {}
        for host, driver_name in sorted(hosts.items()):
            try:
                driver = self.provisioner.compute(driver_name, host)
                on_hosts[host] = {n: driver.status(n) for n in driver.nodes()}
                report.checked.append(host)
            except (ComputeError, KeyError, OSError) as exc:
                report.problems.append(f"V-node {host} not checked: {exc}")
        intent = self._intent()
        intent.hands_off.update(live_before - set(intent.plans))
        report.drift = self._compare(intent, running, on_hosts)
        if dry_run:
            return report
        self._decide_grace(report)
        for d in list(report.drift):
            if d.action in ("restore", "remove") and not self._repair(intent, d, report):
                report.drift.remove(d)  # already as intended when repaired: no drift
        self._clear_gone(report)
        return report

    def _intent(self) -> _Intent:
        plans: dict[int, SlicePlan] = {}
        projects: dict[int, str | None] = {}
        hands_off: set[int] = set()
        ranges: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        with transaction(self.ctx.read_sessions) as s:
            rows = host_rows(s)
            for sl in s.scalars(select(Slice).where(Slice.status != S.ENDED)):
                if sl.status is S.ACTIVE:
                    plans[sl.id] = plan_of(s, sl, rows)
                    projects[sl.id] = sl.project
                else:
                    hands_off.add(sl.id)
            a, b = aliased(Port), aliased(Port)
            da, db_ = aliased(Device), aliased(Device)
            for lo, hi, dev_a, port_a, dev_b, port_b in s.execute(
                select(Link.vlan_min, Link.vlan_max, da.name, a.name, db_.name, b.name)
                .join(a, Link.port_a_id == a.id)
                .join(da, a.device_id == da.id)
                .join(b, Link.port_b_id == b.id)
                .join(db_, b.device_id == db_.id)
            ):
                ranges[(dev_a, port_a)].append((lo, hi))
                ranges[(dev_b, port_b)].append((lo, hi))
            for lo, hi, dev, port in s.execute(
                select(BorderPort.vlan_min, BorderPort.vlan_max, Device.name, Port.name)
                .join(Port, BorderPort.port_id == Port.id)
                .join(Device, Port.device_id == Device.id)
            ):
                ranges[(dev, port)].append((lo, hi))
        every = sorted({r for rs in ranges.values() for r in rs})
        return _Intent(
            plans,
            projects,
            hands_off,
            dict(ranges),
            every,
            {(device, port) for _, _, _, device, port in rows},
            {name: driver for _, name, driver, _, _ in rows},
        )

    @staticmethod
    def _managed(intent: _Intent, device: str, seg: Segment) -> bool:
        """A segment the controller answers for: one of its names, or a VLAN it hands out."""
        if SEGMENT_NAME.match(seg.name):
            return True
        for att in seg.attachments:
            key = (device, att.port)
            spans = intent.ranges.get(key) or (intent.every_range if key in intent.uplinks else [])
            if any(lo <= att.vlan <= hi for lo, hi in spans):
                return True
        return False

    def _compare(
        self,
        intent: _Intent,
        running: dict[str, dict[str, Segment]],
        on_hosts: dict[str, dict[str, NodeState]],
    ) -> list[Drift]:
        out: list[Drift] = []
        wanted: dict[str, dict[str, tuple[int, Segment]]] = defaultdict(dict)
        for sid, p in intent.plans.items():
            for device, segs in p.segments.items():
                for seg in segs:
                    wanted[device][seg.name] = (sid, seg)
        for device, there in sorted(running.items()):
            for name, (sid, seg) in sorted(wanted.get(device, {}).items()):
                have = there.get(name)
                if have is None:
                    out.append(
                        Drift(device, MISSING_SEGMENT, name, _why_missing(seg), sid, "restore")
                    )
                elif have.attachments != seg.attachments or not have.enabled:
                    out.append(
                        Drift(
                            device,
                            CHANGED_SEGMENT,
                            name,
                            f"is {_attachments(have)}{'' if have.enabled else ', shut down'}; "
                            f"intended {_attachments(seg)}, enabled",
                            sid,
                            "restore",
                        )
                    )
            for name, seg in sorted(there.items()):
                if name in wanted.get(device, {}) or not self._managed(intent, device, seg):
                    continue
                m = SEGMENT_NAME.match(name)
                owner_id = int(m.group(1)) if m else None
                if owner_id is not None and owner_id in intent.hands_off:
                    continue  # its slice is being built, released, or kept: not ours now
                owner = f"slice {owner_id} is not active" if owner_id is not None else "no slice's"
                out.append(
                    Drift(
                        device,
                        UNKNOWN_SEGMENT,
                        name,
                        f"{_attachments(seg)} in the controller's range, {owner}",
                        owner_id,
                        "remove",
                    )
                )
        nodes_wanted: dict[str, dict[str, tuple[int, NodePart]]] = defaultdict(dict)
        for sid, p in intent.plans.items():
            for part in p.nodes:
                nodes_wanted[part.host][part.spec.id] = (sid, part)
        for host, there_nodes in sorted(on_hosts.items()):
            for node_id, (sid, part) in sorted(nodes_wanted.get(host, {}).items()):
                state = there_nodes.get(node_id, NodeState.ABSENT)
                if state is NodeState.ABSENT:
                    out.append(
                        Drift(host, MISSING_NODE, node_id, f"{part.name} is gone", sid, "restore")
                    )
                elif state is not NodeState.RUNNING:
                    # Its own daemons stopped (perhaps the researcher's doing): reported,
                    # not rebuilt (that would wipe the node); the node-died alarm says so.
                    out.append(
                        Drift(host, NODE_NOT_RUNNING, node_id, f"is {state.value}", sid, "report")
                    )
            for node_id in sorted(there_nodes):
                if node_id in nodes_wanted.get(host, {}):
                    continue
                m = NODE_ID.match(node_id)
                if m is None:  # not named as the controller names nodes: not its own
                    out.append(Drift(host, ORPHAN_NODE, node_id, "not the controller's name"))
                    continue
                owner_id = int(m.group(1))
                if owner_id in intent.hands_off:
                    continue
                out.append(
                    Drift(
                        host,
                        ORPHAN_NODE,
                        node_id,
                        f"slice {owner_id} is not active: no slice wants it",
                        owner_id,
                        "remove",
                    )
                )
        return out

    # -- grace, repairs, alarms -------------------------------------------------------------
    def _decide_grace(self, report: Report) -> None:
        """Removals wait until the drift has been seen for the grace period: its alarm,
        raised when it was first seen, says since when."""
        at = self.now()
        with transaction(self.ctx.sessions) as s:
            for i, d in enumerate(report.drift):
                if d.action != "remove":
                    continue
                row = _open_alarm(s, d.subject)
                since = row.raised_at if row is not None else at
                if row is None:
                    alarms.raise_service_alarm(
                        s,
                        Kind.CONFIG_DRIFT,
                        d.subject,
                        detail=f"{d.kind}: {d.why}; removed if still there at "
                        f"{since + self.grace:%Y-%m-%d %H:%M:%S} UTC",
                        now=at,
                        device=d.where,
                    )
                if at - since < self.grace:
                    report.drift[i] = Drift(d.where, d.kind, d.item, d.why, d.slice_id, "wait")

    def _repair(self, intent: _Intent, d: Drift, report: Report) -> bool:
        """False if there was nothing to do after all: the slice changed meanwhile, or
        the device or V-node was found as intended when the repair read it again."""
        at = self.now()
        sid = d.slice_id if d.action == "restore" else None
        try:
            with transaction(self._check_sessions) as s:
                if sid is not None and not _still_active(s, sid):
                    log.info("reconcile: %s: slice %d changed meanwhile; left alone", d, sid)
                    return False
                # The slice's row is held (restores) while the device or V-node changes.
                if not self._apply(intent, d):
                    return False
        except (DriverError, ComputeError, OSError) as exc:
            problem = f"{d.subject}: {d.kind} not repaired: {exc}"
            report.problems.append(problem)
            self._record(d, at, repaired=False, note=str(exc))
            log.warning("reconcile: %s", problem)
            return True
        report.repaired.append(d)
        self._record(d, at, repaired=True)
        log.warning("reconcile: repaired %s", d)
        return True

    def _apply(self, intent: _Intent, d: Drift) -> bool:
        """Repairs `d`; False if it found nothing to change (read again, under the
        device's lock or the V-node's, the drift had gone: e.g. a slice that became
        active after its devices were read)."""
        if d.kind in (MISSING_SEGMENT, CHANGED_SEGMENT):
            assert d.slice_id is not None
            seg = next(
                seg for seg in intent.plans[d.slice_id].segments[d.where] if seg.name == d.item
            )
            return self._configure(d.where, Change(add=(seg,)))
        if d.kind == UNKNOWN_SEGMENT:
            return self._configure(d.where, Change(remove=(d.item,)))
        if d.kind == MISSING_NODE:
            assert d.slice_id is not None
            part = next(p for p in intent.plans[d.slice_id].nodes if p.spec.id == d.item)
            driver = self.provisioner.compute(part.driver, part.host)
            if driver.status(part.spec.id) is not NodeState.ABSENT:
                return False
            driver.define(part.spec)
            driver.boot(part.spec.id)
            return True
        if d.kind == ORPHAN_NODE:
            driver = self.provisioner.compute(intent.hosts[d.where], d.where)
            if driver.status(d.item) is NodeState.ABSENT:
                return False
            driver.destroy(d.item)
            return True
        return False

    def _configure(self, device: str, change: Change) -> bool:
        """One transaction on `device` (which reads its running configuration again,
        under its lock); False if that already was as the change would make it."""
        with self.provisioner.devices([device]) as drivers:
            tx = run_transaction(
                drivers, {device: change}, confirm_timeout_s=self.provisioner.confirm_timeout_s
            )
        return device in tx.changed

    def _record(self, d: Drift, at: dt.datetime, *, repaired: bool, note: str = "") -> None:
        done = {"restore": "restored", "remove": "removed"}[d.action]
        what = f"{d.kind} {d.item} {done}" if repaired else f"{d.kind} {d.item} NOT {done}: {note}"
        project = None
        with transaction(self.ctx.sessions) as s:
            if d.slice_id is not None:
                sl = s.get(Slice, d.slice_id)
                project = sl.project if sl is not None else None
            alarms.raise_service_alarm(
                s,
                Kind.CONFIG_DRIFT,
                d.subject,
                detail=f"{what} ({d.why})",
                now=at,
                device=d.where,
            )
        audit.record(
            self.ctx.sessions,
            PRINCIPAL,
            f"reconcile.{d.action}",
            status=200 if repaired else 500,
            target=d.subject,
            slice_id=d.slice_id if d.action == "restore" else None,
            project=project if d.action == "restore" else None,
            detail={"where": d.where, "what": f"{d.kind} {d.item}", "why": d.why, "done": what},
            at=at,
        )

    def _clear_gone(self, report: Report) -> None:
        """Drift alarms on what was checked this pass and no longer drifts are cleared."""
        at = self.now()
        still = {d.subject for d in report.drift if d not in report.repaired}
        checked = set(report.checked)
        with transaction(self.ctx.sessions) as s:
            for row in s.scalars(
                select(Alarm).where(
                    Alarm.kind == Kind.CONFIG_DRIFT.value, Alarm.cleared_at.is_(None)
                )
            ):
                repaired_now = any(r.subject == row.subject for r in report.repaired)
                if row.device in checked and row.subject not in still and not repaired_now:
                    row.cleared_at = at


def _open_alarm(s: Session, subject: str) -> Alarm | None:
    return s.scalar(
        select(Alarm).where(
            Alarm.kind == Kind.CONFIG_DRIFT.value,
            Alarm.subject == subject,
            Alarm.cleared_at.is_(None),
        )
    )


def _still_active(s: Session, slice_id: int) -> bool:
    """Whether the slice is still ACTIVE, taking its row on PostgreSQL (FOR UPDATE): a
    release or an emergency stop, which change that row, waits until the repair is done.
    (SQLite, one machine: a plain read; holding its write lock would stall the drivers'
    own bookkeeping.)"""
    status = s.scalar(select(Slice.status).where(Slice.id == slice_id).with_for_update())
    return status is S.ACTIVE


def _attachments(seg: Segment) -> str:
    return ", ".join(f"{a.port}/{a.vlan}" for a in seg.attachments) or "no attachments"


def _why_missing(seg: Segment) -> str:
    return f"intended {_attachments(seg)}, absent from the running configuration"


def summary(report: Report) -> Sequence[str]:
    lines = [str(d) for d in report.drift]
    lines += [f"problem: {p}" for p in report.problems]
    return lines
