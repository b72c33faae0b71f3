"""A slice's own monitoring over REST: GET /slices/{ref}/metrics?from&to&step.

Whoever may read the slice may read its metrics (researchers: their projects' slices; a
slice they may not see is answered as one that does not exist). The answer is typed: the
models below are its schema in the OpenAPI document, and the answer is checked against
them before it leaves."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from federica.aaa.policy import Action
from federica.monitoring import queries
from federica.slicestats.queries import slice_metrics
from federica.web.api import api
from federica.web.api.openapi import MODELS, document
from federica.web.auth import guard
from federica.web.context import ctx, read_session
from federica.web.targets import slice_for


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SliceRef(Out):
    id: int
    name: str
    project: str | None
    status: str


class CircuitTotal(Out):
    """Over the window: octets and packets the slice's nodes sent into the circuit (rx)
    and it delivered to them (tx), drops and errors on every hop, and the averages over
    the time every edge interface had data (`covered_s`)."""

    covered_s: float
    rx_octets: float
    tx_octets: float
    rx_packets: float
    tx_packets: float
    drops: float
    errors: float
    rx_bps: float | None
    tx_bps: float | None
    rx_pps: float | None
    tx_pps: float | None


class CircuitPoint(Out):
    start: str
    covered_s: float
    rx_bps: float | None
    tx_bps: float | None
    rx_pps: float | None
    tx_pps: float | None


class HopMetrics(Out):
    """One hop: the device interface carrying the circuit's VLAN (`port.vlan`), what it
    received (rx) and sent (tx) over the window; `link` null: it faces the V-node of
    `nodes`."""

    device: str
    port: str
    vlan: int
    link: str | None
    interface: str
    nodes: list[str]
    polled: bool
    covered_s: float
    rx_octets: float
    tx_octets: float
    rx_packets: float
    tx_packets: float
    drops: float
    errors: float


class CircuitMetrics(Out):
    name: str
    bandwidth_mbps: int
    state: str
    measured: bool = Field(description="every edge hop's interface is polled")
    total: CircuitTotal | None
    points: list[CircuitPoint]
    hops: list[HopMetrics]


class NodePoint(Out):
    start: str
    samples: int
    cpu_cores: float | None = Field(description="CPU time per second (1.0: one core busy)")
    memory_bytes: int | None
    memory_max_bytes: int | None
    running: float = Field(description="share of the samples in which the node ran")


class NodeMetrics(Out):
    name: str
    v_node: str
    vcpu: int
    ram_mb: int
    state: str
    health: str = Field(
        description="running, or what its V-node reports instead (failed, stopped, "
        "defined, absent); unknown if its V-node was not sampled"
    )
    last_sample_at: str | None
    points: list[NodePoint]


class SliceMetrics(Out):
    slice: SliceRef
    from_: str = Field(alias="from")
    to: str
    step_s: int
    circuits: list[CircuitMetrics]
    nodes: list[NodeMetrics]


MODELS["SliceMetrics"] = SliceMetrics


@api.get("/slices/<ref>/metrics")
@document(
    "SliceMetrics",
    "A slice's circuits (rates, volumes, drops, errors per hop) and nodes (CPU, memory, "
    "health) over ?from&to (default the last hour) per ?step (default 60 s)",
    param="ref",
    tag="slices",
    query=("from:string", "to:string", "step:string"),
)
@guard(Action.SLICE_READ, per_target=True)
def show_slice_metrics(ref: str) -> ResponseReturnValue:
    context = ctx()
    window = queries.parse_window(
        request.args.get("from"), request.args.get("to"), request.args.get("step"), context.now()
    )
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        body = slice_metrics(s, sl, window, context.now(), context.settings)
    return jsonify(SliceMetrics.model_validate(body).model_dump(mode="json", by_alias=True))
