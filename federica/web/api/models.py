"""The API's request bodies as typed models: one definition both validates a request
(`parse_body`) and is published in the OpenAPI document, so the document says what the
API accepts. Strict: `true` is not a number, unknown fields are errors, and the strict
JSON reader (federica.documents) has already refused duplicate keys, deep nesting and
control characters."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federica import documents, inputs
from federica.aaa.policy import Scope
from federica.errors import FieldError, InvalidInput
from federica.slices.request import MAX_REQUEST_BYTES, WHOLE, field_errors

M = TypeVar("M", bound=BaseModel)

INSTANT, MONTH, SAFE, SAFE_MULTILINE = (
    inputs.INSTANT_PATTERN,
    inputs.MONTH_PATTERN,
    inputs.SAFE,
    inputs.SAFE_MULTILINE,
)
DURATION = r"^[1-9][0-9]{0,2}[mhdw]$"
ROLE = Literal["researcher", "operator", "admin"]
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"  # case is folded
PROJECT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
EMAIL = rf"^{SAFE}*@{SAFE}*$"

Instant = Annotated[str, Field(pattern=INSTANT, description="ISO 8601 time with a zone")]
Count = Annotated[int, Field(strict=True, ge=0, le=inputs.DB_INT_MAX), WHOLE]
Line = Annotated[str, Field(max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Extension(Body):
    """Exactly one of `by` and `to`."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    by: Annotated[str, Field(pattern=DURATION, description="e.g. '2h', '3d', '1w'")] | None = None
    to: Instant | None = None


class MaintenanceRequest(Body):
    target_kind: Literal["pop", "device", "link", "host"]
    target: Annotated[str, Field(min_length=1, max_length=200)]
    start: Annotated[str, Field(pattern=r"^now$", description="'now' (the default)")] | Instant = (
        "now"
    )
    end: Instant
    reason: Annotated[
        str,
        Field(
            max_length=500,
            pattern=rf"^{SAFE_MULTILINE}*[^\s\x00-\x1f\x7f-\x9f]{SAFE_MULTILINE}*$",
            description="why (users see it)",
        ),
    ]


class QuotaRequest(Body):
    """A whole number, or null for unlimited; keys left out stay as they are."""

    vcpu_hours_per_month: Count | None = None
    max_nodes: Count | None = None
    max_bandwidth_mbps: Count | None = None


class TokenRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=5)] | None = None
    expires_in_days: (
        Annotated[
            float,
            Field(strict=True, ge=0.001, le=365, description="at most the facility's maximum"),
        ]
        | None
    ) = None


class Login(TokenRequest):
    # No upper bound of its own: any name is an attempt (refused at the password check).
    username: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserRequest(Body):
    username: Annotated[str, Field(pattern=USERNAME)]
    role: ROLE = "researcher"
    password: Annotated[str, Field(min_length=10, max_length=1024)] | None = None
    display_name: Annotated[str, Field(max_length=200)] | None = None
    email: Annotated[str, Field(max_length=254, pattern=EMAIL)] | None = None


class UserChange(Body):
    role: ROLE | None = None
    active: Annotated[bool, Field(strict=True)] | None = None
    password: Annotated[str, Field(min_length=10, max_length=1024)] | None = None
    display_name: Annotated[str, Field(max_length=200)] | None = None
    email: Annotated[str, Field(max_length=254, pattern=rf"^({EMAIL[1:-1]})?$")] | None = None


class ProjectRequest(Body):
    name: Annotated[str, Field(pattern=PROJECT)]
    description: Annotated[str, Field(max_length=500)] | None = None
    lead: Annotated[str, Field(pattern=USERNAME, description="a username")] | None = None


class MemberRequest(Body):
    role: Literal["member", "lead"] = "member"


Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        pattern=rf"^{SAFE}*[^\s\x00-\x1f\x7f-\x9f]{SAFE}*$",
        description="why (the slice's owner and project see it)",
    ),
]
Ticket = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=rf"^{SAFE}*[^\s\x00-\x1f\x7f-\x9f]{SAFE}*$",
        description="the operations centre's ticket, if any",
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=rf"^{SAFE}+$")]


class EStopRequest(Body):
    """Stop one slice (the path names it)."""

    reason: Reason
    ticket: Ticket | None = None


class EStopSelection(Body):
    """Stop every slice a selector names: exactly one of slice, project, user; or one
    place (port "device:port", link, vnode) with an optional vlan, at a time (default
    now), answered by the attribution query."""

    reason: Reason
    ticket: Ticket | None = None
    slice: Name | None = None
    project: Name | None = None
    user: Name | None = None
    port: Name | None = None
    link: Name | None = None
    vnode: Name | None = None
    vlan: Annotated[int, Field(strict=True, ge=1, le=4094)] | None = None
    at: Instant | None = None


class LiftRequest(Body):
    reason: Reason


class HoldRequest(Body):
    """true: keep the shut-down slice past its window's end; false: end it as usual."""

    hold: Annotated[bool, Field(strict=True)]


MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        EStopRequest,
        EStopSelection,
        LiftRequest,
        HoldRequest,
        Extension,
        MaintenanceRequest,
        QuotaRequest,
        TokenRequest,
        Login,
        UserRequest,
        UserChange,
        ProjectRequest,
        MemberRequest,
    )
}


def parse_body(model: type[M]) -> M:
    """The request's JSON body as `model`; every problem named by its field."""
    data: Any = documents.load_json(request.get_data() or b"{}", limit=MAX_REQUEST_BYTES)
    if not isinstance(data, dict):
        raise InvalidInput([FieldError("", "expected a JSON object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc)) from None


def given(body: BaseModel, *, null_is_absent: bool = False) -> dict[str, Any]:
    """The fields the caller sent (a PATCH changes only those); with `null_is_absent`, a
    null is as if the field were left out (the default applies)."""
    return {
        k: getattr(body, k)
        for k in body.model_fields_set
        if not (null_is_absent and getattr(body, k) is None)
    }
