"""Waking the workers when a calendar event is written, instead of waiting for their poll.

A commit that adds a pending event (a booking) or changes one (a deferred start made
due, an end moved) wakes the workers:

* in this process, through the application context's `Wakeups` (the demo's in-process
  worker, tests with workers in threads);
* in other processes on PostgreSQL, through NOTIFY on `CHANNEL`, sent in the writing
  transaction so that it is delivered on commit and never for a rollback; the workers
  LISTEN on a connection of their own (`Listener`).

A woken worker runs its claim at once; the claim statement decides, as before, which
worker takes which event, so a wake-up only changes when workers look, never who wins.
Workers still poll (`worker_poll_s`): the fallback for SQLite across processes and for a
lost notification (e.g. while the listening connection reconnects).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from federica.slices.models import SliceEvent

log = logging.getLogger(__name__)

CHANNEL = "federica_events"
_KEY = "federica.wakeups"
_DUE = "federica.wakeups.due"


class Wakeups:
    """This process's workers waiting for events (one per application context)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()

    def subscribe(self) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._waiting.add(flag)
        return flag

    def unsubscribe(self, flag: threading.Event) -> None:
        with self._lock:
            self._waiting.discard(flag)

    def wake(self) -> None:
        with self._lock:
            flags = list(self._waiting)
        for flag in flags:
            flag.set()


def attach(factory: sessionmaker[Session], wakeups: Wakeups) -> None:
    """Commits of sessions from `factory` that write a pending event wake `wakeups`
    (and, on PostgreSQL, every listening worker)."""
    factory.configure(info={**(factory.kw.get("info") or {}), _KEY: wakeups})
    event.listen(factory, "after_flush", _notify_if_events)
    event.listen(factory, "after_commit", _wake_after_commit)
    event.listen(factory, "after_rollback", _forget)


def _writes_pending_event(session: Session) -> bool:
    return any(
        isinstance(obj, SliceEvent) and obj.done_at is None
        for objs in (session.new, session.dirty)
        for obj in objs
    )


def events_written(session: Session) -> None:
    """`session` wrote pending events other than through the ORM (the booking's multi-row
    insert): wake the workers when it commits."""
    if session.info.get(_DUE):
        return
    session.info[_DUE] = True
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # In the transaction: PostgreSQL delivers it on commit, drops it on rollback.
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


def _notify_if_events(session: Session, _flush_context: object) -> None:
    if not session.info.get(_DUE) and _writes_pending_event(session):
        events_written(session)


def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_DUE, False):
        wakeups = session.info.get(_KEY)
        if isinstance(wakeups, Wakeups):
            wakeups.wake()


def _forget(session: Session) -> None:
    session.info.pop(_DUE, None)


class Listener:
    """LISTENs for `CHANNEL` on a PostgreSQL connection of its own and calls `on_wake`
    for each notification; reconnects after an error (the poll covers the gap)."""

    def __init__(self, url: URL, on_wake: Callable[[], None], retry_s: float = 2.0) -> None:
        # psycopg takes a libpq URL: the SQLAlchemy driver suffix goes.
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_wake = on_wake
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events-listener", daemon=True)
        self.listening = threading.Event()  # set while LISTEN is in force (tests wait on it)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    log.info("listening for events written (LISTEN %s)", CHANNEL)
                    self._on_wake()  # anything written while not listening
                    while not self._stop.is_set():
                        # A short timeout so that stop() is heard; notifications come at once.
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._on_wake()
            except Exception as exc:  # the database away: poll until it is back
                why = type(exc).__name__
                log.warning("event notifications: %s; retrying in %.0f s", why, self._retry_s)
            finally:
                self.listening.clear()
            self._stop.wait(self._retry_s)
