"""`federica doctor` against real databases: what it finds, and its exit status."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner, Result

import federica.cli.doctor  # noqa: F401  (registers the command)
from federica import migrate
from federica.cli import cli
from federica.context import Context
from federica.db import make_engine
from federica.federation import identity
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump


def doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, tuple[str, str]]]:
    r: Result = CliRunner().invoke(cli, ["doctor", "--json", *args], env=env)
    found = {f["check"]: (f["status"], f["detail"]) for f in json.loads(r.output)}
    return r.exit_code, found


def test_a_healthy_controller(cli_env: dict[str, str], db: Context) -> None:
    code, found = doctor(cli_env, "--no-devices")
    assert code == 0, found
    assert found["database"][0] == "ok"
    assert found["migrations"] == ("ok", f"at head ({migrate.head_revision(db.engine)})")
    assert found["disk"][0] == "ok"
    assert found["federation identity"][0] == "ok"


def test_a_database_behind_its_migrations_fails(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine, "0009")
    engine.dispose()
    env = {"FEDERICA_DATABASE_URL": url, "FEDERICA_DATA_DIR": str(tmp_path / "var")}
    code, found = doctor(env, "--no-devices")
    assert code == 1
    status, detail = found["migrations"]
    assert status == "FAIL" and "at 0009" in detail and "federica db upgrade" in detail
    # Looking did not upgrade it.
    engine = make_engine(url)
    assert migrate.current_revision(engine) == "0009"
    engine.dispose()


def test_a_missing_database_fails_and_is_not_created(tmp_path: Path) -> None:
    env = {"FEDERICA_DATA_DIR": str(tmp_path / "var")}
    code, found = doctor(env)
    assert code == 1
    assert found["database"][0] == "FAIL"
    assert not (tmp_path / "var" / "federica.db").exists()


def test_certificates_near_or_past_their_end(cli_env: dict[str, str], db: Context) -> None:
    now = dt.datetime.now(dt.UTC)
    # Made so long ago that the leaves have ended and the CA ends within the warning time.
    made = now - dt.timedelta(days=identity.CA_DAYS - 10)
    identity.init(db.settings.data_dir, "beta", "beta.example", hosts=["127.0.0.1"], now=made)
    code, found = doctor(cli_env, "--no-devices")
    assert code == 1
    assert found["federation CA certificate"][0] == "warn"
    assert "(9 days)" in found["federation CA certificate"][1]
    assert found["federation server certificate"][0] == "FAIL"
    assert found["federation client certificate"][1].startswith("expired on")


def test_devices_that_do_not_answer_fail_and_nothing_is_written(
    cli_env: dict[str, str], db: Context
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")  # nothing listens on its ports
    before = table_dump(db)
    code, found = doctor(cli_env)
    assert code == 1
    devices = {k: v for k, v in found.items() if k.startswith("device ")}
    assert sorted(devices) == ["device erl-mx", "device mil-mx", "device prg-mx", "device psn-mx"]
    assert all(status == "FAIL" for status, _ in devices.values()), devices
    assert table_dump(db) == before
