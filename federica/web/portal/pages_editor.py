"""The new-slice editor: build the topology in a form (drawn as you type) or paste YAML;
find the earliest slot; a dry run shows the mapping and VLANs; book. Every problem is
shown next to the field it is about."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from federica.aaa.models import Membership, Project
from federica.aaa.policy import Action, allowed_projects
from federica.errors import FedericaError, FieldError, InvalidInput
from federica.slices import service, windows
from federica.slices.embed import EmbeddingFailed
from federica.slices.request import load_document
from federica.substrate.inventory import current_topology
from federica.web.auth import guard, note, require, skip_audit
from federica.web.context import ctx, read_session
from federica.web.portal import figures, forms, portal

ACTIONS = ("dry-run", "find-slot", "book", "to-yaml", "to-form")
SPARE_ROWS = 1  # an empty row after the last, so the form works without JavaScript too


def _choices() -> dict[str, Any]:
    who = require()
    with read_session() as s:
        topo = current_topology(s)
        visible = allowed_projects(who)
        query = select(Project.name).order_by(Project.name)
        if visible is not None:
            query = query.join(Membership).where(Membership.user_id == who.user_id)
        projects = list(s.scalars(query))
    return {
        "pops": [p.name for p in topo.pops],
        "projects": projects,
        "kinds": ["router", "host"],
    }


def _editor(
    ed: forms.Editor,
    *,
    errors: dict[str, list[str]] | None = None,
    result: dict[str, Any] | None = None,
    message: str = "",
    status: int = 200,
) -> ResponseReturnValue:
    shown = forms.Editor(**{**ed.__dict__, "nodes": list(ed.nodes), "circuits": list(ed.circuits)})
    shown.nodes += [dict(forms.NODE_DEFAULTS, name="") for _ in range(SPARE_ROWS)]
    shown.circuits += [
        dict(forms.CIRCUIT_DEFAULTS, name="", endpoints="") for _ in range(SPARE_ROWS)
    ]
    page = render_template(
        "portal/new.html",
        ed=shown,
        errors=errors or {},
        result=result,
        message=message,
        **_choices(),
    )
    return page, status


@portal.get("/slices/new")
@guard(Action.SLICE_CREATE, per_target=True)
def new_slice() -> ResponseReturnValue:
    ed = forms.Editor()
    projects = _choices()["projects"]
    if len(projects) == 1:
        ed.project = projects[0]
    return _editor(ed)


@portal.post("/slices/new")
@guard(Action.SLICE_CREATE, per_target=True)
def submit_slice() -> ResponseReturnValue:
    ed = forms.from_form(request.form)
    action = request.form.get("action", "dry-run")
    if action not in ACTIONS:
        action = "dry-run"
    if action != "book":
        skip_audit()  # nothing is written
    if action == "to-yaml":
        doc, _ = forms.to_request(ed)
        ed.mode, ed.yaml_text = "yaml", forms.to_yaml(doc)
        return _editor(ed)
    if ed.mode == "yaml":
        try:
            doc = load_document(ed.yaml_text)
        except InvalidInput as exc:
            return _editor(ed, errors={"yaml_text": [str(e) for e in exc.errors]}, status=422)
        if action == "to-form":
            if not isinstance(doc, dict):
                return _editor(ed, errors={"yaml_text": ["not a mapping"]}, status=422)
            loaded = forms.from_request(doc)
            loaded.yaml_text = ed.yaml_text
            return _editor(loaded)
        rows = None
    else:
        doc, rows = forms.to_request(ed)
    try:
        if action == "find-slot":
            return _found_slot(ed, doc)
        booked = service.book_with_retry(
            ctx().sessions,
            ctx().settings,
            doc,
            now=ctx().now,
            dry_run=action != "book",
            received=g.get("received", time.perf_counter()),
            actor=require(),
        )
    except (InvalidInput, EmbeddingFailed) as exc:
        problems = exc.errors if isinstance(exc, InvalidInput) else exc.reasons
        return _editor(ed, errors=_placed(ed, problems, rows), status=exc.status)
    except FedericaError as exc:
        if exc.status == 401:
            raise
        return _editor(ed, errors=_placed(ed, _problems(exc), rows), status=exc.status)
    if booked.slice is not None:
        note(slice_id=booked.slice.id, project=booked.request.project, name=booked.request.name)
        return redirect(url_for("portal.slice_page", ref=booked.slice.name), 303)
    return _editor(ed, result=_result(booked.embedding, booked.window, "dry run"))


def _problems(exc: FedericaError) -> list[FieldError]:
    """A refusal's fields (project for a quota or membership, name when taken), each with
    the whole reason: "over its quota" alone would not say by how much."""
    fields = [e for e in exc.extra.get("errors") or [] if isinstance(e, dict)]
    if len(fields) == 1:
        return [FieldError(str(fields[0].get("field", "")), exc.detail)]
    if fields:
        return [FieldError(str(e.get("field", "")), str(e.get("message", ""))) for e in fields]
    return [FieldError("", exc.detail)]


def _placed(
    ed: forms.Editor, problems: list[FieldError], rows: forms.Rows | None
) -> dict[str, list[str]]:
    if ed.mode == "yaml":
        return {"yaml_text": [str(p) for p in problems]}
    return forms.place_errors(problems, rows)


def _found_slot(ed: forms.Editor, doc: dict[str, Any]) -> ResponseReturnValue:
    with read_session() as s:
        slot = windows.find_slot(
            s,
            ctx().settings,
            doc,
            now=ctx().now(),
            after=None,
            embedder=service.DEFAULT_EMBEDDER,
        )
    start = slot.window.start
    if ed.mode == "yaml":
        doc.setdefault("window", {})["start"] = start.isoformat()
        ed.yaml_text = forms.to_yaml(doc)
    else:
        ed.start_mode, ed.start_at = "at", forms.local_minutes(start.isoformat())
    message = (
        f"The earliest slot: {start:%Y-%m-%d %H:%M} to {slot.window.end:%Y-%m-%d %H:%M} UTC. "
        "The start is filled in; book it, or dry-run again."
    )
    return _editor(ed, result=_result(slot.embedding, slot.window, "earliest slot"),
                   message=message)  # fmt: skip


def _result(embedding: Any, window: Any, kind: str) -> dict[str, Any]:
    described = service.describe_embedding(embedding)
    with read_session() as s:
        drawing = figures.mapping(s, described["placement"], described["circuits"])
    return {
        "kind": kind,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "placement": described["placement"],
        "circuits": described["circuits"],
        "drawing": drawing,
        "json": json.dumps(described, indent=1),
    }
