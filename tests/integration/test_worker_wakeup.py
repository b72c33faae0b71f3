"""A `federica worker` process on PostgreSQL with a 30 s poll starts a slice booked for
now (by another process: this test) within seconds: the booking's NOTIFY, delivered on
its commit, wakes the worker's LISTEN. (SQLite has no notifications across processes:
there the poll stays; within one process, tests/service/slices/test_worker_wakeup.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from federica.config import Settings
from federica.context import Context
from federica.slices.lifecycle import SliceStatus
from tests.conftest import REPO
from tests.service.slices.test_worker import book, lab, request, status

pytestmark = pytest.mark.integration
__all__ = ["lab"]  # the fixture
POLL_S = 30


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.fixture
def worker_log(lab: Context, settings: Settings, tmp_path: Path) -> Iterator[Path]:
    if lab.engine.dialect.name != "postgresql":
        pytest.skip("notifications across processes are PostgreSQL's; SQLite polls")
    env = os.environ | {
        "FEDERICA_DATABASE_URL": settings.effective_database_url,
        "FEDERICA_DATA_DIR": str(settings.data_dir),
        "FEDERICA_WORKER_POLL_S": str(POLL_S),
    }
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "federica", "worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("LISTEN", lambda: "listening for events" in log.read_text(), 120)
        yield log
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_a_worker_process_starts_a_slice_booked_now_without_its_poll(
    lab: Context, worker_log: Path
) -> None:
    active = SliceStatus.ACTIVE
    # The first slice proves the worker runs (however it found it); the second is booked
    # once the worker has passed its claim for the first, so only a wake-up finds it
    # before the 30 s poll.
    first = book(lab, lab.settings, request("first", lab.now()), lab.now())
    wait_for("the first active", lambda: status(lab, first).status is active, 120)
    second = book(lab, lab.settings, request("second", lab.now(), pop="PSN"), lab.now())
    took = wait_for("the second active", lambda: status(lab, second).status is active, 15)
    assert took < POLL_S / 2, worker_log.read_text()
