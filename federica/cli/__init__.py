"""The `federica` command. Subcommands call services; errors become clear messages."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from federica import migrate
from federica.aaa.policy import Principal
from federica.config import Settings, SettingsError
from federica.context import Context, make_context
from federica.errors import FedericaError, InvalidInput


@dataclass
class CliState:
    settings: Settings
    _context: Context | None = None
    _checked: bool = False
    _principal: Principal | None = None

    @property
    def raw_context(self) -> Context:
        """The database as it is (for `federica db …`)."""
        if self._context is None:
            self._context = make_context(self.settings)
        return self._context

    @property
    def context(self) -> Context:
        """The database with its schema checked (SQLite: brought up to date)."""
        context = self.raw_context
        if not self._checked:
            migrate.ensure_schema(context.engine)
            self._checked = True
        return context

    @property
    def principal(self) -> Principal:
        """Who runs this command: the person signed in with `federica login` (or
        FEDERICA_TOKEN), else the operators' console (whoever can open the database)."""
        if self._principal is None:
            from federica.cli.auth import resolve_principal

            self._principal = resolve_principal(self)
        return self._principal


pass_state = click.make_pass_decorator(CliState)


class FedericaGroup(click.Group):
    """Turns domain errors into a message naming the field and reason, and exit codes."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except InvalidInput as exc:
            click.echo(f"error: {exc.detail}" if len(exc.errors) > 1 else "error:", err=True)
            for e in exc.errors:
                click.echo(f"  {e}", err=True)
            sys.exit(2)
        except (FedericaError, SettingsError, migrate.SchemaOutOfDate) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=FedericaGroup)
@click.option("--data-dir", type=click.Path(path_type=Path), help="Overrides FEDERICA_DATA_DIR.")
@click.option("--database-url", help="Overrides FEDERICA_DATABASE_URL.")
@click.version_option(package_name="federica")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, database_url: str | None) -> None:
    """federica: slices of a federated network research facility."""
    try:
        settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = CliState(settings)


def main(argv: Sequence[str] | None = None) -> None:
    from federica.cli import (  # noqa: F401  (register the commands)
        aaa,
        db,
        demo,
        device,
        doctor,
        emulate,
        estop,
        federation,
        gmoc,
        monitor,
        operations,
        serve,
        slices,
        stats,
        substrate,
    )

    cli.main(args=list(argv) if argv is not None else None, prog_name="federica")
