"""Monitoring services: what to poll, and each polled round turned into stored rates.

`make_poller(ctx)` (ctx: the application context) gives the poller (an adapter) its
targets from the inventory and its sink, a `Recorder` that keeps each interface's latest
reading, computes rates by the rules of `rates`, writes them in bulk with the interfaces'
state, and rolls up and prunes. Each round also samples every V-node's nodes through its
compute driver (state, CPU time, memory: `sample_nodes`).
Every time is the context's clock.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session, sessionmaker

from federica.config import Settings, SettingsError
from federica.db import insert_rows, transaction
from federica.errors import FedericaError
from federica.monitoring import credentials, store
from federica.monitoring.models import (
    RATE_COLUMNS,
    RAW,
    InterfaceRate,
    MonitoredDevice,
    MonitoredHost,
    MonitoredInterface,
    NodeSample,
)
from federica.monitoring.poller import BACKENDS, COUNTERS, DeviceSample, Poller, Round, Target
from federica.monitoring.rates import Kind, NoRate, Reading, step
from federica.substrate.drivers.compute.base import ComputeError, NodeUsage
from federica.substrate.drivers.compute.registry import ComputeDrivers, UnknownComputeDriver
from federica.substrate.drivers.compute.registry import create as compute_driver
from federica.substrate.models import ComputeHost, Device, Port

log = logging.getLogger(__name__)

# ifInErrors/ifOutErrors and the discards are Counter32 (no HC variants in IF-MIB).
KINDS = {
    name: Kind.COUNTER32 if name.endswith(("errors", "discards")) else Kind.COUNTER64
    for name in COUNTERS
}
assert set(KINDS) == set(RATE_COLUMNS)
ERROR_MAX = 255


class Context(Protocol):
    """What monitoring needs of the application context (federica.context.Context)."""

    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    compute_drivers: ComputeDrivers

    def now(self) -> dt.datetime: ...


def check_settings(ctx: Context) -> None:
    s = ctx.settings
    problems = [
        (name, value)
        for name, value in [
            ("monitor_interval_s", s.monitor_interval_s),
            ("snmp_timeout_s", s.snmp_timeout_s),
            ("snmp_concurrency", s.snmp_concurrency),
            ("snmp_max_backoff_intervals", s.snmp_max_backoff_intervals),
            ("monitor_raw_hours", s.monitor_raw_hours),
            ("monitor_5min_hours", s.monitor_5min_hours),
            ("monitor_1h_hours", s.monitor_1h_hours),
        ]
        if value <= 0
    ]
    if s.snmp_retries < 0:
        problems.append(("snmp_retries", s.snmp_retries))
    if s.snmp_backend not in BACKENDS:
        raise SettingsError(
            f"FEDERICA_SNMP_BACKEND: must be one of {', '.join(BACKENDS)}, got {s.snmp_backend!r}"
        )
    if problems:
        name, value = problems[0]
        raise SettingsError(f"FEDERICA_{name.upper()}: must be positive, got {value}")


class Recorder:
    """One poller's memory (each interface's latest reading) and its database writes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Each device's interfaces' latest readings, by ifName; replaced by every answer,
        # so rows that vanished (and devices no longer polled) are forgotten.
        self._last: dict[str, dict[str, Reading]] = {}
        self._unpolled: dict[str, str] = {}
        # Each node's latest CPU time (seconds) and when it was read, by (V-node, node).
        self._cpu: dict[tuple[str, str], tuple[float, dt.datetime]] = {}

    def targets(self) -> list[Target]:
        """Every device of the inventory that has SNMP credentials."""
        settings = self.ctx.settings
        sets = credentials.load_sets(settings)
        with self.ctx.read_sessions() as session:
            devices = session.scalars(select(Device).order_by(Device.name)).all()
        out, unpolled = [], {}
        for d in devices:
            try:
                port, auth = credentials.resolve(settings, sets, d.credentials_ref, d.netconf_port)
            except FedericaError as exc:
                unpolled[d.name] = str(exc)
                continue
            timeout, retries = credentials.timing(settings, sets, d.credentials_ref)
            out.append(Target(d.name, d.mgmt_host, port, auth, timeout, retries))
        for name, why in unpolled.items():
            if self._unpolled.get(name) != why:
                log.warning("monitoring: %s not polled: %s", name, why)
        self._unpolled = unpolled
        polled = {t.device for t in out}
        for gone in set(self._last) - polled:
            del self._last[gone]
        return out

    def record(self, rnd: Round) -> int:
        """Store one round; returns the raw rate rows written."""
        interval = self.ctx.settings.monitor_interval_s
        with transaction(self.ctx.sessions) as session:
            names = [s.device for s in rnd.samples] + [f.device for f in rnd.failures]
            devices = {
                d.name: d.id for d in session.scalars(select(Device).where(Device.name.in_(names)))
            }
            rows: list[dict[str, Any]] = []
            for sample in rnd.samples:
                if sample.device in devices:
                    rows += self._sample(session, devices[sample.device], sample, interval)
            for failure in rnd.failures:
                if failure.device in devices:
                    state = _device_state(session, devices[failure.device])
                    state.last_poll_at = failure.at
                    state.consecutive_failures = failure.consecutive
                    state.error = failure.error[:ERROR_MAX]
            session.flush()
            insert_rows(session.connection(), cast(Table, InterfaceRate.__table__), rows)
        self.maintain()
        return len(rows)

    def maintain(self) -> None:
        """Roll up what is due and delete what is past its keeping time."""
        now = self.ctx.now()
        with transaction(self.ctx.sessions) as session:
            store.rollup(session, now, self.ctx.settings)
            store.prune(session, now, self.ctx.settings)
            store.prune_node_samples(session, now, self.ctx.settings)

    def sample_nodes(self) -> int:
        """Every V-node's nodes: state, CPU time and memory now; returns the rows written.
        A V-node whose driver fails is noted (its health) and the others go on."""
        with self.ctx.read_sessions() as session:
            hosts = [(h.id, h.name, h.driver) for h in session.scalars(select(ComputeHost))]
        rows: list[dict[str, Any]] = []
        states: list[tuple[int, dt.datetime, int, str]] = []
        seen: set[tuple[str, str]] = set()
        for host_id, host, driver_name in hosts:
            at = self.ctx.now()
            try:
                driver = compute_driver(
                    self.ctx.compute_drivers, driver_name, host, self.ctx.settings
                )
                usage = {node: driver.usage(node) for node in driver.nodes()}
            except Exception as exc:
                # One V-node's driver failing (its own library's errors included) must not
                # stop the others' samples, nor the alarms checked after the round.
                if not isinstance(exc, (ComputeError, UnknownComputeDriver, OSError)):
                    log.warning("monitoring: V-node %s not sampled: %r", host, exc)
                states.append((host_id, at, 0, str(exc)[:ERROR_MAX] or type(exc).__name__))
                continue
            at = self.ctx.now()
            states.append((host_id, at, len(usage), ""))
            for node, use in usage.items():
                seen.add((host, node))
                rows.append(self._node_row(host_id, host, node, use, at))
        self._cpu = {k: v for k, v in self._cpu.items() if k in seen}
        with transaction(self.ctx.sessions) as session:
            for host_id, at, n, error in states:
                state = session.get(MonitoredHost, host_id)
                if state is None:
                    state = MonitoredHost(host_id=host_id, last_sample_at=at)
                    session.add(state)
                state.last_sample_at, state.nodes, state.error = at, n, error
                if not error:
                    state.last_ok_at = at
            session.flush()
            # A sample at the instant of one already stored (a clock that did not move, a
            # second monitor) replaces it.
            for host_id, at, _, _ in states:
                session.execute(
                    delete(NodeSample).where(NodeSample.host_id == host_id, NodeSample.at == at)
                )
            insert_rows(session.connection(), cast(Table, NodeSample.__table__), rows)
        return len(rows)

    def _node_row(
        self, host_id: int, host: str, node: str, use: NodeUsage, at: dt.datetime
    ) -> dict[str, Any]:
        cores = None
        before = self._cpu.get((host, node))
        if use.cpu_seconds is not None:
            if before is not None and use.cpu_seconds >= before[0] and at > before[1]:
                cores = (use.cpu_seconds - before[0]) / (at - before[1]).total_seconds()
            self._cpu[(host, node)] = (use.cpu_seconds, at)
        else:
            self._cpu.pop((host, node), None)
        return {
            "host_id": host_id,
            "node": node,
            "at": at,
            "state": use.state.value,
            "cpu_seconds": use.cpu_seconds,
            "cpu_cores": cores,
            "memory_bytes": use.memory_bytes,
        }

    def _sample(
        self, session: Session, device_id: int, sample: DeviceSample, interval: float
    ) -> list[dict[str, Any]]:
        state = _device_state(session, device_id)
        state.last_poll_at = state.last_ok_at = sample.at
        state.uptime_ticks = sample.uptime_ticks
        state.consecutive_failures = 0
        state.error = ""
        known = {
            i.name: i
            for i in session.scalars(
                select(MonitoredInterface).where(MonitoredInterface.device_id == device_id)
            )
        }
        ports = {
            p.name: p.id for p in session.scalars(select(Port).where(Port.device_id == device_id))
        }
        pending: list[tuple[MonitoredInterface, dict[str, float | None], Any]] = []
        last, latest = self._last.get(sample.device, {}), {}
        voided: dict[NoRate, list[str]] = {}
        for iface in sample.interfaces:
            name = iface.name or f"ifIndex.{iface.if_index}"
            row = known.get(name)
            if row is None:
                row = MonitoredInterface(device_id=device_id, name=name)
                session.add(row)
            row.port_id = ports.get(name)
            row.if_index = iface.if_index
            row.alias = iface.alias[:255]
            row.admin_status, row.oper_status = iface.admin_status, iface.oper_status
            row.high_speed_mbps = iface.high_speed
            row.last_seen = sample.at
            row.counters = json.dumps(iface.counters, sort_keys=True)
            reading = Reading(
                sample.at, sample.uptime_ticks, iface.counters, iface.if_index, sample.rtt_s
            )
            result = step(last.get(name), reading, KINDS, interval)
            latest[name] = reading
            if not result.per_second and result.void:
                why = next(iter(result.void.values()))
                if why is not NoRate.FIRST:
                    voided.setdefault(why, []).append(name)
            if result.per_second:
                values: dict[str, float | None] = {c: None for c in RATE_COLUMNS}
                values.update(result.per_second)
                pending.append((row, values, result))
        self._last[sample.device] = latest
        _log_voided(sample, voided)
        session.flush()  # ids for the new interfaces
        return [
            {
                "interface_id": row.id,
                "resolution_s": RAW,
                "start": result.start,
                "end": result.end,
                "covered_s": result.seconds,
                **values,
            }
            for row, values, result in pending
        ]


