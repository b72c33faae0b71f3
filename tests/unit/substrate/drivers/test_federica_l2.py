from __future__ import annotations

from lxml import etree

from federica.substrate.drivers.netconf.federica_l2 import (
    Attachment,
    CrossConnect,
    cross_connects_config,
    interfaces_config,
    parse_config,
    to_xml,
)


def test_build_then_parse_roundtrip() -> None:
    xcs = [
        CrossConnect(
            "s1-c1",
            (Attachment("ge-0/0/0", 100), Attachment("ge-1/0/0", 200)),
            owner="s1",
            bandwidth_mbps=300,
        ),
        CrossConnect(
            "s1-c2",
            (Attachment("ge-0/0/1", 7), Attachment("ge-0/0/2", 7), Attachment("ge-1/0/1", 7)),
            enabled=False,
        ),
    ]
    cfg = cross_connects_config(add=xcs)
    data = etree.fromstring(to_xml(cfg))
    data.append(interfaces_config({"ge-0/0/0": False, "ge-1/0/0": True})[0])
    parsed = parse_config(data)
    assert parsed.cross_connects == {x.name: x for x in xcs}
    assert parsed.port_enabled == {"ge-0/0/0": False, "ge-1/0/0": True}


def test_removal_names_every_attachment() -> None:
    xc = CrossConnect("gone", (Attachment("ge-0/0/0", 5), Attachment("ge-1/0/0", 5)))
    xml = to_xml(cross_connects_config(remove=[xc]))
    assert xml.count('operation="remove"') == 3
