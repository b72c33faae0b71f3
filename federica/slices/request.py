"""The slice request format (YAML or JSON), published as JSON Schema.

Close to GENI RSpec v3 so that it maps both ways: a node is an RSpec node (name =
client_id, pop = component_manager/PoP pin, kind/image = sliver_type/disk_image); a
circuit is an RSpec link (endpoints = interface_refs, bandwidth = capacity); the window
is geni_start_time/geni_end_time. Pure: parsing and checks need no database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from federica import documents, inputs
from federica.errors import FieldError, InvalidInput

NAME = r"^[a-z][a-z0-9-]{0,31}$"
MAX_REQUEST_BYTES = 1_000_000
_SHORT = re.compile(r"^\s*([0-9]+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_TIMEDELTA = TypeAdapter(dt.timedelta)
Name = Annotated[str, Field(pattern=NAME, description="lower-case letters, digits, '-'")]


def _whole_number(value: Any) -> Any:
    """JSON's integers: 3 and 3.0 (JSON Schema's "integer" is any number without a
    fraction), never `true` (a bool is an int to Python) nor the string "3"."""
    if isinstance(value, bool | str):
        kind = "true/false" if isinstance(value, bool) else "a string"
        raise PydanticCustomError(
            "int_type", "input should be a valid integer, not {kind}", {"kind": kind}
        )
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Constraints go before the validator (after it, pydantic would not publish them).
WHOLE = BeforeValidator(_whole_number)


class NodeKind(enum.StrEnum):
    ROUTER = "router"  # a virtual router: runs an (un-configured) routing daemon
    HOST = "host"


DEFAULT_IMAGE = {NodeKind.ROUTER: "frr", NodeKind.HOST: "debian"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeRequest(Strict):
    name: Name
    kind: NodeKind = NodeKind.ROUTER
    vcpu: Annotated[int, Field(strict=True, ge=1, le=64), WHOLE] = 1
    ram_mb: Annotated[int, Field(strict=True, ge=128, le=262_144), WHOLE] = 1024
    image: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    pop: (
        Annotated[str, Field(min_length=1, max_length=64, description="pin the node to this PoP")]
        | None
    ) = None


class CircuitRequest(Strict):
    name: Name
    endpoints: Annotated[
        list[Name],
        Field(min_length=2, max_length=32, description="2: point-to-point; more: multipoint"),
    ]
    bandwidth_mbps: Annotated[int, Field(strict=True, ge=1, le=100_000), WHOLE] = 100


SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _check_ssh_key(text: str) -> str:
    """An OpenSSH public key line: type, base64 blob whose own type matches, comment."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(f"not an OpenSSH public key (expected one of {', '.join(SSH_KEY_TYPES)})")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise ValueError("the key's base64 part is not valid base64") from None
    n = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + n].decode(errors="replace") != parts[0]:
        raise ValueError(f"the key's data is not a {parts[0]} key")
    if any(c in text.strip() for c in "\r\n\0"):
        raise ValueError("one key per entry, on one line")
    return " ".join(parts)


# The document shows the shape of an ssh-ed25519 line (its base64 starts with the encoded
# key type); the other types of SSH_KEY_TYPES are accepted as well.
ED25519_LINE = (
    r"^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5(?:[A-Za-z0-9+/]{4})*"
    r"(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?( [^\x00-\x1f\x7f-\x9f]*)?$"
)
SshKey = Annotated[
    str,
    Field(
        min_length=20,
        max_length=8192,
        description="an OpenSSH public key line (" + ", ".join(SSH_KEY_TYPES) + ")",
        json_schema_extra={"pattern": ED25519_LINE},
    ),
    AfterValidator(_check_ssh_key),
]


class GatewayRequest(Strict):
    """FEDERICA's virtual gateway: the researcher's way into the slice."""

    node: Name
    pop: Annotated[str, Field(min_length=1, max_length=64)] | None = None


# The document's patterns say what always passes: 'now' or a time in the supported range,
# a short duration; ISO 8601 durations ('P3D') are accepted as well.
_START = f"^(now|{inputs.INSTANT_PATTERN[1:-1]})$"
_DURATION = r"^[1-9][0-9]{0,2}[mhd]$"


class Window(Strict):
    start: Annotated[
        str,
        Field(
            description="'now' or an ISO 8601 time with a zone",
            json_schema_extra={"pattern": _START},
        ),
    ] = "now"
    duration: Annotated[
        str | None,
        Field(
            description="e.g. '3d', '12h', '90m', '2w' or ISO 8601 'P3D'; or give end",
            json_schema_extra={"pattern": _DURATION},
        ),
    ] = None
    end: Annotated[
        str | None,
        Field(
            description="ISO 8601 time with a zone",
            json_schema_extra={"pattern": inputs.INSTANT_PATTERN},
        ),
    ] = None


class SliceRequest(Strict):
    name: Name
    description: Annotated[str, Field(max_length=500)] = ""
    project: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    window: Window = Window(duration="1d")
    nodes: Annotated[list[NodeRequest], Field(min_length=1, max_length=200)]
    circuits: Annotated[list[CircuitRequest], Field(max_length=500)] = []
    gateway: GatewayRequest | None = None
    ssh_keys: Annotated[
        list[SshKey],
        Field(max_length=32, description="who may log in to the nodes through the gateway"),
    ] = []


class ResolvedWindow(BaseModel):
    start: dt.datetime
    end: dt.datetime


def schema() -> dict[str, Any]:
    s = SliceRequest.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["$id"] = "https://federica.example/schemas/slice-request.json"
    return s


