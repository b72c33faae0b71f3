"""The OpenAPI 3.1 document, built from the routes themselves and the pydantic models.

Each API view declares its response with @document; /api/v1/openapi.json walks the URL map,
so a route cannot exist undocumented (tests/web/test_openapi.py checks that).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from federica import __version__
from federica.slices.request import SliceRequest
from federica.substrate.analysis import Summary
from federica.substrate.topology import DeviceSpec, HostSpec, LinkSpec, PeerSpec, PopSpec
from federica.web.api import api
from federica.web.auth import GUARD_ATTR, public
from federica.web.federation import openapi as federation_openapi

F = TypeVar("F", bound=Callable[..., Any])
OPENAPI_ATTR = "_federica_openapi"


@dataclass(frozen=True)
class Operation:
    schema: str
    summary: str
    param: str | None = None
    tag: str = "substrate"
    body: str | None = None  # request body schema
    status: int = 200
    query: tuple[str, ...] = ()  # boolean query flags


def document(
    schema: str,
    summary: str,
    *,
    param: str | None = None,
    tag: str = "substrate",
    body: str | None = None,
    status: int = 200,
    query: tuple[str, ...] = (),
) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, OPENAPI_ATTR, Operation(schema, summary, param, tag, body, status, query))
        return fn

    return mark


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


Substrate = create_model(
    "Substrate",
    pops=(list[PopSpec], ...),
    devices=(list[DeviceSpec], ...),
    links=(list[LinkSpec], ...),
    hosts=(list[HostSpec], ...),
    peers=(list[PeerSpec], ...),
    summary=(Summary, ...),
)

MODELS: dict[str, type[BaseModel]] = {
    "SliceRequest": SliceRequest,
    "Substrate": Substrate,
    "Pop": PopSpec,
    "Device": DeviceSpec,
    "Link": LinkSpec,
    "Host": HostSpec,
    "Peer": PeerSpec,
    "Problem": Problem,
}
OBJECTS = {
    "Extension": "{'by': duration like '2h' or 'P1D'} or {'to': ISO 8601 time}",
    "Extent": "latest_end (ISO 8601) and limited_by (what stops a longer extension)",
    "Slot": "start, end and the embedding of the earliest window that fits",
    "Calendar": "resource (with capacity), bookings (slice, kind, window, VLAN or "
    "amount) and maintenance over the range",
    "Maintenance": "id, target_kind (pop|device|link|host), target, start, end, reason",
    "MaintenanceRequest": "target_kind, target, start ('now' or ISO 8601), end, reason",
    "Quota": "project, vcpu_hours_per_month (null: unlimited), month, used_vcpu_hours",
    "QuotaRequest": "any of vcpu_hours_per_month, max_nodes, max_bandwidth_mbps: a whole "
    "number, or null for unlimited",
    "Login": "username, password; optional name, scopes, expires_in_days of the new token",
    "NewToken": "the token's id, name, prefix, scopes, expiry, and the secret `token` "
    "(shown only once)",
    "Token": "id, name, prefix, user, scopes, state (active|expired|revoked), times",
    "TokenRequest": "name, scopes (read, slices, projects, operate, admin), expires_in_days",
    "Me": "the caller's account, projects and token scopes",
    "User": "username, display_name, email, role, active, identities, projects",
    "UserRequest": "username, role (researcher|operator|admin), password, display_name, "
    "email, active",
    "Project": "name, description, members (username, role lead|member, source)",
    "ProjectRequest": "name, description, lead (a username)",
    "MemberRequest": "role: member or lead",
    "Accounting": "period, units, slices (usage each), projects (totals)",
    "Audit": "id, at, actor, via, address, action, target, slice_id, project, result "
    "(ok|refused|failed), status, detail",
    "HeldBy": "vlan, at, held_by: the slices (with project and user) that held it",
    "Redirect": "a redirect to the identity provider",
}
LISTS = {
    f"{name}List": name
    for name in ("Pop", "Device", "Link", "Host", "Peer", "Token", "User", "Project", "Audit")
}


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "serialization") for m in MODELS.values()],
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Any] = top.get("$defs", {})
    # Publish each under the API's name for it, not pydantic's class name.
    for name, model in MODELS.items():
        if name != model.__name__ and model.__name__ in defs:
            defs[name] = defs[model.__name__]
    defs["OpenAPI"] = {"type": "object", "description": "An OpenAPI 3.1 document"}
    defs["Slice"] = {
        "type": "object",
        "description": "A slice: status, window, nodes with "
        "their V-nodes, circuits with their hops (device, port, VLAN), history",
    }
    defs["SliceList"] = {"type": "array", "items": {"$ref": "#/components/schemas/Slice"}}
    defs["Booking"] = {
        "type": "object",
        "description": "A booking (or dry run): the slice "
        "(absent for a dry run), the embedding, timings in ms",
    }
    for name, text in OBJECTS.items():
        defs[name] = {"type": "object", "description": text}
    defs["MaintenanceList"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Maintenance"},
    }
    for list_name, item in LISTS.items():
        defs[list_name] = {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}
    return defs


def _response(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


PROBLEM_RESPONSE = {
    "description": "A problem document",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def build_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{api.name}."):
            continue
        op: Operation | None = getattr(
            current_app.view_functions[rule.endpoint], OPENAPI_ATTR, None
        )
        if op is None:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "operationId": rule.endpoint.split(".", 1)[1],
                "summary": op.summary,
                "tags": [op.tag],
                "responses": {
                    str(op.status): {"description": op.summary, **_response(op.schema)},
                    "default": PROBLEM_RESPONSE,
                },
            }
            params: list[dict[str, Any]] = []
            if op.param:
                params.append(
                    {"name": op.param, "in": "path", "required": True, "schema": {"type": "string"}}
                )
            for q in op.query:
                name, _, kind = q.partition(":")
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": {"type": kind or "boolean"},
                    }
                )
            if params:
                operation["parameters"] = params
            mark = getattr(current_app.view_functions[rule.endpoint], GUARD_ATTR, None)
            if mark is not None and mark.action is None:
                operation["security"] = []  # public
            elif mark is not None:
                operation["x-federica-action"] = mark.action.value
            if op.body:
                ref = {"$ref": f"#/components/schemas/{op.body}"}
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref},
                        "application/yaml": {"schema": ref},
                    },
                }
            paths.setdefault(path, {})[method.lower()] = operation
    # The peer API is served on its own listener; documented here with the rest.
    peer_paths, peer_schemas = federation_openapi.parts()
    paths.update(peer_paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "federica API", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _schemas() | peer_schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                **federation_openapi.PEER_SECURITY,
            },
        },
        "security": [{"token": []}],
    }


@api.get("/openapi.json")
@document("OpenAPI", "This OpenAPI document")
@public
def openapi_json() -> ResponseReturnValue:
    return jsonify(build_document())
