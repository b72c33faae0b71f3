"""The audit log's retention, on both databases: a closed year leaves the table whole,
only after it was archived and only if its rows still hash to the archive; the guard is
back afterwards; the anonymous counts can be read and their old days dropped."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from federica.aaa import audit
from federica.aaa.models import AuditEntry
from federica.aaa.policy import console
from federica.context import Context
from federica.db import transaction
from tests.accounts import make_user
from tests.service.cli.test_aaa_cli import run

NOW = dt.datetime.now(dt.UTC)
OLD = NOW.year - 2


def _entry(db: Context, at: dt.datetime, action: str = "slice.create") -> None:
    audit.record(db.sessions, console("tester"), action, status=201, at=at, detail={"n": 1})


def test_a_closed_year_is_archived_then_removed_whole(
    db: Context, cli_env: dict[str, str], tmp_path: Path
) -> None:
    for month in (1, 6, 12):
        _entry(db, dt.datetime(OLD, month, 15, tzinfo=dt.UTC))
    _entry(db, dt.datetime(OLD + 1, 1, 1, tzinfo=dt.UTC))  # the next year: stays
    _entry(db, NOW)
    archive = tmp_path / f"audit-{OLD}.jsonl"
    code, out, err = run(cli_env, "audit", "archive", "--year", str(OLD), "--out", str(archive))
    assert code == 0, err
    digest = out.split("sha256 ")[1].split()[0]
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    lines = [json.loads(x) for x in archive.read_text().splitlines()]
    assert [x["at"][:7] for x in lines] == [f"{OLD}-01", f"{OLD}-06", f"{OLD}-12"]
    # Never over an existing archive; never a year still kept online.
    code, _, err = run(cli_env, "audit", "archive", "--year", str(OLD), "--out", str(archive))
    assert code == 2 and "never replaced" in err
    code, _, err = run(cli_env, "audit", "archive", "--year", str(OLD + 1), "--out", "x")
    assert code == 2 and "--year" in err and not Path("x").exists()

    # A row added to the year since (or a wrong digest): nothing is removed.
    with transaction(db.read_sessions) as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry)) or 0
    code, _, err = run(cli_env, "audit", "archive", "--year", str(OLD), "--remove",
                       "--sha256", "0" * 64)  # fmt: skip
    assert code == 1 and "do not hash to that digest" in err
    with transaction(db.read_sessions) as s:  # only the refusal's own entry was added
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before + 1

    # A person signed in (even an admin) may not remove; the console may.
    env = cli_env | {"FEDERICA_TOKEN": make_user(db, "root", "admin")}
    code, _, err = run(env, "audit", "archive", "--year", str(OLD), "--remove", "--sha256", digest)
    assert code == 1 and "console" in err
    code, out, err = run(cli_env, "audit", "archive", "--year", str(OLD), "--remove",
                         "--sha256", digest)  # fmt: skip
    assert code == 0, err
    assert "3 entries" in out
    with transaction(db.read_sessions) as s:
        left = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert all(e.at.year != OLD for e in left)
    assert any(e.at.year == OLD + 1 for e in left)
    done = [e for e in left if e.action == "audit.archive" and e.result == "ok"]
    assert len(done) == 1 and json.loads(done[0].detail)["entries"] == 3
    # The guard is back.
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))


def test_anonymous_counts_are_shown_and_old_days_dropped(
    db: Context, cli_env: dict[str, str]
) -> None:
    for day in (NOW - dt.timedelta(days=40), NOW):
        for _ in range(3):
            audit.count_anonymous(
                db.sessions, method="POST", route="unknown", status=404, address="192.0.2.9", at=day
            )
    code, out, err = run(cli_env, "audit", "anonymous", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["method"], r["route"], r["status"], r["count"]) for r in rows] == [
        ("POST", "unknown", 404, 3),
        ("POST", "unknown", 404, 3),
    ]
    cut = (NOW - dt.timedelta(days=30)).date().isoformat()
    code, out, err = run(cli_env, "audit", "anonymous", "--forget-before", cut, "--json")
    assert code == 0, err
    assert [r["day"] for r in json.loads(out[out.index("[") :])] == [NOW.date().isoformat()]
