"""`federica gmoc collector …` against a real database: add (certificate name, token, one
project), list, remove; bad input names the field and changes nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

import federica.cli.gmoc  # noqa: F401  (registers `federica gmoc`: every test here needs it)
from federica.cli import cli
from federica.context import Context
from federica.db import transaction
from federica.gmoc import collectors
from tests.accounts import ensure_project
from tests.helpers import table_dump


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_add_list_identify_remove(cli_env: dict[str, str], db: Context) -> None:
    ensure_project(db, "p1")
    urn = "urn:publicid:IDN+ch.example+authority+ma"
    r = run(cli_env, "gmoc", "collector", "add", "gmoc", "--cert-name", urn, "--users")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["sees"] == "whole aggregate"
    r = run(cli_env, "gmoc", "collector", "add", "lab", "--token", "--project", "p1")
    assert r.exit_code == 0, r.output
    token = r.output.rsplit(": ", 1)[1].strip()
    assert token.startswith("gmc_")
    listed = json.loads(run(cli_env, "gmoc", "collector", "list").output)
    assert [(c["name"], c["sees"], c["token"], c["users"]) for c in listed] == [
        ("gmoc", "whole aggregate", False, True),
        ("lab", "project p1", True, False),
    ]
    assert token not in json.dumps(listed)
    with db.read_sessions() as s:
        viewer = collectors.identify(s, None, token, db.now())
    assert viewer.projects == frozenset({"p1"}) and not viewer.users
    assert run(cli_env, "gmoc", "collector", "remove", "lab").exit_code == 0
    with db.read_sessions() as s:
        assert [c.name for c in collectors.listed(s)] == ["gmoc"]


def test_bad_input_names_the_field_and_changes_nothing(
    cli_env: dict[str, str], db: Context
) -> None:
    with transaction(db.sessions) as s:
        collectors.add(s, "gmoc", cert_name="cn-1", token=False, project=None, users=False)
    before = table_dump(db)
    for args, needle in [
        (("Bad_Name", "--token"), "name"),
        (("x",), "cert_name"),
        (("x", "--token", "--project", "nope"), "project"),
        (("x", "--token", "--project", "nope", "--users"), "users"),
        (("gmoc", "--token"), "already"),
        (("y", "--cert-name", "cn-1"), "cn-1"),
    ]:
        r = CliRunner().invoke(cli, ["gmoc", "collector", "add", *args], env=cli_env)
        assert r.exit_code != 0 and needle in r.output, (args, r.output)
    r = CliRunner().invoke(cli, ["gmoc", "collector", "remove", "nobody"], env=cli_env)
    assert r.exit_code != 0 and "nobody" in r.output
    after = table_dump(db)
    after.pop("audit_log", None)
    before.pop("audit_log", None)
    assert after == before
