"""Whether the controller can talk to each device: recorded where it is seen (the worker's
sessions, `federica device check`), shown by `federica device check` and the substrate API.

A device is marked unreachable when a session to it cannot be opened or it stops
answering (an RPC gets no reply within the bound); the mark goes when a session opens
again. It is in the database, so every process (worker, API, CLI) shows the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from federica.db import transaction
from federica.substrate.models import Device, DeviceReachability

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reachability:
    reachable: bool
    since: dt.datetime
    reason: str
    seen_by: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": "reachable" if self.reachable else "unreachable",
            "since": self.since.isoformat(),
            "seen_by": self.seen_by,
        }
        if not self.reachable:
            out["reason"] = self.reason
        return out

    def describe(self) -> str:
        when = self.since.strftime("%Y-%m-%d %H:%M:%S UTC")
        if self.reachable:
            return f"reachable since {when}"
        return f"marked unreachable since {when} by {self.seen_by}: {self.reason}"


def record(
    session: Session,
    device: str,
    reachable: bool,
    now: dt.datetime,
    reason: str = "",
    seen_by: str = "",
) -> None:
    """Note what was seen at `now` (the application's clock); `since` moves only when the
    state changes."""
    dev_id = session.scalar(select(Device.id).where(Device.name == device))
    if dev_id is None:
        return  # removed from the inventory meanwhile: nothing to mark
    row = session.get(DeviceReachability, dev_id)
    if row is None:
        row = DeviceReachability(device_id=dev_id, reachable=reachable, since=now)
        session.add(row)
    elif row.reachable != reachable:
        row.reachable, row.since = reachable, now
    row.reason = "" if reachable else reason
    row.seen_by = seen_by


def states(session: Session, devices: list[str] | None = None) -> dict[str, Reachability]:
    """What is recorded, by device name (devices never seen are absent)."""
    query = select(Device.name, DeviceReachability).join(
        DeviceReachability, DeviceReachability.device_id == Device.id
    )
    if devices is not None:
        query = query.where(Device.name.in_(devices))
    return {
        name: Reachability(row.reachable, row.since, row.reason, row.seen_by)
        for name, row in session.execute(query)
    }


class Recorder:
    """For a DriverPool: writes what changed (the pool reports every checkout). Never
    raises: bookkeeping must not fail or delay a configuration change beyond one write."""

    def __init__(
        self, sessions: sessionmaker[Session], seen_by: str, now: Callable[[], dt.datetime]
    ) -> None:
        self._sessions = sessions
        self._now = now
        self._seen_by = seen_by
        self._last: dict[str, tuple[bool, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, device: str, reachable: bool, reason: str = "") -> None:
        state = (reachable, "" if reachable else reason)
        with self._lock:
            if self._last.get(device) == state:
                return
            self._last[device] = state
        try:
            with transaction(self._sessions) as s:
                record(s, device, reachable, self._now(), reason, self._seen_by)
        except SQLAlchemyError:
            log.exception("device %s: could not record that it is %s", device, _word(reachable))
            with self._lock:
                self._last.pop(device, None)
            return
        if reachable:
            log.info("device %s is reachable", device)
        else:
            log.warning("device %s is unreachable: %s", device, reason)


def _word(reachable: bool) -> str:
    return "reachable" if reachable else "unreachable"
