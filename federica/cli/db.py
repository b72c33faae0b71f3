"""federica db …"""

from __future__ import annotations

import click

from federica import migrate
from federica.cli import CliState, cli, pass_state


@cli.group()
def db() -> None:
    """Database schema."""


@db.command()
@pass_state
def upgrade(state: CliState) -> None:
    """Apply every pending migration."""
    migrate.upgrade(state.raw_context.engine)
    click.echo(f"database at revision {migrate.current_revision(state.raw_context.engine)}")


@db.command()
@pass_state
def current(state: CliState) -> None:
    """Show the schema revision and whether it is the newest."""
    engine = state.raw_context.engine
    cur, head = migrate.current_revision(engine), migrate.head_revision(engine)
    click.echo(
        f"current {cur or 'none'}, head {head}"
        + ("" if cur == head else " (run: federica db upgrade)")
    )
