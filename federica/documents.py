"""Reading YAML/JSON documents people write (topologies, slice requests, API bodies).

Before anything is built from a document, its size, nesting depth and number of values
are checked on the parser's event stream (iterative, so 50 000 `[` cost a few
microseconds, not a RecursionError after a second of CPU). Then: a key given twice is an
error naming it (no "the last one silently wins"), aliases are refused (a few lines of
them expand to billions of values), and every string is checked for control characters.
Errors say where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from federica import inputs
from federica.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 32
MAX_VALUES = 200_000
# Free text that may span lines; every other string is one line.
MULTILINE_FIELDS = frozenset({"description", "reason"})
# Values people paste from a file (`cat ~/.ssh/id_ed25519.pub` ends in a line break): the
# model strips surrounding whitespace, so only what is inside must be clean.
TRIMMED_FIELDS = frozenset({"ssh_keys"})

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[misc,valid-type]
    """The safe loader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # unhashable: the base class says so
            if repeated:
                mark = key_node.start_mark
                raise InvalidInput(
                    [
                        FieldError(
                            str(key),
                            f"duplicate key {key!r} (line {mark.line + 1}, "
                            f"column {mark.column + 1})",
                        )
                    ]
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _too_large(text: str | bytes, limit: int) -> None:
    if len(text) > limit:
        raise InvalidInput(
            [FieldError("", f"the document is {len(text)} bytes; the limit is {limit}")]
        )


def _shape_error(depth: int, values: int) -> InvalidInput | None:
    if depth > MAX_DEPTH:
        return InvalidInput([FieldError("", f"nested deeper than {MAX_DEPTH} levels")])
    if values > MAX_VALUES:
        return InvalidInput([FieldError("", f"more than {MAX_VALUES} values in one document")])
    return None


def _check_yaml_shape(text: str | bytes) -> None:
    depth = values = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise InvalidInput([FieldError("", f"aliases (*name) are not supported{where}")])
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            values += 1
        if problem := _shape_error(depth, values):
            raise problem


def load_yaml(text: str | bytes, *, limit: int, what: str = "YAML") -> Any:
    _too_large(text, limit)
    if text.lstrip()[:1] in ("{", "[", b"{", b"["):
        # JSON is read as JSON: YAML would refuse the escaped surrogate pairs JSON uses
        # for characters beyond the BMP ("\ud83d\ude00"). Flow-style YAML is not JSON.
        try:
            return _parse_json(text)
        except ValueError:
            pass
    try:
        _check_yaml_shape(text)
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidInput([FieldError("", f"not valid {what}: {where}{exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([FieldError("", f"not valid {what}: {exc}")]) from None
    check_strings(data)
    return data


_JSON_SKIP = re.compile(rb'"(?:[^"\\]|\\.)*"|[^\[\]{}"]+', re.DOTALL)


def _check_json_shape(raw: bytes) -> None:
    depth = values = 0
    pos = 0
    # Strings and scalars are skipped whole; only brackets are looked at one by one.
    while pos < len(raw):
        m = _JSON_SKIP.match(raw, pos)
        if m is not None:
            values += 1
            pos = m.end()
            continue
        ch = raw[pos : pos + 1]
        pos += 1
        if ch in (b"[", b"{"):
            depth += 1
            values += 1
        elif ch in (b"]", b"}"):
            depth -= 1
        else:
            return  # an unterminated string: json.loads says where
        if problem := _shape_error(depth, values):
            raise problem


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidInput([FieldError(key, f"duplicate key {key!r}")])
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise InvalidInput([FieldError("", f"{name} is not a JSON number")])


def _parse_json(data: str | bytes) -> Any:
    """ValueError when it is not JSON; InvalidInput when it is JSON we refuse."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    _check_json_shape(raw)
    value = json.loads(raw, object_pairs_hook=_pairs, parse_constant=_constant)
    check_strings(value)
    return value


def load_json(data: str | bytes, *, limit: int, what: str = "JSON") -> Any:
    _too_large(data, limit)
    try:
        return _parse_json(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput([FieldError("", f"not {what}: {exc}")]) from None


def check_strings(data: Any, multiline: frozenset[str] = MULTILINE_FIELDS) -> None:
    """Every key and string value free of control characters (tabs and line breaks only
    in free-text fields), each problem named by its field."""
    errors = [
        FieldError(path, problem)
        for path, text, may_span in _strings(data, "", False, multiline)
        if (problem := inputs.text_problem(text, multiline=may_span))
    ]
    if errors:
        raise InvalidInput(errors)


def _strings(
    data: Any, path: str, may_span: bool, multiline: frozenset[str], trim: bool = False
) -> Iterator[tuple[str, str, bool]]:
    # Depth is bounded by the shape check, so recursion here is shallow.
    if isinstance(data, str):
        yield path, data.strip() if trim else data, may_span
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str):
                yield path, key, False
            where = f"{path}.{key}" if path else str(key)
            yield from _strings(value, where, key in multiline, multiline, key in TRIMMED_FIELDS)
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _strings(value, f"{path}[{i}]", may_span, multiline, trim)


CREDENTIALS_LIMIT = 1 << 20  # an operator's credentials file: sets of names and references


def load_named_sets(path: Path, model: type[M]) -> dict[str, M]:
    """A YAML file mapping set names to `model`s (credential sets): every problem named
    `<set>.<field>`, all of them at once; nothing is returned unless every set is valid."""
    try:
        raw = load_yaml(path.read_bytes(), limit=CREDENTIALS_LIMIT, what=str(path)) or {}
    except OSError as exc:
        raise InvalidInput([FieldError(str(path), f"cannot read credentials: {exc}")]) from None
    if not isinstance(raw, dict):
        raise InvalidInput([FieldError(str(path), "must map set names to credentials")])
    sets: dict[str, M] = {}
    errors = []
    for name, spec in raw.items():
        try:
            sets[str(name)] = model.model_validate(spec)
        except ValidationError as exc:
            for e in exc.errors():
                where = ".".join(str(x) for x in e["loc"])
                errors.append(FieldError(f"{name}{'.' + where if where else ''}", e["msg"]))
    if errors:
        raise InvalidInput(errors, detail=f"{path}: {len(errors)} problem(s)")
    return sets
