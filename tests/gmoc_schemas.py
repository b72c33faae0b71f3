"""Validates datastore objects against the vendored GENI schemas (federica/gmoc/schemas),
with the jsonschema package's draft-03 validator; nothing is ever fetched."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT3

from federica.gmoc import schemas
from federica.gmoc.naming import SCHEMA_BASE


@cache
def validator(kind: str) -> jsonschema.Draft3Validator:
    # A registry given, jsonschema fetches nothing: an unknown $ref is an error.
    registry: Registry[Any] = Registry().with_resources(
        (uri, DRAFT3.create_resource(schema)) for uri, schema in schemas.references().items()
    )
    return jsonschema.Draft3Validator(schemas.flattened(kind), registry=registry)


def problems(obj: dict[str, Any]) -> list[str]:
    """Why `obj` does not conform to the schema its `$schema` names ([] if it does)."""
    url = obj.get("$schema", "")
    assert url.startswith(SCHEMA_BASE + "/") and url.endswith("#"), url
    kind = url[len(SCHEMA_BASE) + 1 : -1]
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator(kind).iter_errors(obj)]


def check(obj: dict[str, Any]) -> dict[str, Any]:
    assert problems(obj) == [], (obj.get("id"), problems(obj))
    return obj
