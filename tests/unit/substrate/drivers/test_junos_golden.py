"""What the junos driver puts on the wire, byte for byte, through ncclient's junos device
handler. Regenerate after a deliberate change with FEDERICA_UPDATE_GOLDEN=1 and review
the diff: these files are what a real MX/EX will receive."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest
from lxml import etree

from federica.substrate.drivers.base import Attachment, Segment
from federica.substrate.drivers.netconf.junos import JunosDriver
from federica.substrate.drivers.netconf.junos_xml import Style
from federica.substrate.drivers.netconf.session import Endpoint
from tests.conftest import DATA
from tests.junos_sim import SimJunos, sim_manager

GOLDEN = DATA / "junos"
PORTS = ("ge-0/0/0", "ge-1/0/0", "ge-1/0/1")
SEG = Segment(
    "s42-c1",
    (Attachment("ge-0/0/0", 100), Attachment("ge-1/0/0", 200)),
    owner="s42",
    bandwidth_mbps=100,
)


def wire(style: Style, act: Callable[[JunosDriver], object]) -> str:
    sim = SimJunos("mil-mx", list(PORTS))
    d = JunosDriver(
        "mil-mx",
        Endpoint("192.0.2.1", 830, "u", None, None),
        ports=PORTS,
        style=style,
        mgr=sim_manager(sim),
    )
    start = len(sim.sent)
    act(d)
    out = []
    for msg in sim.sent[start:]:
        msg = re.sub(r'message-id="[^"]+"', 'message-id="ID"', msg)
        el = etree.fromstring(msg.encode())
        out.append(etree.tostring(el, pretty_print=True, encoding="unicode"))
    return "".join(out)


def add_segment(d: JunosDriver) -> None:
    d.lock()
    d.add_segment(SEG)


def remove_segment(d: JunosDriver) -> None:
    d.add_segment(SEG)
    d.commit()
    d.remove_segment(SEG.name)


CASES: dict[str, tuple[Style, Callable[[JunosDriver], object]]] = {
    "add-segment-mx": ("mx", add_segment),
    "add-segment-ex": (
        "ex",
        lambda d: d.add_segment(
            Segment("s7-c2", (Attachment("ge-0/0/0", 300), Attachment("ge-1/0/1", 300)), owner="s7")
        ),
    ),
    "remove-segment": ("mx", remove_segment),
    "port-disable": ("mx", lambda d: d.set_port_state("ge-1/0/1", False)),
    "commit-confirmed-90s": ("mx", lambda d: d.commit_confirmed(90, "ignored")),
    "confirm": ("mx", lambda d: d.confirm("ignored")),
    "cancel-commit": ("mx", lambda d: d.cancel_commit("ignored")),
    "validate": ("mx", lambda d: d.validate()),
    "diff": ("mx", lambda d: d.diff()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rpc_matches_golden_file(case: str) -> None:
    style, act = CASES[case]
    got = wire(style, act)
    path = GOLDEN / f"{case}.xml"
    if os.environ.get("FEDERICA_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert path.exists(), f"no golden file {path}; run with FEDERICA_UPDATE_GOLDEN=1"
    assert got == path.read_text()


def test_confirm_timeout_is_rounded_up_to_junos_minutes() -> None:
    assert "<confirm-timeout>2</confirm-timeout>" in wire(
        "mx", lambda d: d.commit_confirmed(90, "x")
    )
    assert "<confirm-timeout>1</confirm-timeout>" in wire(
        "mx", lambda d: d.commit_confirmed(30, "x")
    )
