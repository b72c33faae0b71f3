"""Compute drivers by name: the inventory's V-node `driver` field picks one."""

from __future__ import annotations

from collections.abc import Callable

from federica.config import Settings
from federica.substrate.drivers.compute.base import ComputeDriver, ComputeError
from federica.substrate.drivers.compute.fake import FakeCompute, FakeLab
from federica.substrate.drivers.named import Registry, UnknownDriver

Factory = Callable[[str, Settings], ComputeDriver]  # (V-node name, settings) -> driver
ComputeDrivers = Registry[Factory]
UnknownComputeDriver = UnknownDriver


def compute_drivers(lab: FakeLab) -> ComputeDrivers:
    """The built-in compute drivers; `fake` V-nodes live in `lab` (the context's own)."""
    return Registry(
        "compute driver",
        {"fake": lambda host, _settings: FakeCompute(lab.host(host)), "netns": _netns,
         "libvirt": _libvirt},
    )  # fmt: skip


def create(drivers: ComputeDrivers, driver: str, host: str, settings: Settings) -> ComputeDriver:
    return drivers.factory(driver, f"V-node {host}")(host, settings)


def _netns(host: str, settings: Settings) -> ComputeDriver:
    from federica.substrate.drivers.compute.netns import for_emulated_host

    return for_emulated_host(host, settings)


def _libvirt(host: str, settings: Settings) -> ComputeDriver:
    from federica.substrate.drivers.compute.libvirt import LibvirtCompute
    from federica.substrate.drivers.compute.libvirt_xml import Networking

    if settings.libvirt_networking == "ovs":
        net = Networking("ovs", bridge=settings.libvirt_bridge)
    elif settings.libvirt_networking == "bridge":
        net = Networking("bridge", bridge_template=settings.libvirt_bridge)
    else:
        raise ComputeError(
            host,
            "-",
            f"FEDERICA_LIBVIRT_NETWORKING: expected ovs or bridge, "
            f"got {settings.libvirt_networking!r}",
        )
    return LibvirtCompute(
        host,
        settings.libvirt_uri.format(host=host),
        domain_type=settings.libvirt_domain_type,
        pool=settings.libvirt_pool,
        networking=net,
    )
