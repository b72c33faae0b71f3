"""The OpenAPI 3.1 document, built from the routes themselves and the pydantic models.

Each API view declares its response with @document; /api/v1/openapi.json walks the URL map,
so a route cannot exist undocumented (tests/web/test_openapi.py checks that).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema
from werkzeug.routing import IntegerConverter, Rule

from federica import __version__, documents, inputs
from federica.slices.lifecycle import SliceStatus
from federica.slices.request import SliceRequest
from federica.substrate.analysis import Summary
from federica.substrate.topology import DeviceSpec, HostSpec, LinkSpec, PeerSpec, PopSpec
from federica.web.api import api, models, responses
from federica.web.auth import GUARD_ATTR, public
from federica.web.federation import openapi as federation_openapi
from federica.web.gmoc import openapi as gmoc_openapi

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
    query: tuple[str, ...] = ()  # "name" (a schema from QUERY) or "name:type"
    also: tuple[tuple[int, str], ...] = ()  # other successes: (status, what it means)
    csv: bool = False  # the success may also be text/csv


def document(
    schema: str,
    summary: str,
    *,
    param: str | None = None,
    tag: str = "substrate",
    body: str | None = None,
    status: int = 200,
    query: tuple[str, ...] = (),
    also: tuple[tuple[int, str], ...] = (),
    csv: bool = False,
) -> Callable[[F], F]:
    """`param` is kept for readers; the path's parameters come from the route itself."""

    def mark(fn: F) -> F:
        op = Operation(schema, summary, param, tag, body, status, query, also, csv)
        setattr(fn, OPENAPI_ATTR, op)
        return fn

    return mark


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


class Reachability(BaseModel):
    """What the controller last saw of a device over NETCONF ("unknown": never tried)."""

    state: Literal["reachable", "unreachable", "unknown"]
    since: str | None = None
    seen_by: str | None = None
    reason: str | None = None


# A device as the API shows it: its inventory entry and its reachability.
DeviceOut = create_model("DeviceOut", __base__=DeviceSpec, reachability=(Reachability, ...))

Substrate = create_model(
    "Substrate",
    pops=(list[PopSpec], ...),
    devices=(list[DeviceOut], ...),
    links=(list[LinkSpec], ...),
    hosts=(list[HostSpec], ...),
    peers=(list[PeerSpec], ...),
    summary=(Summary, ...),
)

MODELS: dict[str, type[BaseModel]] = {
    "SliceRequest": SliceRequest,
    "Substrate": Substrate,
    "Pop": PopSpec,
    "Device": DeviceOut,
    "Link": LinkSpec,
    "Host": HostSpec,
    "Peer": PeerSpec,
    "Problem": Problem,
}
OBJECTS = {
    "Calendar": "resource (with capacity), bookings (slice, kind, window, VLAN or "
    "amount) and maintenance over the range",
    "Accounting": "period, units, slices (usage each), projects (totals)",
}
# Answers that are lists of loosely described objects: name -> what each item holds.
ARRAYS: dict[str, str] = {}
LISTS = {
    f"{name}List": name
    for name in ("Pop", "Device", "Link", "Host", "Peer", "Token", "User", "Project", "Audit")
}


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "serialization") for m in MODELS.values()]
        + [(m, "serialization") for m in responses.MODELS.values()]
        + [(m, "validation") for m in models.MODELS.values()],
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Any] = top.get("$defs", {})
    # Publish each under the API's name for it, not pydantic's class name.
    for name, model in MODELS.items():
        if name != model.__name__ and model.__name__ in defs:
            defs[name] = defs[model.__name__]
    defs["OpenAPI"] = {"type": "object", "description": "An OpenAPI 3.1 document"}
    defs["SliceList"] = {"type": "array", "items": {"$ref": "#/components/schemas/Slice"}}
    for name, text in OBJECTS.items():
        defs[name] = {"type": "object", "description": text}
    for name, text in ARRAYS.items():
        defs[name] = {"type": "array", "items": {"type": "object", "description": text}}
    defs["MaintenanceList"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Maintenance"},
    }
    for list_name, item in LISTS.items():
        defs[list_name] = {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}
    return defs


def _response(schema: str, csv: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
    }
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"content": content}


