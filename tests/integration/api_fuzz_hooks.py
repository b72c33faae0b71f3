"""What the OpenAPI document cannot say, told to schemathesis (SCHEMATHESIS_HOOKS).

JSON Schema states each value alone; a few rules of the API tie values together (a
range's end after its start, a link or a port but not both) or depend on the facility (a
circuit's endpoints are nodes of the same request, a maintenance window ends in the
future). For cases generated as valid, these rules are made to hold (bodies) or the case
is dropped (queries), so "valid by the document" means valid. Cases generated as
invalid are left alone: the API must refuse them.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

PROJECT = "proja"  # the fuzzing admin's project (tests/integration/test_api_fuzz.py)
# One resource of each kind in examples/topologies/core4.yaml, the facility fuzzed.
TARGETS = {"pop": "PRG", "device": "prg-mx", "link": "prg-erl", "host": "erl-v2"}
# The fuzzing admin's own account and token: revoking, disabling or demoting them would
# turn the rest of the run into a test of 401s.
OWN = {
    ("DELETE", "/api/v1/tokens/{token_id}", "token_id", os.environ.get("FUZZ_TOKEN_ID", "")),
    ("PATCH", "/api/v1/users/{name}", "name", os.environ.get("FUZZ_USERNAME", "")),
    ("PATCH", "/api/v1/users/{name}", "name", os.environ.get("FUZZ_USER_ID", "")),
}


def _own_account(case: Any) -> bool:
    params = case.path_parameters or {}
    return any(
        case.method.upper() == method
        and case.operation.path == path
        and str(params.get(name, "")).strip().lower() == value
        for method, path, name, value in OWN
    )


def _positive(case: Any) -> bool:
    meta = getattr(case, "_meta", None)
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def _instant(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _ordered(query: dict[str, Any], a: str, b: str) -> bool:
    lo, hi = _instant(query.get(a)), _instant(query.get(b))
    return lo is None or hi is None or lo < hi


STEP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_POINTS = 2000  # federica.monitoring.queries: periods per answer


def _window_fits(query: dict[str, Any]) -> bool:
    """from before to (now, by default), and not more periods of `step` than one answer
    carries."""
    now = dt.datetime.now(dt.UTC)
    end = _instant(query["to"]) if "to" in query else now
    start = _instant(query["from"]) if "from" in query else None
    if end is None or (start is None and "from" in query):
        return True  # not a time: the document already says so
    start = start or end - dt.timedelta(hours=1)
    raw = str(query.get("step", "60"))
    step = int(raw.rstrip("smhd") or 0) * STEP_UNITS.get(raw[-1], 1)
    return start < end and step > 0 and (end - start).total_seconds() / step <= MAX_POINTS


def _query_holds(path: str, query: dict[str, Any]) -> bool:
    if path == "/api/v1/accounting":
        # A period is a month, or from and to (both, in order).
        return ("from" in query) == ("to" in query) and _ordered(query, "from", "to")
    if path.startswith("/api/v1/calendar/"):
        return _ordered(query, "from", "to")
    if path == "/api/v1/audit":
        return not ("link" in query and "port" in query)
    if path.startswith("/api/v1/monitoring/") or path == "/api/v1/slices/{ref}/metrics":
        return _window_fits(query)
    if path == "/api/v1/audit/held":
        return "vlan" in query and (("link" in query) != ("port" in query))
    return True


def _slice_request(body: dict[str, Any]) -> dict[str, Any]:
    """Names unique, circuits between this request's nodes, PoPs left to the embedder,
    the window starting now, the project the caller's."""
    nodes = [dict(n, name=f"n{i}") for i, n in enumerate(body.get("nodes") or [])]
    for n in nodes:
        n.pop("pop", None)
    names = [n["name"] for n in nodes]
    circuits = []
    for i, c in enumerate(body.get("circuits") or []):
        ends = names[: max(2, min(len(c.get("endpoints") or []), len(names)))]
        if len(ends) >= 2:
            circuits.append(dict(c, name=f"c{i}", endpoints=ends))
    out = dict(body, nodes=nodes, circuits=circuits, project=PROJECT)
    out["window"] = {"start": "now", "duration": "1h"}
    if out.get("gateway") is not None and names:
        out["gateway"] = {"node": names[0]}
    return out


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _positive(case):
        return case
    path = case.operation.path
    body = case.body
    if path in ("/api/v1/slices", "/api/v1/slots") and isinstance(body, dict):
        case.body = _slice_request(body)
    elif path == "/api/v1/estop" and isinstance(body, dict):
        # Exactly one selector, naming something that exists: the fuzzer's project.
        keep = {k: v for k, v in body.items() if k in ("reason", "ticket")}
        case.body = dict(keep, project=PROJECT)
    elif path == "/api/v1/maintenance" and isinstance(body, dict):
        # Now until an hour from now: the window must end after it starts, in the future.
        end = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        kind = body.get("target_kind")
        target = TARGETS.get(kind, body.get("target")) if isinstance(kind, str) else None
        case.body = dict(body, start="now", end=end.isoformat(), target=target)
    elif path == "/api/v1/projects/{name}/webhook" and isinstance(body, dict):
        # The document states the URL's syntax; a port in range and a public address are
        # the facility's rules. Never called: nothing alarms during the run.
        case.body = dict(body, url="https://receiver.example/hook")
    return case


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    if _own_account(case):
        return False
    if not _positive(case):
        return True
    return _query_holds(case.operation.path, dict(case.query or {}))
