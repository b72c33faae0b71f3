"""Start background processes and stop exactly those: tracked by pid and kernel start time.

A pid alone can be recycled after a crash; the start time (field 22 of /proc/PID/stat)
tells our process from a stranger that later got the same pid. Nothing is killed by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tracked:
    pid: int
    start_time: int
    name: str  # what it is, for people ("netconfd prg-mx")

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "start_time": self.start_time, "name": self.name}

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Tracked:
        return cls(int(d["pid"]), int(d["start_time"]), str(d["name"]))  # type: ignore[call-overload]


def start_time_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces; fields after it are split safely.
    rest = stat.rsplit(")", 1)[1].split()
    return int(rest[19])


def is_alive(t: Tracked) -> bool:
    st = start_time_of(t.pid)
    if st != t.start_time:
        return False
    try:
        state = Path(f"/proc/{t.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _proc_entries() -> Iterator[Path]:
    return (e for e in Path("/proc").iterdir() if e.name.isdigit())


def children_of(pid: int) -> list[Tracked]:
    """Direct children (e.g. sshd's per-connection processes)."""
    out = []
    for entry in _proc_entries():
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = next(
            (line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), None
        )
        st = start_time_of(int(entry.name))
        if ppid == str(pid) and st is not None:
            out.append(Tracked(int(entry.name), st, f"child of {pid}"))
    return out


def find_by_argument(fragment: str) -> list[Tracked]:
    """Processes one of whose arguments contains `fragment` (a path unique to us)."""
    found = []
    for entry in _proc_entries():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(fragment.encode() in arg for arg in argv):
            st = start_time_of(int(entry.name))
            if st is not None and int(entry.name) != os.getpid():
                found.append(Tracked(int(entry.name), st, argv[0].decode(errors="replace")))
    return found


def spawn(
    argv: Sequence[str],
    *,
    name: str,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], Tracked]:
    """Start a detached process (own session, so a Ctrl-C of the CLI does not reach it)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    st = start_time_of(proc.pid)
    assert st is not None, f"{name} exited at once; see {log_file}"
    return proc, Tracked(proc.pid, st, name)


def stop(tracked: Sequence[Tracked], *, grace_s: float = 3.0) -> list[str]:
    """SIGTERM every live tracked process, wait, SIGKILL what remains; reap our children.

    Returns the names of those that had to be killed."""
    live = [t for t in tracked if is_alive(t)]
    for t in live:
        _signal(t, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(is_alive(t) for t in live):
        _reap()
        time.sleep(0.05)
    killed = []
    for t in live:
        if is_alive(t):
            _signal(t, signal.SIGKILL)
            killed.append(t.name)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(is_alive(t) for t in live):
        _reap()
        time.sleep(0.02)
    _reap()
    return killed


def _signal(t: Tracked, sig: signal.Signals) -> None:
    if start_time_of(t.pid) == t.start_time:
        with contextlib.suppress(ProcessLookupError):
            os.kill(t.pid, sig)


def _reap() -> None:
    """Collect exited children of this process (they would linger as zombies)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
