"""Alembic environment: the engine is handed in by federica.migrate (or built from the
FEDERICA_* settings when alembic is run by hand)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import federica.models  # noqa: F401  (registers every table on Base.metadata)
from federica.config import Settings
from federica.db import Base, make_engine

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    engine = make_engine(Settings.from_env().effective_database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
