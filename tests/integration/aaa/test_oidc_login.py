"""OIDC login against a real OpenID provider (panva/oidc-provider on Node, loopback only),
started by the test: discovery, authorization code with PKCE, ID token checks (authlib),
claims mapped to an account and its projects, and an API token at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import func, select

from federica.aaa import accounts
from federica.aaa.models import Identity, User
from federica.app import create_app
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import transaction
from tests.accounts import client_as, ensure_project, make_user

HERE = Path(__file__).resolve().parent / "oidc"
CALLBACK = "http://localhost/api/v1/auth/oidc/callback"  # the Flask test client's host

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the OpenID provider is not installed: run `make setup-test` (Node + npm ci)")
    port = _free_port()
    secret = secrets.token_urlsafe(24)
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    env = os.environ | {
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": "federica-test",
        "OIDC_CLIENT_SECRET": secret,
        "OIDC_REDIRECT_URI": CALLBACK,
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [node, "provider.mjs"], cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while "ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Provider(issuer, "federica-test", secret)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _app_client(settings: Settings, db: Context, p: Provider) -> FlaskClient:
    oidc = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        oidc_issuer=p.issuer,
        oidc_client_id=p.client_id,
        oidc_client_secret=p.client_secret,
        oidc_scopes="openid profile email groups",
        oidc_projects_claim="groups",
    )
    app = create_app(oidc, context=make_context(oidc, engine=db.engine))
    app.config["TESTING"] = True
    return app.test_client()


def _sign_in_at_provider(start: str, login: str) -> str:
    """Acts as the browser at the provider: its sign-in page, then its consent page,
    until it sends the browser back to federica. Returns that callback URL."""
    browser = requests.Session()
    url = start
    for _ in range(12):
        r = browser.get(url, allow_redirects=False, timeout=10)
        while r.status_code in (200,) and "<form" in r.text:
            page = lxml.html.document_fromstring(r.text)
            assert isinstance(page, lxml.html.HtmlElement)
            form = page.forms[0]
            fields = dict(form.fields)
            if "login" in fields:
                fields |= {"login": login, "password": "anything"}
            r = browser.post(urljoin(url, form.action), data=fields, allow_redirects=False,
                             timeout=10)  # fmt: skip
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        url = urljoin(url, r.headers["Location"])
        if url.startswith(CALLBACK):
            return url
    raise AssertionError("the provider never sent the browser back")


def _oidc_login(client: FlaskClient, login: str) -> tuple[int, dict[str, object]]:
    r = client.get("/api/v1/auth/oidc/login")
    assert r.status_code == 302, r.get_json()
    back = _sign_in_at_provider(r.headers["Location"], login)
    parts = urlsplit(back)
    done = client.get(f"{parts.path}?{parts.query}")
    return done.status_code, done.get_json()


def test_login_at_a_real_openid_provider(
    provider: Provider, settings: Settings, db: Context
) -> None:
    ensure_project(db, "bgp-study")
    client = _app_client(settings, db, provider)
    status, body = _oidc_login(client, "alice")
    assert status == 201, body
    token = body["token"]
    assert isinstance(token, str) and token.startswith("fed_")
    me = client_as(client.application, token).get("/api/v1/me").get_json()
    assert me["username"] == "alice" and me["email"] == "alice@uni.example"
    assert me["identities"] == [{"issuer": provider.issuer, "subject": "alice"}]
    # Only the claimed groups that are projects here.
    assert me["projects"] == {"bgp-study": "member"}

    # Again: the same account, found by the identity, not a new one.
    status, again = _oidc_login(client, "alice")
    assert status == 201 and again["token"] != token
    with transaction(db.read_sessions) as s:
        assert s.scalar(select(func.count()).select_from(User)) == 1
        assert s.scalar(select(func.count()).select_from(Identity)) == 1


def test_a_provider_cannot_take_over_a_local_account(
    provider: Provider, settings: Settings, db: Context
) -> None:
    make_user(db, "bob", "admin", password="bob's own passphrase")
    client = _app_client(settings, db, provider)
    status, body = _oidc_login(client, "bob")  # the provider's "bob" is someone else
    assert status == 409 and "belongs to another account" in str(body["detail"])
    with transaction(db.read_sessions) as s:
        assert s.scalar(select(func.count()).select_from(Identity)) == 0
    # An administrator links them; then the provider's bob signs in as the local bob.
    with transaction(db.sessions) as s:
        accounts.link_identity(s, accounts.get_user(s, "bob"), provider.issuer, "bob")
    status, body = _oidc_login(client, "bob")
    assert status == 201
    me = client_as(client.application, str(body["token"])).get("/api/v1/me").get_json()
    assert me["username"] == "bob" and me["role"] == "admin"


def test_a_forged_callback_is_refused(provider: Provider, settings: Settings, db: Context) -> None:
    client = _app_client(settings, db, provider)
    r = client.get("/api/v1/auth/oidc/callback?code=made-up&state=made-up")
    assert r.status_code == 401 and r.content_type == "application/problem+json"
    with transaction(db.read_sessions) as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_without_an_issuer_oidc_is_off(client: FlaskClient) -> None:
    r = client.get("/api/v1/auth/oidc/login")
    assert r.status_code == 404 and "not configured" in r.get_json()["detail"]


def test_the_portal_signs_in_through_the_provider(
    provider: Provider, settings: Settings, db: Context
) -> None:
    """The portal's "Sign in with your institution": the same round trip, and the browser
    comes back signed in to the page it asked for (a session, not a token in the body)."""
    client = _app_client(settings, db, provider)
    login_page = client.get("/login?next=/tokens")
    assert "Sign in with your institution" in login_page.text
    r = client.get("/login/oidc?next=/tokens")
    assert r.status_code == 302 and r.headers["Location"] == "/api/v1/auth/oidc/login"
    r = client.get(r.headers["Location"])
    back = urlsplit(_sign_in_at_provider(r.headers["Location"], "alice"))
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303 and done.headers["Location"] == "/tokens"
    assert "fed_" not in done.text  # no token to copy: the browser is simply signed in
    page = client.get("/tokens")
    assert page.status_code == 200 and "alice" in page.text and "(this browser)" in page.text
