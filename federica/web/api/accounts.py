"""Accounts over REST: who am I, my tokens, users (admins), projects and members."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from federica.aaa import accounts, tokens
from federica.aaa.models import User
from federica.aaa.policy import Action
from federica.errors import NotFound, shown
from federica.web.api import api
from federica.web.api.login import new_token
from federica.web.api.models import (
    MemberRequest,
    ProjectRequest,
    TokenRequest,
    UserChange,
    UserRequest,
    given,
    parse_body,
)
from federica.web.api.openapi import document
from federica.web.auth import authorize, guard, may, note, require
from federica.web.context import ctx, read_session, write_session
from federica.web.targets import project_for, visible_projects


@api.get("/me")
@document("Me", "Who the caller is: account, projects, and this token's scopes", tag="auth")
@guard(Action.ACCOUNT_READ)
def me() -> ResponseReturnValue:
    who = require()
    with read_session() as s:
        body = accounts.describe_user(accounts.get_user(s, who.user_id or 0))
    body["token_scopes"] = sorted(x.value for x in who.scopes) if who.scopes is not None else None
    return jsonify(body)


@api.get("/tokens")
@document(
    "TokenList", "The caller's API tokens (admins: ?user=NAME)", tag="auth", query=("user:string",)
)
@guard(Action.ACCOUNT_READ)
def list_tokens() -> ResponseReturnValue:
    who = require()
    with read_session() as s:
        user_id = who.user_id or 0
        if "user" in request.args:
            authorize(Action.USER_MANAGE)
            user_id = accounts.get_user(s, request.args["user"]).id
        return jsonify([tokens.describe(t, ctx().now()) for t in tokens.of_user(s, user_id)])


@api.post("/tokens")
@document(
    "NewToken",
    'A new API token for the caller: {"name", "scopes": [...], "expires_in_days"}; the '
    "secret is in this answer only",
    tag="auth",
    body="TokenRequest",
    status=201,
)
@guard(Action.TOKEN_OWN)
def create_token() -> ResponseReturnValue:
    who = require()
    body = given(parse_body(TokenRequest), null_is_absent=True)
    # The new token is the calling token's child: no scope or day more than it has.
    return jsonify(new_token(_user(who.user_id), body, "api", parent_id=who.token_id)), 201


def _user(user_id: int | None) -> User:
    with read_session() as s:
        return accounts.get_user(s, user_id or 0)


@api.delete("/tokens/<int:token_id>")
@document(
    "Token", "Revoke a token (one's own; admins: any). Idempotent", param="token_id", tag="auth"
)
@guard(Action.TOKEN_OWN)
def revoke_token(token_id: int) -> ResponseReturnValue:
    who = require()
    with write_session() as s:
        token = tokens.get(s, token_id)
        if token.user_id != who.user_id and not may(Action.USER_MANAGE):
            raise NotFound(f"no token {token_id}")  # as if it did not exist
        note(token_id=token.id, owner=token.user.username)
        return jsonify(tokens.describe(tokens.revoke(s, token, ctx().now()), ctx().now()))


@api.get("/users")
@document("UserList", "Every account (operators and admins)", tag="accounts")
@guard(Action.USER_READ)
def list_users() -> ResponseReturnValue:
    with read_session() as s:
        users = s.scalars(select(User).order_by(User.username))
        return jsonify([accounts.describe_user(u) for u in users])


@api.post("/users")
@document(
    "User",
    'Create an account (admins): {"username", "role", "password"?, "display_name"?, "email"?}',
    tag="accounts",
    body="UserRequest",
    status=201,
)
@guard(Action.USER_MANAGE)
def create_user() -> ResponseReturnValue:
    body = parse_body(UserRequest)
    note(username=body.username, role=body.role)
    with write_session() as s:
        user = accounts.create_user(
            s,
            body.username,
            role=body.role,
            password=body.password,
            display_name=body.display_name or "",
            email=body.email or "",
        )
        return jsonify(accounts.describe_user(user)), 201


@api.get("/users/<name>")
@document(
    "User", "One account (oneself; operators and admins: anyone)", param="name", tag="accounts"
)
@guard(Action.ACCOUNT_READ)
def show_user(name: str) -> ResponseReturnValue:
    who = require()
    with read_session() as s:
        user = accounts.get_user(s, name)
        if user.id != who.user_id and not may(Action.USER_READ):
            raise NotFound(f"no user {shown(name)}")  # as if it did not exist
        return jsonify(accounts.describe_user(user))


@api.patch("/users/<name>")
@document(
    "User",
    'Change an account (admins): any of "role", "active", "password", "display_name", "email"',
    param="name",
    tag="accounts",
    body="UserChange",
)
@guard(Action.USER_MANAGE)
def update_user(name: str) -> ResponseReturnValue:
    body = parse_body(UserChange)
    note(username=name, changed=sorted(body.model_fields_set))
    with write_session() as s:
        user = accounts.update_user(
            s,
            accounts.get_user(s, name),
            now=ctx().now(),
            role=body.role,
            active=body.active,
            password=body.password,
            display_name=body.display_name,
            email=body.email,
        )
        return jsonify(accounts.describe_user(user))


@api.get("/projects")
@document("ProjectList", "Projects the caller may see (staff: all)", tag="accounts")
@guard(Action.PROJECT_READ, per_target=True)
def list_projects() -> ResponseReturnValue:
    with read_session() as s:
        return jsonify([accounts.describe_project(p) for p in s.scalars(visible_projects())])


@api.post("/projects")
@document(
    "Project",
    'Create a project (admins): {"name", "description"?, "lead"?: username}',
    tag="accounts",
    body="ProjectRequest",
    status=201,
)
@guard(Action.PROJECT_MANAGE)
def create_project() -> ResponseReturnValue:
    body = parse_body(ProjectRequest)
    note(project=body.name)
    with write_session() as s:
        project = accounts.create_project(
            s, body.name, description=body.description or "", lead=body.lead
        )
        return jsonify(accounts.describe_project(project)), 201


@api.get("/projects/<name>")
@document("Project", "A project and its members", param="name", tag="accounts")
@guard(Action.PROJECT_READ, per_target=True)
def show_project(name: str) -> ResponseReturnValue:
    project_for(name, Action.PROJECT_READ)
    with read_session() as s:
        return jsonify(accounts.describe_project(accounts.get_project(s, name)))


@api.put("/projects/<name>/members/<username>")
@document(
    "Project",
    'Add a member or change their role (the project\'s lead, admins): {"role": "member"|"lead"}',
    param="name",
    tag="accounts",
    body="MemberRequest",
)
@guard(Action.PROJECT_MEMBERS, per_target=True)
def put_member(name: str, username: str) -> ResponseReturnValue:
    note(username=username)
    project_for(name, Action.PROJECT_MEMBERS)
    body = parse_body(MemberRequest)
    with write_session() as s:
        project = accounts.get_project(s, name)
        accounts.set_member(s, project, accounts.get_user(s, username), body.role)
        s.refresh(project)
        return jsonify(accounts.describe_project(project))


@api.delete("/projects/<name>/members/<username>")
@document("Project", "Remove a member (the project's lead, admins)", param="name", tag="accounts")
@guard(Action.PROJECT_MEMBERS, per_target=True)
def delete_member(name: str, username: str) -> ResponseReturnValue:
    note(username=username)
    project_for(name, Action.PROJECT_MEMBERS)
    with write_session() as s:
        project = accounts.get_project(s, name)
        accounts.remove_member(s, project, accounts.get_user(s, username))
        s.refresh(project)
        return jsonify(accounts.describe_project(project))
