"""Independent SQL checks of the calendar: written in plain SQL, not with the service."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

DOUBLE_BOOKED_TAGS = """
SELECT count(*) FROM reservations a JOIN reservations b
  ON a.id < b.id AND a.kind = b.kind AND a.kind IN ('link-vlan', 'port-vlan')
 AND coalesce(a.link_id, -1) = coalesce(b.link_id, -1)
 AND coalesce(a.port_id, -1) = coalesce(b.port_id, -1)
 AND a.vlan = b.vlan AND a.start < b."end" AND b.start < a."end"
"""


# Usage only rises at a booking's start, so checking every distinct start instant of a
# resource is enough.
# A circuit's hop holds its Mb/s on its tag's row ('link-vlan'); 'link-bw' rows are the
# older form (Mb/s in a row of its own). Either way: the sum over every row of a resource.
def _over(kinds: str, column: str, amount: str, table: str, capacity: str) -> str:
    return f"""
SELECT i.rid FROM (SELECT DISTINCT {column} AS rid, start AS t FROM reservations
                   WHERE kind IN ({kinds})) i
JOIN reservations r ON r.kind IN ({kinds}) AND r.{column} = i.rid AND r.start <= i.t
 AND r."end" > i.t
JOIN {table} x ON x.id = i.rid
GROUP BY i.rid, i.t, x.{capacity} HAVING sum(r.{amount}) > x.{capacity}"""


OVER_CAPACITY = {
    "cpu": _over("'compute'", "host_id", "vcpu", "compute_hosts", "cpu_cores"),
    "link": _over("'link-vlan', 'link-bw'", "link_id", "bandwidth_mbps", "links", "capacity_mbps"),
    "port": _over("'port-vlan', 'port-bw'", "port_id", "bandwidth_mbps", "ports", "speed_mbps"),
}


def violations(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        out = {"double-booked tags": int(conn.execute(text(DOUBLE_BOOKED_TAGS)).scalar() or 0)}
        for name, sql in OVER_CAPACITY.items():
            out[f"{name} over capacity"] = len(conn.execute(text(sql)).all())
    return out
