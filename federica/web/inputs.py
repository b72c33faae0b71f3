"""The strict input layer at the HTTP edge (API and portal alike): ids in URLs are ASCII
digits a database INTEGER holds, and no path part, query parameter or form field carries
a control character. Checked right after sign-in (which reads only the token) and before
any view, so nothing unchecked reaches a service or the database."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.routing import IntegerConverter, ValidationError

from federica.errors import FieldError, InvalidInput, NotFound, shown
from federica.inputs import DB_INT_MAX, ascii_int, text_problem

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Form fields typed in a text area (the portal's YAML editor, SSH keys, descriptions).
MULTILINE_FORM_FIELDS = frozenset({"yaml_text", "ssh_keys", "description", "reason"})


class IdConverter(IntegerConverter):
    """`<int:…>`: ASCII digits only, and never beyond a database INTEGER (a larger id
    cannot exist: 404, like any other id that does not)."""

    regex = r"[0-9]{1,20}"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> Any:
        if ascii_int(value, top=self.max if self.max is not None else DB_INT_MAX) is None:
            raise ValidationError()
        return super().to_python(value)


def _check_request() -> None:
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and text_problem(value) is not None:
            raise NotFound(f"nothing at {shown(request.path)}")
    errors: list[FieldError] = []
    for key, values in request.args.lists():
        for text in (key, *values):
            if problem := text_problem(text):
                errors.append(FieldError(key[:64], problem))
        if request.blueprint == "api" and "" in values:
            # The API's parameters are given with a value or left out (a portal form
            # sends its empty fields, and the page treats them as not given).
            errors.append(FieldError(key[:64], "empty: give a value or leave the parameter out"))
    if request.mimetype in FORM_TYPES:
        for key, values in request.form.lists():
            multiline = key in MULTILINE_FORM_FIELDS
            for text in values:
                if problem := text_problem(text, multiline=multiline):
                    errors.append(FieldError(key[:64], problem))
            if problem := text_problem(key):
                errors.append(FieldError(key[:64], problem))
    if errors:
        raise InvalidInput(errors)


def register_inputs(app: Flask) -> None:
    """Before the routes exist (their converters are bound when they are added)."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(_check_request)
