"""The worker: runs due calendar events (start, warn before end, end).

APScheduler drives the loop; events are claimed in the database (see slices/events.py),
so several workers (threads or processes) can run side by side. A worker renews the
lease of the event it runs (its heartbeat); one that dies stops renewing, and its event
is claimed again by another within one lease: a start is then resumed from nothing (what
the dead worker built is removed first, runner.start), never left half-built.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from federica.aaa import audit
from federica.aaa.models import Role
from federica.aaa.policy import Principal
from federica.context import Context
from federica.db import transaction
from federica.errors import correlation_id
from federica.estop import service as estop_service
from federica.federation import interdomain
from federica.leader import Leadership
from federica.reconcile import Reconciler
from federica.slices import events, runner, wakeup
from federica.slices.lifecycle import EventKind, SliceStatus
from federica.slices.models import Slice, SliceEvent
from federica.slices.provision import Provisioner
from federica.substrate import devices, reachability
from federica.substrate.drivers import registry
from federica.substrate.drivers.base import DeviceDriver
from federica.substrate.drivers.compute import registry as compute_registry
from federica.substrate.drivers.pool import DriverPool
from federica.substrate.gateway import Gateways

log = logging.getLogger(__name__)
_OUTCOMES = {"active": "started, active", "ended": "ended, everything removed"}


@dataclass(frozen=True)
class _Claimed:
    id: int
    kind: EventKind
    attempts: int
    slice_id: int
    slice_name: str
    project: str | None

    def __str__(self) -> str:
        return f"slice {self.slice_id} ({self.slice_name}) {self.kind.value} event {self.id}"


def _summary(exc: Exception) -> str:
    """What the slice's owner may read about an exception. A database error's text holds
    SQL and its parameters: the log has it, the summary only names it."""
    if isinstance(exc, SQLAlchemyError):
        return f"a database error ({type(exc).__name__})"
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def default_provisioner(ctx: Context) -> tuple[Provisioner, DriverPool]:
    """Device drivers from the inventory (host keys checked), compute drivers by name."""

    def make(name: str) -> DeviceDriver:
        with transaction(ctx.read_sessions) as s:
            (target,) = devices.targets(s, ctx.settings, [name])
        return registry.create(ctx.device_drivers, target)

    pool = DriverPool(make, reachability.Recorder(ctx.sessions, "worker", ctx.now))

    def checkout(names: Sequence[str]) -> AbstractContextManager[dict[str, DeviceDriver]]:
        return pool.checkout(names)

    prov = Provisioner(
        checkout,
        lambda driver, host: compute_registry.create(
            ctx.compute_drivers, driver, host, ctx.settings
        ),
        gateway=Gateways(ctx.settings.gateway_dir),
        confirm_timeout_s=ctx.settings.netconf_confirm_timeout_s,
    )
    return prov, pool


@dataclass(frozen=True)
class Duty:
    """Work that must run once among all workers, every `every_s` seconds, by the leader."""

    name: str
    every_s: float
    run: Callable[[], None]


def singleton_duties(ctx: Context, provisioner: Provisioner | None = None) -> list[Duty]:
    """What the leading `federica worker` does besides the calendar's events: roll-ups,
    the peers' alarms and e-stop relays, and reconciliation with the devices (through
    `provisioner`'s drivers: the worker's own, so its device sessions and locks are
    shared)."""
    from federica.federation import estop_relay, fault_pull, guests, remote
    from federica.monitoring.service import Recorder

    recorder, s = Recorder(ctx), ctx.settings
    duties = [
        Duty("rollups", s.rollup_every_s, recorder.maintain),
        Duty("peer-alarms", s.peer_alarms_every_s, lambda: _quiet(fault_pull.pull_all(ctx))),
        Duty("estop-relay", s.estop_relay_every_s, lambda: _quiet(estop_relay.deliver(ctx))),
        # Guests' holds that ran out although their home never called again (it died
        # between the phases): freed here, not only at the next peer call.
        Duty(
            "guest-holds",
            s.guest_holds_every_s,
            lambda: _quiet(guests.expire_due(ctx.sessions, ctx.now())),
        ),
        # Home bookings whose process died between the phases: released here.
        Duty(
            "interrupted-bookings",
            s.guest_holds_every_s,
            lambda: _quiet(remote.settle_interrupted(ctx.sessions, s, ctx.now())),
        ),
        # Releases of parts at peers that a peer did not hear (it was down): retried.
        Duty(
            "peer-releases",
            s.guest_holds_every_s,
            lambda: _quiet(remote.retry_releases(ctx.sessions, s, ctx.now())),
        ),
    ]
    if provisioner is not None and s.reconcile_every_s > 0:
        reconciler = Reconciler(ctx, provisioner)

        def reconcile() -> None:
            report = reconciler.run()
            for problem in report.problems:
                log.warning("reconcile: %s", problem)
            log.log(
                logging.WARNING if report.drift else logging.INFO,
                "reconcile: %d device(s) and V-node(s) checked, %d drift(s), %d repaired%s",
                len(report.checked),
                len(report.drift),
                len(report.repaired),
                "".join(f"; {d}" for d in report.drift),
            )

        duties.append(Duty("reconcile", s.reconcile_every_s, reconcile))
    return duties


def _quiet(_: object) -> None:
    """A duty's result is for tests and the CLI; the worker only runs it."""


