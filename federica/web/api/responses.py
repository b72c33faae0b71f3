"""The shapes of the API's answers, published in the OpenAPI document (schemathesis checks
every answer against them on both databases: tests/integration/test_api_fuzz.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel

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
    embedding: dict[str, Any]


MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
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
    )
}
