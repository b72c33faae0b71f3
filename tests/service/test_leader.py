"""Leader election on the real database (advisory lock on PostgreSQL, file lock on
SQLite): one leader at a time, the lead moves when it is given up, and a leader whose
heartbeat fails (its session was killed) stops leading."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from federica.context import Context
from federica.leader import Leadership, holder

LEASE_S = 1.5


def test_one_leader_at_a_time_and_the_lead_moves_when_given_up(db: Context) -> None:
    changes: list[tuple[str, bool]] = []
    a = Leadership(db.engine, "t-one", "a", LEASE_S, lambda up: changes.append(("a", up)))
    b = Leadership(db.engine, "t-one", "b", LEASE_S, lambda up: changes.append(("b", up)))
    a.start()
    try:
        assert a.wait(True, timeout=30)
        b.start()
        # b campaigns every third of a lease; over two leases it must never win.
        deadline = time.monotonic() + 2 * LEASE_S
        while time.monotonic() < deadline:
            assert a.leading and not b.leading
            time.sleep(0.05)
        if db.engine.dialect.name == "postgresql":
            assert holder(db.engine, "t-one") == "federica:t-one:a"
        a.stop()
        assert not a.leading
        assert b.wait(True, timeout=30)
    finally:
        a.stop()
        b.stop()
    assert changes == [("a", True), ("a", False), ("b", True), ("b", False)]


def test_a_leader_whose_session_is_killed_steps_down(db: Context) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's file lock lives as long as the process")
    a = Leadership(db.engine, "t-killed", "a", LEASE_S)
    a.start()
    try:
        assert a.wait(True, timeout=30)
        with db.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'federica:t-killed:a'"
                )
            )
        assert a.wait(False, timeout=30)
        # Its database is still there: it campaigns again and wins (no one else does).
        assert a.wait(True, timeout=30)
    finally:
        a.stop()
