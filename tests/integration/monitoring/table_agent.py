"""An IF-MIB table for net-snmp's snmpd (`pass_persist`) read from a JSON file at every
request, so a test can change the rows while a real agent serves them.

The file maps "ifIndex" to {"name", "alias", "in_octets", "out_octets", "oper"}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from federica.substrate.emulator.ifmib import IF_ENTRY, IFX_ENTRY, Oid, Value, serve


def table(path: Path) -> dict[Oid, Value]:
    rows = json.loads(path.read_text())
    out: dict[Oid, Value] = {}
    for key, row in rows.items():
        i = int(key)
        for col, value in {
            7: ("integer", "1"),
            8: ("integer", str(row.get("oper", 1))),
            13: ("counter", "0"),
            14: ("counter", str(row.get("in_errors", 0))),
            19: ("counter", "0"),
            20: ("counter", "0"),
        }.items():
            out[(*IF_ENTRY, col, i)] = value
        for col, value in {
            1: ("string", row["name"]),
            6: ("counter64", str(row.get("in_octets", 0))),
            7: ("counter64", "0"),
            10: ("counter64", str(row.get("out_octets", 0))),
            11: ("counter64", "0"),
            15: ("gauge", "1000"),
            18: ("string", row.get("alias", "")),
        }.items():
            out[(*IFX_ENTRY, col, i)] = value
    return out


if __name__ == "__main__":
    source = Path(sys.argv[1])
    serve(sys.stdin, sys.stdout, lambda: table(source))
