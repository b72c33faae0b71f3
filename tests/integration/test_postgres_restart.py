"""Chaos: PostgreSQL stops while clients book, extend and release through gunicorn, and
starts again. Every answer is a decision (2xx or 409) or a 503 problem with Retry-After,
within a bound: never a 500, never a dropped connection or a hang. Booking resumes once
the database is back; nothing is half-booked, every 201 is in the database, every slice
has its audit entry (it commits with the booking), every release answered is stored with
its entry, and the SQL audit finds no conflict.

The shared PostgreSQL at 127.0.0.1:5432 serves everyone's tests: this one runs a private
instance (initdb into a temporary directory, its own loopback port) that it may stop."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from federica import migrate
from federica.config import Settings
from federica.context import make_context
from federica.db import make_engine
from tests.accounts import make_user
from tests.conftest import EXAMPLES, REPO
from tests.helpers import load_file
from tests.integration.test_concurrent_http import free_port
from tests.integration.test_worker_leader import wait_for
from tests.service.slices.audit import violations

pytestmark = pytest.mark.integration
CLIENTS = 6
ANSWER_WITHIN_S = 30  # a request that takes longer counts as a hang
PROBLEM = "application/problem+json"
# A released slice gives back its (future) reservations; its parts and events stay.
HALF_BOOKED = """
SELECT count(*) FROM slices s
 WHERE (s.status <> 'ended' AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.slice_id = s.id))
    OR NOT EXISTS (SELECT 1 FROM slice_nodes n WHERE n.slice_id = s.id)
    OR NOT EXISTS (SELECT 1 FROM slice_circuits c WHERE c.slice_id = s.id)
    OR NOT EXISTS (SELECT 1 FROM slice_events e WHERE e.slice_id = s.id)
"""
UNAUDITED = """
SELECT count(*) FROM slices s WHERE NOT EXISTS (
  SELECT 1 FROM audit_log a
   WHERE a.slice_id = s.id AND a.action = 'slice.create' AND a.status = 201)
