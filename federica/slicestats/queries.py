"""A slice's metrics over a window: per circuit what its nodes sent into it and what it
delivered to them (octets, packets, per second and in total), drops and errors on every
hop; per node its CPU and memory and whether it is alive. Services: they read the database.

Circuit figures come from the edge hops (see mapping): `rx` is what the devices received
from the slice's nodes, `tx` what they sent to them. Each interface's totals are its rates
times the time they held; a circuit's average rate is its total over the time every edge
interface has data for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.monitoring import store
from federica.monitoring.models import MonitoredHost, NodeSample
from federica.monitoring.queries import Window
from federica.monitoring.rollup import Period, floor
from federica.slices.models import Slice, SliceCircuit, SliceNode
from federica.slicestats.mapping import HopInterface, circuit_interfaces, driver_node

OCTETS_PACKETS = {
    "rx_octets": "in_octets",
    "tx_octets": "out_octets",
    "rx_packets": "in_ucast_pkts",
    "tx_packets": "out_ucast_pkts",
}
TROUBLE = {
    "drops": ("in_discards", "out_discards"),
    "errors": ("in_errors", "out_errors"),
}


def slice_metrics(
    session: Session, sl: Slice, window: Window, now: dt.datetime, settings: Settings
) -> dict[str, Any]:
    return {
        "slice": {"id": sl.id, "name": sl.name, "project": sl.project, "status": sl.status.value},
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "step_s": window.step_s,
        "circuits": [
            circuit_metrics(session, sl, c, window, now, settings)
            for c in sorted(sl.circuits, key=lambda c: c.name)
        ],
        "nodes": [
            node_metrics(session, sl, n, window) for n in sorted(sl.nodes, key=lambda n: n.name)
        ],
    }


def circuit_metrics(
    session: Session,
    sl: Slice,
    circuit: SliceCircuit,
    window: Window,
    now: dt.datetime,
    settings: Settings,
) -> dict[str, Any]:
    hops = circuit_interfaces(session, sl, circuit)
    ids = [h.interface_id for h in hops if h.interface_id is not None]
    span = (window.start, window.end)
    series = store.series(session, ids, span, window.step_s, now, settings) if ids else {}
    edges = [h for h in hops if h.edge]
    measured = bool(edges) and all(h.interface_id is not None for h in edges)
    points = _circuit_points(edges, series) if measured else []
    per_hop = [_hop_json(h, series.get(h.interface_id or -1, [])) for h in hops]
    total = _circuit_total(edges, per_hop) if measured else None
    return {
        "name": circuit.name,
        "bandwidth_mbps": circuit.bandwidth_mbps,
        "state": circuit.state.value,
        "measured": measured,
        "total": total,
        "points": points,
        "hops": per_hop,
    }


def _volume(periods: Iterable[Period], column: str) -> float:
    return sum((p.values.get(column) or 0.0) * p.covered_s for p in periods)


def _hop_json(hop: HopInterface, periods: list[Period]) -> dict[str, Any]:
    covered = sum(p.covered_s for p in periods)
    return {
        "device": hop.device,
        "port": hop.port,
        "vlan": hop.vlan,
        "link": hop.link,
        "interface": hop.interface,
        "nodes": list(hop.nodes),
        "polled": hop.interface_id is not None,
        "covered_s": round(covered, 3),
        **{name: _volume(periods, col) for name, col in OCTETS_PACKETS.items()},
        **{name: sum(_volume(periods, c) for c in cols) for name, cols in TROUBLE.items()},
    }


def _circuit_total(edges: list[HopInterface], per_hop: list[dict[str, Any]]) -> dict[str, Any]:
    edge_rows = [h for h in per_hop if h["link"] is None]
    covered = min((h["covered_s"] for h in edge_rows), default=0.0)
    sums = {name: sum(h[name] for h in edge_rows) for name in OCTETS_PACKETS}
    # Drops and errors anywhere along the circuit, not only at its edges.
    trouble = {name: sum(h[name] for h in per_hop) for name in TROUBLE}

    def per_s(value: float, factor: float = 1.0) -> float | None:
        return value * factor / covered if covered > 0 else None

    return {
        "covered_s": covered,
        **sums,
        **trouble,
        "rx_bps": per_s(sums["rx_octets"], 8),
        "tx_bps": per_s(sums["tx_octets"], 8),
        "rx_pps": per_s(sums["rx_packets"]),
        "tx_pps": per_s(sums["tx_packets"]),
    }


def _circuit_points(
    edges: list[HopInterface], series: dict[int, list[Period]]
) -> list[dict[str, Any]]:
    """Per step: the edges' rates added up; a step counts as covered for the time every
    edge had data (the least of their coverages)."""
    by_start: dict[dt.datetime, list[Period | None]] = {}
    for k, hop in enumerate(edges):
        for p in series.get(hop.interface_id or -1, []):
            by_start.setdefault(p.start, [None] * len(edges))[k] = p
    out = []
    for start in sorted(by_start):
        periods = by_start[start]
        have = [p for p in periods if p is not None]

        def add(column: str, factor: float = 1.0, have: list[Period] = have) -> float | None:
            values = [p.values.get(column) for p in have]
            known = [v for v in values if v is not None]
            return sum(known) * factor if known else None

        out.append(
            {
                "start": start.isoformat(),
                "covered_s": round(min(p.covered_s if p else 0.0 for p in periods), 3),
                "rx_bps": add("in_octets", 8),
                "tx_bps": add("out_octets", 8),
                "rx_pps": add("in_ucast_pkts"),
                "tx_pps": add("out_ucast_pkts"),
            }
        )
    return out


def node_metrics(session: Session, sl: Slice, node: SliceNode, window: Window) -> dict[str, Any]:
    name = driver_node(sl, node.name)
    rows = list(
        session.scalars(
            select(NodeSample)
            .where(
                NodeSample.host_id == node.host_id,
                NodeSample.node == name,
                NodeSample.at >= window.start,
                NodeSample.at < window.end,
            )
            .order_by(NodeSample.at)
        )
    )
    latest = session.scalars(
        select(NodeSample)
        .where(NodeSample.host_id == node.host_id, NodeSample.node == name)
        .order_by(NodeSample.at.desc())
        .limit(1)
    ).first()
    host = session.get(MonitoredHost, node.host_id)
    return {
        "name": node.name,
        "v_node": node.host.name,
        "vcpu": node.vcpu,
        "ram_mb": node.ram_mb,
        "state": node.state.value,
        "health": health(node, latest, host),
        "last_sample_at": latest.at.isoformat() if latest else None,
        "points": _node_points(rows, window.step_s),
    }


def health(node: SliceNode, latest: NodeSample | None, host: MonitoredHost | None) -> str:
    """running, or what its V-node says instead (failed, stopped, absent, defined);
    unknown when its V-node has not been sampled since, or could not be."""
    if host is None or latest is None:
        return "unknown"
    if host.error or latest.at < host.last_sample_at:
        # The V-node did not answer, or did not list the node in its latest sample.
        return "unknown" if host.error else "absent"
    return latest.state


def _node_points(rows: list[NodeSample], step_s: int) -> list[dict[str, Any]]:
    buckets: dict[dt.datetime, list[NodeSample]] = {}
    for r in rows:
        buckets.setdefault(floor(r.at, step_s), []).append(r)
    out = []
    for start, samples in sorted(buckets.items()):
        cores = [s.cpu_cores for s in samples if s.cpu_cores is not None]
        memory = [s.memory_bytes for s in samples if s.memory_bytes is not None]
        out.append(
            {
                "start": start.isoformat(),
                "samples": len(samples),
                "cpu_cores": sum(cores) / len(cores) if cores else None,
                "memory_bytes": round(sum(memory) / len(memory)) if memory else None,
                "memory_max_bytes": max(memory) if memory else None,
                "running": sum(1 for s in samples if s.state == "running") / len(samples),
            }
        )
    return out