class Worker:
    def __init__(
        self,
        ctx: Context,
        provisioner: Provisioner | None = None,
        *,
        name: str | None = None,
        now: Callable[[], dt.datetime] | None = None,
        duties: Sequence[Duty] | Callable[[Provisioner], Sequence[Duty]] = (),
    ) -> None:
        self.ctx = ctx
        self.pool: DriverPool | None = None
        if provisioner is None:
            provisioner, self.pool = default_provisioner(ctx)
        self.provisioner = provisioner
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.now = now or ctx.now  # the context's clock unless a test brings its own
        self.lease = dt.timedelta(seconds=ctx.settings.worker_lease_s)
        self._scheduler: BackgroundScheduler | None = None
        self._busy = threading.Lock()
        self.rounds = 0  # rounds of due events run by start()'s loop
        self._stop_loop = threading.Event()
        self._woken: threading.Event | None = None
        self._loop: threading.Thread | None = None
        self.listener: wakeup.Listener | None = None
        self._done_as_leader: set[str] = set()  # duties run since this worker took the lead
        self.principal = Principal(f"worker:{self.name}", Role.OPERATOR, via="worker")
        # Events are claimed row by row, so every worker takes them; the duties only the
        # leader runs.
        self.duties = list(duties(provisioner) if callable(duties) else duties)
        self.leadership: Leadership | None = None
        if self.duties:
            self.leadership = Leadership(
                ctx.engine,
                "worker",
                self.name,
                ctx.settings.leader_lease_s,
                on_change=self._lead_changed,
            )

    def run_once(self) -> int:
        """Claim and run what is due; returns how many events were handled."""
        if not self._busy.acquire(blocking=False):
            return 0  # the previous round is still running
        try:
            with transaction(self.ctx.sessions) as s:
                claimed = events.claim(s, self.name, self.now(), self.lease)
            for event_id in claimed:
                try:
                    self._handle(event_id)
                except Exception:  # e.g. the database went away: the lease brings it back
                    log.exception("event %d: not handled; retried when its lease ends", event_id)
            return len(claimed)
        finally:
            self._busy.release()

    def _handle(self, event_id: int) -> None:
        with transaction(self.ctx.read_sessions) as s:
            row = s.execute(
                select(SliceEvent.kind, SliceEvent.attempts, Slice.id, Slice.name, Slice.project)
                .join(Slice, SliceEvent.slice_id == Slice.id)
                .where(SliceEvent.id == event_id)
            ).one()
        ev = _Claimed(event_id, *row)
        with self._heartbeat(ev):
            self._run(ev)

    @contextmanager
    def _heartbeat(self, ev: _Claimed) -> Iterator[None]:
        """Renews the event's lease every third of it while this worker runs it: a live
        worker keeps its event however long it takes; a dead one (SIGKILL, a lost host)
        stops renewing, and another worker takes the event over within one lease."""
        stop = threading.Event()
        every = self.lease.total_seconds() / 3

        def beat() -> None:
            while not stop.wait(every):
                try:
                    with transaction(self.ctx.sessions) as s:
                        kept = events.renew(s, ev.id, self.name, self.now() + self.lease)
                except Exception as exc:  # the database away: the next beat tries again
                    log.warning("%s: lease not renewed (%s)", ev, _summary(exc))
                    continue
                if not kept:
                    log.warning("%s: %s", ev, runner.LEASE_LOST)
                    return

        thread = threading.Thread(target=beat, name=f"lease-{ev.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _run(self, ev: _Claimed) -> None:
        event_id = ev.id
        limit = self.ctx.settings.worker_max_attempts
        if ev.attempts > limit:
            # Claimed again after every try ran out its lease: its worker died (or hung)
            # each time. Running it once more would likely do the same.
            self._give_up(ev, f"its worker stopped {ev.attempts - 1} times while running it")
            return
        try:
            if ev.kind is EventKind.START:
                result = runner.start(
                    self.ctx.sessions, self.provisioner, ev.slice_id, self.now, self._gate
                )
                if result.startswith(events.FAILED):
                    # A circuit across the border: the part at the peer goes too.
                    interdomain.abort_parts(self.ctx.sessions, self.ctx.settings, ev.slice_id)
            elif ev.kind is EventKind.END and self._on_forensic_hold(ev.slice_id):
                result = "kept: the slice is shut down on forensic hold (release it to end it)"
            elif ev.kind is EventKind.END:
                result = runner.end(self.ctx.sessions, self.provisioner, ev.slice_id, self.now)
            else:
                result = runner.warn(self.ctx.sessions, ev.slice_id, self.now)
        except Exception as exc:  # the loop goes on; the event is retried, then given up
            self._attempt_failed(ev, exc)
            return
        with transaction(self.ctx.sessions) as s:
            if not events.finish(s, event_id, self.name, self.now(), result):
                log.warning("%s: lease lost before it was recorded (%s)", ev, result)
                return
        self._report(ev, result)

    def _gate(self, slice_id: int) -> str | None:
        """A slice across the border is ACTIVE once its parts at the peers are too."""
        return interdomain.wait_for_parts(self.ctx.sessions, self.ctx.settings, slice_id)

    def _on_forensic_hold(self, slice_id: int) -> bool:
        """An emergency-stopped slice an operator keeps for forensics is not torn down at
        its window's end (an operator's release, which makes it releasing, still is)."""
        with transaction(self.ctx.read_sessions) as s:
            sl = s.get(Slice, slice_id)
            return (
                sl is not None
                and sl.status is SliceStatus.SHUTDOWN
                and estop_service.on_hold(s, slice_id)
            )

    def _attempt_failed(self, ev: _Claimed, exc: Exception) -> None:
        settings = self.ctx.settings
        ref = correlation_id()
        why = f"{_summary(exc)} (log reference {ref})"
        at = self.now()
        retry_at = at + events.backoff(
            ev.attempts, settings.worker_retry_first_s, settings.worker_retry_longest_s
        )
        with transaction(self.ctx.read_sessions) as s:
            end_at = events.end_due(s, ev.slice_id) if ev.kind is not EventKind.END else None
        # Never past the end: a start still retrying then would hold the end up.
        last = ev.attempts >= settings.worker_max_attempts or (
            end_at is not None and retry_at >= end_at
        )
        log.error(
            "%s: attempt %d of %d raised [ref %s]%s",
            ev,
            ev.attempts,
            settings.worker_max_attempts,
            ref,
            "" if last else f"; next attempt at {retry_at:%H:%M:%S} UTC",
            exc_info=exc,
        )
        if last:
            self._give_up(ev, f"{ev.attempts} attempts failed, the last with {why}")
            return
        note = f"attempt {ev.attempts} failed: {why}; next at {retry_at:%Y-%m-%d %H:%M:%S} UTC"
        with transaction(self.ctx.sessions) as s:
            if not events.retry_later(s, ev.id, self.name, retry_at, note):
                log.warning("%s: lease lost before the failed attempt was recorded", ev)

    def _give_up(self, ev: _Claimed, why: str) -> None:
        result = runner.give_up(
            self.ctx.sessions, self.provisioner, ev.id, self.name, self.now, why
        )
        self._report(ev, result)

    def _report(self, ev: _Claimed, result: str) -> None:
        """What happened to the slice, in the log and (when it failed) the audit log,
        which its owner's project and the operators read."""
        failed = result.startswith(events.FAILED)
        if failed or result == runner.LEASE_LOST:
            log.warning("%s: %s", ev, result)
        else:
            log.info("%s: %s", ev, _OUTCOMES.get(result, result))
        if failed:
            audit.record(
                self.ctx.sessions,
                self.principal,
                f"slice.{ev.kind.value}",
                status=500,
                target=f"slice {ev.slice_name}",
                slice_id=ev.slice_id,
                project=ev.project,
                detail={"event": ev.id, "attempts": ev.attempts, "result": result[:500]},
                at=self.now(),
            )

    def run_duty(self, duty: Duty) -> bool:
        """Run `duty` if this worker leads; False if it does not."""
        if self.leadership is None or not self.leadership.leading:
            return False
        try:
            duty.run()
        except Exception:  # the next interval tries again
            log.exception("duty %s failed", duty.name)
            return True
        if duty.name not in self._done_as_leader:  # once per lead, not every interval
            self._done_as_leader.add(duty.name)
            log.info("worker %s: duty %s done as the leader", self.name, duty.name)
        return True

    def _lead_changed(self, leading: bool) -> None:
        self._done_as_leader.clear()
        sched = self._scheduler
        if leading and sched is not None:
            # A new leader does the duties now, not an interval after the old one died.
            for duty in self.duties:
                job = sched.get_job(f"duty:{duty.name}")
                if job is not None:
                    job.modify(next_run_time=dt.datetime.now(dt.UTC))

    def start(self) -> None:
        self._stop_loop.clear()
        self._woken = self.ctx.wakeups.subscribe()
        if self.ctx.engine.dialect.name == "postgresql":
            self.listener = wakeup.Listener(self.ctx.engine.url, self._woken.set)
            self.listener.start()
        self._loop = threading.Thread(
            target=self._events_loop, args=(self._woken,), name="events", daemon=True
        )
        self._loop.start()
        sched = BackgroundScheduler(timezone="UTC")
        for duty in self.duties:
            sched.add_job(
                self.run_duty,
                "interval",
                args=(duty,),
                id=f"duty:{duty.name}",
                seconds=duty.every_s,
                max_instances=1,
                coalesce=True,
            )
        sched.start()
        self._scheduler = sched
        if self.leadership is not None:
            self.leadership.start()
        log.info(
            "worker %s: events at once when written%s, else every %.1f s",
            self.name,
            " (LISTEN/NOTIFY)" if self.listener is not None else " in this process",
            self.ctx.settings.worker_poll_s,
        )

    def _events_loop(self, woken: threading.Event) -> None:
        """Run what is due; then sleep until woken (an event written), until the next
        event's due time, or for the poll interval, whichever comes first."""
        while not self._stop_loop.is_set():
            woken.clear()  # before the claim: a wake-up during the round runs another
            try:
                self.run_once()
            except Exception:  # e.g. the database away: the next round tries again
                log.exception("worker %s: the round of due events failed", self.name)
            self.rounds += 1
            woken.wait(self._sleep_s())

    def _sleep_s(self) -> float:
        poll = self.ctx.settings.worker_poll_s
        try:
            now = self.now()
            with transaction(self.ctx.read_sessions) as s:
                nxt = events.next_due_after(s, now)
        except Exception:  # the database away: poll
            return poll
        if nxt is None:
            return poll
        return max(0.0, min(poll, (nxt - now).total_seconds()))

    def stop(self) -> None:
        """Graceful: hand the lead over at once, then finish the event in hand."""
        if self.leadership is not None:
            self.leadership.stop()
        self._stop_loop.set()
        if self._woken is not None:
            self._woken.set()
            self.ctx.wakeups.unsubscribe(self._woken)
        if self._loop is not None:
            self._loop.join()
            self._loop = None
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.pool is not None:
            self.pool.close_all()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
