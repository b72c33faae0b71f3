"""The `federica` command against a real database (in-process, via click's runner)."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.context import Context
from tests.conftest import DATA, EXAMPLES
from tests.helpers import table_dump

FEDERICA = str(EXAMPLES / "topologies" / "federica.yaml")


def run(env: dict[str, str], *args: str) -> Result:
    import federica.cli.db
    import federica.cli.serve
    import federica.cli.substrate  # noqa: F401

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_load_then_show_json_reports_the_facility(cli_env: dict[str, str]) -> None:
    r = run(cli_env, "substrate", "load", FEDERICA)
    assert r.exit_code == 0, r.output
    assert "applied 126 to create" in r.output
    r = run(cli_env, "substrate", "show", "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    s = data["summary"]
    assert len(data["pops"]) == 14 == s["pops"]
    assert s["core_pops"] == 4 and s["core_links"] == 6 and s["core_full_mesh"]
    assert all(a["connected_to_core"] for a in s["attachments"])


def test_second_load_says_no_changes(cli_env: dict[str, str]) -> None:
    run(cli_env, "substrate", "load", FEDERICA)
    r = run(cli_env, "substrate", "load", FEDERICA)
    assert r.exit_code == 0 and "no changes" in r.output


def test_five_mistakes_exit_nonzero_and_change_nothing(
    cli_env: dict[str, str], db: Context
) -> None:
    run(cli_env, "substrate", "load", FEDERICA)
    before = table_dump(db)
    r = run(cli_env, "substrate", "load", str(DATA / "five-mistakes.yaml"))
    assert r.exit_code == 2
    lines = [ln.strip() for ln in r.stderr.splitlines()]
    assert lines[0] == "error: 5 problem(s) in topology"
    assert lines[1:] == [
        "devices[2].name: duplicate name 'mil-mx' (first at devices[1])",
        "links[0].b: port 'ge-0/0/9' not found on device 'mil-mx'",
        "links[1].capacity_mbps: capacity must be positive, got 0",
        "links[1].vlans: VLAN range '0-5000' is outside 1..4094",
        "hosts[0].uplink: port 'ge-1/0/7' not found on device 'prg-mx'",
    ]
    assert table_dump(db) == before


def test_dry_run_changes_nothing(cli_env: dict[str, str], db: Context) -> None:
    before = table_dump(db)
    r = run(cli_env, "substrate", "load", "--dry-run", FEDERICA)
    assert r.exit_code == 0 and "would apply 126 to create" in r.output
    assert table_dump(db) == before


def test_export_roundtrip(cli_env: dict[str, str], tmp_path: object) -> None:
    run(cli_env, "substrate", "load", FEDERICA)
    out = f"{tmp_path}/export.yaml"
    assert run(cli_env, "substrate", "export", "-o", out).exit_code == 0
    r = run(cli_env, "substrate", "load", out)
    assert "no changes" in r.output


def test_missing_file_is_a_clear_error(cli_env: dict[str, str]) -> None:
    r = run(cli_env, "substrate", "load", "/no/such/topology.yaml")
    assert r.exit_code == 2 and "No such file or directory" in r.stderr


def test_bad_setting_names_the_variable(cli_env: dict[str, str]) -> None:
    r = CliRunner().invoke(cli, ["substrate", "show"], env=cli_env | {"FEDERICA_PORT": "x"})
    assert r.exit_code == 2 and "FEDERICA_PORT" in r.output
