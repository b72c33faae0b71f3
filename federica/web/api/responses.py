"""The shapes of the API's answers, published in the OpenAPI document (schemathesis checks
every answer against them on both databases: tests/integration/test_api_fuzz.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from federica.aaa.policy import Scope


class Token(BaseModel):
    id: int
    name: str
    prefix: str
    user: str
    scopes: list[Scope]
    state: Literal["active", "expired", "revoked"]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class NewToken(Token):
    token: str  # the secret, in this answer only


class Identity(BaseModel):
    issuer: str
    subject: str


class User(BaseModel):
    id: int
    username: str
    display_name: str
    email: str
    role: Literal["researcher", "operator", "admin"]
    active: bool
    password_login: bool
    identities: list[Identity]
    projects: dict[str, Literal["member", "lead"]]
    created_at: dt.datetime


class Me(User):
    token_scopes: list[Scope] | None  # None: a portal or console session, not a token


class Member(BaseModel):
    username: str
    role: Literal["member", "lead"]
    source: str


class Project(BaseModel):
    name: str
    description: str
    members: list[Member]
    created_at: dt.datetime


class Maintenance(BaseModel):
    id: int
    target_kind: Literal["pop", "device", "link", "host"]
    target: str
    start: dt.datetime
    end: dt.datetime
    reason: str
    affected_slices: list[Any] | None = None  # in the answer to its creation


class Cancelled(BaseModel):
    id: int
    cancelled: bool


class Quota(BaseModel):
    project: str
    vcpu_hours_per_month: int | None
    max_nodes: int | None
    max_bandwidth_mbps: int | None
    month: str
    used_vcpu_hours: float
    nodes_now: int
    bandwidth_mbps_now: int


class Audit(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    via: str
    address: str
    action: str
    target: str
    slice_id: int | None
    project: str | None
    result: Literal["ok", "refused", "failed"]
    status: int
    detail: dict[str, Any]


class HeldBy(BaseModel):
    vlan: int
    at: dt.datetime
    held_by: list[dict[str, Any]]


class Extent(BaseModel):
    latest_end: dt.datetime
    limited_by: str


class Slot(BaseModel):
    start: dt.datetime
    end: dt.datetime
    embedding: dict[str, Any]  # as a Booking's


class Interface(BaseModel):
    name: str
    circuit: str
    address: str | None


class SliceNode(BaseModel):
    name: str
    kind: str
    vcpu: int
    ram_mb: int
    image: str
    v_node: str
    pop: str
    state: str
    detail: str
    interfaces: list[Interface]


class SliceCircuit(BaseModel):
    name: str
    bandwidth_mbps: int
    endpoints: list[str]
    state: str
    hops: list[dict[str, Any]]  # device, port, VLAN of each hop


class HistoryEntry(BaseModel):
    status: str
    at: dt.datetime
    reason: str | None


class SliceEvent(BaseModel):
    kind: str
    due: dt.datetime
    done_at: dt.datetime | None
    result: str | None
    # Where the worker is with it (pending, retrying, done …), once the worker says.
    state: str | None = None
    attempts: int | None = None
    retry_at: dt.datetime | None = None


class Slice(BaseModel):
    id: int
    name: str
    status: str
    project: str | None
    owner: str | None
    description: str
    start: dt.datetime
    end: dt.datetime
    nodes: list[SliceNode]
    circuits: list[SliceCircuit]
    gateway: dict[str, Any] | None
    access: dict[str, Any]
    history: list[HistoryEntry]
    events: list[SliceEvent]
    timings_ms: dict[str, Any]
    failure_reason: str | None
    emergency_stop: EStopRecord | None = None


class EStopRecord(BaseModel):
    """An emergency stop of a slice. Staff also see how it was chosen, the isolation
    report and the forensic snapshot."""

    id: int
    slice_id: int
    state: Literal["in-force", "lifted"]
    at: dt.datetime
    by: str
    reason: str
    ticket: str | None
    forensic_hold: bool
    lifted_at: dt.datetime | None
    lifted_by: str | None
    lift_reason: str | None
    via: str | None = None
    selector: dict[str, Any] | None = None
    isolated_ms: float | None = None
    report: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None


Slice.model_rebuild()  # it refers to EStopRecord, defined after it


class StoppedSlice(BaseModel):
    slice_id: int
    slice: str
    estop_id: int | None
    skipped: str | None
    isolated: bool | None
    report: dict[str, Any] | None


class EStopResult(BaseModel):
    stopped: list[StoppedSlice]


class Embedding(BaseModel):
    placement: dict[str, str]  # node -> V-node
    circuits: dict[str, list[dict[str, Any]]]  # circuit -> its hops


class Span(BaseModel):
    start: dt.datetime
    end: dt.datetime


class Booking(BaseModel):
    """A booking, or with dry_run where it would go (then there is no slice)."""

    dry_run: bool
    embedding: Embedding
    window: Span
    timings_ms: dict[str, float]
    slice: Slice | None = None
    remote: list[dict[str, Any]] | None = Field(
        default=None,
        description="Nodes pinned to a peer's PoP (PEER/POP): each peer's part, booked there",
    )


class RemoteParts(BaseModel):
    """A slice's parts booked at peers (nodes pinned PEER/POP), as each peer says now."""

    slice: str
    remote: list[dict[str, Any]] = Field(
        description="Per part: peer, request_id, state, user, the peer's slice (its nodes and "
        "access: how to log in), `error` when the peer could not be asked (then the "
        "last answer is shown), and `estop`: null, or the latest emergency stop's relay to "
        "that peer (state pending, delivered or refused; attempts, last_error, "
        "delivered_at, next_attempt_at)"
    )


MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        RemoteParts,
        Token,
        NewToken,
        User,
        Me,
        Project,
        Maintenance,
        Cancelled,
        Quota,
        Audit,
        HeldBy,
        Extent,
        Slot,
        Slice,
        Booking,
        EStopRecord,
        EStopResult,
    )
}
