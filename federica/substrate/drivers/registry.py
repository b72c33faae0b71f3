"""Drivers by name: the inventory's `driver` field picks one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from federica.substrate.drivers.base import DeviceDriver


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
_factories: dict[str, Factory] = {}


class UnknownDriver(KeyError):
    pass


def register(name: str, factory: Factory) -> None:
    _factories[name] = factory


def names() -> list[str]:
    _load_builtin()
    return sorted(_factories)


def create(target: DeviceTarget) -> DeviceDriver:
    _load_builtin()
    try:
        factory = _factories[target.driver]
    except KeyError:
        raise UnknownDriver(
            f"device {target.name}: no driver named {target.driver!r} "
            f"(known: {', '.join(sorted(_factories))})"
        ) from None
    return factory(target)


def _load_builtin() -> None:
    if _factories:
        return
    from federica.substrate.drivers import fake
    from federica.substrate.drivers.netconf import ietf, junos
    from federica.substrate.drivers.netconf.session import Endpoint

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

    register("ietf", lambda t: ietf.IetfDriver(t.name, endpoint(t)))
    register(
        "junos",
        lambda t: junos.JunosDriver(
            t.name, endpoint(t), ports=t.ports, style="mx" if t.kind == "router" else "ex"
        ),
    )
    register(
        "fake", lambda t: fake.FakeDriver(fake.LAB.device(t.name, t.ports, t.vlan_translation))
    )
