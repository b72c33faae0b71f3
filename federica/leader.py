"""Leader election among processes sharing one database: duties that must run once
(the monitor's polling, the worker's singleton duties) run only in the process that
holds the role's lock.

PostgreSQL: a session-level advisory lock, held on a connection of its own (outside the
pool) for as long as the process leads. The database releases it when that session ends,
so a leader that dies (SIGKILL, a crash, a lost host) frees the role: at once when its
socket closes, otherwise when the server's keepalive / user timeout (set to the lease on
that session) gives up on it. Every `lease / 3` the leader checks that its session still
holds the lock (the heartbeat); a leader whose heartbeat fails, or that has not renewed
for a whole lease, stops leading at once: two processes never both believe they lead for
longer than one lease. Followers try to take the lock at the same pace, so the role
moves within one lease of its holder's death.

SQLite (one machine): an exclusive flock on a file beside the database; the kernel
releases it when the process dies.

Who leads is visible in PostgreSQL: the lock's session carries application_name
`federica:<role>:<holder>` (`federica doctor` shows it; see `holder`).
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

log = logging.getLogger(__name__)

# The first half of every federica advisory lock key (ASCII "fedl"); the second names
# the role. Advisory locks are per database, so two facilities on one server never meet.
LOCK_CLASS = 0x6665646C


def role_key(role: str) -> int:
    return zlib.crc32(role.encode()) & 0x7FFFFFFF


class _Lock(Protocol):
    def acquire(self) -> bool: ...
    def renew(self) -> bool: ...
    def release(self) -> None: ...


class PostgresLock:
    """The advisory lock on a dedicated connection (autocommit, never pooled)."""

    def __init__(self, engine: Engine, role: str, holder: str, lease_s: float) -> None:
        self.engine, self.role, self.holder, self.lease_s = engine, role, holder, lease_s
        self._conn: Any = None

    def _connect(self) -> Any:
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection
        assert conn is not None
        raw.detach()  # the pool must never hand this session (and its lock) to anyone
        conn.autocommit = True
        lease_ms = int(self.lease_s * 1000)
        idle = max(1, int(self.lease_s / 3))
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('application_name', %s, false)", (self.name,))
            # The server gives up on a vanished leader (no FIN: a lost host) within the
            # lease, which frees the lock for a follower.
            cur.execute("SELECT set_config('tcp_keepalives_idle', %s, false)", (str(idle),))
            cur.execute("SELECT set_config('tcp_keepalives_interval', %s, false)", (str(idle),))
            cur.execute("SELECT set_config('tcp_keepalives_count', '2', false)")
            cur.execute("SELECT set_config('tcp_user_timeout', %s, false)", (str(lease_ms),))
            # A heartbeat that hangs is a failed one.
            cur.execute("SELECT set_config('statement_timeout', %s, false)", (str(lease_ms // 3),))
        return conn

    @property
    def name(self) -> str:
        return f"federica:{self.role}:{self.holder}"[:63]

    def acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._connect()
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, role_key(self.role))
                )
                row = cur.fetchone()
            return bool(row and row[0])
        except Exception as exc:  # the database away: not leading; tried again later
            log.warning("leader %s: cannot reach the database (%s)", self.role, exc)
            self._drop()
            return False

    def renew(self) -> bool:
        """True if this session (still) holds the lock."""
        if self._conn is None:
            return False
        try:
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND classid = %s AND objid = %s "
                    "AND granted",
                    (LOCK_CLASS, role_key(self.role)),
                )
                row = cur.fetchone()
            return bool(row and row[0])
        except Exception as exc:
            log.warning("leader %s: heartbeat failed (%s)", self.role, exc)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, role_key(self.role))
                    )
            except Exception:  # closing the session below releases it anyway
                log.debug("leader %s: unlock failed", self.role, exc_info=True)
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("leader %s: close failed", self.role, exc_info=True)


class FileLock:
    """SQLite: an exclusive flock on <database>.<role>.leader (one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        import os

        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def renew(self) -> bool:
        return self._fd is not None  # the kernel keeps it while the process lives

    def release(self) -> None:
        import os

        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the flock


def lock_for(engine: Engine, role: str, holder: str, lease_s: float) -> _Lock:
    if engine.dialect.name == "postgresql":
        return PostgresLock(engine, role, holder, lease_s)
    database = engine.url.database or ""
    if not database or database == ":memory:":
        raise ValueError("leader election on SQLite needs a database file")
    return FileLock(Path(f"{database}.{role}.leader"))


class Leadership:
    """Campaigns for `role` in a thread; `leading` says whether this process leads now.
    `on_change(leading)` is called (in that thread) when that changes."""

    def __init__(
        self,
        engine: Engine,
        role: str,
        holder: str,
        lease_s: float,
        on_change: Callable[[bool], None] | None = None,
        *,
        lock: _Lock | None = None,
    ) -> None:
        self.role, self.holder, self.lease_s = role, holder, lease_s
        self._lock = lock or lock_for(engine, role, holder, lease_s)
        self._on_change = on_change
        self._renewed_at: float | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and time.monotonic() - renewed < self.lease_s

    def wait(self, leading: bool, timeout: float) -> bool:
        """Until this process leads (or not); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.leading is not leading:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, self.lease_s / 3))
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.role}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop leading (at once: the lock is released for a follower) and campaigning."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lease_s)
            self._thread = None
        self._lock.release()
        self._set(None)

    def _run(self) -> None:
        beat = self.lease_s / 3
        while not self._stop.is_set():
            if self._renewed_at is None:
                if self._lock.acquire():
                    log.info("%s: %s leads now", self.role, self.holder)
                    self._set(time.monotonic())
            elif self._lock.renew():
                self._set(time.monotonic())
            else:
                log.warning("%s: %s lost the lead", self.role, self.holder)
                self._lock.release()
                self._set(None)
            # No check of the lease here: `leading` itself turns false once the last
            # renewal is a lease old (a heartbeat hung, the process stalled).
            self._stop.wait(beat)

    def _set(self, renewed_at: float | None) -> None:
        was = self._renewed_at is not None
        self._renewed_at = renewed_at
        now = renewed_at is not None
        with self._changed:
            self._changed.notify_all()
        if was != now and self._on_change is not None:
            try:
                self._on_change(now)
            except Exception:
                log.exception("%s: reacting to a change of leader failed", self.role)


def holder(engine: Engine, role: str) -> str | None:
    """Who leads `role` now (PostgreSQL: the application_name of the lock's session)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s AND l.objid = %s AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (LOCK_CLASS, role_key(role)),
        ).scalar()
