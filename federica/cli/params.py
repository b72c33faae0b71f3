"""Command-line values through the same strict input layer as the API and the portal."""

from __future__ import annotations

from typing import Any

import click

from federica.inputs import DB_INT_MAX, ascii_int


class Whole(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.3 on
    """A whole number in ASCII digits from `lo` to `hi` (click's INT takes any script's
    digits and any size, which the database then refuses with a traceback)."""

    name = "integer"

    def __init__(self, lo: int = 0, hi: int = DB_INT_MAX) -> None:
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value if self.lo <= value <= self.hi else None
        else:
            number = ascii_int(str(value).strip(), top=self.hi)
        if number is None or number < self.lo:
            self.fail(f"a whole number from {self.lo} to {self.hi}, not {value!r}", param, ctx)
        return number


ID = Whole(0, DB_INT_MAX)
VLAN = Whole(1, 4094)
DAYS = Whole(1, 36500)
