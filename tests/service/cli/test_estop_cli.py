"""`federica estop` on both databases: the selector forms, bad input named by its field
with nothing changed, lift of a slice not shut down refused. (The devices and nodes of a
real stop: tests/integration/test_estop.py; the API with fakes: tests/service/web.)"""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.context import Context
from federica.db import transaction
from federica.slices import service
from federica.slices.models import Slice
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    import federica.cli.estop  # noqa: F401  (registers the command group)

    r = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return r.exit_code, r.output, r.stderr


@pytest.fixture
def booked(db: Context) -> int:
    """A slice booked for later (scheduled): stoppable without any device work."""
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    start = db.now() + dt.timedelta(hours=1)
    doc = {
        "name": "later",
        "window": {"start": start.isoformat(), "duration": "1h"},
        "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "MIL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
    }
    with transaction(db.sessions) as s:
        b = service.book(s, db.settings, doc, now=db.now())
        assert b.slice is not None
        return b.slice.id


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--link", "nowhere"], "link"),
        (["--vlan", "3999", "--link", "prg-erl", "--at", "2020-01-01T00:00:00Z"], "at"),
        (["--vlan", "3999", "--link", "prg-erl", "--at", "yesterday"], "at"),
        (["nosuch"], "slice"),
        ([], "selector"),
        (["later", "--project", "lab"], "selector"),
        (["--user", "nobody"], "user"),
    ],
)
def test_bad_selectors_name_the_field_and_change_nothing(
    cli_env: dict[str, str], db: Context, booked: int, args: list[str], field: str
) -> None:
    before = table_dump(db)
    code, _, err = run(cli_env, "estop", *args, "--reason", "test")
    assert code != 0
    assert f"{field}:" in err, err
    assert table_dump(db) == before


def test_stop_then_lift_refused_for_a_slice_not_shut_down(
    cli_env: dict[str, str], db: Context, booked: int
) -> None:
    code, out, err = run(cli_env, "estop", "lift", "later")
    assert code != 0 and "slice: later is scheduled" in err, err
    code, out, err = run(cli_env, "estop", "later", "--reason", "abuse", "--ticket", "T-1")
    assert code == 0, err
    assert f"slice {booked} 'later': shut down before it started" in out
    code, _, err = run(cli_env, "estop", "lift", "later")
    assert code != 0 and "slice: later was stopped before it started" in err, err
    with transaction(db.read_sessions) as s:
        sl = s.get(Slice, booked)
        assert sl is not None and sl.status.value == "shutdown"
    # Stopping it again is refused: it is shut down already.
    code, _, err = run(cli_env, "estop", "later", "--reason", "again")
    assert code != 0 and "shutdown" in err
    code, out, _ = run(cli_env, "estop", "show", "later")
    assert code == 0 and '"ticket": "T-1"' in out
