"""IF-MIB for one emulated device, served to net-snmp's snmpd through `pass_persist`.

snmpd (a real agent on 127.0.0.1) starts this inside the device's namespace with
`ip netns exec`, so it reads that namespace's interfaces from /sys. Rows are the device's
inventory ports in order (ifIndex 1..n), ifName/ifDescr their inventory names, ifAlias
what they face; then, like a Junos logical unit, one row per VLAN a port carries now (the
VXLAN device `<port ifname>.<vlan>` the data plane made, see dataplane.py): ifName
`<port>.<vlan>` (`xe-0/0/0.1203`), ifIndex `VLAN_INDEX_BASE * n + vlan` for the n-th port
(the same row keeps its index while it exists and gets it back when it comes again),
ifAlias the VLAN and the cross-connect it belongs to. These rows come and go with slices.
A VLAN row's ifOutDiscards also counts what its shaper (the tbf of the circuit's booked
rate, see dataplane.py) dropped: the kernel counts those in the qdisc, not the device.
Protocol: snmpd writes "PING", "get\\nOID", "getnext\\nOID", "set\\n…";
we answer "PONG", "OID\\nTYPE\\nVALUE" or "NONE".
"""

from __future__ import annotations

import bisect
import json
import re
import sys
import time
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
# A VLAN row's ifIndex: port n's VLAN v is n * VLAN_INDEX_BASE + v (VLANs go up to 4094).
VLAN_INDEX_BASE = 10_000
IF_TYPE_ETHERNET, IF_TYPE_L2VLAN = 6, 135
# A walk asks for every column of every row; one kernel read per table per this many
# seconds keeps a poll's values consistent and the agent's work per poll small.
SNAPSHOT_TTL_S = 0.25

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


def vlan_if_index(port_number: int, vlan: int) -> int:
    return port_number * VLAN_INDEX_BASE + vlan


def _vlan_rows(ifname: str, sys_net: Path) -> list[tuple[int, str]]:
    """(vlan, kernel name) of every `<ifname>.<vlan>` device in the namespace."""
    pattern = re.compile(rf"^{re.escape(ifname)}\.([0-9]{{1,4}})$")
    found = []
    try:
        names = [p.name for p in sys_net.iterdir()]
    except OSError:
        return []
    for name in names:
        m = pattern.match(name)
        if m and 1 <= int(m.group(1)) <= 4094:
            found.append((int(m.group(1)), name))
    return sorted(found)


def _segment_of(dev: str, sys_net: Path) -> str:
    """The cross-connect a VLAN device is in: its bridge's alias `xc:<name>`."""
    alias = _read(dev, "master/ifalias", sys_net)
    return alias[3:] if alias.startswith("xc:") else ""


def qdisc_drops() -> dict[str, int]:
    """Packets each device's root qdisc dropped, in this namespace (`tc -s qdisc`)."""
    from federica.substrate.emulator import iproute

    try:
        out = iproute.run([iproute.TC, "-s", "-j", "qdisc", "show"])
        rows = json.loads(out) if out.strip() else []
    except (iproute.IprouteError, OSError, ValueError):
        return {}
    return {q["dev"]: int(q.get("drops", 0)) for q in rows if q.get("root") and "dev" in q}


def _row(
    table: dict[Oid, Value],
    index: int,
    name: str,
    ifn: str,
    *,
    if_type: int,
    speed: int,
    alias: str,
    oper: int,
    sys_net: Path,
    shaper_drops: int = 0,
) -> None:
    def st(item: str) -> int:
        return _num(ifn, f"statistics/{item}", sys_net)

    up = _num(ifn, "flags", sys_net) & 1
    rows: dict[int, Value] = {
        1: ("integer", str(index)),
        2: ("string", name),
        3: ("integer", str(if_type)),
        4: ("integer", str(_num(ifn, "mtu", sys_net))),
        5: ("gauge", str(min(speed * 1_000_000, C32 - 1))),
        6: ("string", _read(ifn, "address", sys_net)),
        7: ("integer", "1" if up else "2"),
        8: ("integer", str(oper)),
        9: ("timeticks", "0"),
        10: ("counter", str(st("rx_bytes") % C32)),
        11: ("counter", str(st("rx_packets") % C32)),
        13: ("counter", str(st("rx_dropped") % C32)),
        14: ("counter", str(st("rx_errors") % C32)),
        16: ("counter", str(st("tx_bytes") % C32)),
        17: ("counter", str(st("tx_packets") % C32)),
        19: ("counter", str((st("tx_dropped") + shaper_drops) % C32)),
        20: ("counter", str(st("tx_errors") % C32)),
    }
    for col, v in rows.items():
        table[(*IF_ENTRY, col, index)] = v
    xrows: dict[int, Value] = {
        1: ("string", name),
        6: ("counter64", str(st("rx_bytes"))),
        7: ("counter64", str(st("rx_packets"))),
        10: ("counter64", str(st("tx_bytes"))),
        11: ("counter64", str(st("tx_packets"))),
        15: ("gauge", str(speed)),
        18: ("string", alias),
    }
    for col, v in xrows.items():
        table[(*IFX_ENTRY, col, index)] = v


