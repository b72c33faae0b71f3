"""One emulated device's files and processes: netconfd, sshd (netconf subsystem), snmpd,
and the device agent."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from federica.files import write_private
from federica.substrate.drivers.netconf.federica_l2 import interfaces_config
from federica.substrate.drivers.netconf.session import sha256_fingerprint
from federica.substrate.emulator import processes, snmpv3
from federica.substrate.emulator.iproute import IP
from federica.substrate.emulator.plan import DevicePlan

YANG_DIR = Path(__file__).resolve().parent / "yang"
YUMA_MODULES = Path("/usr/share/yuma/modules/ietf")
NETCONFD = shutil.which("netconfd") or "/usr/sbin/netconfd"
# Replaces yuma123's /usr/sbin/netconf-subsystem: see that module for why.
NETCONF_SUBSYSTEM = Path(__file__).resolve().parent / "subsystem.py"
SSHD = "/usr/sbin/sshd"
SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes
RUNTIME_ROOT = Path("/run/federica")  # short paths for Unix sockets


@dataclass(frozen=True)
class Login:
    """How clients (the agent, the controller) log in to emulated devices."""

    username: str
    key_file: Path
    community: str


def generate_key(path: Path, comment: str) -> str:
    """An ed25519 key pair at path(.pub); returns the public key's SHA256 fingerprint."""
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return fingerprint_of(path.with_suffix(".pub"))


def fingerprint_of(pub: Path) -> str:
    blob = base64.b64decode(pub.read_text().split()[1])
    return sha256_fingerprint(blob)


def netconfd_modules(plan: DevicePlan) -> list[Path]:
    mods = [
        YUMA_MODULES / "iana-if-type@2014-05-08.yang",
        YUMA_MODULES / "ietf-interfaces@2014-05-08.yang",
        YANG_DIR / "federica-l2@2026-11-21.yang",
    ]
    if not plan.vlan_translation:
        mods.append(YANG_DIR / "federica-l2-no-translation@2026-11-21.yang")
    return mods


def startup_ports(plan: DevicePlan) -> dict[str, bool]:
    """Each port's `enabled` in the startup configuration. A port with nothing plugged in
    starts shut down, as an operator leaves an unused port: admin-up without carrier is a
    fault (an alarm on any real facility), not an idle port. A border port too, until its
    border link is plugged in (`demo --federation` enables it then)."""
    return {p.name: p.underlay is not None and not p.underlay.group for p in plan.ports}


def write_files(plan: DevicePlan, ddir: Path, sock: Path, login: Login) -> str:
    """Everything the device's processes read; returns its host-key fingerprint."""
    ddir.mkdir(parents=True, exist_ok=True)
    (ddir / "yuma" / "data").mkdir(parents=True, exist_ok=True)
    (ddir / "snmp").mkdir(exist_ok=True)
    sock.parent.mkdir(parents=True, exist_ok=True)
    if len(str(sock)) > SOCKET_PATH_MAX:
        raise ValueError(f"{sock}: path too long for a Unix socket")
    fp = generate_key(ddir / "ssh_host_ed25519_key", f"federica-emulator {plan.name}")
    (ddir / "authorized_keys").write_text(login.key_file.with_suffix(".pub").read_text())
    startup = interfaces_config(startup_ports(plan))
    (ddir / "startup.xml").write_bytes(etree.tostring(startup, pretty_print=True))
    (ddir / "sshd_config").write_text(
        f"""# federica emulator: NETCONF over SSH for {plan.name}
Port {plan.netconf_port}
ListenAddress {plan.mgmt_host}
HostKey {ddir / "ssh_host_ed25519_key"}
PidFile none
AuthorizedKeysFile {ddir / "authorized_keys"}
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
MaxStartups 100:30:200
# AES-GCM only: an AEAD cipher needs no separate MAC, which paramiko checks byte by byte
# in Python (~3 ms of CPU per transaction measured). The controller's SSH client keeps
# its library defaults; the device's offer decides.
Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com
Subsystem netconf {sys.executable} -I -S {NETCONF_SUBSYSTEM} {sock}
"""
    )
    plan_file = ddir / "plan.json"
    plan_file.write_text(json.dumps(plan.to_json(), indent=1))
    helper = (
        f"{IP} netns exec {plan.namespace} {sys.executable} "
        f"-m federica.substrate.emulator.ifmib {plan_file}"
    )
    v3 = snmpv3.ensure_secret(login.key_file.parent)
    write_private(
        ddir / "snmpd.conf",
        f"""# federica emulator: SNMP agent for {plan.name} (IF-MIB from its namespace)
agentAddress udp:{plan.mgmt_host}:{plan.snmp_port}
rocommunity {login.community} 127.0.0.1
createUser {snmpv3.USER} SHA-256 {v3} AES {v3}
rouser {snmpv3.USER} priv
sysName {plan.name}
sysDescr federica emulated device {plan.name}
pass_persist -p 1 .1.3.6.1.2.1.2 {helper}
pass_persist -p 1 .1.3.6.1.2.1.31.1.1 {helper}
""",
    )
    (ddir / "agent.json").write_text(
        json.dumps({"username": login.username, "key_file": str(login.key_file), "fingerprint": fp})
    )
    return fp


