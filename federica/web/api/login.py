"""Signing in: a password login or an OpenID Connect login, each giving an API token
(shown once). The OIDC flow keeps its state (and PKCE verifier, nonce) in Flask's signed
session cookie for the few seconds the round trip to the provider takes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, jsonify, redirect, session, url_for
from flask.typing import ResponseReturnValue

from federica.aaa import accounts, oidc, tokens
from federica.aaa.login import Limits, check_password_login
from federica.aaa.models import User
from federica.config import Settings
from federica.errors import FieldError, InvalidInput, NotFound, Unauthorized
from federica.web.api import api
from federica.web.api.models import Login, given, parse_body
from federica.web.api.openapi import document
from federica.web.auth import client_address, note, public, sign_in
from federica.web.context import ctx, write_session

OAUTH_KEY = "federica.oauth"
PORTAL_NEXT_KEY = "portal_next"  # set by the portal's sign-in page


def _lifetime(body: dict[str, Any]) -> dt.timedelta | None:
    """The lifetime asked for, if any."""
    if "expires_in_days" not in body:
        return None
    raw = body["expires_in_days"]
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not 0 < raw <= 36500:
        raise InvalidInput([FieldError("expires_in_days", "a positive number of days")])
    return dt.timedelta(days=raw)  # the facility's maximum is checked where it is issued


def new_token(
    user: User, body: dict[str, Any], default_name: str, parent_id: int | None = None
) -> dict[str, Any]:
    """Issue a token for `user` (made with token `parent_id`, if any: within its scopes
    and its life); the response shows it once."""
    settings = ctx().settings
    now = ctx().now()
    if body.get("name") is not None and not isinstance(body["name"], str):
        raise InvalidInput([FieldError("name", "a string")])
    wanted = _lifetime(body)
    with write_session() as s:
        owner = accounts.get_user(s, user.id)
        parent = tokens.get(s, parent_id) if parent_id is not None else None
        default = dt.timedelta(days=settings.token_default_days)
        token, secret = tokens.issue(
            s,
            owner,
            name=str(body.get("name") or default_name),
            scopes=tokens.child_scopes(body.get("scopes"), owner, parent),
            lifetime=tokens.child_lifetime(parent, wanted, default, now),
            max_lifetime=dt.timedelta(days=settings.token_max_days),
            now=now,
            parent=parent,
        )
        note(token_id=token.id, token_prefix=token.prefix)
        return tokens.describe(token, now) | {"token": secret}


@api.post("/auth/login")
@document(
    "NewToken",
    "Sign in with a username and password: a new API token, shown only in this answer",
    tag="auth",
    body="Login",
    status=201,
)
@sign_in
def login() -> ResponseReturnValue:
    body = given(parse_body(Login), null_is_absent=True)
    settings = ctx().settings
    note(username=str(body["username"])[:64])  # never the password
    user_id = check_password_login(
        ctx().sessions,
        body["username"],
        body["password"],
        address=client_address(),
        now=ctx().now(),
        limits=Limits.of(settings),
    )
    with write_session() as s:
        user = accounts.get_user(s, user_id)
    return jsonify(new_token(user, body, "password login")), 201


def _client() -> Any:
    client = current_app.extensions.get(OAUTH_KEY)
    if client is None:
        raise NotFound("OpenID Connect login is not configured on this facility")
    return client


@api.get("/auth/oidc/login")
@document(
    "Redirect",
    "Sign in at the facility's identity provider (a browser redirect; comes back to the callback)",
    tag="auth",
    status=302,
)
@public
def oidc_login() -> ResponseReturnValue:
    settings = ctx().settings
    redirect_uri = settings.oidc_redirect_url or url_for("api.oidc_callback", _external=True)
    response: ResponseReturnValue = _client().authorize_redirect(redirect_uri)
    return response


@api.get("/auth/oidc/callback")
@document(
    "NewToken",
    "Where the identity provider sends the browser back: a new API token, shown once",
    tag="auth",
)
@public
def oidc_callback() -> ResponseReturnValue:
    from authlib.integrations.base_client.errors import OAuthError

    client = _client()
    portal_next = session.get(PORTAL_NEXT_KEY)  # the portal started this login
    try:
        token = client.authorize_access_token()
    except OAuthError as exc:
        raise Unauthorized(
            f"the identity provider's answer was refused: {exc.description}"
        ) from None
    finally:
        session.clear()
    claims = dict(token.get("userinfo") or {})
    settings = ctx().settings
    if settings.oidc_projects_claim and settings.oidc_projects_claim not in claims:
        claims |= dict(client.userinfo(token=token))
    issuer = str(claims.get("iss") or settings.oidc_issuer)
    with write_session() as s:
        user = oidc.user_from_claims(s, settings, issuer, claims)
    note(username=user.username, issuer=issuer)
    if isinstance(portal_next, str):
        from federica.web.portal import session as browser
        from federica.web.portal.pages_account import safe_next

        browser.start(user)
        return redirect(safe_next(portal_next), 303)
    return jsonify(new_token(user, {}, "oidc login")), 201


def register_oidc(app: Any, settings: Settings) -> None:
    """The authlib client of the configured provider (none when no issuer is set)."""
    if not settings.oidc_issuer:
        return
    from authlib.integrations.flask_client import OAuth

    secret = settings.oidc_client_secret
    if not secret and settings.oidc_client_secret_file is not None:
        secret = settings.oidc_client_secret_file.read_text().strip()
    oauth = OAuth(app)
    app.extensions[OAUTH_KEY] = oauth.register(
        name="idp",
        client_id=settings.oidc_client_id,
        client_secret=secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
    )
