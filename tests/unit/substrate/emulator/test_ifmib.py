from __future__ import annotations

import io
import shutil
from pathlib import Path

from federica.substrate.emulator.ifmib import IF_ENTRY, IFX_ENTRY, Cached, answer, serve, snapshot


def fake_sys(tmp_path: Path) -> Path:
    d = tmp_path / "eth9"
    (d / "statistics").mkdir(parents=True)
    for item, value in {
        "rx_bytes": 2**33 + 5,
        "tx_bytes": 7,
        "rx_packets": 3,
        "tx_packets": 4,
        "rx_errors": 0,
        "tx_errors": 0,
        "rx_dropped": 1,
        "tx_dropped": 0,
    }.items():
        (d / "statistics" / item).write_text(f"{value}\n")
    (d / "flags").write_text("0x1003\n")
    (d / "operstate").write_text("lowerlayerdown\n")
    (d / "mtu").write_text("1550\n")
    (d / "address").write_text("02:00:00:00:00:01\n")
    return tmp_path


PORTS: list[dict[str, object]] = [
    {
        "name": "ge-0/0/0",
        "ifname": "eth9",
        "speed_mbps": 10_000,
        "underlay": {"peer": "erl-mx:ge-0/0/0"},
    }
]


def test_snapshot_maps_kernel_counters_to_if_mib(tmp_path: Path) -> None:
    t = snapshot(PORTS, fake_sys(tmp_path))
    assert t[(*IFX_ENTRY, 1, 1)] == ("string", "ge-0/0/0")
    assert t[(*IFX_ENTRY, 6, 1)] == ("counter64", str(2**33 + 5))
    assert t[(*IF_ENTRY, 10, 1)] == ("counter", "5")  # Counter32 wraps
    assert t[(*IF_ENTRY, 5, 1)] == ("gauge", str(2**32 - 1))  # 10 Gb/s saturates ifSpeed
    assert t[(*IFX_ENTRY, 15, 1)] == ("gauge", "10000")
    assert t[(*IF_ENTRY, 7, 1)] == ("integer", "1")
    assert t[(*IF_ENTRY, 8, 1)] == ("integer", "7")
    assert t[(*IFX_ENTRY, 18, 1)] == ("string", "to erl-mx:ge-0/0/0")


def test_pass_persist_protocol(tmp_path: Path) -> None:
    t = snapshot(PORTS, fake_sys(tmp_path))
    assert (
        answer("get", ".1.3.6.1.2.1.31.1.1.1.1.1", t)
        == ".1.3.6.1.2.1.31.1.1.1.1.1\nstring\nge-0/0/0\n"
    )
    assert answer("get", ".1.3.6.1.2.1.31.1.1.1.1.2", t) == "NONE\n"
    assert answer("getnext", ".1.3.6.1.2.1.2", t).startswith(".1.3.6.1.2.1.2.1.0\ninteger\n1")
    assert answer("getnext", ".1.3.6.1.2.1.31.1.1.1.18.1", t) == "NONE\n"
    inp = io.StringIO("PING\nget\n.1.3.6.1.2.1.2.1.0\nset\n.1.3\ninteger 1\n")
    out = io.StringIO()
    serve(inp, out, lambda: t)
    assert out.getvalue() == "PONG\n.1.3.6.1.2.1.2.1.0\ninteger\n1\nnot-writable\n"


def add_vlan(sys_net: Path, ifname: str, segment: str | None, *, up: bool = True) -> None:
    d = sys_net / ifname
    (d / "statistics").mkdir(parents=True)
    for item in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets"):
        (d / "statistics" / item).write_text("1000\n")
    (d / "flags").write_text("0x1003\n" if up else "0x1002\n")
    (d / "operstate").write_text("unknown\n")
    if segment is not None:
        br = sys_net / "xcabc"
        br.mkdir(exist_ok=True)
        (br / "ifalias").write_text(f"xc:{segment}\n")
        (d / "master").symlink_to(br)