# A hole in a series is the operator's question "why is there no data here?": the agent
# restarting or a row changing is news; a gap after an outage was already reported.
_NEWS = {NoRate.AGENT_RESTART, NoRate.ROW_CHANGED, NoRate.COUNTER_RESET}


def _log_voided(sample: DeviceSample, voided: dict[NoRate, list[str]]) -> None:
    """One line per device and reason for the interfaces that got no rate this poll."""
    for why, names in voided.items():
        log.log(
            logging.WARNING if why in _NEWS else logging.INFO,
            "monitoring: %s: no rate for %d interface(s) up to %s (%s): %s",
            sample.device,
            len(names),
            sample.at.isoformat(),
            why.value,
            ", ".join(sorted(names)[:5]) + (" …" if len(names) > 5 else ""),
        )


def _device_state(session: Session, device_id: int) -> MonitoredDevice:
    state = session.get(MonitoredDevice, device_id)
    if state is None:
        state = MonitoredDevice(device_id=device_id, consecutive_failures=0, error="")
        session.add(state)
    return state


def make_poller(
    ctx: Context,
    recorder: Recorder | None = None,
    *,
    after: Callable[[Round], None] | None = None,
) -> Poller:
    """The poller of this controller, storing into its database (start/stop or run it);
    `after` is called with each round once it is stored (the alarms' check)."""
    check_settings(ctx)
    recorder = recorder or Recorder(ctx)
    s = ctx.settings

    def sink(rnd: Round) -> None:
        recorder.record(rnd)
        recorder.sample_nodes()
        for failure in rnd.failures:
            log.warning(
                "monitoring: %s did not answer (%d in a row; next try in %d interval(s)): %s",
                failure.device,
                failure.consecutive,
                failure.retry_in_rounds,
                failure.error,
            )
        if after is not None:
            after(rnd)

    return Poller(
        recorder.targets,
        sink,
        clock=ctx.now,
        interval_s=s.monitor_interval_s,
        concurrency=s.snmp_concurrency,
        max_backoff_intervals=s.snmp_max_backoff_intervals,
        backend=s.snmp_backend,
    )
