from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.context import Context
from federica.db import transaction
from federica.slices.models import Slice
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    import federica.cli.slices  # noqa: F401  (registers the command group)

    r = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return r.exit_code, r.output, r.stderr


def test_validate_checks_pops_against_the_inventory(
    cli_env: dict[str, str], db: Context, tmp_path: Path
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    before = table_dump(db)
    code, out, _ = run(cli_env, "slice", "validate", str(EXAMPLES / "slices" / "bgp-lab.yaml"))
    assert code == 0 and "4 node(s), 4 circuit(s)" in out and "valid" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes: [{name: a, pop: KTH}]\n")
    code, _, err = run(cli_env, "slice", "validate", str(bad))
    assert code == 2 and "nodes[0].pop: unknown PoP 'KTH'" in err
    assert table_dump(db) == before


def test_schema_is_json_schema(cli_env: dict[str, str]) -> None:
    code, out, _ = run(cli_env, "slice", "schema")
    assert code == 0
    assert json.loads(out)["$schema"].startswith("https://json-schema.org/")


def test_book_list_show_release(cli_env: dict[str, str], db: Context) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    bgp = str(EXAMPLES / "slices" / "bgp-lab.yaml")
    before = table_dump(db)
    code, out, _ = run(cli_env, "slice", "book", "--dry-run", bgp)
    assert code == 0 and out.startswith("would book 'bgp-lab'") and "circuit prg-erl" in out
    assert table_dump(db) == before
    code, out, _ = run(cli_env, "slice", "book", bgp)
    assert code == 0 and out.startswith("booked slice")
    code, out, _ = run(cli_env, "slice", "list")
    assert "bgp-lab" in out and "scheduled" in out
    code, out, _ = run(cli_env, "slice", "show", "bgp-lab")
    assert json.loads(out)["status"] == "scheduled"
    code, out, _ = run(cli_env, "slice", "release", "bgp-lab")
    assert code == 0 and out.strip().endswith("ended")
    code, _, err = run(cli_env, "slice", "show", "no-such-slice")
    assert code == 1 and "no slice 'no-such-slice'" in err


def test_book_with_ssh_keys_names_a_bad_key_and_books_nothing(
    cli_env: dict[str, str], db: Context, tmp_path: Path
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    before = table_dump(db)
    lab = str(EXAMPLES / "slices" / "bgp-lab.yaml")
    code, _, err = run(cli_env, "slice", "book", lab, "--ssh-key", str(tmp_path / "missing.pub"))
    assert code == 2 and "--ssh-key" in err and "missing.pub" in err
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("this is not a key at all\n")
    code, _, err = run(cli_env, "slice", "book", lab, "--ssh-key", str(garbage))
    assert code == 2 and "ssh_keys[0]: " in err and "not an OpenSSH public key" in err
    assert table_dump(db) == before
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    code, out, _ = run(cli_env, "slice", "book", lab, "--ssh-key", f"{key}.pub", "--json")
    assert code == 0, out
    with transaction(db.read_sessions) as s:
        stored = json.loads(s.scalars(select(Slice.request)).one())
    assert stored["ssh_keys"] == [Path(f"{key}.pub").read_text().strip()]
