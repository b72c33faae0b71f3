"""`federica device check|config` against the emulated devices, and the NETCONF speed
guard: if ncclient's 100 ms send-queue polling came back, the RPC test fails."""

from __future__ import annotations

import statistics
import time

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.db import transaction
from federica.substrate.drivers.netconf.ietf import IetfDriver
from federica.substrate.models import Device
from tests.integration.conftest import Facility

pytestmark = pytest.mark.integration


def run(fac: Facility, *args: str) -> Result:
    import federica.cli.device  # noqa: F401  (registers the command group)

    env = {
        "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
        "FEDERICA_DATABASE_URL": fac.settings.database_url,
        "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
    }
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_check_every_device(emulated_core4: Facility) -> None:
    r = run(emulated_core4, "device", "check")
    assert r.exit_code == 0, r.output
    assert r.output.count("ok ") == 4


def test_check_refuses_a_changed_host_key(emulated_core4: Facility) -> None:
    ctx = emulated_core4.context
    with transaction(ctx.sessions) as s:
        dev = s.scalars(select(Device).where(Device.name == "mil-mx")).one()
        real, dev.host_key_fingerprint = dev.host_key_fingerprint, "SHA256:" + "B" * 43
    try:
        r = run(emulated_core4, "device", "check", "mil-mx")
        assert r.exit_code == 1
        assert "FAIL  mil-mx" in r.output and "refusing to connect" in r.output
        assert "SHA256:BBBB" in r.output and real is not None and real in r.output
    finally:
        with transaction(ctx.sessions) as s:
            s.scalars(
                select(Device).where(Device.name == "mil-mx")
            ).one().host_key_fingerprint = real


def test_config_shows_the_managed_configuration(emulated_core4: Facility) -> None:
    r = run(emulated_core4, "device", "config", "prg-mx")
    assert r.exit_code == 0
    assert "<name>ge-0/0/0</name>" in r.output
    r = run(emulated_core4, "device", "config", "no-such-mx")
    assert r.exit_code == 1 and "no device named 'no-such-mx'" in r.stderr


def test_an_rpc_does_not_wait_for_ncclients_polling_tick(emulated_core4: Facility) -> None:
    """Stock ncclient polls its send queue every 100 ms, so a stock RPC costs ≥ 100 ms
    here; FastSSHSession wakes its I/O thread on send. 20 RPCs, median under 50 ms."""
    d = IetfDriver("erl-mx", emulated_core4.endpoint("erl-mx"))
    d.open()
    try:
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            d.get_config("running")
            times.append(time.perf_counter() - t0)
    finally:
        d.close()
    assert statistics.median(times) < 0.05, f"median RPC {statistics.median(times) * 1000:.0f} ms"