def spawn_netconfd(plan: DevicePlan, ddir: Path, sock: Path) -> processes.Tracked:
    logs = ddir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = [
        NETCONFD,
        f"--ncxserver-sockname={sock}",
        f"--port={plan.netconf_port}",
        "--superuser=root",
        "--target=candidate",
        # A distinct startup datastore (:startup): commits are not written to disk, which
        # halves commit latency; `up` always starts from the generated startup anyway.
        "--with-startup=true",
        f"--startup={ddir / 'startup.xml'}",
        f"--yuma-home={ddir / 'yuma'}",
        f"--log={logs / 'netconfd.log'}",
        "--log-level=warn",
        *[f"--module={m}" for m in netconfd_modules(plan)],
    ]
    return processes.spawn(argv, name=f"netconfd {plan.name}", log_file=logs / "netconfd.out")[1]


def spawn_sshd(plan: DevicePlan, ddir: Path) -> processes.Tracked:
    return processes.spawn(
        [SSHD, "-D", "-e", "-f", str(ddir / "sshd_config")],
        name=f"sshd {plan.name}",
        log_file=ddir / "logs" / "sshd.log",
    )[1]


def spawn_snmpd(plan: DevicePlan, ddir: Path) -> processes.Tracked:
    # MIBDIRS/MIBS empty: the agent serves numeric OIDs and needs no MIB files (Debian ships
    # few), which keeps its log free of hundreds of "cannot find module" lines.
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "SNMP_PERSISTENT_DIR": str(ddir / "snmp"),
        "MIBDIRS": str(ddir / "snmp"),
        "MIBS": "",
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }
    logs = ddir / "logs"
    argv = [
        SNMPD,
        "-f",
        "-C",
        "-c",
        str(ddir / "snmpd.conf"),
        "-Lf",
        str(logs / "snmpd.log"),
        "-I",
        "-ifTable,-ifXTable,-interfaces,-smux",
    ]
    return processes.spawn(argv, name=f"snmpd {plan.name}", log_file=logs / "snmpd.out", env=env)[1]


def spawn_agent(plan: DevicePlan, ddir: Path) -> processes.Tracked:
    return processes.spawn(
        [sys.executable, "-m", "federica.substrate.emulator.agent", str(ddir)],
        name=f"agent {plan.name}",
        log_file=ddir / "logs" / "agent.log",
    )[1]


def start(plan: DevicePlan, ddir: Path, sock: Path) -> Iterator[processes.Tracked]:
    """Start the device's servers, yielding each as soon as it runs (the caller records it)."""
    yield spawn_netconfd(plan, ddir, sock)
    yield spawn_sshd(plan, ddir)
    yield spawn_snmpd(plan, ddir)
