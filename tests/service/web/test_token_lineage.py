"""Tokens never outlive nor out-scope the credential that made them, on both databases:
a token's children (and a portal session's tokens) expire no later, hold no more, and
are revoked with it; the portal's cookie is no bearer token; a new password, disabling
and demotion act on every token of the account at once (API and CLI alike); the
portal's cookie is Secure unless the portal is reached on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa import tokens
from federica.aaa.models import ApiToken, TokenKind
from federica.aaa.policy import Scope
from federica.app import create_app
from federica.config import Settings, SettingsError
from federica.context import Context
from federica.db import transaction
from tests.accounts import client_as, make_user
from tests.helpers import records, table_dump
from tests.service.cli.test_aaa_cli import run
from tests.service.portal.browser import Browser

PASSWORD = "a long enough passphrase"


def _expiry(body: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(body["expires_at"])


def test_a_token_makes_no_longer_lived_or_wider_token(db: Context, app: Flask) -> None:
    # The reproduction: a one-day projects-scope token asked for a 365-day one.
    parent = client_as(
        app, make_user(db, "alice", scopes=[Scope.PROJECTS], lifetime=dt.timedelta(days=1))
    )
    before, rows = table_dump(db), records(db)
    with transaction(db.read_sessions) as s:
        tokens_before = s.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()))
    r = parent.post("/api/v1/tokens", json={"name": "forever", "expires_in_days": 365})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"][0]["field"] == "expires_in_days"
    assert "when the token that creates it ends" in r.get_json()["detail"]
    r = parent.post("/api/v1/tokens", json={"scopes": ["read"]})
    assert r.status_code == 403 and "subset of its own scopes" in r.get_json()["detail"]
    assert table_dump(db) == before and records(db) == (rows[0] + 2, rows[1])
    with transaction(db.read_sessions) as s:  # no token was made
        assert s.scalar(select(ApiToken.id).order_by(ApiToken.id.desc())) == tokens_before

    # Asked for nothing: the parent's scopes, and the default life cut to the parent's.
    with transaction(db.read_sessions) as s:
        own = tokens.describe(tokens.get(s, tokens_before or 0), dt.datetime.now(dt.UTC))
    child = parent.post("/api/v1/tokens", json={"name": "child"}).get_json()
    assert child["scopes"] == ["projects"] and child["parent_id"] == own["id"]
    assert _expiry(child) <= _expiry(own)
    grandchild = client_as(app, child["token"]).post("/api/v1/tokens", json={"name": "gc"})
    assert grandchild.status_code == 201
    assert _expiry(grandchild.get_json()) <= _expiry(child)

    # Revoking the parent revokes everything made with it, at once.
    assert parent.delete(f"/api/v1/tokens/{own['id']}").status_code == 200
    for secret in (child["token"], grandchild.get_json()["token"]):
        r = client_as(app, secret).get("/api/v1/me")
        assert r.status_code == 401 and "revoked" in r.get_json()["detail"]


def _portal_secret(app: Flask, browser: Browser) -> str:
    cookie = browser.client.get_cookie("federica_session")
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    secret = serializer.loads(cookie.value)["token"]
    assert isinstance(secret, str)
    return secret


def test_the_portal_cookie_holds_no_bearer_token(db: Context, app: Flask) -> None:
    make_user(db, "alice", password=PASSWORD)
    browser = Browser(app)
    browser.sign_in("alice", PASSWORD)
    # The cookie is signed, not encrypted: whoever holds it can read what is inside.
    inside = _portal_secret(app, browser)
    thief = client_as(app, inside)
    forged = client_as(app, "fed_" + "x" * 43)
    before, rows = table_dump(db), records(db)
    for client in (thief, forged):
        r = client.post("/api/v1/tokens", json={"name": "mine now", "expires_in_days": 365})
        assert r.status_code == 401
    # Answered as any unknown token: the API does not say that it is a session id.
    assert thief.get("/api/v1/me").get_json() == forged.get("/api/v1/me").get_json()
    assert table_dump(db) == before and records(db) == (rows[0], rows[1] + 2)
    with transaction(db.read_sessions) as s:
        kinds = [t.kind for t in s.scalars(select(ApiToken).order_by(ApiToken.id))]
    assert kinds == [TokenKind.API, TokenKind.SESSION]
    assert browser.get("/tokens").status_code == 200  # the browser itself still works


def test_signing_out_revokes_the_tokens_made_in_the_session(db: Context, app: Flask) -> None:
    make_user(db, "alice", password=PASSWORD)
    browser = Browser(app)
    browser.sign_in("alice", PASSWORD)
    browser.get("/tokens")
    page = browser.post("/tokens", {"name": "notebook"})
    assert page.status_code == 201
    secret = page.text.split('id="secret" readonly value="', 1)[1].split('"', 1)[0]
    api = client_as(app, secret)
    made = api.get("/api/v1/tokens").get_json()
    session_row = next(t for t in made if t["kind"] == "session")
    notebook = next(t for t in made if t["name"] == "notebook")
    assert notebook["parent_id"] == session_row["id"]
    assert _expiry(notebook) <= _expiry(session_row)
    # A token made in the session may not make a session (or anything) outlive it either.
    r = api.post("/api/v1/tokens", json={"expires_in_days": 2})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "expires_in_days"
    assert browser.post("/logout").status_code == 303
    r = api.get("/api/v1/me")
    assert r.status_code == 401 and "revoked" in r.get_json()["detail"]


def _alice_tokens(db: Context, app: Flask) -> list[FlaskClient]:
    """alice with a password and two tokens: one, and one made with it."""
    first = make_user(db, "alice", password=PASSWORD)
    a = client_as(app, first)
    child = a.post("/api/v1/tokens", json={"name": "child"}).get_json()["token"]
    return [a, client_as(app, child)]


@pytest.mark.parametrize(
    "change",
    [{"password": "a brand new passphrase"}, {"active": False}],
    ids=["password-reset", "disabled"],
)
def test_a_new_password_or_disabling_revokes_every_token(
    db: Context, app: Flask, client: FlaskClient, change: dict[str, object]
) -> None:
    alice = _alice_tokens(db, app)
    assert all(c.get("/api/v1/me").status_code == 200 for c in alice)
    assert client.patch("/api/v1/users/alice", json=change).status_code == 200
    for c in alice:
        r = c.get("/api/v1/me")
        assert r.status_code == 401 and "revoked" in r.get_json()["detail"]
    # Enabling the account again does not bring the old tokens back.
    assert client.patch("/api/v1/users/alice", json={"active": True}).status_code == 200
    assert all(c.get("/api/v1/me").status_code == 401 for c in alice)


def test_demotion_narrows_every_token_at_once(db: Context, app: Flask, client: FlaskClient) -> None:
    wide = client_as(app, make_user(db, "olga", "operator"))
    operate_only = wide.post("/api/v1/tokens", json={"scopes": ["operate"]}).get_json()["token"]
    assert wide.get("/api/v1/me").get_json()["token_scopes"] == [
        "operate", "projects", "read", "slices",
    ]  # fmt: skip
    assert client.patch("/api/v1/users/olga", json={"role": "researcher"}).status_code == 200
    assert wide.get("/api/v1/me").get_json()["token_scopes"] == ["projects", "read", "slices"]
    r = client_as(app, operate_only).get("/api/v1/me")
    assert r.status_code == 401 and "revoked" in r.get_json()["detail"]  # nothing left
    # Promoted again: the dropped scope does not come back to the old tokens.
    assert client.patch("/api/v1/users/olga", json={"role": "operator"}).status_code == 200
    assert "operate" not in wide.get("/api/v1/me").get_json()["token_scopes"]


def test_the_console_resets_disables_and_demotes_as_the_api_does(
    db: Context, app: Flask, cli_env: dict[str, str]
) -> None:
    alice = _alice_tokens(db, app)
    code, _, err = run(cli_env, "user", "set", "alice", "--password-stdin", stdin="new one here\n")
    assert code == 0, err
    assert all(c.get("/api/v1/me").status_code == 401 for c in alice)
    olga = client_as(app, make_user(db, "olga", "operator"))
    assert run(cli_env, "user", "set", "olga", "--role", "researcher")[0] == 0
    assert olga.get("/api/v1/me").get_json()["token_scopes"] == ["projects", "read", "slices"]
    assert run(cli_env, "user", "set", "olga", "--disabled")[0] == 0
    assert run(cli_env, "user", "set", "olga", "--active")[0] == 0
    assert olga.get("/api/v1/me").status_code == 401


def test_a_cli_token_makes_no_longer_lived_token(
    db: Context, app: Flask, cli_env: dict[str, str]
) -> None:
    secret = make_user(db, "alice", scopes=[Scope.PROJECTS, Scope.READ])
    env = cli_env | {"FEDERICA_TOKEN": secret}
    code, _, err = run(env, "token", "create", "--days", "365")
    assert code != 0 and "expires_in_days" in err
    code, _, err = run(env, "token", "create", "--scopes", "slices")
    assert code != 0 and "subset of its own scopes" in err
    code, out, err = run(env, "token", "create", "--name", "child")
    assert code == 0, err
    assert client_as(app, out.split()[0]).get("/api/v1/me").get_json()["token_scopes"] == [
        "projects", "read",
    ]  # fmt: skip


def _set_cookie(app: Flask, base_url: str) -> str:
    browser = app.test_client()
    page = browser.get("/login", base_url=base_url)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = browser.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": csrf},
        base_url=base_url,
    )
    assert r.status_code == 303, r.text
    return r.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("mode", "base_url", "secure"),
    [
        ("auto", "http://localhost", False),
        ("auto", "http://127.0.0.1:8080", False),
        ("auto", "http://[::1]:8080", False),
        ("auto", "https://portal.example.org", True),
        ("auto", "http://192.0.2.7:8080", True),
        ("auto", "http://127.0.0.9", False),
        ("auto", "http://127.example.org", True),
        ("auto", "http://localhost.example.org", True),
        ("false", "http://192.0.2.7:8080", False),
        ("true", "http://localhost", True),
    ],
)  # fmt: skip
def test_the_cookie_is_secure_unless_on_loopback(
    db: Context, settings: Settings, mode: str, base_url: str, secure: bool
) -> None:
    app = create_app(dataclasses.replace(settings, portal_secure_cookies=mode), context=db)
    make_user(db, "alice", password=PASSWORD)
    cookie = _set_cookie(app, base_url)
    assert ("; Secure" in cookie) is secure, cookie


def test_the_cookie_is_secure_by_default_off_loopback(db: Context, app: Flask) -> None:
    make_user(db, "alice", password=PASSWORD)
    assert "; Secure" in _set_cookie(app, "https://portal.example.org")


def test_revoking_another_persons_token_reads_as_an_unknown_one(db: Context, app: Flask) -> None:
    make_user(db, "alice")
    bob = client_as(app, make_user(db, "bob"))
    with transaction(db.read_sessions) as s:
        alices = s.scalars(select(ApiToken.id).order_by(ApiToken.id)).first()
    assert alices is not None
    before, rows = table_dump(db), records(db)
    real = bob.delete(f"/api/v1/tokens/{alices}")
    unknown = bob.delete("/api/v1/tokens/999999")
    assert real.status_code == unknown.status_code == 404
    assert real.get_json()["detail"].replace(str(alices), "N") == unknown.get_json()[
        "detail"
    ].replace("999999", "N")
    assert table_dump(db) == before and records(db) == (rows[0] + 2, rows[1])
    with transaction(db.read_sessions) as s:
        assert s.get(ApiToken, alices).revoked_at is None  # type: ignore[union-attr]


def test_the_secure_cookie_setting_is_checked() -> None:
    assert Settings().portal_secure_cookies == "auto"
    env = {"FEDERICA_PORTAL_SECURE_COOKIES": "yes"}
    assert Settings.from_env(env).portal_secure_cookies == "true"
    with pytest.raises(SettingsError, match="PORTAL_SECURE_COOKIES"):
        Settings.from_env({"FEDERICA_PORTAL_SECURE_COOKIES": "sometimes"})
