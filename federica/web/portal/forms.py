"""The slice editor's form, both ways: form fields ↔ a slice request document, and a
request's field paths (`nodes[2].pop`) → the form element they belong to. Pure: no Flask,
no database, so it is tested on its own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from federica import inputs
from federica.errors import FieldError

NODE_FIELDS = ("name", "kind", "vcpu", "ram_mb", "pop", "image")
CIRCUIT_FIELDS = ("name", "endpoints", "bandwidth_mbps")
INT_FIELDS = {"vcpu", "ram_mb", "bandwidth_mbps"}
NODE_DEFAULTS = {"kind": "router", "vcpu": "1", "ram_mb": "1024", "pop": "", "image": ""}
CIRCUIT_DEFAULTS = {"bandwidth_mbps": "100"}
_ROW = re.compile(r"^(nodes|circuits)-(\d+)-(\w+)$")
_PATH = re.compile(r"^(nodes|circuits)\[(\d+)\](?:\.(\w+))?")


@dataclass
class Editor:
    """What the editor page shows: every field as the researcher typed it."""

    name: str = ""
    description: str = ""
    project: str = ""
    start_mode: str = "now"  # now | at
    start_at: str = ""  # datetime-local, UTC: 2026-12-01T09:00
    duration: str = "1d"
    end: str = ""  # from a pasted request only; the form itself uses a duration
    nodes: list[dict[str, str]] = field(default_factory=list)
    circuits: list[dict[str, str]] = field(default_factory=list)
    gateway_node: str = ""
    gateway_pop: str = ""
    ssh_keys: str = ""
    mode: str = "form"  # form | yaml
    yaml_text: str = ""


@dataclass
class Rows:
    """Which form row each entry of the request came from (blank rows are left out)."""

    nodes: list[int] = field(default_factory=list)
    circuits: list[int] = field(default_factory=list)


def from_form(form: Mapping[str, str]) -> Editor:
    ed = Editor(
        name=form.get("name", "").strip(),
        description=form.get("description", "").strip(),
        project=form.get("project", "").strip(),
        start_mode="at" if form.get("start_mode") == "at" else "now",
        start_at=form.get("start_at", "").strip(),
        duration=form.get("duration", "").strip(),
        end=form.get("end", "").strip(),
        gateway_node=form.get("gateway_node", "").strip(),
        gateway_pop=form.get("gateway_pop", "").strip(),
        ssh_keys=form.get("ssh_keys", "").strip(),
        mode="yaml" if form.get("mode") == "yaml" else "form",
        yaml_text=form.get("yaml_text", ""),
    )
    rows: dict[str, dict[int, dict[str, str]]] = {"nodes": {}, "circuits": {}}
    for key, value in form.items():
        m = _ROW.match(key)
        if m:
            rows[m.group(1)].setdefault(int(m.group(2)), {})[m.group(3)] = value.strip()
    ed.nodes = [_row(r, NODE_FIELDS) for _, r in sorted(rows["nodes"].items())]
    ed.circuits = [_row(r, CIRCUIT_FIELDS) for _, r in sorted(rows["circuits"].items())]
    return ed


def _row(values: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {n: values.get(n, "") for n in names}


def _blank_node(row: Mapping[str, str]) -> bool:
    return not (row.get("name") or row.get("pop") or row.get("image"))


def _blank_circuit(row: Mapping[str, str]) -> bool:
    return not (row.get("name") or row.get("endpoints"))


def _number(text: str) -> int | str:
    """An integer where one was typed; anything else is left for validation to name."""
    value = inputs.ascii_int(text.strip())
    return text if value is None else value


def to_request(ed: Editor) -> tuple[dict[str, Any], Rows]:
    """The request document the form describes (validated later, like any other)."""
    rows = Rows()
    doc: dict[str, Any] = {"name": ed.name}
    if ed.description:
        doc["description"] = ed.description
    if ed.project:
        doc["project"] = ed.project
    window: dict[str, Any] = {"start": _start(ed)}
    if ed.end:
        window["end"] = ed.end
    else:
        window["duration"] = ed.duration
    doc["window"] = window
    nodes = []
    for i, row in enumerate(ed.nodes):
        if _blank_node(row):
            continue
        rows.nodes.append(i)
        node: dict[str, Any] = {"name": row["name"], "kind": row.get("kind") or "router"}
        for key in ("vcpu", "ram_mb"):
            if row.get(key):
                node[key] = _number(row[key])
        for key in ("pop", "image"):
            if row.get(key):
                node[key] = row[key]
        nodes.append(node)
    doc["nodes"] = nodes
    circuits = []
    for i, row in enumerate(ed.circuits):
        if _blank_circuit(row):
            continue
        rows.circuits.append(i)
        circuit: dict[str, Any] = {
            "name": row["name"],
            "endpoints": [e for e in re.split(r"[\s,]+", row.get("endpoints", "")) if e],
        }
        if row.get("bandwidth_mbps"):
            circuit["bandwidth_mbps"] = _number(row["bandwidth_mbps"])
        circuits.append(circuit)
    if circuits:
        doc["circuits"] = circuits
    if ed.gateway_node:
        doc["gateway"] = {"node": ed.gateway_node} | (
            {"pop": ed.gateway_pop} if ed.gateway_pop else {}
        )
    keys = [k.strip() for k in ed.ssh_keys.splitlines() if k.strip()]
    if keys:
        doc["ssh_keys"] = keys
    return doc, rows


def _start(ed: Editor) -> str:
    if ed.start_mode != "at":
        return "now"
    text = ed.start_at
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?", text):
        return text + "Z"  # the form's times are UTC, and say so
    return text


def from_request(doc: Mapping[str, Any]) -> Editor:
    """A request document (pasted YAML, or a slot found) shown in the form."""
    window = doc.get("window") if isinstance(doc.get("window"), Mapping) else {}
    assert isinstance(window, Mapping)
    start = str(window.get("start", "now"))
    gateway = doc.get("gateway") if isinstance(doc.get("gateway"), Mapping) else {}
    assert isinstance(gateway, Mapping)
    ed = Editor(
        name=str(doc.get("name", "")),
        description=str(doc.get("description", "")),
        project=str(doc.get("project") or ""),
        start_mode="now" if start == "now" else "at",
        start_at="" if start == "now" else local_minutes(start),
        duration=str(window.get("duration") or ("" if window.get("end") else "1d")),
        end=str(window.get("end") or ""),
        gateway_node=str(gateway.get("node", "")),
        gateway_pop=str(gateway.get("pop", "") or ""),
        ssh_keys="\n".join(str(k) for k in doc.get("ssh_keys") or []),
    )
    for node in _mappings(doc.get("nodes")):
        ed.nodes.append({k: str(node.get(k, NODE_DEFAULTS.get(k, "")) or "") for k in NODE_FIELDS})
    for circuit in _mappings(doc.get("circuits")):
        ends = circuit.get("endpoints") or []
        ed.circuits.append(
            {
                "name": str(circuit.get("name", "")),
                "endpoints": ", ".join(str(e) for e in ends) if isinstance(ends, list) else "",
                "bandwidth_mbps": str(circuit.get("bandwidth_mbps", 100)),
            }
        )
    return ed


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def local_minutes(iso: str) -> str:
    """'2026-12-01T09:00:00+00:00' → '2026-12-01T09:00' (a datetime-local value, UTC)."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d)", iso)
    return m.group(1) if m else iso


def to_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=100)


def element_of(path: str, rows: Rows | None) -> str:
    """The id of the form element a request field path belongs to ('' when none does)."""
    m = _PATH.match(path)
    if m:
        section, index, leaf = m.group(1), int(m.group(2)), m.group(3)
        order = getattr(rows, section) if rows is not None else []
        if index >= len(order):
            return section
        row = order[index]
        return f"{section}-{row}-{leaf}" if leaf else f"{section}-{row}"
    head = path.split("[")[0]
    return {
        "name": "name",
        "description": "description",
        "project": "project",
        "window.start": "start_at",
        "window.duration": "duration",
        "window.end": "duration",
        "window": "duration",
        "gateway.node": "gateway_node",
        "gateway.pop": "gateway_pop",
        "gateway": "gateway_node",
        "ssh_keys": "ssh_keys",
        "nodes": "nodes",
        "circuits": "circuits",
    }.get(head, "")


def place_errors(errors: list[FieldError], rows: Rows | None) -> dict[str, list[str]]:
    """Error messages by form element id; '' collects those that belong to no field."""
    out: dict[str, list[str]] = {}
    for e in errors:
        where = element_of(e.field, rows)
        text = e.message if where else str(e)
        out.setdefault(where, []).append(text)
    return out
