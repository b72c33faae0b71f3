"""What Prometheus sees of slices: each circuit's counters labelled {slice, project,
circuit} (the sum of its edge interfaces' raw counters from the latest polls: what the
slice's nodes sent into it and what it delivered to them, see mapping), and each node's
CPU time, memory and whether it runs, labelled {slice, project, node}. Only slices that
hold resources now; read from the database on every scrape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.monitoring.models import MonitoredInterface, NodeSample
from federica.slices.lifecycle import HOLDING
from federica.slices.models import Slice
from federica.slicestats.mapping import circuit_interfaces, driver_node

CIRCUIT_LABELS = ["slice", "project", "circuit"]
NODE_LABELS = ["slice", "project", "node"]
# (metric name without `_total`, help, the edge interfaces' counter it adds up)
CIRCUIT_COUNTERS = [
    ("federica_circuit_receive_bytes", "Octets the slice's nodes sent into the circuit",
     "in_octets"),
    ("federica_circuit_transmit_bytes", "Octets the circuit delivered to the slice's nodes",
     "out_octets"),
    ("federica_circuit_receive_packets", "Packets the slice's nodes sent into the circuit",
     "in_ucast_pkts"),
    ("federica_circuit_transmit_packets", "Packets the circuit delivered to the slice's nodes",
     "out_ucast_pkts"),
]  # fmt: skip


class SliceCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            yield from slice_metrics(session)


def slice_metrics(session: Session) -> list[Metric]:
    counters = {
        column: CounterMetricFamily(name, text, labels=CIRCUIT_LABELS)
        for name, text, column in CIRCUIT_COUNTERS
    }
    cpu = CounterMetricFamily(
        "federica_slice_node_cpu_seconds", "CPU time the node used", labels=NODE_LABELS
    )
    memory = GaugeMetricFamily(
        "federica_slice_node_memory_bytes", "Memory the node uses", labels=NODE_LABELS
    )
    up = GaugeMetricFamily(
        "federica_slice_node_up", "1 if the node ran at its latest sample", labels=NODE_LABELS
    )
    slices = session.scalars(
        select(Slice).where(Slice.status.in_([s.value for s in HOLDING])).order_by(Slice.id)
    )
    for sl in slices:
        for circuit in sorted(sl.circuits, key=lambda c: c.name):
            edges = [h for h in circuit_interfaces(session, sl, circuit) if h.edge]
            if not edges or any(h.interface_id is None for h in edges):
                continue
            raw = [_raw(session, h.interface_id) for h in edges if h.interface_id is not None]
            labels = [sl.name, sl.project or "", circuit.name]
            for column, family in counters.items():
                values = [r.get(column) for r in raw]
                if all(isinstance(v, int) for v in values):
                    family.add_metric(labels, float(sum(v for v in values if isinstance(v, int))))
        for node in sorted(sl.nodes, key=lambda n: n.name):
            latest = session.scalars(
                select(NodeSample)
                .where(
                    NodeSample.host_id == node.host_id,
                    NodeSample.node == driver_node(sl, node.name),
                )
                .order_by(NodeSample.at.desc())
                .limit(1)
            ).first()
            if latest is None:
                continue
            labels = [sl.name, sl.project or "", node.name]
            up.add_metric(labels, float(latest.state == "running"))
            if latest.cpu_seconds is not None:
                cpu.add_metric(labels, latest.cpu_seconds)
            if latest.memory_bytes is not None:
                memory.add_metric(labels, float(latest.memory_bytes))
    return [*counters.values(), cpu, memory, up]


def _raw(session: Session, interface_id: int) -> dict[str, Any]:
    row = session.get(MonitoredInterface, interface_id)
    return json.loads(row.counters or "{}") if row is not None else {}
