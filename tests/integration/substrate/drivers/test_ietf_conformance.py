"""The ietf driver passes the shared conformance suite, live against the emulated core4
facility (netconfd behind sshd, host keys verified)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from federica.substrate.drivers.base import Segment
from federica.substrate.drivers.netconf.ietf import IetfDriver
from federica.substrate.emulator import iproute
from federica.substrate.emulator.plan import vlan_ifname
from tests.driver_conformance import DriverConformance, Harness
from tests.integration.conftest import Facility

pytestmark = pytest.mark.integration


@pytest.fixture
def harness(emulated_core4: Facility) -> Iterator[Harness]:
    fac = emulated_core4
    fac.wipe(["prg-mx", "psn-mx"])

    def opener(device: str) -> IetfDriver:
        d = IetfDriver(device, fac.endpoint(device))
        d.open()
        return d

    plan = fac.plan.device("prg-mx")

    def carries(seg: Segment) -> bool:
        names = {link["ifname"] for link in iproute.links(plan.namespace)}
        return all(vlan_ifname(plan.port(a.port).ifname, a.vlan) in names for a in seg.attachments)

    yield Harness(
        device="prg-mx",
        link_port="ge-0/0/0",
        edge_ports=("ge-1/0/0", "ge-1/0/1"),
        open_driver=lambda: opener("prg-mx"),
        open_strict_driver=lambda: opener("psn-mx"),
        data_plane_has=carries,
    )
    fac.wipe(["prg-mx", "psn-mx"])


class TestIetfDriver(DriverConformance):
    pass
