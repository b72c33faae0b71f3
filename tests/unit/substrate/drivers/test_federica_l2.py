from __future__ import annotations

from lxml import etree

from federica.substrate.drivers.base import Attachment, Change, DeviceConfig, Segment
from federica.substrate.drivers.netconf.federica_l2 import (
    NC,
    change_config,
    interfaces_config,
    parse_config,
    segments_config,
    to_xml,
)

S1 = Segment(
    "s1-c1",
    (Attachment("ge-1/0/0", 200), Attachment("ge-0/0/0", 100)),
    owner="s1",
    bandwidth_mbps=300,
)
S2 = Segment(
    "s1-c2",
    (Attachment("ge-0/0/1", 7), Attachment("ge-0/0/2", 7), Attachment("ge-1/0/1", 7)),
    enabled=False,
)


def built(change: Change, current: DeviceConfig) -> DeviceConfig:
    """Parse what change_config writes, as netconfd would store it on an empty device."""
    el = change_config(change, current)
    assert el is not None
    return parse_config(etree.fromstring(to_xml(el)))


def test_build_then_parse_roundtrip() -> None:
    cfg = built(Change(add=(S1, S2)), DeviceConfig())
    assert cfg.segments == {"s1-c1": S1, "s1-c2": S2}
    data = interfaces_config({"ge-0/0/0": False, "ge-1/0/0": True})
    assert parse_config(data).port_enabled == {"ge-0/0/0": False, "ge-1/0/0": True}


def test_nothing_to_do_gives_none() -> None:
    current = DeviceConfig(port_enabled={"ge-0/0/0": True}, segments={S1.name: S1})
    assert (
        change_config(
            Change(add=(S1,), remove=("absent",), port_state=(("ge-0/0/0", True),)), current
        )
        is None
    )


def test_removal_names_every_attachment_of_the_current_segment() -> None:
    el = change_config(Change(remove=("s1-c2",)), DeviceConfig(segments={S1.name: S1, S2.name: S2}))
    assert el is not None
    assert to_xml(el).count('operation="remove"') == 4


def test_removing_the_last_segment_removes_the_container() -> None:
    el = change_config(Change(remove=("s1-c2",)), DeviceConfig(segments={S2.name: S2}))
    assert el is not None
    xml = to_xml(el)
    assert xml.count('operation="remove"') == 1 and "<l2 " in xml and "s1-c2" not in xml


def test_replacing_a_segment_removes_attachments_it_no_longer_has() -> None:
    new = Segment("s1-c1", (Attachment("ge-0/0/0", 100), Attachment("ge-1/0/1", 100)))
    el = change_config(Change(add=(new,)), DeviceConfig(segments={S1.name: S1}))
    assert el is not None
    xml = to_xml(el)
    assert xml.count('operation="remove"') == 1 and "<vlan>200</vlan>" in xml


def test_segments_config_never_drops_the_container() -> None:
    # It does not know the device's other segments, so removing one must stay one removal.
    el = segments_config(remove=[S2])
    l2 = el[0]
    assert l2.get(f"{{{NC}}}operation") is None
    assert to_xml(el).count('operation="remove"') == 4
