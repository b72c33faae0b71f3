"""The `q` of GET /data/: parsed and checked. Pure: no I/O.

    {"filters": {"eventType": ["ops_monitoring:rx_bps", …],
                 "obj": {"type": "interfacevlan", "id": ["…", …]},
                 "ts": {"gte": <µs>, "lt": <µs>}}}

Every problem names its field (`filters.ts.gte`, `filters.eventType[2]`, …).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from federica import inputs
from federica.errors import FieldError, InvalidInput
from federica.gmoc import metrics

# The longest window one question may cover, and how many objects it may name.
MAX_WINDOW = dt.timedelta(days=31)
DEFAULT_WINDOW_US = 3600 * 1_000_000
MAX_IDS = 1000
MAX_ID_LENGTH = 500
# Times a datetime can hold (years 1970 to 9998): nothing outside is a real measurement.
MAX_TS = 253_370_764_800 * 1_000_000
BOUNDS = ("gt", "gte", "lt", "lte")


class BadQuery(InvalidInput):
    """A malformed `q`: 400 (the datastore protocol's answer), each problem with its field."""

    status = 400
    title = "Bad query"
    type_slug = "bad-query"


@dataclass(frozen=True)
class Query:
    event_types: tuple[str, ...]  # metric names without the prefix, as asked
    obj_type: str
    ids: tuple[str, ...]
    lo_us: int  # the first µs inside the window
    hi_us: int  # the first µs after it

    def contains(self, ts_us: int) -> bool:
        return self.lo_us <= ts_us < self.hi_us


def parse(raw: str | None, now_us: int) -> Query:
    if raw is None:
        raise BadQuery([FieldError("q", "missing: send ?q=<JSON> with a 'filters' object")])
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise BadQuery([FieldError("q", f"not JSON ({exc})")]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("filters"), dict):
        raise BadQuery([FieldError("q.filters", "q must be an object with a 'filters' object")])
    errors: list[FieldError] = []
    for key in sorted(set(doc) - {"filters"}):
        errors.append(FieldError(f"q.{key}", "unknown key"))
    filters: dict[str, Any] = doc["filters"]
    for key in sorted(set(filters) - {"eventType", "obj", "ts"}):
        errors.append(FieldError(f"filters.{key}", "unknown filter"))
    events = _event_types(filters.get("eventType"), errors)
    obj_type, ids = _obj(filters.get("obj"), errors)
    lo, hi = _window(filters.get("ts"), now_us, errors)
    if errors:
        raise BadQuery(errors)
    return Query(events, obj_type, ids, lo, hi)


def _event_types(value: Any, errors: list[FieldError]) -> tuple[str, ...]:
    field = "filters.eventType"
    if value is None:
        errors.append(FieldError(field, "missing: a list of event types"))
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        errors.append(FieldError(field, "must be a non-empty list of event types"))
        return ()
    names: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in metrics.EVENT_TYPES:
            shown = json.dumps(item)[:64]
            errors.append(
                FieldError(
                    f"{field}[{i}]",
                    f"unknown event type {shown}; known: {', '.join(sorted(metrics.EVENT_TYPES))}",
                )
            )
        elif (name := item.removeprefix(metrics.PREFIX)) not in names:
            names.append(name)
    return tuple(names)


def _obj(value: Any, errors: list[FieldError]) -> tuple[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        errors.append(FieldError("filters.obj", "missing: an object with 'type' and 'id'"))
        return "", ()
    for key in sorted(set(value) - {"type", "id"}):
        errors.append(FieldError(f"filters.obj.{key}", "unknown key"))
    kind = value.get("type")
    if kind not in metrics.BY_TYPE:
        errors.append(
            FieldError("filters.obj.type", f"must be one of {', '.join(sorted(metrics.BY_TYPE))}")
        )
        kind = ""
    ids = value.get("id")
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        errors.append(FieldError("filters.obj.id", "must be a non-empty list of object ids"))
        return kind, ()
    if len(ids) > MAX_IDS:
        errors.append(FieldError("filters.obj.id", f"at most {MAX_IDS} ids in one query"))
    for i, obj_id in enumerate(ids[:MAX_IDS]):
        if len(obj_id) > MAX_ID_LENGTH:
            errors.append(FieldError(f"filters.obj.id[{i}]", f"longer than {MAX_ID_LENGTH}"))
        elif problem := inputs.text_problem(obj_id):
            errors.append(FieldError(f"filters.obj.id[{i}]", problem))
    return kind, tuple(dict.fromkeys(ids))


def _window(value: Any, now_us: int, errors: list[FieldError]) -> tuple[int, int]:
    """[lo, hi) in µs; without bounds the hour before now."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.append(FieldError("filters.ts", "must be an object of gt, gte, lt, lte"))
        return 0, 0
    bounds: dict[str, int] = {}
    for key, v in value.items():
        field = f"filters.ts.{key}"
        if key not in BOUNDS:
            errors.append(FieldError(field, "unknown bound; use gt, gte, lt or lte"))
        elif isinstance(v, bool) or not isinstance(v, int):
            errors.append(FieldError(field, "must be an integer: µs since 1970-01-01T00:00Z"))
        elif not 0 <= v <= MAX_TS:
            errors.append(FieldError(field, "outside the times a measurement can have"))
        else:
            bounds[key] = v
    for a, b in (("gt", "gte"), ("lt", "lte")):
        if a in value and b in value:
            errors.append(FieldError(f"filters.ts.{a}", f"give {a} or {b}, not both"))
    if errors:
        return 0, 0
    hi = bounds["lt"] if "lt" in bounds else bounds["lte"] + 1 if "lte" in bounds else now_us
    lo = bounds["gt"] + 1 if "gt" in bounds else bounds.get("gte", hi - DEFAULT_WINDOW_US)
    if lo >= hi:
        errors.append(
            FieldError("filters.ts", "the window is empty: its start is not before its end")
        )
    elif hi - lo > MAX_WINDOW // dt.timedelta(microseconds=1):
        errors.append(FieldError("filters.ts", f"at most {MAX_WINDOW.days} days in one query"))
    return max(lo, 0), hi
