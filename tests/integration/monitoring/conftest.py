"""A real net-snmp agent on loopback serving an IF-MIB table the test writes (no namespaces:
it needs no root and starts in a moment)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from federica.monitoring import snmp

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
REPO = Path(__file__).resolve().parents[3]
COMMUNITY = "monitor-test"
# An SNMPv3 authPriv user (USM keys need 8 characters at least).
V3_USER, V3_AUTH, V3_PRIV = "poller", "auth-passphrase-1", "priv-passphrase-2"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Agent:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_udp_port()
        self.rows_file = root / "rows.json"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "snmp").mkdir(parents=True, exist_ok=True)
        helper = f"{sys.executable} -m tests.integration.monitoring.table_agent {self.rows_file}"
        (root / "snmpd.conf").write_text(
            f"agentAddress udp:127.0.0.1:{self.port}\n"
            f"rocommunity {COMMUNITY} 127.0.0.1\n"
            f"createUser {V3_USER} SHA-256 {V3_AUTH} AES {V3_PRIV}\n"
            f"rouser {V3_USER} priv\n"
            f"pass_persist -p 1 .1.3.6.1.2.1.2 {helper}\n"
            f"pass_persist -p 1 .1.3.6.1.2.1.31.1.1 {helper}\n"
        )

    def write(self, rows: dict[int, dict[str, Any]]) -> None:
        tmp = self.rows_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({str(k): v for k, v in rows.items()}))
        tmp.replace(self.rows_file)

    def start(self) -> None:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "SNMP_PERSISTENT_DIR": str(self.root / "snmp"),
            "MIBDIRS": str(self.root / "snmp"),
            "MIBS": "",
            "PYTHONPATH": str(REPO),
        }
        argv = [SNMPD, "-f", "-C", "-c", str(self.root / "snmpd.conf"), "-Lf"]
        argv += [str(self.root / "snmpd.log"), "-I", "-ifTable,-ifXTable,-interfaces,-smux"]
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO)
        deadline = time.monotonic() + 30
        while True:
            try:
                snmp.get("127.0.0.1", self.port, COMMUNITY, ["1.3.6.1.2.1.1.3.0"], timeout=1.0)
                return
            except snmp.SnmpError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"snmpd did not answer; see {self.root}/snmpd.log") from None

    def uptime_ticks(self) -> int:
        got = snmp.get("127.0.0.1", self.port, COMMUNITY, ["1.3.6.1.2.1.1.3.0"], timeout=5.0)
        return int(got["1.3.6.1.2.1.1.3.0"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = Agent(tmp_path / "agent")
    a.write({1: {"name": "ge-0/0/0", "alias": "to erl", "in_octets": 100, "out_octets": 200}})
    a.start()
    try:
        yield a
    finally:
        a.stop()