def parse_duration(text: str) -> dt.timedelta:
    m = _SHORT.match(text)
    if m:
        if len(m.group(1)) > 7:  # more than a million weeks: beyond any calendar
            raise ValueError(f"{text!r} is longer than any calendar")
        return inputs.check_duration(dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}), text)
    try:
        value = _TIMEDELTA.validate_python(text)
    except ValidationError:
        raise ValueError(f"{text!r} is not a duration like '3d', '12h' or 'P3D'") from None
    return inputs.check_duration(value, text)


def parse_instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add 'Z' for UTC)")
    return inputs.check_instant(value, text)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors, each named by its field as the rest of the API names them."""
    return [FieldError(_loc(tuple(e["loc"])), _msg(e)) for e in exc.errors()]


def load_document(text: str | bytes) -> Any:
    """YAML (a superset of JSON) with a size limit and errors that say where."""
    return documents.load_yaml(text, limit=MAX_REQUEST_BYTES, what="YAML/JSON")


def parse_request(
    data: Any,
    *,
    now: dt.datetime,
    max_duration: dt.timedelta,
    known_pops: Collection[str] | None = None,
    horizon: dt.datetime | None = None,
) -> tuple[SliceRequest, ResolvedWindow]:
    """Validate a request document; every problem is reported with its field."""
    if isinstance(data, (str, bytes)):
        data = load_document(data)
    if not isinstance(data, Mapping):
        raise InvalidInput(
            [
                FieldError(
                    "",
                    "a slice request is a mapping (YAML or JSON "
                    "object) with name, nodes, circuits, window",
                )
            ]
        )
    try:
        req = SliceRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc), detail="the slice request is malformed") from None
    errors: list[FieldError] = []
    nodes = _first_index("nodes", "node", [n.name for n in req.nodes], errors)
    _first_index("circuits", "circuit", [c.name for c in req.circuits], errors)
    for i, n in enumerate(req.nodes):
        if known_pops is not None and n.pop is not None and n.pop not in known_pops:
            errors.append(
                FieldError(
                    f"nodes[{i}].pop",
                    f"unknown PoP {n.pop!r}; known: {', '.join(sorted(known_pops))}",
                )
            )
    for i, c in enumerate(req.circuits):
        seen: set[str] = set()
        for j, end in enumerate(c.endpoints):
            if end not in nodes:
                errors.append(
                    FieldError(
                        f"circuits[{i}].endpoints[{j}]", f"no node named {end!r} in this request"
                    )
                )
            if end in seen:
                errors.append(
                    FieldError(
                        f"circuits[{i}].endpoints[{j}]",
                        f"node {end!r} is already an endpoint of this circuit",
                    )
                )
            seen.add(end)
    if req.gateway is not None:
        if req.gateway.node not in nodes:
            errors.append(FieldError("gateway.node", f"no node named {req.gateway.node!r}"))
        if (
            known_pops is not None
            and req.gateway.pop is not None
            and req.gateway.pop not in known_pops
        ):
            errors.append(FieldError("gateway.pop", f"unknown PoP {req.gateway.pop!r}"))
    window = _window(req.window, now, max_duration, errors)
    if window is not None and horizon is not None and window.start > horizon:
        errors.append(
            FieldError(
                "window.start",
                f"{window.start.isoformat()} is beyond the booking horizon "
                f"({horizon:%Y-%m-%d %H:%M} UTC)",
            )
        )
    if errors:
        raise InvalidInput(errors, detail=f"{len(errors)} problem(s) in the slice request")
    assert window is not None
    return req, window


def _first_index(
    section: str, noun: str, names: list[str], errors: list[FieldError]
) -> dict[str, int]:
    """name -> its first position; a repeated name is an error at the repeat."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            errors.append(
                FieldError(
                    f"{section}[{i}].name",
                    f"duplicate {noun} name {name!r} (first at {section}[{first[name]}])",
                )
            )
        first.setdefault(name, i)
    return first


def _window(
    w: Window, now: dt.datetime, max_duration: dt.timedelta, errors: list[FieldError]
) -> ResolvedWindow | None:
    start = now
    if w.start != "now":
        try:
            start = parse_instant(w.start)
        except ValueError as exc:
            errors.append(FieldError("window.start", str(exc)))
            return None
        if start < now - dt.timedelta(minutes=5):
            errors.append(FieldError("window.start", f"{start.isoformat()} is in the past"))
        start = max(start, now)  # a few minutes late (clock skew, slow typing): start now
    if (w.duration is None) == (w.end is None):
        errors.append(FieldError("window", "give exactly one of duration and end"))
        return None
    if w.duration is not None:
        try:
            length = parse_duration(w.duration)
        except ValueError as exc:
            errors.append(FieldError("window.duration", str(exc)))
            return None
        end = start + length
        field = "window.duration"
    else:
        assert w.end is not None
        try:
            end = parse_instant(w.end)
        except ValueError as exc:
            errors.append(FieldError("window.end", str(exc)))
            return None
        field = "window.end"
    if end <= start:
        errors.append(
            FieldError(
                field,
                f"the slice would end ({end.isoformat()}) before it starts ({start.isoformat()})",
            )
        )
        return None
    if end - start > max_duration:
        errors.append(FieldError(field, f"{end - start} is longer than the maximum {max_duration}"))
        return None
    return ResolvedWindow(start=start, end=end)


def _msg(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    msg = str(error["msg"])
    return msg[0].lower() + msg[1:]


def schema_json() -> str:
    return json.dumps(schema(), indent=2) + "\n"