PROBLEM_RESPONSE = {
    "description": "A problem document",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
PROBLEMS = {
    400: "The request cannot be read",
    401: "No valid API token",
    403: "The policy or the token's scopes do not allow it",
    404: "No such resource",
    409: "It conflicts with the facility's state (booked, in use, not extendable …)",
    413: "The request is too large",
    422: "Invalid input: each problem named by its field",
    429: "Too many attempts; see Retry-After",
}
SAFE_TEXT = f"^{models.SAFE}*$"
SAFE_MULTILINE_TEXT = f"^{models.SAFE_MULTILINE}*$"
SAFE_SEGMENT = r"^[^\x00-\x1f\x7f-\x9f/?#%]+$"  # one path segment, as sent
INTEGER = {"type": "integer", "minimum": 0, "maximum": inputs.DB_INT_MAX}
INSTANT = {"type": "string", "pattern": models.INSTANT}
QUERY: dict[str, dict[str, Any]] = {
    "from": INSTANT,
    "to": INSTANT,
    "since": INSTANT,
    "until": INSTANT,
    "at": INSTANT,
    "after": INSTANT,
    "month": {"type": "string", "pattern": models.MONTH},
    "format": {"type": "string", "enum": ["json", "csv"]},
    "vlan": {"type": "integer", "minimum": 1, "maximum": 4094},
    "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
    "dry_run": {"type": "boolean"},
    "step": {"type": "string", "pattern": r"^[1-9][0-9]{0,8}[smhd]?$"},
    "status": {"type": "string", "enum": [s.value for s in SliceStatus]},
    "state": {"type": "string", "enum": ["open", "all"]},
}


# The request bodies (and their parts): their free text is checked for control characters.
REQUEST_SCHEMAS = (
    *models.MODELS,
    "SliceRequest",
    "NodeRequest",
    "CircuitRequest",
    "GatewayRequest",
    "Window",
)


def _query_schema(name: str, kind: str) -> dict[str, Any]:
    if name in QUERY:
        return QUERY[name]
    if kind in ("", "boolean"):
        return {"type": "boolean"}
    if kind == "integer":
        return dict(INTEGER)
    return {"type": "string", "minLength": 1, "pattern": SAFE_TEXT}


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    params = []
    for name in re.findall(r"<(?:[^:>]+:)?([^>]+)>", rule.rule):  # in the path's order
        converter = rule._converters.get(name)
        schema: dict[str, Any] = (
            dict(INTEGER)
            if isinstance(converter, IntegerConverter)
            else {"type": "string", "minLength": 1, "maxLength": 200, "pattern": SAFE_SEGMENT}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _text_patterns(schema: Any, name: str = "") -> None:
    """Every free string in the document's schemas states what the strict input layer
    enforces: no control characters (tabs and line breaks only in free text)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(
            schema
        ):
            multiline = name in documents.MULTILINE_FIELDS
            schema["pattern"] = SAFE_MULTILINE_TEXT if multiline else SAFE_TEXT
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for prop, sub in value.items():
                    _text_patterns(sub, prop)
            else:
                _text_patterns(value, name if key in ("anyOf", "oneOf", "allOf", "items") else "")
    elif isinstance(schema, list):
        for item in schema:
            _text_patterns(item, name)


def _responses(op: Operation) -> dict[str, Any]:
    success = (
        {"description": op.summary, "headers": {"Location": {"schema": {"type": "string"}}}}
        if op.schema == "Redirect"  # a browser redirect: no body
        else {"description": op.summary, **_response(op.schema, op.csv)}
    )
    out: dict[str, Any] = {str(op.status): success}
    for status, what in op.also:
        out[str(status)] = {"description": what, **_response(op.schema)}
    for status, what in PROBLEMS.items():
        out[str(status)] = {**PROBLEM_RESPONSE, "description": what}
    out["default"] = PROBLEM_RESPONSE
    return out


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
                "responses": _responses(op),
            }
            params = _path_parameters(rule)
            for q in op.query:
                name, _, kind = q.partition(":")
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": _query_schema(name, kind),
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
                content: dict[str, Any] = {"application/json": {"schema": ref}}
                if op.body == "SliceRequest":  # YAML is a superset of JSON: both are read
                    content["application/yaml"] = {"schema": ref}
                # A body whose every field is optional may be left out: it means {}.
                required = op.body == "SliceRequest" or any(
                    f.is_required() for f in models.MODELS[op.body].model_fields.values()
                )
                operation["requestBody"] = {"required": required, "content": content}
            paths.setdefault(path, {})[method.lower()] = operation
    # The peer API is served on its own listener; documented here with the rest.
    peer_paths, peer_schemas = federation_openapi.parts()
    paths.update(peer_paths)
    # So is the GENI monitoring datastore (docs/gmoc.md).
    paths.update(gmoc_openapi.parts())
    schemas = _schemas()
    for name in REQUEST_SCHEMAS:
        _text_patterns(schemas[name])
    return {
        "openapi": "3.1.0",
        "info": {"title": "federica API", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            # The main API's schemas win: the peer API reuses some (SliceRequest).
            "schemas": peer_schemas | schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                **federation_openapi.PEER_SECURITY,
                **gmoc_openapi.GMOC_SECURITY,
            },
        },
        "security": [{"token": []}],
    }


@api.get("/openapi.json")
@document("OpenAPI", "This OpenAPI document")
@public
def openapi_json() -> ResponseReturnValue:
    return jsonify(build_document())
