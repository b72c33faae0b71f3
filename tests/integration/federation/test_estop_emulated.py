"""`federica demo --federation` with both emulated facilities (as root), all real: two
controller processes, each with its emulated network (NETCONF devices, snmpd, V-nodes in
namespaces and cgroups, the slice gateway's sshd), their border devices joined by an
emulated border link.

The demo account at A (`federica`) books a slice with a node at B (`jgn/TYO`) through A,
and logs in to it through B's slice gateway with the key A's assertion carried, using the
`access` that A's `GET /api/v1/slices/{ref}/remote` shows. An operator at A e-stops the
slice: B isolates its node as B's own e-stop does (the gateway refuses the login, the
node's processes frozen), audited at both naming the other. B's border link goes down:
B's monitor raises a port-down alarm, and A shows it (a `peer-alarm` naming A's slice);
when the link comes back, both clear."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from federica.aaa.models import AuditEntry, Role
from federica.config import Settings
from federica.context import make_context
from federica.db import transaction
from federica.slices.models import Slice
from federica.substrate.drivers.compute.netns import for_emulated_host
from federica.substrate.emulator.plan import namespace_name, plan_facility
from federica.substrate.topology import parse_topology
from tests.accounts import make_user
from tests.conftest import REPO
from tests.integration.conftest import needs_root
from tests.integration.federation.test_demo_federation import four_free_ports
from tests.integration.slice_helpers import known_hosts_for, ssh

pytestmark = [pytest.mark.integration, needs_root]
UP_WITHIN_S = 600.0
WITHIN_S = 300.0


@dataclass
class Side:
    data_dir: Path
    port: int
    prefix: str  # its emulator's

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, emulator_prefix=self.prefix)

    def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310  (loopback)
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def query(self, fn: Callable[[Any], Any]) -> Any:
        context = make_context(self.settings)
        try:
            with transaction(context.read_sessions) as s:
                return fn(s)
        finally:
            context.engine.dispose()

    def user(self, username: str, role: Role) -> str:
        context = make_context(self.settings)
        try:
            return make_user(context, username, role)
        finally:
            context.engine.dispose()

    def audit(self, action: str) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = self.query(lambda s: [
            (a.actor, json.loads(a.detail))
            for a in s.scalars(select(AuditEntry).where(AuditEntry.action == action))
        ])  # fmt: skip
        return found


def wait_for(what: str, check: Callable[[], Any], within: float = WITHIN_S) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(1)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    base = four_free_ports()
    prefix = demo_prefix()
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(tmp_path / "var"),
        "FEDERICA_EMULATOR_PREFIX": prefix,
        "FEDERICA_MONITOR_INTERVAL_S": "3",
        "FEDERICA_PEER_ALARMS_EVERY_S": "2",
        "FEDERICA_ESTOP_RELAY_EVERY_S": "2",
    }
    env.pop("FEDERICA_DATABASE_URL", None)
    log = tmp_path / "demo.log"
    argv = [sys.executable, "-m", "federica", "demo", "--federation", "--port", str(base)]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + UP_WITHIN_S
        while "book at jgn from federica" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        assert "border link:" in log.read_text(), log.read_text()
        root = tmp_path / "var" / "federation-demo"
        yield (Side(root / "federica", base, f"{prefix}a"),
               Side(root / "jgn", base + 2, f"{prefix}b"))  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert log.read_text().count("stopped in") == 2, log.read_text()[-3000:]


def demo_prefix() -> str:
    """The demo's emulator prefix (A's is `<prefix>a`, B's `<prefix>b`)."""
    return f"fx{os.getpid() % 10000}"


def border_far_end(prefix: str) -> tuple[str, str]:
    """B's border port's far end (in the bridge that is the border link), and its
    namespace."""
    topo = parse_topology((REPO / "examples" / "topologies" / "jgn2plus.yaml").read_bytes())
    plan = plan_facility(topo, prefix)
    ifname = next(d for d in plan.devices if d.name == "tyo-mx").port("xe-2/0/0").ifname
    ns = namespace_name(prefix, "tyo-mx")
    wire = next(w for w in plan.wires if w.a_ns == ns and w.a_if == ifname)
    return ns, wire.b_if


def border_state(b: Side, ns: str) -> dict[str, Any]:
    """What B knows of its border port (for a failure's message)."""
    from federica.alarms.models import Alarm
    from federica.monitoring.models import MonitoredInterface

    links = subprocess.run(["ip", "-n", ns, "-br", "link"], capture_output=True, text=True)
    return {
        "alarms": b.query(lambda s: [(x.kind, x.subject, x.cleared_at is None)
                                     for x in s.scalars(select(Alarm))]),
        "polled": b.query(lambda s: [(i.name, i.admin_status, i.oper_status, str(i.last_seen))
                                     for i in s.scalars(select(MonitoredInterface))
                                     if i.name.startswith("xe-2/0/0")]),
        "links": links.stdout,
    }  # fmt: skip


