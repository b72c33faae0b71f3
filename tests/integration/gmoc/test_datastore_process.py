"""A real controller (`federica serve --gmoc-port`) serving the datastore over TLS: a
collector with a certificate from the trust root reads schema-valid objects and the rates
the test wrote into the store; no certificate is 401 (counted); a certificate the trust root
did not issue fails the handshake (audited); a one-project collector's token sees no other project;
a malformed q is 400 naming the field."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select

from federica.aaa.models import AnonymousRequest, AuditEntry
from federica.config import Settings
from federica.context import make_context
from federica.federation import identity
from federica.gmoc.objects import us
from tests.conftest import EXAMPLES, REPO
from tests.gmoc_facility import AUTHORITY, T0, Facility, populate
from tests.gmoc_schemas import check
from tests.integration.demo_process import free_port, get_json
from tests.integration.federation.test_two_facilities import self_signed

pytestmark = [pytest.mark.integration]
UP_WITHIN_S = 90


@dataclass
class Running:
    data_dir: Path
    gmoc_port: int
    facility: Facility
    clearinghouse: identity.Facility  # the trust root, and the collector's certificate
    p1_token: str

    def connect(self, context: ssl.SSLContext) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.gmoc_port, timeout=60, context=context)

    def tls(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=self.data_dir / "federation" / "ca.pem")
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
        return context

    def collector_tls(self) -> ssl.SSLContext:
        files = self.clearinghouse.files
        return self.tls(files.client_cert, files.client_key)


def cli(data_dir: Path, *args: str) -> str:
    env = os.environ | {"FEDERICA_DATA_DIR": str(data_dir)}
    env.pop("FEDERICA_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "federica", *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def get(conn: http.client.HTTPSConnection, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    return r.status, json.loads(r.read())


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    data_dir = tmp_path / "fed"
    port, gmoc_port = free_port(set()), 0
    gmoc_port = free_port({port})
    cli(data_dir, "federation", "init", "--name", "fed", "--authority", AUTHORITY)
    cli(data_dir, "substrate", "load", str(EXAMPLES / "topologies" / "core4.yaml"))
    ch = identity.init(
        tmp_path / "ch", "ch", "ch.example", hosts=["127.0.0.1"], now=dt.datetime.now(dt.UTC)
    )
    ctx = make_context(Settings(data_dir=data_dir))
    facility = populate(ctx)
    cli(data_dir, "gmoc", "collector", "add", "gmoc", "--cert-name", ch.urn)
    added = cli(data_dir, "gmoc", "collector", "add", "p1-only", "--token", "--project", "p1")
    p1_token = added.rsplit(": ", 1)[1].strip()
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(data_dir),
        "FEDERICA_GMOC_TRUST_ROOTS": str(ch.files.ca_cert),
    }
    env.pop("FEDERICA_DATABASE_URL", None)
    argv = [sys.executable, "-m", "federica", "serve", "--port", str(port),
            "--gmoc-port", str(gmoc_port)]  # fmt: skip
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + UP_WITHIN_S
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"never answered:\n{log.read_text()}"
            try:
                # The datastore's listener is bound before the API serves.
                get_json(f"http://127.0.0.1:{port}/api/v1/openapi.json")
                break
            except OSError:
                time.sleep(0.2)
        yield Running(data_dir, gmoc_port, facility, ch, p1_token)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        ctx.engine.dispose()


def test_a_collector_reads_the_datastore_over_tls(running: Running, tmp_path: Path) -> None:
    conn = running.connect(running.collector_tls())
    status, ops = get(conn, "/info/opsconfig/fed")
    assert status == 200, ops
    check(ops)
    agg_path = urlsplit(ops["aggregatestores"][0]["href"]).path
    status, agg = get(conn, agg_path)
    assert status == 200 and check(agg)["selfRef"].startswith(
        f"https://127.0.0.1:{running.gmoc_port}/"
    )
    assert len(agg["slivers"]) == 2
    device, port, tag = running.facility.vlans["p1"][0]
    vlan = f"{AUTHORITY}_interface_{device}:{port}:{tag}"
    check(get(conn, f"/info/interfacevlan/{quote(vlan, safe=':')}")[1])
    q = {
        "filters": {
            "eventType": ["ops_monitoring:rx_bps"],
            "obj": {"type": "interfacevlan", "id": [vlan]},
            "ts": {"gte": us(T0), "lt": us(T0) + 600_000_000},
        }
    }
    status, answer = get(conn, "/data/?q=" + quote(json.dumps(q)))
    assert status == 200, answer
    (rx,) = [check(a) for a in answer]
    assert [p["ts"] for p in rx["tsdata"]] == [us(T0) + i * 30_000_000 for i in range(20)]
    assert {p["v"] for p in rx["tsdata"]} == {100 * tag * 8}
    q["filters"]["ts"] = {"gte": us(T0) + 1, "lt": us(T0)}
    status, problem = get(conn, "/data/?q=" + quote(json.dumps(q)))
    assert status == 400 and problem["errors"][0]["field"] == "filters.ts"
    conn.close()

    # No certificate and no token: 401, as problem+json.
    conn = running.connect(running.tls())
    status, problem = get(conn, "/info/aggregate/fed")
    assert status == 401 and "certificate" in problem["detail"]
    # A collector allowed one project, by its token: the other project is not there.
    status, mine = get(
        conn, f"/info/slice/{AUTHORITY}_slice_{running.facility.slices['p1']}", running.p1_token
    )
    assert status == 200 and check(mine)["name"] == "s1"
    status, _ = get(
        conn, f"/info/slice/{AUTHORITY}_slice_{running.facility.slices['p2']}", running.p1_token
    )
    assert status == 404
    conn.close()

    # A certificate the trust root did not issue: the handshake fails, and is audited.
    cert, key = self_signed(tmp_path)
    conn = running.connect(running.tls(cert, key))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(conn, "/info/aggregate/fed")
    conn.close()
    ctx = make_context(Settings(data_dir=running.data_dir))
    deadline = time.monotonic() + 30
    try:
        while True:
            with ctx.read_sessions() as s:
                actions = set(s.scalars(select(AuditEntry.action)))
                # The 401 of nobody identified is counted, not a row of its own.
                counted = s.scalar(
                    select(AnonymousRequest.count).where(
                        AnonymousRequest.route == "gmoc.info", AnonymousRequest.status == 401
                    )
                )
            if "gmoc.handshake" in actions and counted == 1:
                break
            assert time.monotonic() < deadline, (actions, counted)
            time.sleep(0.2)
    finally:
        ctx.engine.dispose()
