"""The CLI as a person (`federica login`) or as the operators' console: same policy as the
API, every change audited, the token kept privately."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.context import Context
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump

DAY = (dt.datetime.now(dt.UTC) + dt.timedelta(days=20)).date().isoformat()


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    import federica.cli.aaa
    import federica.cli.operations
    import federica.cli.slices  # noqa: F401  (each registers its commands)

    r = CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)
    return r.exit_code, r.output, r.stderr


def test_accounts_login_policy_and_audit_from_the_cli(
    cli_env: dict[str, str], db: Context, tmp_path: Path
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    # The console (no login) is the facility's administrator.
    code, out, _ = run(cli_env, "whoami")
    assert code == 0 and out.startswith("local:") and "(admin)" in out
    assert (
        run(cli_env, "user", "add", "alice", "--password-stdin", stdin="alice passphrase\n")[0] == 0
    )
    assert (
        run(cli_env, "user", "add", "bob", "--password-stdin", stdin="bob's passphrase\n")[0] == 0
    )
    assert run(cli_env, "project", "add", "alpha", "--lead", "alice")[0] == 0
    assert run(cli_env, "project", "add", "beta", "--lead", "bob")[0] == 0
    code, _, err = run(cli_env, "user", "add", "Not Valid")
    assert code == 2 and "username:" in err

    # alice signs in; the token is kept 0600 and the CLI acts as her.
    code, out, _ = run(cli_env, "login", "--username", "alice", "--password-stdin",
                       stdin="alice passphrase\n")  # fmt: skip
    assert code == 0 and "signed in as alice" in out
    creds = Path(cli_env["XDG_CONFIG_HOME"]) / "federica" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text())["token"].startswith("fed_")
    assert run(cli_env, "whoami")[1].startswith("alice (researcher); projects: alpha")
    lab = tmp_path / "lab.yaml"
    lab.write_text("name: a-lab\nnodes: [{name: a, pop: PRG}]\n")
    code, out, err = run(cli_env, "slice", "book", str(lab))
    assert code == 0, err
    code, _, err = run(cli_env, "user", "add", "mallory", "--role", "admin")
    assert code == 1 and "researchers may not manage users" in err
    assert run(cli_env, "logout")[1].strip() == "signed out"

    # bob may not touch alice's slice; the refusal changes nothing and is recorded.
    assert run(cli_env, "login", "--username", "bob", "--password-stdin",
               stdin="bob's passphrase\n")[0] == 0  # fmt: skip
    before = table_dump(db)
    code, _, err = run(cli_env, "slice", "release", "a-lab")
    assert code == 1 and "not a member of project 'alpha'" in err
    code, _, err = run(cli_env, "slice", "show", "a-lab")
    assert code == 1
    assert run(cli_env, "slice", "list")[1] == ""
    assert table_dump(db) == before
    code, _, err = run(cli_env, "login", "--username", "bob", "--password-stdin",
                       stdin="wrong\n")  # fmt: skip
    assert code == 1 and "wrong username or password" in err
    assert run(cli_env, "logout")[0] == 0

    # The console reads the audit log: both actions, with their results.
    code, out, _ = run(cli_env, "audit", "--slice", "a-lab", "--json")
    entries = json.loads(out)
    assert [(e["actor"], e["action"], e["result"]) for e in entries] == [
        ("bob", "slice.change", "refused"),
        ("alice", "slice.create", "ok"),
    ]
    assert all(e["via"] == "cli" for e in entries)
    code, out, _ = run(cli_env, "audit", "--user", "alice")
    assert "user.manage" in out and "refused" in out


def test_a_revoked_login_stops_working(cli_env: dict[str, str], db: Context) -> None:
    assert (
        run(cli_env, "user", "add", "carol", "--password-stdin", stdin="carol passphrase\n")[0] == 0
    )
    assert run(cli_env, "login", "--username", "carol", "--password-stdin",
               stdin="carol passphrase\n")[0] == 0  # fmt: skip
    code, out, _ = run(cli_env, "token", "list")
    token_id = out.split()[0]
    assert run(cli_env, "token", "revoke", token_id)[0] == 0
    code, _, err = run(cli_env, "whoami")
    assert code == 1 and "revoked" in err and "federica login" in err
    assert run(cli_env, "logout")[1].strip() == "signed out"
    assert run(cli_env, "whoami")[1].startswith("local:")


def test_who_held_a_vlan_from_the_cli(cli_env: dict[str, str], db: Context, tmp_path: Path) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    assert run(cli_env, "user", "add", "dave", "--email", "dave@uni.example")[0] == 0
    assert run(cli_env, "project", "add", "delta", "--lead", "dave")[0] == 0
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        f"name: d-lab\nproject: delta\nwindow: {{start: '{DAY}T09:00:00Z', duration: 4h}}\n"
        "nodes: [{name: a, pop: PRG}, {name: b, pop: MIL}]\n"
        "circuits: [{name: c, endpoints: [a, b], bandwidth_mbps: 10}]\n"
    )
    code, out, err = run(cli_env, "slice", "book", str(lab), "--json")
    assert code == 0, err
    hop = next(h for h in json.loads(out)["slice"]["circuits"][0]["hops"] if h["link"])
    link, vlan = hop["link"], str(hop["vlan"])
    code, out, _ = run(cli_env, "audit", "held", "--vlan", vlan, "--link", link,
                       "--at", f"{DAY}T10:00:00Z")  # fmt: skip
    assert code == 0 and "'d-lab' of project delta" in out, out
    code, out, _ = run(cli_env, "audit", "held", "--vlan", vlan, "--link", link,
                       "--at", f"{DAY}T14:00:00Z")  # fmt: skip
    assert out.startswith("nobody held VLAN")
    code, _, err = run(cli_env, "audit", "held", "--vlan", vlan, "--link", "nowhere")
    assert code == 1 and "link: no link 'nowhere'" in err


@pytest.mark.parametrize(
    "args",
    [
        ("token", "revoke", "\u00b2"),
        ("token", "revoke", "99999999999999999999999"),
        ("maintenance", "cancel", "2147483648"),
        ("audit", "held", "--vlan", "99999999999999999999", "--link", "prg-mil"),
        ("accounting", "--month", "9999-12"),
        ("audit", "--since", "0001-01-01T00:00:00+05:00"),
    ],
)
def test_the_cli_refuses_what_the_api_refuses(
    cli_env: dict[str, str], db: Context, args: tuple[str, ...]
) -> None:
    """The console's numbers and instants pass the same strict input layer: a message
    naming the value, never a traceback from the database."""
    before = table_dump(db)
    code, out, err = run(cli_env, *args)
    assert code in (1, 2), (code, out, err)
    assert "Traceback" not in out + err
    assert table_dump(db) == before
