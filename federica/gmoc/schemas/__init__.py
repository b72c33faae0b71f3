"""The vendored GENI monitoring schemas (see README.md here), as the datastore reads them.

The schemas are draft-03 and type each object as `extends` a UNIS base type with
`additionalProperties: false` of its own. Read literally, draft-03 checks the two apart,
so no object could carry the base's `id`, `selfRef`, `urn` or `ts` (the published example
objects fail too). What the schemas mean, and what GENI's datastores served, is the union:
`flattened()` merges each base's properties into the type's (the type's own win) and drops
`extends`, which a plain draft-03 validator then checks as intended.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from federica.gmoc.naming import SCHEMA_VERSION

UNIS = "http://unis.incntre.iu.edu/schema/20120709/"


def _read(package_dir: str, name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(package_dir, name).read_text()
    # JSON with comments: whole-line `//` comments only in these files.
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    loaded: dict[str, Any] = json.loads("\n".join(kept))
    return loaded


def raw(kind: str) -> dict[str, Any]:
    """The GENI schema of `kind` as published."""
    return _read(SCHEMA_VERSION, f"{kind}.schema.jwc")


def _base(ref: str) -> dict[str, Any]:
    if not ref.startswith(UNIS):
        raise LookupError(f"not a vendored base schema: {ref}")
    return _read("unis-20120709", ref[len(UNIS) :].rstrip("#"))


def _flatten(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    extends = out.pop("extends", None)
    if extends is None:
        return out
    base = _flatten(_base(extends["$ref"]))
    out["properties"] = {**base.get("properties", {}), **out.get("properties", {})}
    return out


@cache
def flattened(kind: str) -> dict[str, Any]:
    """The schema of `kind` with its bases' properties merged in (see the module's doc)."""
    return _flatten(raw(kind))


# The sliver schema types its `aggregate` as `{"$ref": ".../20140828/link#"}`: a hyperlink
# to the aggregate ({urn, href}, as the published example and every datastore sent it),
# not a GENI `link` (a circuit, which needs two endpoints).
HYPERLINK = {
    "type": "object",
    "properties": {
        "urn": {"type": "string", "required": True},
        "href": {"type": "string", "required": True},
    },
}


# UNIS metadata (the base of GENI `data`) types `subject` as a draft-03 link description
# object ({href, rel}); GENI's data schema and every published data example send the
# subject's URL as a plain string, which is what collectors read. Either is accepted.
SUBJECT = {
    "type": ["string", "object"],
    "properties": {"href": {"type": "string", "required": True}},
}


def references() -> dict[str, dict[str, Any]]:
    """What the schemas' remaining `$ref`s name, for a validator's registry (nothing is
    ever fetched)."""
    return {
        "http://www.gpolab.bbn.com/monitoring/schema/20140828/link": HYPERLINK,
        "http://json-schema.org/draft-03/links": SUBJECT,
    }
