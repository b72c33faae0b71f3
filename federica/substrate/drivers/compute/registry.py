"""Compute drivers by name: the inventory's V-node `driver` field picks one."""

from __future__ import annotations

from collections.abc import Callable

from federica.config import Settings
from federica.substrate.drivers.compute.base import ComputeDriver, ComputeError

Factory = Callable[[str, Settings], ComputeDriver]  # (V-node name, settings) -> driver
_factories: dict[str, Factory] = {}


class UnknownComputeDriver(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str, factory: Factory) -> None:
    _factories[name] = factory


def names() -> list[str]:
    _load_builtin()
    return sorted(_factories)


def create(driver: str, host: str, settings: Settings) -> ComputeDriver:
    _load_builtin()
    try:
        factory = _factories[driver]
    except KeyError:
        raise UnknownComputeDriver(
            f"V-node {host}: no compute driver named {driver!r} in this controller "
            f"(known: {', '.join(sorted(_factories))})"
        ) from None
    return factory(host, settings)


def _fake(host: str, _settings: Settings) -> ComputeDriver:
    from federica.substrate.drivers.compute import fake

    return fake.FakeCompute(fake.LAB.host(host))


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


def _load_builtin() -> None:
    if "fake" in _factories:
        return
    register("fake", _fake)
    register("netns", _netns)
    register("libvirt", _libvirt)
