"""The fake compute driver passes the shared compute conformance suite."""

from __future__ import annotations

import pytest

from federica.substrate.drivers.compute.fake import FakeCompute, FakeHost
from tests.compute_conformance import ComputeConformance, Harness


@pytest.fixture
def harness() -> Harness:
    host = FakeHost("fake-v1")
    return Harness(
        open_driver=lambda: FakeCompute(host),
        residue=lambda node: [node] if node in host.nodes else [],
    )


class TestFakeCompute(ComputeConformance):
    pass
