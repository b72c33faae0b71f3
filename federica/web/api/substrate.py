"""GET /api/v1/substrate and its parts."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.errors import NotFound
from federica.substrate import reachability
from federica.substrate.analysis import summarize
from federica.substrate.inventory import current_topology
from federica.web.api import api
from federica.web.api.openapi import document
from federica.web.auth import guard
from federica.web.context import read_session

SECTIONS = {"pops": "PoP", "devices": "device", "links": "link", "hosts": "host", "peers": "peer"}


def _dump(item: Any) -> dict[str, Any]:
    out: dict[str, Any] = item.model_dump(mode="json", exclude_none=True)
    return out


def _with_reachability(
    section: str, items: list[dict[str, Any]], seen: dict[str, reachability.Reachability]
) -> list[dict[str, Any]]:
    """Devices carry what the controller last saw of them (state "unknown": never tried)."""
    if section == "devices":
        for d in items:
            r = seen.get(d["name"])
            d["reachability"] = r.to_json() if r is not None else {"state": "unknown"}
    return items


@api.get("/substrate")
@document("Substrate", "The whole physical facility and a summary of its shape")
@guard(Action.SUBSTRATE_READ)
def substrate() -> ResponseReturnValue:
    with read_session() as session:
        topo = current_topology(session)
        seen = reachability.states(session)
    body: dict[str, Any] = {
        s: _with_reachability(s, [_dump(x) for x in getattr(topo, s)], seen) for s in SECTIONS
    }
    body["summary"] = summarize(topo).model_dump(mode="json")
    return jsonify(body)


def _section_view(section: str) -> None:
    noun = SECTIONS[section]

    @document(f"{noun.capitalize()}List", f"Every {noun} of the facility")
    @guard(Action.SUBSTRATE_READ)
    def listing() -> ResponseReturnValue:
        with read_session() as s:
            items = [_dump(x) for x in getattr(current_topology(s), section)]
            seen = reachability.states(s) if section == "devices" else {}
        return jsonify(_with_reachability(section, items, seen))

    @document(noun.capitalize(), f"One {noun} by name", param="name")
    @guard(Action.SUBSTRATE_READ)
    def one(name: str) -> ResponseReturnValue:
        with read_session() as s:
            for item in getattr(current_topology(s), section):
                if item.name == name:
                    seen = reachability.states(s, [name]) if section == "devices" else {}
                    return jsonify(_with_reachability(section, [_dump(item)], seen)[0])
        raise NotFound(f"no {noun} named {name!r} in the substrate")

    api.add_url_rule(f"/substrate/{section}", f"{section}_list", listing, methods=["GET"])
    api.add_url_rule(f"/substrate/{section}/<name>", f"{section}_one", one, methods=["GET"])


for _section in SECTIONS:
    _section_view(_section)
