"""`federica federation …` and `federica peer …` against a real database (click's runner)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.context import Context
from federica.federation import identity
from tests.helpers import table_dump


def run(env: dict[str, str], *args: str) -> Result:
    import federica.cli.federation  # noqa: F401

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_init_add_list_update_remove(
    cli_env: dict[str, str], db: Context, facilities: dict[str, identity.Facility]
) -> None:
    r = run(cli_env, "federation", "init", "--name", "beta", "--authority", "beta.example")
    assert r.exit_code == 0, r.output
    assert "urn:publicid:IDN+beta.example+authority+am" in r.output
    key = Path(cli_env["FEDERICA_DATA_DIR"]) / "federation" / "client.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in r.output
    ca = str(facilities["alpha"].files.ca_cert)
    r = run(cli_env, "peer", "add", "alpha", "https://127.0.0.1:9443/", "--ca", ca,
            "--form", "integrated", "--allow", "booking", "--allow", "advertisement",
            "--guest-quota", "3")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["operations"] == ["advertisement", "booking"]
    r = run(cli_env, "peer", "update", "alpha", "--form", "overlay")
    assert json.loads(r.output)["operations"] == ["advertisement"]
    (listed,) = json.loads(run(cli_env, "peer", "list").output)
    assert (listed["name"], listed["url"], listed["guest_quota"]) == (
        "alpha", "https://127.0.0.1:9443", 3,
    )  # fmt: skip
    assert run(cli_env, "peer", "remove", "alpha").exit_code == 0
    assert json.loads(run(cli_env, "peer", "list").output) == []
    r = run(cli_env, "peer", "remove", "alpha")
    assert r.exit_code == 1 and "no peer 'alpha'" in r.output


def test_bad_input_names_the_fields_and_changes_nothing(
    cli_env: dict[str, str], db: Context, tmp_path: Path
) -> None:
    before = table_dump(db)
    r = run(cli_env, "peer", "add", "alpha", "ftp://x", "--ca", str(tmp_path / "missing.pem"),
            "--form", "overlay", "--border", "tyo-sw:xe-2/0/0", "--pops", "MARS")  # fmt: skip
    assert r.exit_code == 2
    for field in ("url:", "pops:", "border:"):
        assert field in r.output, r.output
    r = run(cli_env, "peer", "add", "alpha", "https://x:1", "--ca", str(tmp_path / "missing.pem"),
            "--form", "overlay")  # fmt: skip
    assert r.exit_code == 2 and "ca: cannot read" in r.output
    r = run(cli_env, "peer", "show-advertisement", "alpha")
    assert r.exit_code == 1 and "federation init" in r.output
    assert table_dump(db) == before
