"""The e-stop's device sessions and drivers, made from a context: a pool of NETCONF
sessions kept open between stops (a stop pays no SSH handshake once warmed), compute
drivers by name, the gateways."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.config import Settings
from federica.db import transaction
from federica.estop.isolate import Toolkit
from federica.substrate import devices, reachability
from federica.substrate.drivers import registry
from federica.substrate.drivers.base import DeviceDriver
from federica.substrate.drivers.compute import registry as compute_registry
from federica.substrate.drivers.pool import DriverPool
from federica.substrate.gateway import Gateways
from federica.substrate.models import Device


class Context(Protocol):
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    device_drivers: registry.DeviceDrivers
    compute_drivers: compute_registry.ComputeDrivers

    def now(self) -> dt.datetime: ...


def make_toolkit(ctx: Context, *, seen_by: str = "estop") -> Toolkit:
    def make(name: str) -> DeviceDriver:
        with transaction(ctx.read_sessions) as s:
            (target,) = devices.targets(s, ctx.settings, [name])
        return registry.create(ctx.device_drivers, target)

    pool = DriverPool(make, reachability.Recorder(ctx.sessions, seen_by, ctx.now))

    def checkout(names: Sequence[str]) -> AbstractContextManager[dict[str, DeviceDriver]]:
        return pool.checkout(names)

    return Toolkit(
        checkout,
        lambda driver, host: compute_registry.create(
            ctx.compute_drivers, driver, host, ctx.settings
        ),
        Gateways(ctx.settings.gateway_dir),
        device_wait_s=ctx.settings.estop_device_wait_s,
        close=pool.close_all,
        warm=pool.warm,
    )


def warm_all(ctx: Context, tk: Toolkit) -> dict[str, str]:
    """Open a session to every device now (what a stop would otherwise pay first)."""
    with transaction(ctx.read_sessions) as s:
        names = list(s.scalars(select(Device.name)))
    return tk.warm(names)
