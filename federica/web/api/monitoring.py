"""Monitoring over REST (operators): a device's interfaces and a link's ends over time."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.alarms import service as alarms
from federica.errors import FieldError, InvalidInput, NotFound
from federica.monitoring import exposition, queries
from federica.web.api import api
from federica.web.api.openapi import ARRAYS, OBJECTS, document
from federica.web.auth import guard, may, note, require
from federica.web.context import ctx, read_session, write_session

WINDOW_QUERY = ("from:string", "to:string", "step:string")
# The answers' schemas, published beside the others in the OpenAPI document.
OBJECTS.update(
    {
        "DeviceInterfaces": "device, from, to, step_s, units, polling (last poll, failures), "
        "interfaces (name, if_index, alias, states, speed, points: start, covered_s and "
        "in/out octets, ucast packets, errors, discards per second)",
        "LinkRates": "link, capacity_mbps, from, to, step_s, units, ends (device, port, "
        "polled, and the interface's states and points as for a device)",
        "Alarm": "id, kind (device-unreachable, link-down, port-down, utilisation-high, "
        "errors-high, discards-high, estop-device, config-drift, circuit-over-booking, "
        "node-died, peer-alarm, peer-estop-undelivered), "
        "subject, device, link, "
        "detail, state (open, cleared), raised_at, cleared_at, acknowledged (by, at) or null, "
        "suppressed (hidden by its device's alarm), slices (id, name, project) it touches",
    }
)
ARRAYS.update(
    {
        "Alarms": "an Alarm (the list is newest first)",
        "PrometheusTargets": "a target group: targets (one 'host:port' of an SNMP agent), "
        "labels (device, pop, __meta_federica_device_kind, __meta_federica_device_model, "
        "__meta_federica_snmp_auth: the credential set's name, __meta_federica_snmp_version)",
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


@api.get("/monitoring/prometheus-targets")
@document(
    "PrometheusTargets",
    "Every polled device's SNMP agent in Prometheus' http_sd format, for an existing "
    "Prometheus with snmp_exporter (operators, or the scrape token)",
    tag="monitoring",
)
@guard(Action.MONITORING_READ, scrape=True)
def prometheus_targets() -> ResponseReturnValue:
    context = ctx()
    with read_session() as s:
        return jsonify(exposition.prometheus_targets(s, context.settings))


@api.get("/monitoring/alarms")
@document(
    "Alarms",
    "Open alarms, newest first (?state=all: cleared ones too); operators see all, "
    "researchers those touching their projects' slices (listing only those slices)",
    tag="monitoring",
    query=("state:string",),
)
@guard(Action.ALARM_READ, per_target=True)
def list_alarms() -> ResponseReturnValue:
    state = request.args.get("state", "open")
    if state not in {"open", "all"}:
        raise InvalidInput([FieldError("state", "open or all")])
    with read_session() as s:
        rows = alarms.listing(s, include_cleared=state == "all")
        projects = _projects()
        return jsonify([alarms.describe_for(a, projects) for a in alarms.visible(rows, projects)])


@api.get("/monitoring/alarms/<int:alarm_id>")
@document("Alarm", "One alarm (404 unless it touches the caller's slices, for researchers)",
          param="alarm_id", tag="monitoring")  # fmt: skip
@guard(Action.ALARM_READ, per_target=True)
def show_alarm(alarm_id: int) -> ResponseReturnValue:
    with read_session() as s:
        alarm = alarms.get(s, alarm_id)
        projects = _projects()
        if not alarms.visible([alarm], projects):
            raise NotFound(f"no alarm {alarm_id}")
        return jsonify(alarms.describe_for(alarm, projects))


@api.post("/monitoring/alarms/<int:alarm_id>/ack")
@document("Alarm", "Acknowledge an alarm (who and when are kept; it stays open until it "
          "clears)", param="alarm_id", tag="monitoring")  # fmt: skip
@guard(Action.ALARM_ACK)
def ack_alarm(alarm_id: int) -> ResponseReturnValue:
    who = require()
    note(alarm=alarm_id)
    with write_session() as s:
        return jsonify(alarms.describe(alarms.acknowledge(s, alarm_id, who.username, ctx().now())))


def _projects() -> frozenset[str] | None:
    """None for whoever sees every alarm, else the caller's projects."""
    return None if may(Action.MONITORING_READ) else require().projects
