"""CPU, memory and process-count limits for a namespace node, through whichever cgroup
hierarchy the kernel offers: v2 (`cpu.max`, `memory.max`) or v1 (`cpu.cfs_quota_us`,
`memory.limit_in_bytes`, the `pids` controller). Where neither can be written, the node
runs without limits and `notes` says so; nothing pretends otherwise.

The cgroup is also how a node's processes are found and stopped: every process started
in the node (routing daemons, a researcher's login shell) is put in it first, and what
monitoring reads of a node's CPU time and memory (`usage`): v2's `cpu.stat` and
`memory.current`; v1's `cpuacct.usage` (when the cpuacct controller is writable: it is a
hierarchy of its own on some kernels) and `memory.usage_in_bytes`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
MAX_PIDS = 512  # per node: a runaway fork loop in one node cannot starve the machine


@dataclass
class Cgroups:
    """The cgroup directories of nodes under `<controller>/federica/<group>/<node>`."""

    group: str
    root: Path = ROOT
    version: int = 0  # 0: no usable hierarchy
    controllers: dict[str, Path] = field(default_factory=dict)  # v1: name -> mount
    notes: list[str] = field(default_factory=list)

    @classmethod
    def detect(cls, group: str, root: Path = ROOT) -> Cgroups:
        cg = cls(group, root)
        if (root / "cgroup.controllers").exists():
            have = set((root / "cgroup.controllers").read_text().split())
            if {"cpu", "memory", "pids"} <= have:
                cg.version = 2
                return cg
            cg.notes.append(f"cgroup v2 without cpu/memory/pids controllers (has: {have})")
        mounts = {name: root / name for name in ("cpu", "memory", "pids")}
        if all(_writable(p) for p in mounts.values()):
            cg.version, cg.controllers = 1, mounts
            freezer = root / "freezer"
            # The emergency stop freezes a node through it; without it, it cannot.
            if (freezer / "cgroup.procs").exists() and os.access(freezer, os.W_OK):
                cg.controllers["freezer"] = freezer
            else:
                cg.notes.append("no writable v1 freezer: nodes cannot be frozen")
            if _writable(root / "cpuacct"):
                cg.controllers["cpuacct"] = root / "cpuacct"
        else:
            cg.notes.append("no writable cgroup hierarchy: nodes run without CPU/RAM limits")
        return cg

    def _dirs(self, node: str) -> list[Path]:
        rel = Path("federica") / self.group / node
        if self.version == 2:
            return [self.root / rel]
        if self.version == 1:
            return [mount / rel for mount in self.controllers.values()]
        return []

    def create(self, node: str, vcpu: int, ram_mb: int) -> str:
        """Make the node's cgroup with its limits; returns what is enforced, for people."""
        if self.version == 0:
            return "; ".join(self.notes)
        if self.version == 2:
            self._enable_v2_controllers()
            d = self._dirs(node)[0]
            d.mkdir(parents=True, exist_ok=True)
            (d / "cpu.max").write_text(f"{vcpu * PERIOD_US} {PERIOD_US}")
            (d / "memory.max").write_text(str(ram_mb * 1024 * 1024))
            (d / "pids.max").write_text(str(MAX_PIDS))
        else:
            for d in self._dirs(node):
                d.mkdir(parents=True, exist_ok=True)
            cpu, mem, pids = (
                self.controllers[c] / "federica" / self.group / node
                for c in ("cpu", "memory", "pids")
            )
            # The freezer's directory was made above with the others.
            (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(vcpu * PERIOD_US))
            (mem / "memory.limit_in_bytes").write_text(str(ram_mb * 1024 * 1024))
            (pids / "pids.max").write_text(str(MAX_PIDS))
        return f"cgroup v{self.version}: {vcpu} CPU, {ram_mb} MiB, {MAX_PIDS} processes"

    def _enable_v2_controllers(self) -> None:
        path = self.root
        for part in ("federica", self.group):
            with contextlib.suppress(OSError):
                (path / "cgroup.subtree_control").write_text("+cpu +memory +pids")
            path = path / part
            path.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (path / "cgroup.subtree_control").write_text("+cpu +memory +pids")

    def enter_script(self, node: str) -> str:
        """Shell that moves the current shell into the node's cgroup; a command `exec`ed
        after it, and everything it forks, stays there.

        v1: the shell moves its own (only) thread by writing 0 to `tasks`. Moving a
        process through `cgroup.procs` takes the kernel's global threadgroup lock, whose
        first writer waits for an RCU grace period (6-14 ms here, on every router boot);
        a thread moving itself skips that lock on recent kernels (seen on 6.18; one that
        takes the lock anyway is no slower than before). v2 allows moving a lone thread
        only inside a threaded subtree, so it writes the shell's pid to `cgroup.procs`."""
        if self.version == 1:
            return "".join(f"echo 0 > {d / 'tasks'}; " for d in self._dirs(node))
        return "".join(f"echo $$ > {d / 'cgroup.procs'}; " for d in self._dirs(node))

    def usage(self, node: str) -> tuple[float | None, int | None]:
        """The node's CPU time so far (seconds) and memory in use now (bytes); None for
        what this hierarchy does not count (or a node without a cgroup)."""
        if self.version == 2:
            d = self._dirs(node)[0]
            stat = _read(d / "cpu.stat")
            usec = next(
                (int(v) for k, v in (ln.split() for ln in stat.splitlines() if " " in ln)
                 if k == "usage_usec"),
                None,
            )  # fmt: skip
            mem = _read(d / "memory.current")
            return (usec / 1e6 if usec is not None else None), (int(mem) if mem else None)
        if self.version == 1:
            rel = Path("federica") / self.group / node
            cpuacct = self.controllers.get("cpuacct")
            ns = _read(cpuacct / rel / "cpuacct.usage") if cpuacct else ""
            mem = _read(self.controllers["memory"] / rel / "memory.usage_in_bytes")
            return (int(ns) / 1e9 if ns else None), (int(mem) if mem else None)
        return None, None

    def pids(self, node: str) -> list[int]:
        found: set[int] = set()
        for d in self._dirs(node):
            with contextlib.suppress(OSError):
                found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        return sorted(found)

    def _freezer_dir(self, node: str) -> Path | None:
        if self.version == 2:
            return self._dirs(node)[0]
        if self.version == 1 and "freezer" in self.controllers:
            return self.controllers["freezer"] / "federica" / self.group / node
        return None

    def can_freeze(self, node: str) -> bool:
        d = self._freezer_dir(node)
        return d is not None and d.exists()

    def freeze(self, node: str, frozen: bool = True, wait_s: float = 5.0) -> None:
        """Freeze (or thaw) every process of the node: kept with its memory, not run, not
        killed. Returns once the kernel says the whole group is (un)frozen. v2:
        `cgroup.freeze`, read back in `cgroup.events`; v1: the freezer's `freezer.state`.
        OSError when the node has no freezer (no such cgroup, or no freezer controller)."""
        d = self._freezer_dir(node)
        if d is None or not d.exists():
            raise OSError(f"node {node} has no freezer cgroup ({'; '.join(self.notes) or 'none'})")
        if self.version == 2:
            (d / "cgroup.freeze").write_text("1" if frozen else "0")
            want = f"frozen {1 if frozen else 0}"

            def done() -> bool:
                return want in (d / "cgroup.events").read_text().splitlines()
        else:
            (d / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
            want = "FROZEN" if frozen else "THAWED"

            def done() -> bool:
                return (d / "freezer.state").read_text().strip() == want

        deadline = time.monotonic() + wait_s
        while not done():
            if time.monotonic() > deadline:
                raise OSError(f"node {node}: the kernel did not report {want!r} in {wait_s} s")
            time.sleep(0.002)

    def is_frozen(self, node: str) -> bool:
        d = self._freezer_dir(node)
        if d is None or not d.exists():
            return False
        if self.version == 2:
            return "frozen 1" in (d / "cgroup.events").read_text().splitlines()
        return (d / "freezer.state").read_text().strip() == "FROZEN"

    def kill(self, node: str, grace_s: float = 2.0) -> None:
        """SIGTERM every process of the node, then SIGKILL what is left. A frozen node is
        thawed first: a frozen process acts on no signal (v1), not even SIGKILL."""
        if self.is_frozen(node):
            with contextlib.suppress(OSError):
                self.freeze(node, False)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids(node):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace_s
            while self.pids(node) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not self.pids(node):
                return

    def remove(self, node: str) -> None:
        for d in self._dirs(node):
            with contextlib.suppress(FileNotFoundError):
                d.rmdir()

    def remove_group(self) -> None:
        """This group's own directories, once its nodes are gone (and `federica/` if it is
        then empty): what `federica emulate down` leaves is nothing."""
        tops = [self.root] if self.version == 2 else list(self.controllers.values())
        for top in tops:
            for d in (top / "federica" / self.group, top / "federica"):
                with contextlib.suppress(OSError):  # not empty (another group), or gone
                    d.rmdir()

    def group_exists(self) -> bool:
        tops = [self.root] if self.version == 2 else list(self.controllers.values())
        return any((top / "federica" / self.group).exists() for top in tops)

    def exists(self, node: str) -> bool:
        return any(d.exists() for d in self._dirs(node))


def _writable(mount: Path) -> bool:
    return (mount / "cgroup.procs").exists() and os.access(mount, os.W_OK)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
