"""The migrations produce exactly the models' schema, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import federica.models  # noqa: F401
from federica import migrate
from federica.db import Base


def test_migrations_match_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    if migrated_engine.dialect.name == "sqlite":
        diff = [d for d in diff if not _added_in_place(d)]
    assert diff == []


def _added_in_place(d: Any) -> bool:
    """slices.owner_id's reference is added on SQLite with ALTER TABLE ADD COLUMN (a table
    copy would cascade-delete the slices' parts); SQLite does not report the name and
    ON DELETE of a reference made that way, so only those two may differ."""
    if d[0] not in {"add_fk", "remove_fk"}:
        return False
    fk = d[1]
    return bool(fk.table.name == "slices" and [c.name for c in fk.columns] == ["owner_id"])


def test_database_is_at_head(migrated_engine: Engine) -> None:
    assert migrate.current_revision(migrated_engine) == migrate.head_revision(migrated_engine)