"""


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    ctl = found[-1] if found else (Path(p) if (p := shutil.which("pg_ctl")) else None)
    if ctl is None:
        pytest.fail("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    return ctl.parent


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port, run by the postgres user
    when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="federica-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def run(self, *argv: str) -> None:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}{done.stderr}"

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        log = str(self.dir / "server.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


@dataclass
class Answer:
    op: str
    name: str
    status: int  # -1: connection dropped or no answer within ANSWER_WITHIN_S
    content_type: str
    retry_after: str | None


def answering(port: int, server: subprocess.Popen[bytes], log: Path) -> bool:
    assert server.poll() is None, log.read_text()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5):
            return True
    except OSError:
        return False


def booking(name: str, start: dt.datetime) -> dict[str, Any]:
    return {
        "name": name,
        "project": "lab",
        "window": {"start": start.isoformat(), "duration": "2h"},
        "nodes": [{"name": "a", "pop": "PRG", "vcpu": 1}, {"name": "b", "pop": "MIL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
    }


def test_postgres_restarted_during_bookings_gives_503_or_success_and_nothing_half_done(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    pg = private_postgres
    with psycopg.connect(pg.url, autocommit=True, connect_timeout=5) as admin:
        admin.execute('CREATE DATABASE "federica"')
    url = pg.url.rsplit("/", 1)[0] + "/federica"
    engine = make_engine(url)
    migrate.upgrade(engine)
    ctx = make_context(Settings(data_dir=tmp_path, database_url=url), engine=engine)
    load_file(ctx, EXAMPLES / "topologies" / "core4.yaml")
    tokens = [make_user(ctx, f"r{i}", projects=["lab"]) for i in range(CLIENTS)]
    engine.dispose()
    base = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
        minute=0, second=0, microsecond=0
    )
    port = free_port()
    env = os.environ | {"FEDERICA_DATABASE_URL": url, "FEDERICA_DATA_DIR": str(tmp_path)}
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "federica", "serve", "--port", str(port)]
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*argv, "--workers", "2", "--threads", "2"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    answers: list[Answer] = []
    lock, stop = threading.Lock(), threading.Event()

    def client(i: int) -> None:
        rnd, n = random.Random(i), 0
        held: list[str] = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN_S)
        while not stop.is_set():
            roll = rnd.random()
            if not held or roll < 0.6:
                name = f"c{i}-{n}"
                n += 1
                op, path = "book", "/api/v1/slices"
                body: dict[str, Any] = booking(name, base + dt.timedelta(hours=rnd.randrange(24)))
            elif roll < 0.8:
                name = held[-1]
                op, path, body = "extend", f"/api/v1/slices/{name}/extend", {"by": "1h"}
            else:
                name = held.pop(rnd.randrange(len(held)))
                op, path, body = "release", f"/api/v1/slices/{name}/release", {}
            headers = {"Authorization": f"Bearer {tokens[i]}", "Content-Type": "application/json"}
            try:
                conn.request("POST", path, body=json.dumps(body), headers=headers)
                response = conn.getresponse()
                response.read()
                answer = Answer(
                    op,
                    name,
                    response.status,
                    response.getheader("Content-Type", ""),
                    response.getheader("Retry-After"),
                )
            except (OSError, http.client.HTTPException):
                answer = Answer(op, name, -1, "", None)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN_S)
            if op == "book" and answer.status == 201:
                held.append(name)
            with lock:
                answers.append(answer)
        conn.close()

    def seen(condition: Any) -> int:
        with lock:
            return sum(1 for a in answers if condition(a))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        wait_for("the server", lambda: answering(port, server, log), timeout=180)
        for t in threads:
            t.start()
        wait_for("bookings under way", lambda: seen(lambda a: a.status == 201) >= 10, timeout=180)
        pg.stop("fast")  # every connection of every replica is cut
        wait_for("clients told to try again", lambda: seen(lambda a: a.status == 503) >= 5, 120)
        pg.start()
        with lock:
            at_restart = len(answers)
        wait_for(
            "bookings after the restart",
            lambda: sum(1 for a in answers[at_restart:] if a.status == 201) >= 10,
            timeout=180,
        )
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(timeout=2 * ANSWER_WITHIN_S)
        server.terminate()
        server.wait(timeout=60)

    statuses = sorted({a.status for a in answers})
    assert set(statuses) <= {200, 201, 202, 409, 503}, (statuses, log.read_text()[-3000:])
    unavailable = [a for a in answers if a.status == 503]
    assert all(a.content_type == PROBLEM and a.retry_after for a in unavailable)
    assert "Traceback" not in log.read_text()

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM slices")).scalars())
            assert conn.execute(text(HALF_BOOKED)).scalar() == 0
            assert conn.execute(text(UNAUDITED)).scalar() == 0
            ended = set(
                conn.execute(text("SELECT name FROM slices WHERE status = 'ended'")).scalars()
            )
            released_audited = set(
                conn.execute(
                    text(
                        "SELECT s.name FROM slices s JOIN audit_log a ON a.slice_id = s.id "
                        "WHERE a.action = 'slice.change' AND a.target LIKE '%/release' "
                        "AND a.status = 200"
                    )
                ).scalars()
            )
        booked = {a.name for a in answers if a.op == "book" and a.status == 201}
        released = {a.name for a in answers if a.op == "release" and a.status == 200}
        assert booked <= names  # every 201 was committed
        # A booking answered 503 may have committed (the connection died in its COMMIT):
        # then whole, with its entry (checked above). Nothing else appears.
        assert names <= booked | {a.name for a in unavailable if a.op == "book"}
        assert released <= ended and released <= released_audited
        assert set(violations(engine).values()) == {0}
    finally:
        engine.dispose()
