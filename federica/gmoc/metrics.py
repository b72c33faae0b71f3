"""The datastore's metrics: which object types report which, their units and what they are
made of. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ops_monitoring:"


@dataclass(frozen=True)
class Metric:
    name: str
    units: str
    description: str
    column: str | None = None  # the stored rate it comes from (per second)
    scale: float = 1.0  # octets to bits


_RATES = (
    Metric("rx_bps", "bps", "bits per second received", "in_octets", 8.0),
    Metric("tx_bps", "bps", "bits per second sent", "out_octets", 8.0),
    Metric("rx_pps", "pps", "unicast packets per second received", "in_ucast_pkts"),
    Metric("tx_pps", "pps", "unicast packets per second sent", "out_ucast_pkts"),
    Metric("rx_dps", "pps", "received packets discarded per second", "in_discards"),
    Metric("tx_dps", "pps", "packets to send discarded per second", "out_discards"),
    Metric("rx_eps", "pps", "received packets in error per second", "in_errors"),
    Metric("tx_eps", "pps", "packets not sent for errors per second", "out_errors"),
)
AVAILABLE = Metric(
    "is_available", "boolean", "did the subject answer the poller in this period (1) or not (0)"
)
_NODE = (
    Metric("cpu_util", "percent", "CPU utilisation"),
    Metric("mem_used_kb", "kilobytes", "memory in use"),
    AVAILABLE,
)

BY_TYPE: dict[str, tuple[Metric, ...]] = {
    "interface": _RATES,
    "interfacevlan": _RATES,
    "node": _NODE,
    "aggregate": (AVAILABLE,),
}
ALL: dict[str, Metric] = {m.name: m for ms in BY_TYPE.values() for m in ms}
EVENT_TYPES = frozenset(PREFIX + name for name in ALL)
