"""Signing in and out (password or the facility's identity provider), and one's tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from federica import inputs
from federica.aaa import accounts, tokens
from federica.aaa.login import Limits, check_password_login
from federica.aaa.policy import Action, Scope
from federica.errors import InvalidInput, NotFound, TooManyRequests, Unauthorized
from federica.web.api.login import OAUTH_KEY, PORTAL_NEXT_KEY, new_token
from federica.web.auth import client_address, guard, may, note, public, require, sign_in
from federica.web.context import ctx, read_session, write_session
from federica.web.portal import portal
from federica.web.portal import session as browser


def safe_next(target: str | None) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return url_for("portal.slices")
    if inputs.text_problem(target) is not None:  # a CR/LF would split the Location header
        return url_for("portal.slices")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return url_for("portal.slices")
    return target


@portal.get("/")
@public
def home() -> ResponseReturnValue:
    return redirect(url_for("portal.slices"))


@portal.route("/login", methods=["GET", "POST"])
@sign_in
def login() -> ResponseReturnValue:
    nxt = safe_next(request.values.get("next"))
    oidc = OAUTH_KEY in current_app.extensions
    if request.method == "GET":
        ended = "Your session has ended: sign in again." if request.args.get("ended") else ""
        return render_template("portal/login.html", next=nxt, oidc=oidc, error=ended)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    note(username=username[:64])  # never the password
    settings = ctx().settings
    error, status = "", 401
    if not username or not password:
        error, status = "Enter your username and your password.", 422
    else:
        try:
            user_id = check_password_login(
                ctx().sessions,
                username,
                password,
                address=client_address(),
                now=ctx().now(),
                limits=Limits.of(settings),
            )
        except (Unauthorized, TooManyRequests) as exc:
            error, status = exc.detail, exc.status
        else:
            with read_session() as s:
                user = accounts.get_user(s, user_id)
            browser.start(user)
            return redirect(nxt, 303)
    page = render_template("portal/login.html", next=nxt, oidc=oidc, error=error, username=username)
    return page, status


@portal.get("/login/oidc")
@public
def login_oidc() -> ResponseReturnValue:
    """Off to the identity provider; its callback (the API's) brings the browser back here."""
    nxt = safe_next(request.args.get("next"))
    session[PORTAL_NEXT_KEY] = nxt
    return redirect(url_for("api.oidc_login"))


@portal.post("/logout")
@public
def logout() -> ResponseReturnValue:
    browser.end()
    return redirect(url_for("portal.login"), 303)


@portal.get("/tokens")
@guard(Action.ACCOUNT_READ)
def tokens_page() -> ResponseReturnValue:
    return _tokens_page()


def _tokens_page(
    new: dict[str, object] | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    who = require()
    now = ctx().now()
    with read_session() as s:
        user = accounts.get_user(s, who.user_id or 0)
        rows = [tokens.describe(t, now) for t in tokens.of_user(s, user.id)]
        allowed = sorted(x.value for x in tokens.parse_scopes(None, user))
    page = render_template(
        "portal/tokens.html",
        tokens=rows,
        scopes=[x.value for x in Scope if x.value in allowed],
        new=new,
        errors=errors or {},
        this_token=who.token_id,
        session_ends=next((t["expires_at"] for t in rows if t["id"] == who.token_id), None),
        form=request.form,
    )
    return page, status


@portal.post("/tokens")
@guard(Action.TOKEN_OWN)
def create_token() -> ResponseReturnValue:
    who = require()
    days = request.form.get("expires_in_days", "").strip()
    body: dict[str, object] = {
        "name": request.form.get("name", "").strip() or "portal",
        "scopes": request.form.getlist("scopes") or None,
    }
    if days:  # none: until this session ends (a token made in it lives no longer)
        try:
            body["expires_in_days"] = float(days)
        except ValueError:
            return _tokens_page(errors={"expires_in_days": "a number of days"}, status=422)
    try:
        with read_session() as s:
            user = accounts.get_user(s, who.user_id or 0)
        new = new_token(user, body, "portal", parent_id=who.token_id)
    except InvalidInput as exc:
        return _tokens_page(errors={e.field: e.message for e in exc.errors}, status=422)
    return _tokens_page(new=new, status=201)


@portal.post("/tokens/<int:token_id>/revoke")
@guard(Action.TOKEN_OWN)
def revoke_token(token_id: int) -> ResponseReturnValue:
    who = require()
    with write_session() as s:
        token = tokens.get(s, token_id)
        if token.user_id != who.user_id and not may(Action.USER_MANAGE):
            raise NotFound(f"no token {token_id}")  # as the API: admins may revoke anyone's
        note(token_id=token.id)
        tokens.revoke(s, token, ctx().now())
    if token_id == who.token_id:
        session.clear()  # this browser's own session: signed out
        return redirect(url_for("portal.login"), 303)
    return redirect(url_for("portal.tokens_page"), 303)
