"""Faults of a booking across the border with real controller processes: the home
facility (alpha) killed between the two phases. Alpha is stopped at a failpoint
(federica/failpoints.py) after beta recorded its hold and before any commit is sent,
then SIGKILLed there; beta's leading worker frees the hold when it runs out, with no
call from alpha ever coming. Alpha, back, releases its own part of that booking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from federica.config import Settings
from federica.context import make_context
from federica.failpoints import BETWEEN_HOLD_AND_COMMIT
from federica.federation.models import GuestBooking, GuestState, RemotePart
from federica.slices.models import Slice
from tests.conftest import REPO
from tests.integration.federation.test_booking_at_a_peer import audit_of, post
from tests.integration.federation.test_interdomain_circuits import (
    ALPHA_BORDER,
    BETA_BORDER,
    across,
    border_rows,
    stitched,
)
from tests.integration.federation.test_two_facilities import Controller, controllers
from tests.integration.federation.test_two_facilities import start as start_controller

pytestmark = [pytest.mark.integration]
__all__ = ["controllers", "stitched"]  # the fixtures, shared
HOLD_S = 8
WITHIN_S = 180.0  # generous: the machine may be very busy


def wait_for(what: str, check: object, within_s: float = WITHIN_S) -> None:
    assert callable(check)
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s:.0f} s: {what}"
        time.sleep(0.2)


def restart(c: Controller, log: Path, extra_env: dict[str, str]) -> None:
    assert c.proc is not None
    c.proc.send_signal(signal.SIGTERM)
    c.proc.wait(timeout=60)
    c.proc = start_controller(c, log, extra_env)


def start_worker(c: Controller, log: Path) -> subprocess.Popen[bytes]:
    """`c`'s `federica worker` (its leader runs the duties: the guests' holds, the
    interrupted bookings), running them every 0.5 s."""
    env = os.environ | {"FEDERICA_DATA_DIR": str(c.data_dir), "FEDERICA_FEDERATION_HOLD_S":
                        str(HOLD_S), "FEDERICA_GUEST_HOLDS_EVERY_S": "0.5"}  # fmt: skip
    env.pop("FEDERICA_DATABASE_URL", None)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "federica", "worker"], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Workers a test starts (start_worker), stopped after it."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def home_parts(c: Controller) -> list[tuple[str, GuestState, str]]:
    """Alpha's records of its parts at peers, with their slices' statuses (SQL)."""
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        with context.sessions() as s:
            found = s.execute(
                select(RemotePart.request_id, RemotePart.state, Slice.status).join(
                    Slice, Slice.id == RemotePart.slice_id
                )
            ).all()
            return [(str(r), GuestState(st), str(sl)) for r, st, sl in found]
    finally:
        context.engine.dispose()


def guest_states(c: Controller) -> list[tuple[str, GuestState]]:
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        with context.sessions() as s:
            found = s.execute(select(GuestBooking.request_id, GuestBooking.state)).all()
            return [(str(r), GuestState(st)) for r, st in found]
    finally:
        context.engine.dispose()


def test_the_home_facility_killed_between_the_phases_leaves_nothing_booked_at_the_peer(
    stitched: tuple[Controller, Controller, str],
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    alpha, beta, alice = stitched
    workers.append(start_worker(beta, tmp_path / "beta-worker.log"))
    alpha_log = tmp_path / "alpha-failpoint.log"
    restart(alpha, alpha_log, {"FEDERICA_FAILPOINTS": BETWEEN_HOLD_AND_COMMIT,
                               "FEDERICA_FEDERATION_HOLD_S": str(HOLD_S)})  # fmt: skip
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Never answered: alpha stops at the failpoint and is killed there.
        pending = pool.submit(post, alpha, "/api/v1/slices", across("killed-home", 1), alice)
        reached = f"failpoint {BETWEEN_HOLD_AND_COMMIT} reached"
        wait_for("alpha at its failpoint", lambda: reached in alpha_log.read_text())
        # Beta recorded the hold (the border tag is held there), nothing committed.
        ((request_id, state),) = guest_states(beta)
        assert state == GuestState.HELD
        (held,) = border_rows(beta, BETA_BORDER)
        assert 3000 <= held[1] <= 3099
        assert alpha.proc is not None
        alpha.proc.kill()  # SIGKILL
        alpha.proc.wait()
        alpha.proc = None
        with pytest.raises(OSError, match=r"(?i)closed|reset|refused|disconnect|abort"):
            pending.result(timeout=60)
    # Beta frees the hold itself once it runs out (no peer call will ever come).
    wait_for(
        "beta freed the hold", lambda: guest_states(beta) == [(request_id, GuestState.ABORTED)]
    )
    assert border_rows(beta, BETA_BORDER) == []
    expired = audit_of(beta, "federation.expire")
    assert [(who, d["home"]) for who, d in expired] == [("federation", "alpha")]

    # Alpha, back (no failpoint), still has its part booked and beta's `held`: its
    # leading worker releases it once the peers' holds are surely gone (2 x the timeout).
    ((home_request, home_state, home_status),) = home_parts(alpha)
    assert (home_request, home_state, home_status) == (request_id, GuestState.HELD, "scheduled")
    assert len(border_rows(alpha, ALPHA_BORDER)) == 1
    alpha.proc = start_controller(alpha, tmp_path / "alpha-again.log",
                                  {"FEDERICA_FEDERATION_HOLD_S": str(HOLD_S)})  # fmt: skip
    workers.append(start_worker(alpha, tmp_path / "alpha-worker.log"))
    wait_for("alpha settled its interrupted booking",
             lambda: home_parts(alpha) == [(request_id, GuestState.ABORTED, "ended")])  # fmt: skip
    assert border_rows(alpha, ALPHA_BORDER) == []
    assert border_rows(beta, BETA_BORDER) == []


def test_a_release_the_peer_missed_while_down_reaches_it_when_it_returns(
    stitched: tuple[Controller, Controller, str],
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """Alpha releases a slice across the border while beta is dead (SIGKILL): beta's part
    stays committed there. Alpha's leading worker retries the release until beta, back,
    hears it and frees its part (SQL at both sides)."""
    alpha, beta, alice = stitched
    status, body = post(alpha, "/api/v1/slices", across("missed", 1), alice)
    assert status == 201, body
    ((request_id, state),) = guest_states(beta)
    assert state == GuestState.COMMITTED
    assert len(border_rows(beta, BETA_BORDER)) == 1
    assert beta.proc is not None
    beta.proc.kill()  # SIGKILL
    beta.proc.wait()
    beta.proc = None
    status, released = post(alpha, f"/api/v1/slices/{body['slice']['id']}/release", {}, alice)
    assert status == 200, released
    assert home_parts(alpha) == [(request_id, GuestState.COMMITTED, "ended")]  # not told
    assert border_rows(alpha, ALPHA_BORDER) == []
    assert len(border_rows(beta, BETA_BORDER)) == 1  # still booked in beta's database
    workers.append(start_worker(alpha, tmp_path / "alpha-worker.log"))
    beta.proc = start_controller(beta, tmp_path / "beta-again.log")
    wait_for("beta heard the release",
             lambda: guest_states(beta) == [(request_id, GuestState.ABORTED)])  # fmt: skip
    wait_for("alpha recorded it",
             lambda: home_parts(alpha) == [(request_id, GuestState.ABORTED, "ended")])  # fmt: skip
    assert border_rows(beta, BETA_BORDER) == []
