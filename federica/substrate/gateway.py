"""The virtual gateway: FEDERICA's bridge from the researcher's world into a slice.

One OpenSSH server per slice on 127.0.0.1:<port>, with its own host key, accepting only
the slice's SSH keys, and only for a forced command that enters the node named in the
SSH command line (`ssh -p <port> root@127.0.0.1 <node> [command]`). No password, no
forwarding, no other command. The server daemonises, so it outlives the worker that
started it and is not that worker's child; `close` stops it and every session it holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from federica.substrate.emulator import processes
from federica.substrate.emulator.device import SSHD, generate_key

LISTEN = "127.0.0.1"
USER = "root"  # the only account that may enter a namespace


class GatewayError(RuntimeError):
    pass


@dataclass(frozen=True)
class GatewayInfo:
    host: str
    port: int
    user: str
    host_key: str  # SHA256 fingerprint, to check on first login
    nodes: tuple[str, ...]
    default_node: str

    def command(self, node: str | None = None) -> str:
        return f"ssh -p {self.port} {self.user}@{self.host} {node or self.default_node}"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "nodes": list(self.nodes), "ssh": self.command()}


class Gateways:
    """The gateways of one controller, each in `<root>/s<slice id>/`."""

    def __init__(self, root: Path) -> None:
        # sshd re-executes itself for every connection and reads its config again there:
        # every path in it (host key, pid file, keys, forced command) must be absolute.
        self.root = Path(os.path.abspath(root))

    def _dir(self, slice_id: int) -> Path:
        return self.root / f"s{slice_id}"

    def open(
        self,
        slice_id: int,
        keys: Sequence[str],
        consoles: Mapping[str, Sequence[str]],
        default_node: str,
    ) -> GatewayInfo:
        """Start (or restart) the slice's gateway. consoles: node -> the argv prefix that
        runs a command inside that node (the compute driver's `console`)."""
        if not keys:
            raise GatewayError("no SSH keys: nobody could log in")
        self.close(slice_id)
        d = self._dir(slice_id)
        d.mkdir(parents=True, mode=0o700)
        fingerprint = generate_key(d / "host_key", f"federica gateway s{slice_id}")
        enter = d / "enter"
        enter.write_text(_enter_script(slice_id, consoles, default_node))
        enter.chmod(0o700)
        restrict = f'restrict,pty,command="{enter}" '
        (d / "authorized_keys").write_text("".join(restrict + k.strip() + "\n" for k in keys))
        last = ""
        for _ in range(5):  # a port found free can be taken before sshd binds it
            port = _free_port()
            (d / "sshd_config").write_text(_sshd_config(d, port))
            proc = subprocess.run(
                [SSHD, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0 and _listening(port):
                info = GatewayInfo(
                    LISTEN, port, USER, fingerprint, tuple(sorted(consoles)), default_node
                )
                (d / "info.json").write_text(json.dumps(info.to_json()))
                return info
            last = proc.stderr.strip() or _tail(d / "sshd.log")
            self._stop_server(d)
        raise GatewayError(f"the gateway's sshd did not start: {last}")

    def info(self, slice_id: int) -> GatewayInfo | None:
        try:
            data = json.loads((self._dir(slice_id) / "info.json").read_text())
        except FileNotFoundError:
            return None
        data.pop("ssh", None)
        data["nodes"] = tuple(data["nodes"])
        return GatewayInfo(**data)

    def is_serving(self, slice_id: int) -> bool:
        return _server_pid(self._dir(slice_id)) is not None

    def close(self, slice_id: int) -> None:
        """Stop the gateway and its sessions (the shells inside nodes go with the nodes);
        nothing of it remains. Idempotent."""
        d = self._dir(slice_id)
        if not d.exists():
            return
        self._stop_server(d)
        for f in d.iterdir():
            f.unlink()
        d.rmdir()

    def close_all(self) -> int:
        if not self.root.exists():
            return 0
        ids = [int(p.name[1:]) for p in self.root.iterdir() if p.name[1:].isdigit()]
        for slice_id in ids:
            self.close(slice_id)
        return len(ids)

    @staticmethod
    def _stop_server(d: Path) -> None:
        pid = _server_pid(d)
        if pid is None:
            return
        sessions = [t.pid for t in processes.children_of(pid)]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + 2
            while _server_pid(d) is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            if _server_pid(d) is None:
                break
        for child in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        (d / "sshd.pid").unlink(missing_ok=True)


def _server_pid(d: Path) -> int | None:
    """The gateway's listening sshd, if it runs (checked against its command line)."""
    try:
        pid = int((d / "sshd.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if str(d / "sshd_config").encode() in cmdline else None


def _enter_script(slice_id: int, consoles: Mapping[str, Sequence[str]], default: str) -> str:
    cases = "".join(
        f"  {node}) set -- {shlex.join(argv)} ;;\n" for node, argv in sorted(consoles.items())
    )
    names = " ".join(sorted(consoles))
    return f"""#!/bin/sh
# federica gateway of slice {slice_id}: "<node> [command]" enters that node.
set -f
line=$SSH_ORIGINAL_COMMAND
node=${{line%% *}}
if [ "$node" = "$line" ]; then rest=""; else rest=${{line#* }}; fi
[ -n "$node" ] || node={default}
case "$node" in
{cases}  *) echo "no node named '$node' in this slice (nodes: {names})" >&2; exit 2 ;;
esac
if [ -n "$rest" ]; then exec "$@" /bin/sh -c "$rest"; fi
exec "$@" /bin/bash -l
"""


def _sshd_config(d: Path, port: int) -> str:
    return f"""# federica gateway
ListenAddress {LISTEN}:{port}
HostKey {d / "host_key"}
PidFile {d / "sshd.pid"}
AuthorizedKeysFile {d / "authorized_keys"}
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin forced-commands-only
AllowUsers {USER}
StrictModes no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
PermitTunnel no
X11Forwarding no
PrintMotd no
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LISTEN, 0))
        return int(s.getsockname()[1])


def _listening(port: int, wait_s: float = 3.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((LISTEN, port)) == 0:
                return True
        time.sleep(0.01)
    return False


def _tail(path: Path) -> str:
    try:
        return path.read_text().strip().splitlines()[-1]
    except (OSError, IndexError):
        return "no log"
