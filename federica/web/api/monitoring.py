"""Monitoring over REST (operators): a device's interfaces and a link's ends over time."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.monitoring import queries
from federica.web.api import api
from federica.web.api.openapi import OBJECTS, document
from federica.web.auth import guard
from federica.web.context import ctx, read_session

WINDOW_QUERY = ("from:string", "to:string", "step:string")
# The answers' schemas, published beside the others in the OpenAPI document.
OBJECTS.update(
    {
        "DeviceInterfaces": "device, from, to, step_s, units, polling (last poll, failures), "
        "interfaces (name, if_index, alias, states, speed, points: start, covered_s and "
        "in/out octets, ucast packets, errors, discards per second)",
        "LinkRates": "link, capacity_mbps, from, to, step_s, units, ends (device, port, "
        "polled, and the interface's states and points as for a device)",
    }
)


def _window() -> queries.Window:
    return queries.parse_window(
        request.args.get("from"), request.args.get("to"), request.args.get("step"), ctx().now()
    )


@api.get("/monitoring/devices/<name>/interfaces")
@document(
    "DeviceInterfaces",
    "A device's polled interfaces (?interface= one of them) with their rates over "
    "?from&to (default the last hour) per ?step (default 60 s)",
    param="name",
    tag="monitoring",
    query=(*WINDOW_QUERY, "interface:string"),
)
@guard(Action.MONITORING_READ)
def device_interfaces(name: str) -> ResponseReturnValue:
    window = _window()
    context = ctx()
    with read_session() as s:
        return jsonify(
            queries.device_interfaces(
                s, name, window, context.now(), context.settings, request.args.get("interface")
            )
        )


@api.get("/monitoring/links/<name>")
@document(
    "LinkRates",
    "Both ends of a link with their rates over ?from&to per ?step",
    param="name",
    tag="monitoring",
    query=WINDOW_QUERY,
)
@guard(Action.MONITORING_READ)
def link_rates(name: str) -> ResponseReturnValue:
    window = _window()
    context = ctx()
    with read_session() as s:
        return jsonify(queries.link(s, name, window, context.now(), context.settings))
