"""Compute drivers by name: the inventory's V-node `driver` field picks one."""

from __future__ import annotations

from collections.abc import Callable

from federica.substrate.drivers.compute.base import ComputeDriver

Factory = Callable[[str], ComputeDriver]  # V-node name -> driver
_factories: dict[str, Factory] = {}


class UnknownComputeDriver(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str, factory: Factory) -> None:
    _factories[name] = factory


def names() -> list[str]:
    _load_builtin()
    return sorted(_factories)


def create(driver: str, host: str) -> ComputeDriver:
    _load_builtin()
    try:
        return _factories[driver](host)
    except KeyError:
        raise UnknownComputeDriver(
            f"V-node {host}: no compute driver named {driver!r} in this controller "
            f"(known: {', '.join(sorted(_factories))})"
        ) from None


def _load_builtin() -> None:
    if "fake" in _factories:
        return
    from federica.substrate.drivers.compute import fake

    register("fake", lambda host: fake.FakeCompute(fake.LAB.host(host)))
