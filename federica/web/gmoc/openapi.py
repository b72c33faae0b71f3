"""The GENI monitoring datastore's part of the OpenAPI document: its paths, served on the
datastore's TLS listener. What they answer is defined by the GENI schemas (draft-03,
vendored in federica/gmoc/schemas), named here by URL rather than restated."""

from __future__ import annotations

from typing import Any

from federica.gmoc.naming import INFO_TYPES, SCHEMA_BASE

GMOC_SECURITY = {
    "collectorCertificate": {
        "type": "mutualTLS",
        "description": "A client certificate chaining to FEDERICA_GMOC_TRUST_ROOTS of a "
        "registered collector (served on the datastore port only); or a collector's or "
        "a person's token as a bearer token",
    }
}

_PROBLEM = {
    "description": "A problem document (400: a malformed q, naming the field; 401: no "
    "certificate or token; 403: not a registered collector, or user objects not allowed; "
    "404: no such object, or not one the caller may see)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_SECURITY: list[dict[str, list[str]]] = [{"collectorCertificate": []}, {"token": []}]


def parts() -> dict[str, Any]:
    """The datastore's paths."""
    return {
        "/info/{kind}/{obj_id}": {
            "get": {
                "operationId": "gmoc_info",
                "summary": "One object of the facility, its slices or users, in the GENI "
                "monitoring form",
                "tags": ["gmoc"],
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(INFO_TYPES)},
                    },
                    {
                        "name": "obj_id",
                        "in": "path",
                        "required": True,
                        "description": "The object's id (may hold ':' and '/')",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": f"The object, conforming to {SCHEMA_BASE}/<kind>#",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "default": _PROBLEM,
                },
            }
        },
        "/data/": {
            "get": {
                "operationId": "gmoc_data",
                "summary": "Time series of the poller's rates and the nodes' availability",
                "tags": ["gmoc"],
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "description": 'JSON: {"filters": {"eventType": [...], "obj": '
                        '{"type": ..., "id": [...]}, "ts": {"gte": µs, "lt": µs}}}',
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": f"One series per object and metric, each conforming "
                        f"to {SCHEMA_BASE}/data#",
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"type": "object"}}
                            }
                        },
                    },
                    "default": _PROBLEM,
                },
            }
        },
    }
