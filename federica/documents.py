"""Reading YAML/JSON documents people write (topologies, slice requests): a size limit
first, then errors that say where."""

from __future__ import annotations

from typing import Any

import yaml

from federica.errors import FieldError, InvalidInput


def load_yaml(text: str | bytes, *, limit: int, what: str = "YAML") -> Any:
    if len(text) > limit:
        raise InvalidInput(
            [FieldError("", f"the document is {len(text)} bytes; the limit is {limit}")]
        )
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidInput([FieldError("", f"not valid {what}: {where}{exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([FieldError("", f"not valid {what}: {exc}")]) from None