def test_login_at_b_estop_at_a_isolates_at_b_and_bs_border_alarm_shows_at_a(
    demo: tuple[Side, Side], tmp_path: Path
) -> None:
    a, b = demo
    token = (a.data_dir / "demo-token").read_text().strip()
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    doc = {
        "name": "jp", "window": {"start": "now", "duration": "1h"},
        "nodes": [{"name": "h", "pop": "PSN"}, {"name": "t", "pop": "jgn/TYO"}],
        "ssh_keys": [key.with_suffix(".pub").read_text().strip()],
    }  # fmt: skip
    status, body = a.call("POST", "/api/v1/slices", token, doc)
    assert status == 201, body
    sid = body["slice"]["id"]

    # B's worker builds its part; A's researcher sees how to log in to it, and does.
    def built() -> dict[str, Any] | None:
        status, now = a.call("GET", f"/api/v1/slices/{sid}/remote", token)
        assert status == 200, now
        (part,) = now["remote"]
        assert part["slice"]["status"] in ("scheduled", "provisioning", "active"), part
        return part if part["slice"]["status"] == "active" else None

    part = wait_for("B built its part", built)
    there = part["slice"]
    access = there["access"]
    known = known_hosts_for(tmp_path / "known_hosts", access["port"], b.settings.gateway_dir,
                            there["id"])  # fmt: skip
    login = ssh(key, access["port"], "t", "echo", "hello-from-tyo", known_hosts=known)
    assert login.returncode == 0 and "hello-from-tyo" in login.stdout, login
    (node,) = there["nodes"]
    driver = for_emulated_host(node["v_node"], b.settings)
    node_id = f"s{there['id']}-t"
    pids = {p["pid"] for p in driver.processes(node_id)}
    assert pids and not driver.is_frozen(node_id)

    # An operator at A stops the slice: B isolates its part as its own e-stop does.
    oscar = a.user("oscar", Role.OPERATOR)
    status, stopped = a.call("POST", f"/api/v1/slices/{sid}/estop", oscar,
                             {"reason": "scans Tokyo", "ticket": "NOC-24"})  # fmt: skip
    assert status == 200, stopped

    def b_status() -> str:
        return str(b.query(lambda s: s.scalar(select(Slice.status).where(
            Slice.id == there["id"]))).value)  # fmt: skip

    wait_for("B shut its part down", lambda: b_status() == "shutdown")
    bea = b.user("bea", Role.OPERATOR)

    def isolation_reported() -> dict[str, Any] | None:
        # The status is committed first, the isolation's report once it is done.
        status, record = b.call("GET", f"/api/v1/slices/{there['id']}/estop", bea)
        assert status == 200, record
        return record if "built" in record["report"] else None

    record = wait_for("B reported its isolation", isolation_reported)
    assert (record["state"], record["by"]) == ("in-force", "peer:federica")
    assert record["report"]["built"] is True and record["report"]["isolated"] is True, record
    assert record["report"]["gateway"] == "closed"
    assert driver.is_frozen(node_id)
    assert {p["pid"] for p in driver.processes(node_id)} == pids  # frozen, not killed
    assert ssh(key, access["port"], "t", "true", known_hosts=known).returncode != 0
    # Audited at both, each naming the other.
    ((actor, detail),) = b.audit("federation.estop")
    assert (actor, detail["home"], detail["stopped"]) == ("peer:federica", "federica", True)
    ((_, detail),) = wait_for("A audited the relay", lambda: a.audit("federation.estop.relay"))
    assert (detail["peer"], detail["state"], detail["remote_status"]) == (
        "jgn", "delivered", "shutdown"
    )  # fmt: skip

    # B's border link goes down: B's monitor raises it, A shows it with A's slice.
    def at_a() -> list[dict[str, Any]]:
        status, found = a.call("GET", "/api/v1/monitoring/alarms", oscar)
        assert status == 200, found
        return [x for x in found if x["kind"] == "peer-alarm"]

    ns, far = border_far_end(b.prefix)
    subprocess.run(["ip", "-n", ns, "link", "set", "dev", far, "down"], check=True)
    try:
        try:
            (alarm,) = wait_for("the border alarm at A", at_a)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; at B: {border_state(b, ns)}") from None
        assert alarm["subject"].startswith("jgn:") and "tyo-mx:xe-2/0/0" in alarm["subject"]
        assert "its border port facing us" in alarm["detail"], alarm
        assert [s["name"] for s in alarm["slices"]] == ["jp"]
    finally:
        subprocess.run(["ip", "-n", ns, "link", "set", "dev", far, "up"], check=True)
    wait_for("the border alarm at A cleared", lambda: not at_a())
