"""Where B4's server CPU per decision goes: the same mix of book / extend / release as
bench/booking.py, run in one process through the Flask app (test client, one thread) on
a fresh PostgreSQL database, under cProfile timed by process CPU (not wall time: the
machine is shared). Prints CPU ms per decision with and without the profiler and the
cumulative CPU of the parts named in docs/benchmarks.md (B4).

Run: .venv/bin/python -m bench.booking_profile [--decisions 200] [--out /tmp/b4.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import logging
import pstats
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient

from bench.booking import Client, prepare, throwaway_database
from federica.app import create_app
from federica.config import Settings

# (label, predicate on (file, function)) of the parts to break the CPU down into.
PARTS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("auth (token -> principal)", lambda f, n: f.endswith("web/auth.py") and n == "_authenticate"),
    ("book (whole)", lambda f, n: n == "book_with_retry"),
    ("slice load for extend/release", lambda f, n: n == "slice_for"),
    ("ORM flush", lambda f, n: n == "flush" and f.endswith("orm/session.py")),
    ("commit", lambda f, n: n == "commit" and f.endswith("orm/session.py")),
    ("SQL execution (all)", lambda f, n: n == "_execute_context"),
    ("calendar index view", lambda f, n: f.endswith("slices/index.py") and n == "view"),
    ("audit entry", lambda f, n: f.endswith("aaa/audit.py") and n == "insert_entry"),
    ("JSON body checks", lambda f, n: f.endswith("federica/documents.py") and n == "_parse_json"),
    ("pydantic", lambda f, n: "pydantic" in f and n == "model_validate"),
    ("JSON answer", lambda f, n: "flask/json" in f and n == "response"),
    ("logging", lambda f, n: f.endswith("logging/__init__.py") and n == "_log"),
    ("Flask request (whole)", lambda f, n: f.endswith("flask/app.py") and n == "wsgi_app"),
]


def decide(tc: FlaskClient, c: Client, rnd: random.Random, name: str) -> tuple[str, int]:
    """One request of bench/booking.py's mix, through the app in this process."""
    roll = rnd.random()
    body: dict[str, object] | None
    if not c.held or roll < 0.6:
        op, path, body = "book", "/api/v1/slices", c._booking(rnd, name)
    elif roll < 0.8:
        op, path, body = "extend", f"/api/v1/slices/{c.held[-1]}/extend", {"by": "1h"}
    else:
        held = c.held.pop(rnd.randrange(len(c.held)))
        op, path, body = "release", f"/api/v1/slices/{held}/release", None
    answer = tc.post(
        path,
        data=json.dumps(body or {}),
        headers={"Authorization": f"Bearer {c.token}", "Content-Type": "application/json"},
    )
    if op == "book" and answer.status_code == 201 and body is not None:
        c.held.append(str(body["name"]))
    return op, answer.status_code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--decisions", type=int, default=200)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--out", type=Path, default=None, help="write the pstats file here")
    args = ap.parse_args()
    logging.getLogger("federica").setLevel(logging.WARNING)  # as bench/booking.py's servers
    n = args.decisions
    with throwaway_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
        tokens = prepare(url, Path(tmp), 4)
        tc = create_app(Settings(data_dir=Path(tmp), database_url=url)).test_client()
        base = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
            minute=0, second=0, microsecond=0
        )
        people = [Client(token, seed, base) for seed, token in enumerate(tokens)]
        rnd = random.Random(1)
        for i in range(20):  # warm: the calendar index loads the substrate
            decide(tc, people[i % 4], rnd, f"warm-{i}")
        t0 = time.process_time()
        for i in range(n):
            decide(tc, people[i % 4], rnd, f"plain-{i}")
        plain = (time.process_time() - t0) * 1000 / n
        profile = cProfile.Profile(time.process_time)
        ops: Counter[tuple[str, int]] = Counter()
        t0 = time.process_time()
        profile.enable()
        for i in range(n):
            ops[decide(tc, people[i % 4], rnd, f"profiled-{i}")] += 1
        profile.disable()
        profiled = (time.process_time() - t0) * 1000 / n
    print(f"CPU ms / decision: {plain:.1f} (profiled: {profiled:.1f}); decisions {dict(ops)}")
    stats = pstats.Stats(profile)
    if args.out:
        stats.dump_stats(args.out)
    total = profiled * n / 1000
    raw = stats.stats  # type: ignore[attr-defined]
    for label, matches in PARTS:
        cum = max((v[3] for (f, _line, name), v in raw.items() if matches(f, name)), default=0.0)
        print(f"{label:32s} {cum / total * 100:5.1f} % of CPU  ~{cum / total * plain:5.2f} ms")


if __name__ == "__main__":
    main()