def test_each_vlan_a_port_carries_is_a_logical_unit_row(tmp_path: Path) -> None:
    sys_net = fake_sys(tmp_path)
    (sys_net / "eth9" / "operstate").write_text("up\n")
    add_vlan(sys_net, "eth9.1203", "fed7-ab")
    add_vlan(sys_net, "eth9.17", None, up=False)
    add_vlan(sys_net, "eth90.5", None)  # another port's VLAN: not this port's row
    t = snapshot(PORTS, sys_net, drops=lambda: {"eth9.1203": 42})
    names = {oid[-1]: v[1] for oid, v in t.items() if oid[:-1] == (*IFX_ENTRY, 1)}
    assert names == {1: "ge-0/0/0", 10_017: "ge-0/0/0.17", 11_203: "ge-0/0/0.1203"}
    assert t[(*IFX_ENTRY, 18, 11_203)] == ("string", "vlan 1203 fed7-ab")
    assert t[(*IFX_ENTRY, 6, 11_203)] == ("counter64", "1000")
    assert t[(*IF_ENTRY, 3, 11_203)] == ("integer", "135")  # l2vlan
    # ifOutDiscards: the device's own drops (none) and its shaper's.
    assert t[(*IF_ENTRY, 19, 11_203)] == ("counter", "42")
    assert t[(*IF_ENTRY, 19, 10_017)] == ("counter", "0")
    assert t[(*IF_ENTRY, 8, 11_203)] == ("integer", "1")  # up: enabled, its port up
    assert t[(*IF_ENTRY, 8, 10_017)] == ("integer", "2")  # disabled
    assert t[(1, 3, 6, 1, 2, 1, 2, 1, 0)] == ("integer", "3")
    # getnext walks the rows in index order, the VLANs after the ports.
    assert answer("getnext", ".1.3.6.1.2.1.31.1.1.1.1.1", t).startswith(
        ".1.3.6.1.2.1.31.1.1.1.1.10017\n"
    )


def test_a_vlan_unit_is_lower_layer_down_when_its_port_is_down(tmp_path: Path) -> None:
    sys_net = fake_sys(tmp_path)  # the port is lowerlayerdown
    add_vlan(sys_net, "eth9.1203", "fed7-ab")
    assert snapshot(PORTS, sys_net, drops=dict)[(*IF_ENTRY, 8, 11_203)] == ("integer", "7")


def test_a_vlan_row_that_goes_away_leaves_the_table(tmp_path: Path) -> None:
    sys_net = fake_sys(tmp_path)
    add_vlan(sys_net, "eth9.1203", "fed7-ab")
    assert (*IFX_ENTRY, 1, 11_203) in snapshot(PORTS, sys_net, drops=dict)
    shutil.rmtree(sys_net / "eth9.1203")
    assert (*IFX_ENTRY, 1, 11_203) not in snapshot(PORTS, sys_net, drops=dict)


def test_the_cached_snapshot_is_read_again_once_old() -> None:
    reads: list[int] = []

    def read() -> dict[tuple[int, ...], tuple[str, str]]:
        reads.append(1)
        return {}

    cached = Cached(read, ttl_s=0.0)
    cached()
    cached()
    assert len(reads) == 2
    once = Cached(read, ttl_s=3600)
    once()
    once()
    assert len(reads) == 3


def test_the_shaper_is_asked_only_when_a_port_carries_a_vlan(tmp_path: Path) -> None:
    asked: list[int] = []

    def drops() -> dict[str, int]:
        asked.append(1)
        return {}

    sys_net = fake_sys(tmp_path)
    snapshot(PORTS, sys_net, drops=drops)
    assert asked == []
    add_vlan(sys_net, "eth9.5", None)
    snapshot(PORTS, sys_net, drops=drops)
    assert asked == [1]


def test_a_walk_through_serve_visits_every_object_in_order(tmp_path: Path) -> None:
    sys_net = fake_sys(tmp_path)
    add_vlan(sys_net, "eth9.1203", "fed7-ab")
    add_vlan(sys_net, "eth9.17", None)
    t = snapshot(PORTS, sys_net, drops=dict)
    cursor, seen = ".1.3.6.1.2.1.2", []
    while True:
        out = io.StringIO()
        serve(io.StringIO(f"getnext\n{cursor}\n"), out, lambda: t)
        lines = out.getvalue().splitlines()
        if lines == ["NONE"]:
            break
        cursor = lines[0]
        seen.append(tuple(int(x) for x in cursor.strip(".").split(".")))
    assert seen == sorted(t)
