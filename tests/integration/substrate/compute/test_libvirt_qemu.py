"""The libvirt driver booting a real guest under QEMU (software emulation), where this
machine has what that needs: a libvirt daemon with the QEMU driver, and a small bootable
qcow2 image named by FEDERICA_TEST_LIBVIRT_IMAGE. Otherwise skipped, saying what is
missing (this project's CI machines have neither, and no network to fetch an image)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from federica.substrate.drivers.compute import libvirt as libvirt_driver
from federica.substrate.drivers.compute.base import NodeSpec, NodeState

pytestmark = pytest.mark.integration
URI = os.environ.get("FEDERICA_TEST_LIBVIRT_URI", "qemu:///system")


def _missing() -> str | None:
    if not libvirt_driver.available():
        return "the libvirt Python binding is not installed"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed"
    image = os.environ.get("FEDERICA_TEST_LIBVIRT_IMAGE")
    if not image or not Path(image).is_file():
        return "no bootable qcow2 image (set FEDERICA_TEST_LIBVIRT_IMAGE)"
    try:
        import libvirt

        libvirt.open(URI).close()
    except Exception as exc:
        return f"no libvirt daemon at {URI}: {exc}"
    return None


def test_a_guest_boots_and_is_removed_without_trace(tmp_path: Path) -> None:
    why = _missing()
    if why:
        pytest.skip(why)
    import libvirt

    conn = libvirt.open(URI)
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    shutil.copy(os.environ["FEDERICA_TEST_LIBVIRT_IMAGE"], pool_dir / "tiny.qcow2")
    pool = conn.storagePoolCreateXML(
        f"<pool type='dir'><name>federica-test</name><target><path>{pool_dir}</path>"
        "</target></pool>",
        0,
    )
    try:
        pool.refresh(0)
        d = libvirt_driver.LibvirtCompute(
            "local", URI, domain_type="qemu", pool="federica-test", disk_mb=1024
        )
        spec = NodeSpec("fedtest-tiny", "t", "tiny", "host", 1, 256, "tiny")
        d.define(spec)
        try:
            d.boot(spec.id)
            deadline = time.monotonic() + 30
            while d.status(spec.id) is not NodeState.RUNNING:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        finally:
            d.destroy(spec.id)
        assert d.status(spec.id) is NodeState.ABSENT
        assert "fedtest-tiny.qcow2" not in pool.listVolumes()
    finally:
        pool.destroy()
