"""IF-MIB for one emulated device, served to net-snmp's snmpd through `pass_persist`.

snmpd (a real agent on 127.0.0.1) starts this inside the device's namespace with
`ip netns exec`, so it reads that namespace's interfaces from /sys. Rows are the device's
inventory ports in order (ifIndex 1..n), ifName/ifDescr their inventory names, ifAlias
what they face. Protocol: snmpd writes "PING", "get\\nOID", "getnext\\nOID", "set\\n…";
we answer "PONG", "OID\\nTYPE\\nVALUE" or "NONE".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
OPER = {
    "up": 1,
    "down": 2,
    "testing": 3,
    "unknown": 4,
    "dormant": 5,
    "notpresent": 6,
    "lowerlayerdown": 7,
}
C32 = 2**32

Oid = tuple[int, ...]
Value = tuple[str, str]


def _read(ifname: str, item: str, sys_net: Path) -> str:
    try:
        return (sys_net / ifname / item).read_text().strip()
    except OSError:
        return ""


def _num(ifname: str, item: str, sys_net: Path) -> int:
    text = _read(ifname, item, sys_net)
    return int(text, 0) if text else 0


def snapshot(
    ports: list[dict[str, object]], sys_net: Path = Path("/sys/class/net")
) -> dict[Oid, Value]:
    """Every IF-MIB object we serve, read fresh from the kernel."""
    table: dict[Oid, Value] = {IF_NUMBER: ("integer", str(len(ports)))}
    for i, port in enumerate(ports, start=1):
        ifn = str(port["ifname"])

        def st(item: str, ifn: str = ifn) -> int:
            return _num(ifn, f"statistics/{item}", sys_net)

        speed = int(str(port["speed_mbps"]))
        up = _num(ifn, "flags", sys_net) & 1
        underlay = port.get("underlay")
        alias = f"to {underlay['peer']}" if isinstance(underlay, dict) else "not connected"
        rows: dict[int, Value] = {
            1: ("integer", str(i)),
            2: ("string", str(port["name"])),
            3: ("integer", "6"),  # ethernetCsmacd
            4: ("integer", str(_num(ifn, "mtu", sys_net))),
            5: ("gauge", str(min(speed * 1_000_000, C32 - 1))),
            6: ("string", _read(ifn, "address", sys_net)),
            7: ("integer", "1" if up else "2"),
            8: ("integer", str(OPER.get(_read(ifn, "operstate", sys_net), 4))),
            9: ("timeticks", "0"),
            10: ("counter", str(st("rx_bytes") % C32)),
            11: ("counter", str(st("rx_packets") % C32)),
            13: ("counter", str(st("rx_dropped") % C32)),
            14: ("counter", str(st("rx_errors") % C32)),
            16: ("counter", str(st("tx_bytes") % C32)),
            17: ("counter", str(st("tx_packets") % C32)),
            19: ("counter", str(st("tx_dropped") % C32)),
            20: ("counter", str(st("tx_errors") % C32)),
        }
        for col, v in rows.items():
            table[(*IF_ENTRY, col, i)] = v
        xrows: dict[int, Value] = {
            1: ("string", str(port["name"])),
            6: ("counter64", str(st("rx_bytes"))),
            7: ("counter64", str(st("rx_packets"))),
            10: ("counter64", str(st("tx_bytes"))),
            11: ("counter64", str(st("tx_packets"))),
            15: ("gauge", str(speed)),
            18: ("string", alias),
        }
        for col, v in xrows.items():
            table[(*IFX_ENTRY, col, i)] = v
    return table


def parse_oid(text: str) -> Oid:
    return tuple(int(x) for x in text.strip().strip(".").split(".") if x)


def fmt_oid(oid: Oid) -> str:
    return "." + ".".join(map(str, oid))


def answer(command: str, oid_text: str, table: dict[Oid, Value]) -> str:
    oid = parse_oid(oid_text)
    if command == "get":
        hit = table.get(oid)
        return f"{fmt_oid(oid)}\n{hit[0]}\n{hit[1]}\n" if hit else "NONE\n"
    if command == "getnext":
        later = [o for o in table if o > oid]
        if not later:
            return "NONE\n"
        nxt = min(later)
        return f"{fmt_oid(nxt)}\n{table[nxt][0]}\n{table[nxt][1]}\n"
    return "not-writable\n"


def serve(inp: TextIO, out: TextIO, table_fn: Callable[[], dict[Oid, Value]]) -> None:
    while True:
        line = inp.readline()
        if not line:
            return
        cmd = line.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in {"get", "getnext"}:
            out.write(answer(cmd, inp.readline(), table_fn()))
        elif cmd == "set":
            inp.readline()
            inp.readline()
            out.write("not-writable\n")
        else:
            continue
        out.flush()


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    ports = plan["ports"]
    serve(sys.stdin, sys.stdout, lambda: snapshot(ports))


if __name__ == "__main__":
    main()
