"""Stored UTC times as integer µs since the epoch, computed by the database. Pure: builds
SQL expressions only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String, cast, func, type_coerce


def epoch_us(column: Any, dialect: str) -> Any:
    """Exact (no float on the way), and neither the driver nor SQLAlchemy makes a datetime
    of each row. SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's format, always
    six digits of µs); PostgreSQL's EXTRACT(EPOCH …) is an exact numeric (version 14 on)."""
    if dialect == "sqlite":
        text = type_coerce(column, String())
        seconds = cast(func.strftime("%s", text), BigInteger)
        return seconds * 1_000_000 + cast(func.substr(text, 21, 6), BigInteger)
    return cast(func.extract("epoch", column) * 1_000_000, BigInteger)
