"""The strict input layer shared by the API, the portal and the CLI.

Everything a person sends passes here before it reaches a service or the database:
whole numbers are ASCII digits within the range of the column they end up in (Python's
`str.isdigit` and `int` accept superscripts and other scripts' digits; the databases'
INTEGER holds 32 bits), instants lie in a range every calendar calculation can move
around in, and text carries no control characters (PostgreSQL refuses NUL outright,
and a CR/LF in a redirect target splits a header). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from federica.errors import FieldError, InvalidInput, shown

# The INTEGER of SQLite's declared columns and PostgreSQL's int4: every id and count.
DB_INT_MAX = 2**31 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,10}")
# Far enough from datetime's year 1 and 9999 that adding a booking's longest duration, a
# calendar's range or a month never overflows; and no facility books outside it.
MIN_INSTANT = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_INSTANT = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
MAX_DURATION = dt.timedelta(days=366 * 100)
# What JSON Schema can say of the strict input layer (the document's patterns; the
# layer itself is the check): an instant within the supported years, a month, a duration.
YEAR = r"(197[1-9]|19[89][0-9]|[2-8][0-9]{3})"  # 1970 with a zone east of UTC is 1969
# One character of text: no control character (C0, DEL, C1).
SAFE = r"[^\x00-\x1f\x7f-\x9f]"
# ... and where text may span lines: tabs and line breaks too.
SAFE_MULTILINE = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
INSTANT_PATTERN = (
    rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
)
MONTH_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])$"
# Text that may span lines (a description, a YAML document) keeps tabs and line breaks.
MULTILINE_ALLOWED = frozenset("\t\n\r")


def ascii_int(text: str, *, top: int = DB_INT_MAX) -> int | None:
    """`text` as a whole number when it is ASCII digits at most `top`; else None."""
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= top else None


def looks_like_id(text: str) -> bool:
    """ASCII digits only: what is meant as an id (a name never starts with a digit)."""
    return text.isascii() and text.isdigit()


def id_or_none(ref: int | str) -> int | None:
    """A row id from an int or a string of ASCII digits; None when beyond any id (so the
    caller answers "not found" without asking the database an impossible question)."""
    if isinstance(ref, int):
        return ref if 0 <= ref <= DB_INT_MAX else None
    return ascii_int(ref)


def whole(raw: str, field: str, lo: int = 0, hi: int = DB_INT_MAX) -> int:
    """A whole number typed by a person, from `lo` to `hi`; else 422 naming `field`."""
    value = ascii_int(raw.strip(), top=hi)
    if value is None or value < lo:
        raise InvalidInput(
            [FieldError(field, f"a whole number from {lo} to {hi}, not {shown(raw)}")]
        )
    return value


def number_in_range(value: object, field: str, lo: int = 0, hi: int = DB_INT_MAX) -> int:
    """A JSON/YAML whole number (never a boolean, never a float) from `lo` to `hi`."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput([FieldError(field, f"a whole number from {lo} to {hi}")])
    return value


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be stored as text (a control character, a lone surrogate)."""
    for i, ch in enumerate(value):
        if multiline and ch in MULTILINE_ALLOWED:
            continue
        cat = unicodedata.category(ch)
        if cat == "Cc":
            return f"control character U+{ord(ch):04X} at position {i} is not allowed"
        if cat == "Cs":
            return f"unpaired surrogate U+{ord(ch):04X} at position {i} is not allowed"
    return None


def printable(value: str) -> str:
    """`value` with each control character (and lone surrogate) escaped as \\uXXXX: for
    records of what was sent (the audit log), which must keep even refused input."""
    if text_problem(value) is None:
        return value
    return "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in value
    )


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise InvalidInput([FieldError(field, problem)])
    return value


def check_instant(value: dt.datetime, text: str) -> dt.datetime:
    """`value` (aware) in UTC, if within [MIN_INSTANT, MAX_INSTANT); ValueError if not."""
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_INSTANT <= utc < MAX_INSTANT:
        raise ValueError(
            f"{text!r} is outside the supported range "
            f"({MIN_INSTANT:%Y-%m-%d} to {MAX_INSTANT:%Y-%m-%d} UTC)"
        )
    return utc


def check_duration(value: dt.timedelta, text: str) -> dt.timedelta:
    if abs(value) > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than any calendar (at most 100 years)")
    return value
