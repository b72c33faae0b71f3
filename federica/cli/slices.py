"""federica slice schema | validate"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from sqlalchemy import select

from federica.cli import CliState, cli, pass_state
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.slices.request import MAX_REQUEST_BYTES, parse_request, schema_json
from federica.substrate.models import Pop


@cli.group(name="slice")
def slice_group() -> None:
    """Slice requests (booking comes with the slices issue)."""


@slice_group.command()
def schema() -> None:
    """Print the JSON Schema of the slice request format."""
    click.echo(schema_json(), nl=False)


@slice_group.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@pass_state
def validate(state: CliState, file: Path) -> None:
    """Check a slice request (YAML or JSON) against the format and the inventory's PoPs.
    Changes nothing; every problem is named with its field."""
    try:
        if file.stat().st_size > MAX_REQUEST_BYTES:
            raise InvalidInput([FieldError("", f"{file}: larger than {MAX_REQUEST_BYTES} bytes")])
        text = file.read_bytes()
    except OSError as exc:
        raise InvalidInput([FieldError("", f"{file}: {exc.strerror}")]) from None
    with transaction(state.context.read_sessions) as s:
        pops = set(s.scalars(select(Pop.name)).all())
    req, window = parse_request(
        text,
        now=dt.datetime.now(dt.UTC),
        max_duration=dt.timedelta(days=state.settings.max_slice_days),
        known_pops=pops,
    )
    click.echo(
        f"{file}: slice {req.name!r}, {len(req.nodes)} node(s), "
        f"{len(req.circuits)} circuit(s), {window.start:%Y-%m-%d %H:%M} → "
        f"{window.end:%Y-%m-%d %H:%M} UTC: valid"
    )
