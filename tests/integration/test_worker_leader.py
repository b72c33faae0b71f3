"""Two real `federica worker` processes on one database: exactly one leads (runs the
singleton duties); SIGKILL it and the other takes over within one lease; SIGTERM the new
leader and it hands the lead back at once and exits cleanly. On PostgreSQL the lead is
an advisory lock (visible in pg_locks); on SQLite a file lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from federica import leader
from federica.config import Settings
from federica.context import Context
from tests.conftest import REPO

pytestmark = pytest.mark.integration
LEASE_S = 6.0
LEADS = "leads now"


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> float:
    """Polls `condition` until true; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic()


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "federica", "worker"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text()

    def leads(self) -> bool:
        return LEADS in self.text()

    @property
    def name(self) -> str:
        # "worker <name>: polling every …"
        for line in self.text().splitlines():
            if line.startswith("worker ") and ": polling" in line:
                return line.split()[1].rstrip(":")
        raise AssertionError(f"no name yet in {self.log}")


@pytest.fixture
def workers(db: Context, settings: Settings, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    env = os.environ | {
        "FEDERICA_DATABASE_URL": settings.effective_database_url,
        "FEDERICA_DATA_DIR": str(settings.data_dir),
        "FEDERICA_LEADER_LEASE_S": str(LEASE_S),
        "FEDERICA_WORKER_POLL_S": "0.5",
    }
    started = [WorkerProcess(env, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        yield started
    finally:
        for w in started:
            if w.proc.poll() is None:
                w.proc.kill()
            w.proc.wait(timeout=30)


def test_the_other_worker_takes_over_within_one_lease(
    db: Context, workers: list[WorkerProcess]
) -> None:
    wait_for("a leader", lambda: any(w.leads() for w in workers))
    # The follower campaigns every third of a lease: give it two tries to show it waits.
    time.sleep(2 * LEASE_S / 3)
    leaders = [w for w in workers if w.leads()]
    assert len(leaders) == 1, [w.text() for w in workers]
    (first,) = leaders
    (second,) = [w for w in workers if w is not first]
    wait_for("both names", lambda: ": polling" in second.text() and ": polling" in first.text())
    if db.engine.dialect.name == "postgresql":
        assert leader.holder(db.engine, "worker") == f"federica:worker:{first.name}"[:63]

    first.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    took_over_at = wait_for("the follower to lead", second.leads)
    assert took_over_at - killed_at < LEASE_S, second.text()
    # It does the singleton duties now (at once, not an interval later): the rollups.
    wait_for("the new leader's duties", lambda: "duty rollups done as the leader" in second.text())
    assert "duty rollups done" not in second.text().split(LEADS)[0]  # not while following
    if db.engine.dialect.name == "postgresql":
        assert leader.holder(db.engine, "worker") == f"federica:worker:{second.name}"[:63]

    # Graceful: SIGTERM ends it with status 0, and it gives the lead up on the way out.
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(timeout=60) == 0, second.text()
    assert "stopping" in second.text()
    if db.engine.dialect.name == "postgresql":
        assert leader.holder(db.engine, "worker") is None


def test_a_second_monitor_stands_by_until_the_first_dies(
    db: Context, settings: Settings, tmp_path: Path
) -> None:
    env = os.environ | {
        "FEDERICA_DATABASE_URL": settings.effective_database_url,
        "FEDERICA_DATA_DIR": str(settings.data_dir),
        "FEDERICA_LEADER_LEASE_S": str(LEASE_S),
        "FEDERICA_MONITOR_INTERVAL_S": "1",
    }
    monitors = []
    for i in range(2):
        log = tmp_path / f"monitor{i}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "federica", "monitor"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        monitors.append((proc, log))
    try:

        def polling(log: Path) -> bool:
            return "leads; polling" in log.read_text()

        wait_for("a polling monitor", lambda: any(polling(log) for _, log in monitors))
        wait_for(
            "the other to stand by",
            lambda: all(polling(log) or "standing by" in log.read_text() for _, log in monitors),
        )
        (first,) = [m for m in monitors if polling(m[1])]
        (second,) = [m for m in monitors if m is not first]
        assert not polling(second[1])
        first[0].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        took_over_at = wait_for("the standby to poll", lambda: polling(second[1]))
        assert took_over_at - killed_at < LEASE_S, second[1].read_text()
        second[0].send_signal(signal.SIGTERM)
        assert second[0].wait(timeout=60) == 0, second[1].read_text()
    finally:
        for proc, _ in monitors:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