def snapshot(
    ports: list[dict[str, object]],
    sys_net: Path = Path("/sys/class/net"),
    drops: Callable[[], dict[str, int]] = qdisc_drops,
) -> dict[Oid, Value]:
    """Every IF-MIB object we serve, read fresh from the kernel."""
    table: dict[Oid, Value] = {}
    units = {str(p["ifname"]): _vlan_rows(str(p["ifname"]), sys_net) for p in ports}
    # One `tc` run per snapshot, and only when some port carries a VLAN.
    shaped = drops() if any(units.values()) else {}
    for i, port in enumerate(ports, start=1):
        ifn, name = str(port["ifname"]), str(port["name"])
        speed = int(str(port["speed_mbps"]))
        underlay = port.get("underlay")
        alias = f"to {underlay['peer']}" if isinstance(underlay, dict) else "not connected"
        oper = OPER.get(_read(ifn, "operstate", sys_net), 4)
        _row(table, i, name, ifn, if_type=IF_TYPE_ETHERNET, speed=speed, alias=alias,
             oper=oper, sys_net=sys_net)  # fmt: skip
        for vlan, dev in units[ifn]:
            # A VXLAN device's own operstate is "unknown": like a logical unit, it is up
            # when it is enabled and its port is up.
            admin_up = _num(dev, "flags", sys_net) & 1
            unit_oper = (
                (OPER["up"] if oper == OPER["up"] else OPER["lowerlayerdown"])
                if (admin_up)
                else OPER["down"]
            )
            segment = _segment_of(dev, sys_net)
            unit_alias = f"vlan {vlan}" + (f" {segment}" if segment else "")
            _row(table, vlan_if_index(i, vlan), f"{name}.{vlan}", dev, if_type=IF_TYPE_L2VLAN,
                 speed=speed, alias=unit_alias, oper=unit_oper, sys_net=sys_net,
                 shaper_drops=shaped.get(dev, 0))  # fmt: skip
    rows = sum(1 for oid in table if oid[: len(IF_ENTRY) + 1] == (*IF_ENTRY, 1))
    table[IF_NUMBER] = ("integer", str(rows))
    return table


class Cached:
    """The latest snapshot, read again once it is older than `ttl_s`."""

    def __init__(self, read: Callable[[], dict[Oid, Value]], ttl_s: float = SNAPSHOT_TTL_S) -> None:
        self._read, self._ttl = read, ttl_s
        self._at = -float("inf")
        self._table: dict[Oid, Value] = {}

    def __call__(self) -> dict[Oid, Value]:
        now = time.monotonic()
        if now - self._at >= self._ttl:
            self._table, self._at = self._read(), now
        return self._table


def parse_oid(text: str) -> Oid:
    return tuple(int(x) for x in text.strip().strip(".").split(".") if x)


def fmt_oid(oid: Oid) -> str:
    return "." + ".".join(map(str, oid))


def answer(
    command: str, oid_text: str, table: dict[Oid, Value], keys: list[Oid] | None = None
) -> str:
    """`keys`: the table's OIDs in order, if the caller keeps them (a walk asks getnext
    once per value: a bisection each instead of a scan of the whole table)."""
    oid = parse_oid(oid_text)
    if command == "get":
        hit = table.get(oid)
        return f"{fmt_oid(oid)}\n{hit[0]}\n{hit[1]}\n" if hit else "NONE\n"
    if command == "getnext":
        ordered = keys if keys is not None else sorted(table)
        at = bisect.bisect_right(ordered, oid)
        if at == len(ordered):
            return "NONE\n"
        nxt = ordered[at]
        return f"{fmt_oid(nxt)}\n{table[nxt][0]}\n{table[nxt][1]}\n"
    return "not-writable\n"


def serve(inp: TextIO, out: TextIO, table_fn: Callable[[], dict[Oid, Value]]) -> None:
    # The sorted OIDs of the latest table, kept while table_fn gives the same table.
    ordered: tuple[dict[Oid, Value], list[Oid]] | None = None
    while True:
        line = inp.readline()
        if not line:
            return
        cmd = line.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in {"get", "getnext"}:
            table = table_fn()
            if ordered is None or ordered[0] is not table:
                ordered = (table, sorted(table))
            out.write(answer(cmd, inp.readline(), table, ordered[1]))
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
    serve(sys.stdin, sys.stdout, Cached(lambda: snapshot(ports)))


if __name__ == "__main__":
    main()
