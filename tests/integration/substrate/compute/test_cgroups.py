"""A node's cgroup on this machine's real hierarchy: what `enter_script` puts in it stays
in it, with its children, in every controller, and the limits hold for them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from federica.substrate.drivers.compute.cgroups import Cgroups
from tests.integration.conftest import needs_root

pytestmark = [pytest.mark.integration, needs_root]


@pytest.fixture
def cgroups() -> Iterator[Cgroups]:
    cg = Cgroups.detect(f"cgtest{os.getpid()}")
    if cg.version == 0:
        pytest.skip("no writable cgroup hierarchy here: " + "; ".join(cg.notes))
    yield cg
    cg.kill("n1")
    cg.remove("n1")
    cg.remove_group()
    assert not cg.group_exists()


def in_node(cg: Cgroups, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", cg.enter_script("n1") + script],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_shell_and_its_children_join_the_node_in_every_hierarchy(cgroups: Cgroups) -> None:
    cgroups.create("n1", 1, 128)
    out = in_node(cgroups, "cat /proc/self/cgroup; sh -c 'cat /proc/self/cgroup'").stdout
    path = f"/federica/{cgroups.group}/n1"
    lines = out.splitlines()
    want = ["cpu", "memory", "pids"] if cgroups.version == 1 else [""]
    for copy in (lines[: len(lines) // 2], lines[len(lines) // 2 :]):  # the child, grandchild
        where = {
            ctl: cgpath
            for _, ctls, cgpath in (line.split(":", 2) for line in copy)
            for ctl in ctls.split(",")
        }
        for ctl in want:
            assert where.get(ctl) == path, (ctl, copy)


def test_a_process_left_running_is_found_and_killed_through_the_cgroup(
    cgroups: Cgroups,
) -> None:
    cgroups.create("n1", 1, 128)
    started = in_node(cgroups, "sleep 60 >/dev/null 2>&1 & echo $!")
    pid = int(started.stdout.strip())
    assert pid in cgroups.pids("n1")
    cgroups.kill("n1")
    assert cgroups.pids("n1") == []
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def test_the_process_limit_holds_for_what_runs_in_the_node(cgroups: Cgroups) -> None:
    cgroups.create("n1", 1, 128)
    limit = (
        cgroups.controllers["pids"] / "federica" / cgroups.group / "n1"
        if cgroups.version == 1
        else cgroups.root / "federica" / cgroups.group / "n1"
    ) / "pids.max"
    limit.write_text("4")
    # The shell, then forks: the fifth process cannot start.
    out = in_node(cgroups, "for i in 1 2 3 4 5 6; do sleep 5 & done; wait")
    assert "fork" in out.stderr.lower() or "resource temporarily unavailable" in out.stderr
    assert len(cgroups.pids("n1")) <= 4


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
