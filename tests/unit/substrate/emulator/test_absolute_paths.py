"""Whatever directory they are given, the emulator, the gateways and the netns driver keep
absolute paths: those end up in sshd's, netconfd's, snmpd's, FRR's and BIRD's configs and
argv, read by processes in other working directories (sshd re-executes itself per
connection; daemons chdir to /)."""

from __future__ import annotations

from pathlib import Path

import pytest

from federica.substrate.drivers.compute.cgroups import Cgroups
from federica.substrate.drivers.compute.netns import NetnsCompute
from federica.substrate.emulator.facility import Emulator
from federica.substrate.emulator.plan import HostPlan, Underlay
from federica.substrate.gateway import Gateways, _sshd_config


def test_relative_directories_become_absolute_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    emu = Emulator(Path("var/emulator/fx"), "fx")
    gateways = Gateways(Path("var/gateways"))
    host = HostPlan("prg-v1", "fx-prg-v1", "prg-mx", "ge-1/0/0", "up0",
                    Underlay("10.255.0.1", "10.255.0.2", 4789, "prg-mx:ge-1/0/0"))  # fmt: skip
    node_driver = NetnsCompute(host, Path("run"), Cgroups("fx"))
    monkeypatch.chdir("/")  # where a daemon reads them from
    assert emu.dir == tmp_path / "var" / "emulator" / "fx"
    assert emu.run_dir.is_absolute() and emu.key_file.is_absolute()
    assert gateways.root == tmp_path / "var" / "gateways"
    assert node_driver.dir == tmp_path / "run" / "nodes" / "prg-v1"


def test_the_gateway_sshd_config_names_only_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _sshd_config(Gateways(Path("var/gateways")).root / "s1", 2222)
    paths = [line.split()[1] for line in config.splitlines()
             if line.split()[:1] in (["HostKey"], ["PidFile"], ["AuthorizedKeysFile"])]  # fmt: skip
    assert len(paths) == 3 and all(Path(p).is_absolute() for p in paths), config
