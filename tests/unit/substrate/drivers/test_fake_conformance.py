"""The fake driver passes the shared conformance suite."""

from __future__ import annotations

import pytest

from federica.substrate.drivers.fake import FakeDevice, FakeDriver
from tests.driver_conformance import DriverConformance, Harness

PORTS = ("ge-0/0/0", "ge-1/0/0", "ge-1/0/1")


@pytest.fixture
def harness() -> Harness:
    dev = FakeDevice("fake-mx", PORTS)
    strict = FakeDevice("fake-ex", PORTS, vlan_translation=False)

    def opener(device: FakeDevice) -> FakeDriver:
        d = FakeDriver(device)
        d.open()
        return d

    return Harness(
        device="fake-mx",
        link_port=PORTS[0],
        edge_ports=(PORTS[1], PORTS[2]),
        open_driver=lambda: opener(dev),
        open_strict_driver=lambda: opener(strict),
    )


class TestFakeDriver(DriverConformance):
    pass
