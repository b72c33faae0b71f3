"""The application context: all process state of one controller, made in one place.

The web app, the CLI and the worker each make one (`make_context`) and pass it down;
nothing else keeps state at module level. Two contexts in one process (a test's, or two
federated controllers) share nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from federica.clock import Clock, SystemClock
from federica.config import Settings
from federica.db import make_engine, make_session_factory
from federica.federation import estop_relay
from federica.slices import index, usage, wakeup
from federica.substrate import usage as substrate_usage
from federica.substrate.drivers import fake
from federica.substrate.drivers.compute import fake as fake_compute
from federica.substrate.drivers.compute.registry import ComputeDrivers, compute_drivers
from federica.substrate.drivers.registry import DeviceDrivers, device_drivers


@dataclass
class Context:
    """What every request handler, command and worker needs; one per process role."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    clock: Clock
    calendar: index.CalendarIndex
    device_drivers: DeviceDrivers
    compute_drivers: ComputeDrivers
    # The `fake` drivers' devices and V-nodes (service tests inject faults here).
    fake_devices: fake.FakeLab = field(default_factory=fake.FakeLab)
    fake_hosts: fake_compute.FakeLab = field(default_factory=fake_compute.FakeLab)
    # Run after every emergency stop with (context, stopped, who, reason): federation
    # tells the peers holding parts of the slices stopped.
    estop_hooks: list[Callable[..., Any]] = field(default_factory=list)
    # This process's workers, woken when a commit writes a calendar event.
    wakeups: wakeup.Wakeups = field(default_factory=wakeup.Wakeups)

    def now(self) -> dt.datetime:
        return self.clock.now()


def make_context(
    settings: Settings, engine: Engine | None = None, *, clock: Clock | None = None
) -> Context:
    engine = engine or make_engine(
        settings.effective_database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    sessions = make_session_factory(engine)
    read_sessions = make_session_factory(engine, readonly=True)
    # One calendar index per database, shared by the read and write sessions.
    calendar = index.CalendarIndex()
    for factory in (sessions, read_sessions):
        index.attach(factory, calendar)
        # The inventory must not remove what slices hold.
        substrate_usage.attach(factory, [usage.slices_using])
    wakeups = wakeup.Wakeups()
    wakeup.attach(sessions, wakeups)
    devices_lab, hosts_lab = fake.FakeLab(), fake_compute.FakeLab()
    context = Context(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=read_sessions,
        clock=clock or SystemClock(),
        calendar=calendar,
        device_drivers=device_drivers(devices_lab),
        compute_drivers=compute_drivers(hosts_lab),
        fake_devices=devices_lab,
        fake_hosts=hosts_lab,
        wakeups=wakeups,
    )
    context.estop_hooks.append(estop_relay.after_stop)
    return context
