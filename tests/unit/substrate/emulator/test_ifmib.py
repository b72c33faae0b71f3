from __future__ import annotations

import io
from pathlib import Path

from federica.substrate.emulator.ifmib import IF_ENTRY, IFX_ENTRY, answer, serve, snapshot


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
