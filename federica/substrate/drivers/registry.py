"""Drivers by name: the inventory's `driver` field picks one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from federica.substrate.drivers import named
from federica.substrate.drivers.base import DeviceDriver
from federica.substrate.drivers.fake import FakeDriver, FakeLab
from federica.substrate.drivers.named import Registry
from federica.substrate.drivers.netconf.session import Endpoint


@dataclass(frozen=True)
class DeviceTarget:
    """What a driver needs to know about a device (from the inventory)."""

    name: str
    driver: str
    host: str
    port: int
    host_key_fingerprint: str | None
    vlan_translation: bool
    ports: tuple[str, ...]
    kind: str = "router"
    username: str = ""
    key_file: str | None = None
    password: str | None = None
    rpc_timeout_s: float = 10.0

    def __repr__(self) -> str:
        return f"DeviceTarget({self.name!r}, {self.driver}, {self.host}:{self.port})"


Factory = Callable[[DeviceTarget], DeviceDriver]
DeviceDrivers = Registry[Factory]
UnknownDriver = named.UnknownDriver


def device_drivers(lab: FakeLab) -> DeviceDrivers:
    """The built-in device drivers; `fake` devices live in `lab` (the context's own)."""
    from federica.substrate.drivers.netconf import ietf, junos

    def endpoint(t: DeviceTarget) -> Endpoint:
        return Endpoint(
            t.host,
            t.port,
            t.username,
            t.key_file,
            t.host_key_fingerprint,
            password=t.password,
            timeout=t.rpc_timeout_s,
        )

    def junos_driver(t: DeviceTarget) -> DeviceDriver:
        return junos.JunosDriver(
            t.name, endpoint(t), ports=t.ports, style="mx" if t.kind == "router" else "ex"
        )

    return Registry(
        "driver",
        {
            "ietf": lambda t: ietf.IetfDriver(t.name, endpoint(t)),
            "junos": junos_driver,
            "fake": lambda t: FakeDriver(lab.device(t.name, t.ports, t.vlan_translation)),
        },
    )


def create(drivers: DeviceDrivers, target: DeviceTarget) -> DeviceDriver:
    return drivers.factory(target.driver, f"device {target.name}")(target)
