"""What monitoring shows Prometheus: the devices' interface counters and poll state.

The counters are the agents' own raw values from the latest poll (node_exporter's
naming: receive/transmit bytes, packets, errors, drops), so Prometheus' `rate()` sees
what the device counted, resets included. They are as old as that poll (at most an
interval): Prometheus scraping every interval sees each value once or twice, never a
made-up one. `prometheus_targets` lists the agents for an existing Prometheus with
snmp_exporter (http_sd).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.config import Settings
from federica.errors import FedericaError
from federica.monitoring import credentials
from federica.monitoring.models import MonitoredDevice, MonitoredInterface
from federica.substrate.models import Device, Pop

# Poller counter name → (metric name without `_total`, help).
COUNTER_METRICS = {
    "in_octets": ("federica_interface_receive_bytes", "Octets received (ifHCInOctets)"),
    "out_octets": ("federica_interface_transmit_bytes", "Octets sent (ifHCOutOctets)"),
    "in_ucast_pkts": (
        "federica_interface_receive_packets",
        "Unicast packets received (ifHCInUcastPkts)",
    ),
    "out_ucast_pkts": (
        "federica_interface_transmit_packets",
        "Unicast packets sent (ifHCOutUcastPkts)",
    ),
    "in_errors": ("federica_interface_receive_errors", "Inbound errors (ifInErrors, 32 bit)"),
    "out_errors": ("federica_interface_transmit_errors", "Outbound errors (ifOutErrors, 32 bit)"),
    "in_discards": ("federica_interface_receive_drop", "Inbound discards (ifInDiscards, 32 bit)"),
    "out_discards": (
        "federica_interface_transmit_drop",
        "Outbound discards (ifOutDiscards, 32 bit)",
    ),
}
LABELS = ["device", "port"]


class MonitoringCollector(Collector):
    """Reads the latest poll from the database on every scrape (no state of its own)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            yield from interface_metrics(session)
            yield from device_metrics(session)


def interface_metrics(session: Session) -> list[Metric]:
    counters = {
        key: CounterMetricFamily(name, text, labels=LABELS)
        for key, (name, text) in COUNTER_METRICS.items()
    }
    oper = GaugeMetricFamily(
        "federica_interface_oper_up", "1 if ifOperStatus is up(1), else 0", labels=LABELS
    )
    admin = GaugeMetricFamily(
        "federica_interface_admin_up", "1 if ifAdminStatus is up(1), else 0", labels=LABELS
    )
    speed = GaugeMetricFamily(
        "federica_interface_speed_bits_per_second", "ifHighSpeed in bit/s", labels=LABELS
    )
    seen = GaugeMetricFamily(
        "federica_interface_last_poll_timestamp_seconds",
        "When the counters were read (Unix time)",
        labels=LABELS,
    )
    # Rows the device's latest answer still had: a per-VLAN row whose slice ended is gone
    # from its IF-MIB, and its series stop (its stored rates stay for the slice's views).
    rows = session.execute(
        select(Device.name, MonitoredInterface)
        .join(Device, MonitoredInterface.device_id == Device.id)
        .join(MonitoredDevice, MonitoredDevice.device_id == Device.id)
        .where(MonitoredInterface.last_seen >= MonitoredDevice.last_ok_at)
        .order_by(Device.name, MonitoredInterface.if_index)
    )
    for device, iface in rows:
        labels = [device, iface.name]
        values: dict[str, Any] = json.loads(iface.counters or "{}")
        for key, family in counters.items():
            if isinstance(values.get(key), int):
                family.add_metric(labels, float(values[key]))
        if iface.oper_status is not None:
            oper.add_metric(labels, float(iface.oper_status == 1))
        if iface.admin_status is not None:
            admin.add_metric(labels, float(iface.admin_status == 1))
        if iface.high_speed_mbps is not None:
            speed.add_metric(labels, iface.high_speed_mbps * 1e6)
        seen.add_metric(labels, iface.last_seen.timestamp())
    return [*counters.values(), oper, admin, speed, seen]


def device_metrics(session: Session) -> list[Metric]:
    up = GaugeMetricFamily(
        "federica_device_snmp_up",
        "1 if the device's agent answered its latest poll",
        labels=["device"],
    )
    failures = GaugeMetricFamily(
        "federica_device_snmp_consecutive_failures",
        "Polls in a row the agent did not answer",
        labels=["device"],
    )
    last = GaugeMetricFamily(
        "federica_device_last_poll_timestamp_seconds",
        "When the device was last asked (Unix time)",
        labels=["device"],
    )
    rows = session.execute(
        select(Device.name, MonitoredDevice)
        .join(Device, MonitoredDevice.device_id == Device.id)
        .order_by(Device.name)
    )
    for device, state in rows:
        up.add_metric([device], float(state.consecutive_failures == 0))
        failures.add_metric([device], float(state.consecutive_failures))
        last.add_metric([device], state.last_poll_at.timestamp())
    return [up, failures, last]


def prometheus_targets(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every polled device's agent in Prometheus' http_sd format: [{targets, labels}].

    One group per device (its labels are its own). Secrets are not even read: the
    credential set's name goes out (`__meta_federica_snmp_auth`, for snmp_exporter's
    `auth` parameter), never what it holds, so the API's process needs no SNMP secrets."""
    sets = credentials.load_sets(settings)
    out = []
    rows = session.execute(
        select(Device, Pop.name).join(Pop, Device.pop_id == Pop.id).order_by(Device.name)
    )
    for device, pop in rows:
        try:
            port, version = credentials.shape(
                settings, sets, device.credentials_ref, device.netconf_port
            )
        except FedericaError:
            continue  # no such credential set: not polled by federica either
        host = f"[{device.mgmt_host}]" if ":" in device.mgmt_host else device.mgmt_host
        out.append(
            {
                "targets": [f"{host}:{port}"],
                "labels": {
                    "device": device.name,
                    "pop": pop,
                    "__meta_federica_device_kind": device.kind.value,
                    "__meta_federica_device_model": device.model,
                    "__meta_federica_snmp_auth": device.credentials_ref,
                    "__meta_federica_snmp_version": version,
                },
            }
        )
    return out
