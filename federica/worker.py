"""The worker: runs due calendar events (start, warn before end, end).

APScheduler drives the loop; events are claimed in the database (see slices/events.py),
so several workers (threads or processes) can run side by side and one that dies leaves
its events to be claimed again when its lease runs out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from federica.app import Context
from federica.db import transaction, utcnow
from federica.slices import events, runner
from federica.slices.lifecycle import EventKind
from federica.slices.models import SliceEvent
from federica.slices.provision import Provisioner
from federica.substrate import devices, reachability
from federica.substrate.drivers import registry
from federica.substrate.drivers.base import DeviceDriver
from federica.substrate.drivers.compute import registry as compute_registry
from federica.substrate.drivers.pool import DriverPool
from federica.substrate.gateway import Gateways

log = logging.getLogger(__name__)


def default_provisioner(ctx: Context) -> tuple[Provisioner, DriverPool]:
    """Device drivers from the inventory (host keys checked), compute drivers by name."""

    def make(name: str) -> DeviceDriver:
        with transaction(ctx.read_sessions) as s:
            (target,) = devices.targets(s, ctx.settings, [name])
        return registry.create(target)

    pool = DriverPool(make, reachability.Recorder(ctx.sessions, seen_by="worker"))

    def checkout(names: Sequence[str]) -> AbstractContextManager[dict[str, DeviceDriver]]:
        return pool.checkout(names)

    prov = Provisioner(
        checkout,
        lambda driver, host: compute_registry.create(driver, host, ctx.settings),
        gateway=Gateways(ctx.settings.gateway_dir),
        confirm_timeout_s=ctx.settings.netconf_confirm_timeout_s,
    )
    return prov, pool


class Worker:
    def __init__(
        self,
        ctx: Context,
        provisioner: Provisioner | None = None,
        *,
        name: str | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        self.pool: DriverPool | None = None
        if provisioner is None:
            provisioner, self.pool = default_provisioner(ctx)
        self.provisioner = provisioner
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.now = now
        self.lease = dt.timedelta(seconds=ctx.settings.worker_lease_s)
        self._scheduler: BackgroundScheduler | None = None
        self._busy = threading.Lock()

    def run_once(self) -> int:
        """Claim and run what is due; returns how many events were handled."""
        if not self._busy.acquire(blocking=False):
            return 0  # the previous round is still running
        try:
            with transaction(self.ctx.sessions) as s:
                claimed = events.claim(s, self.name, self.now(), self.lease)
            for event_id in claimed:
                self._handle(event_id)
            return len(claimed)
        finally:
            self._busy.release()

    def _handle(self, event_id: int) -> None:
        with transaction(self.ctx.read_sessions) as s:
            ev = s.get(SliceEvent, event_id)
            assert ev is not None
            kind, slice_id = ev.kind, ev.slice_id
        try:
            if kind is EventKind.START:
                result = runner.start(self.ctx.sessions, self.provisioner, slice_id, self.now)
            elif kind is EventKind.END:
                result = runner.end(self.ctx.sessions, self.provisioner, slice_id, self.now)
            else:
                result = runner.warn(self.ctx.sessions, slice_id, self.now)
        except Exception as exc:  # keep the loop alive; the lease lets it be retried
            log.exception("event %d (%s of slice %d) failed", event_id, kind.value, slice_id)
            result = f"error: {exc!r}"
            with transaction(self.ctx.sessions) as s:
                ev = s.get(SliceEvent, event_id)
                if ev is not None:
                    ev.result = result[:2000]
            return
        with transaction(self.ctx.sessions) as s:
            if not events.finish(s, event_id, self.name, self.now(), result):
                log.warning("event %d: lease lost before it was recorded (%s)", event_id, result)
        log.info("event %d %s slice %d: %s", event_id, kind.value, slice_id, result)

    def start(self) -> None:
        sched = BackgroundScheduler(timezone="UTC")
        sched.add_job(
            self.run_once,
            "interval",
            seconds=self.ctx.settings.worker_poll_s,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),
        )
        sched.start()
        self._scheduler = sched
        log.info("worker %s polling every %.1f s", self.name, self.ctx.settings.worker_poll_s)

    def stop(self) -> None:
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
