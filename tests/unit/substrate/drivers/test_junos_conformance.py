"""The junos driver passes the shared conformance suite against a simulated Junos reached
through a real ncclient Manager with the junos device handler (tests/junos_sim.py)."""

from __future__ import annotations

import pytest

from federica.substrate.drivers.netconf.junos import JunosDriver
from federica.substrate.drivers.netconf.session import Endpoint
from tests.driver_conformance import DriverConformance, Harness
from tests.junos_sim import SimJunos, sim_manager

PORTS = ("ge-0/0/0", "ge-1/0/0", "ge-1/0/1")
NOWHERE = Endpoint("192.0.2.1", 830, "unused", None, None)  # never dialled: the sim answers


@pytest.fixture
def harness() -> Harness:
    # Junos counts confirm timeouts in minutes; the simulated minute lasts 2 s.
    mx = SimJunos("sim-mx", list(PORTS), minute_s=2.0)
    ex = SimJunos("sim-ex", list(PORTS), minute_s=2.0)

    def opener(sim: SimJunos, style: str) -> JunosDriver:
        d = JunosDriver(
            sim.name,
            NOWHERE,
            ports=PORTS,
            style=style,  # type: ignore[arg-type]
            mgr=sim_manager(sim),
        )
        d.open()
        return d

    return Harness(
        device="sim-mx",
        link_port=PORTS[0],
        edge_ports=(PORTS[1], PORTS[2]),
        open_driver=lambda: opener(mx, "mx"),
        open_strict_driver=lambda: opener(ex, "ex"),
    )


class TestJunosDriver(DriverConformance):
    pass
