"""The CLI's caller and its policy checks and audit records.

`federica login` keeps an API token in ~/.config/federica/credentials.json (0600;
FEDERICA_TOKEN overrides it); commands then act as that person, under the same policy as
the API. Without one, the CLI is the operators' console: whoever can open the database
(the SQLite file, or the PostgreSQL credentials) already holds every row in it, so the
console acts as an administrator, recorded in the audit log as local:<unix user>.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from federica.aaa import accounts, audit, tokens
from federica.aaa.policy import Action, Principal, console, decide
from federica.cli import CliState
from federica.db import transaction
from federica.errors import FedericaError, Forbidden, Unauthorized
from federica.files import write_private

TOKEN_ENV = "FEDERICA_TOKEN"  # noqa: S105  (the variable's name, not a secret)


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "federica" / "credentials.json"


def stored_token() -> str | None:
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise Unauthorized(f"{path}: unreadable ({exc}); run `federica logout`") from None
    token = data.get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


def store_token(secret: str) -> Path:
    return write_private(credentials_path(), json.dumps({"token": secret}))


def forget_token() -> bool:
    try:
        credentials_path().unlink()
        return True
    except FileNotFoundError:
        return False


def unix_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def resolve_principal(state: CliState) -> Principal:
    secret = stored_token()
    if secret is None:
        return console(unix_user())
    now = state.context.now()
    try:
        with transaction(state.context.read_sessions) as s:
            token = tokens.resolve(s, secret, now)
            return accounts.principal(
                token.user,
                scopes=tokens.scopes_of(token),
                via="cli",
                address=f"cli:{unix_user()}",
                token_id=token.id,
            )
    except Unauthorized as exc:
        raise Unauthorized(
            f"{exc.detail}: run `federica login` again (or `federica logout`)"
        ) from None


def allow(
    state: CliState, action: Action, *, project: str | None = None, owner_id: int | None = None
) -> Principal:
    who = state.principal
    d = decide(who, action, project=project, owner_id=owner_id)
    if not d.allowed:
        raise Forbidden(d.reason)
    return who


@contextmanager
def audited(state: CliState, action: Action | str, target: str = "") -> Iterator[dict[str, Any]]:
    """Records the command in the audit log, however it ends. The body may fill in
    slice_id, project and detail in the yielded dict."""
    note: dict[str, Any] = {"detail": {"argv": sys.argv[1:][:20]}}
    status = 0
    try:
        yield note
    except FedericaError as exc:
        status = exc.status
        note["detail"]["problem"] = exc.detail[:500]
        raise
    except BaseException:
        status = 500
        raise
    finally:
        who = state._principal or console(unix_user())
        audit.record(
            state.context.sessions,
            who,
            action.value if isinstance(action, Action) else action,
            status=status or 200,
            target=target,
            slice_id=note.get("slice_id"),
            project=note.get("project"),
            detail=note["detail"],
            via="cli",
            address=f"cli:{unix_user()}",
            at=state.context.now(),
        )


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))
