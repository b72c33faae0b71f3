"""The one conformance suite every compute driver passes (fake, netns, libvirt).

A test module subclasses `ComputeConformance` and provides a `harness` fixture: a way to
open the driver for one V-node, and a way to list what a node leaves behind.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from federica.substrate.drivers.compute.base import (
    ComputeDriver,
    ComputeError,
    InterfaceSpec,
    NodeSpec,
    NodeState,
)


@dataclass
class Harness:
    open_driver: Callable[[], ComputeDriver]
    residue: Callable[[str], list[str]]  # node id -> what of it still exists anywhere
    images: tuple[str, ...] = ("debian", "frr", "bird")
    runs_commands: bool = True  # whether console() takes a command to run

    def spec(self, node_id: str, *, image: str = "debian", n_ifaces: int = 1) -> NodeSpec:
        ifaces = tuple(
            InterfaceSpec(f"eth{i + 1}", f"c{i}", 0, f"conf-{node_id}-c{i}", f"10.9.{i}.1/24")
            for i in range(n_ifaces)
        )
        kind = "router" if image in ("frr", "bird") else "host"
        return NodeSpec(node_id, "conformance", node_id, kind, 1, 256, image, ifaces)


def run(argv: Sequence[str]) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


class ComputeConformance:
    def test_lifecycle_define_boot_stop_destroy(self, harness: Harness) -> None:
        d = harness.open_driver()
        spec = harness.spec("cf-life")
        assert d.status(spec.id) is NodeState.ABSENT
        d.define(spec)
        try:
            assert d.status(spec.id) is NodeState.DEFINED
            assert spec.id in d.nodes()
            d.boot(spec.id)
            assert d.status(spec.id) is NodeState.RUNNING
            d.stop(spec.id)
            assert d.status(spec.id) is NodeState.STOPPED
            d.boot(spec.id)
            assert d.status(spec.id) is NodeState.RUNNING
        finally:
            d.destroy(spec.id)
        assert d.status(spec.id) is NodeState.ABSENT
        assert spec.id not in d.nodes()
        assert harness.residue(spec.id) == []

    @pytest.mark.parametrize("image", ["debian", "frr", "bird"])
    def test_every_image_boots_and_leaves_nothing(self, harness: Harness, image: str) -> None:
        if image not in harness.images:
            pytest.skip(f"this driver does not offer {image}")
        d = harness.open_driver()
        spec = harness.spec(f"cf-img-{image}", image=image, n_ifaces=2)
        d.define(spec)
        try:
            d.boot(spec.id)
            assert d.status(spec.id) is NodeState.RUNNING
            ifaces = d.interfaces(spec.id)
            assert [(i.name, i.circuit, i.address, i.up) for i in ifaces] == [
                (i.name, i.circuit, i.address, True) for i in spec.interfaces
            ]
        finally:
            d.destroy(spec.id)
        assert harness.residue(spec.id) == []

    def test_destroy_is_idempotent_and_absent_is_not_an_error(self, harness: Harness) -> None:
        d = harness.open_driver()
        d.destroy("cf-never-defined")
        spec = harness.spec("cf-twice")
        d.define(spec)
        d.destroy(spec.id)
        d.destroy(spec.id)
        assert d.status(spec.id) is NodeState.ABSENT

    def test_define_is_idempotent_but_refuses_a_different_node_with_the_same_id(
        self, harness: Harness
    ) -> None:
        d = harness.open_driver()
        spec = harness.spec("cf-same")
        d.define(spec)
        try:
            d.define(spec)
            other = harness.spec("cf-same", n_ifaces=2)
            with pytest.raises(ComputeError) as err:
                d.define(other)
            assert err.value.node == spec.id and err.value.host == d.host
        finally:
            d.destroy(spec.id)

    def test_unknown_image_is_refused_by_name(self, harness: Harness) -> None:
        d = harness.open_driver()
        with pytest.raises(ComputeError, match="windows-95"):
            d.define(harness.spec("cf-img", image="windows-95"))
        assert d.status("cf-img") is NodeState.ABSENT

    def test_verbs_on_an_unknown_node_fail_with_the_node_named(self, harness: Harness) -> None:
        d = harness.open_driver()
        for verb in (d.boot, d.stop, d.interfaces, d.console):
            with pytest.raises(ComputeError) as err:
                verb("cf-nobody")
            assert err.value.node == "cf-nobody"

    def test_console_runs_a_command_for_the_node(self, harness: Harness) -> None:
        if not harness.runs_commands:
            pytest.skip("this driver's console is interactive only")
        d = harness.open_driver()
        spec = harness.spec("cf-console")
        d.define(spec)
        try:
            d.boot(spec.id)
            assert run([*d.console(spec.id), "echo", "hello"]).strip() == "hello"
        finally:
            d.destroy(spec.id)

    def test_freeze_keeps_the_processes_and_thaw_resumes_them(self, harness: Harness) -> None:
        d = harness.open_driver()
        image = "bird" if "bird" in harness.images else harness.images[0]
        spec = harness.spec("cf-freeze", image=image)
        d.define(spec)
        try:
            d.boot(spec.id)
            before = {p["pid"] for p in d.processes(spec.id)}
            assert not d.is_frozen(spec.id)
            d.freeze(spec.id)
            assert d.is_frozen(spec.id)
            # Frozen, not killed: the same processes, and the node still counts as running.
            assert {p["pid"] for p in d.processes(spec.id)} == before
            assert d.status(spec.id) is NodeState.RUNNING
            d.thaw(spec.id)
            assert not d.is_frozen(spec.id)
            assert {p["pid"] for p in d.processes(spec.id)} == before
            assert d.status(spec.id) is NodeState.RUNNING
        finally:
            d.destroy(spec.id)
        assert harness.residue(spec.id) == []

    def test_links_down_and_up(self, harness: Harness) -> None:
        d = harness.open_driver()
        spec = harness.spec("cf-links", n_ifaces=2)
        d.define(spec)
        try:
            d.boot(spec.id)
            try:
                changed = d.set_links(spec.id, False)
            except ComputeError:
                pytest.skip("this driver cannot take a node's links down")
            assert len(changed) == 2
            d.set_links(spec.id, True)
        finally:
            d.destroy(spec.id)

    def test_a_frozen_node_is_destroyed_all_the_same(self, harness: Harness) -> None:
        d = harness.open_driver()
        spec = harness.spec("cf-frozen-destroy")
        d.define(spec)
        d.boot(spec.id)
        d.freeze(spec.id)
        d.destroy(spec.id)
        assert d.status(spec.id) is NodeState.ABSENT
        assert harness.residue(spec.id) == []

    def test_usage_follows_the_node_s_state(self, harness: Harness) -> None:
        d = harness.open_driver()
        spec = harness.spec("cf-usage")
        assert d.usage(spec.id).state is NodeState.ABSENT
        d.define(spec)
        try:
            d.boot(spec.id)
            first = d.usage(spec.id)
            assert first.state is NodeState.RUNNING
            # What a driver counts is never negative, and CPU time never goes back.
            assert first.memory_bytes is None or first.memory_bytes >= 0
            assert first.cpu_seconds is None or first.cpu_seconds >= 0
            again = d.usage(spec.id)
            if first.cpu_seconds is not None:
                assert again.cpu_seconds is not None
                assert again.cpu_seconds >= first.cpu_seconds
            d.stop(spec.id)
            assert d.usage(spec.id).state is NodeState.STOPPED
        finally:
            d.destroy(spec.id)
        assert d.usage(spec.id).state is NodeState.ABSENT
