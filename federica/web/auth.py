"""Who is calling, and may they: every view is marked with the action it performs (or as
public), checked by `guard` against the pure policy; a view without a mark cannot be
registered (`check_every_view_is_guarded` runs at app creation).

The REST API authenticates with bearer tokens only (no cookies, so no cross-site request
forgery); its OIDC login hands out such a token. The portal's pages authenticate with a
session cookie instead, which holds a session id (a token of kind "session": listed with
the account's tokens, revoked to sign the browser out, never taken as a bearer token) and
check a CSRF token on every form (`web/portal/session.py`).

The audit log gets a row for every state-changing request of a signed-in caller, every
refused or failed request of one, and every sign-in that reached the password check
(the login rate limit bounds those per address). Other anonymous
state-changing requests (no or a bad credential, an unknown route) are only counted per
day, method, route and status (`anonymous_requests`): nobody without an account can grow
the append-only log.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, g, request, session
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from federica.aaa import audit, tokens
from federica.aaa.models import TokenKind
from federica.aaa.policy import Action, Principal, decide, scope_problem
from federica.errors import Forbidden, Unauthorized
from federica.web.context import ctx, read_session, write_session
from federica.web.problems import database_unavailable, unavailable_problem

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
COOKIE_BLUEPRINTS = frozenset({"portal", "noc"})
SESSION_TOKEN_KEY = "token"  # noqa: S105  (the session key that holds it, not a secret)
GUARD_ATTR = "_federica_guard"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Guard:
    action: Action | None  # None: public
    # True: the view decides per target (a project's slice) with `authorize`; the guard
    # checks sign-in and the token's scope only.
    per_target: bool = False
    # A public view that signs people in: its anonymous attempts are audited one by one.
    sign_in: bool = False
    # Prometheus' scrape token (FEDERICA_METRICS_TOKEN) may call it too, without an account.
    scrape: bool = False


def guard(action: Action, *, per_target: bool = False, scrape: bool = False) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            who = current()
            if scrape and g.get("scraper"):
                return fn(*args, **kwargs)
            if per_target:
                if who is None:
                    raise Unauthorized("sign in first: send an API token (Authorization: Bearer …)")
                if missing := scope_problem(who, action):
                    raise Forbidden(missing)
            else:
                authorize(action)
            return fn(*args, **kwargs)

        setattr(checked, GUARD_ATTR, Guard(action, per_target, scrape=scrape))
        return checked  # type: ignore[return-value]

    return mark


def public(fn: F) -> F:
    setattr(fn, GUARD_ATTR, Guard(None))
    return fn


def sign_in(fn: F) -> F:
    """Public, and each attempt is audited (see Guard.sign_in)."""
    setattr(fn, GUARD_ATTR, Guard(None, sign_in=True))
    return fn


def current() -> Principal | None:
    who: Principal | None = g.get("principal")
    return who


def require() -> Principal:
    who = current()
    if who is None:
        raise Unauthorized("sign in first: send an API token (Authorization: Bearer …)")
    return who


def authorize(action: Action, *, project: str | None = None, owner_id: int | None = None) -> None:
    who = current()
    if who is None:
        raise Unauthorized("sign in first: send an API token (Authorization: Bearer …)")
    d = decide(who, action, project=project, owner_id=owner_id)
    if not d.allowed:
        raise Forbidden(d.reason)


def may(action: Action, *, project: str | None = None, owner_id: int | None = None) -> bool:
    return decide(current(), action, project=project, owner_id=owner_id).allowed


def note(*, slice_id: int | None = None, project: str | None = None, **detail: Any) -> None:
    """What the audit entry of this request should say about its target."""
    if slice_id is not None:
        g.audit_slice = slice_id
    if project is not None:
        g.audit_project = project
    g.setdefault("audit_detail", {}).update(detail)


def skip_audit() -> None:
    """This request changed nothing (a dry run)."""
    g.audit_skip = True


def client_address() -> str:
    return request.remote_addr or ""


def _authenticate() -> None:
    g.principal = None
    if _is_static(request.endpoint):
        return
    if request.blueprint in COOKIE_BLUEPRINTS:
        # The portal ignores Authorization headers: a page is the browser's session only.
        secret = session.get(SESSION_TOKEN_KEY)
        if isinstance(secret, str) and secret:
            try:
                sign_in_with(secret, via=request.blueprint, kind=TokenKind.SESSION)
            except Unauthorized:
                # Revoked, expired or its account disabled: forget it, so the sign-in
                # page itself is reachable again (and says why).
                session.pop(SESSION_TOKEN_KEY)
                g.session_ended = True
        return
    header = request.headers.get("Authorization", "")
    if not header:
        return
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send the API token as 'Authorization: Bearer <token>'")
    if _is_scrape(secret.strip()):
        g.scraper = True
        return
    sign_in_with(secret.strip(), via="api")


def _is_scrape(secret: str) -> bool:
    """The scrape token, sent to a view that admits it (anywhere else it is no token)."""
    expected = ctx().settings.metrics_token
    if not expected:
        return False
    view = ctx_view()
    mark: Guard | None = getattr(view, GUARD_ATTR, None) if view else None
    if mark is None or not mark.scrape:
        return False
    return hmac.compare_digest(secret.encode(), expected.encode())


def sign_in_with(secret: str, *, via: str, kind: TokenKind = TokenKind.API) -> None:
    """Make the holder of token `secret` (of `kind`) the principal of this request."""
    now = ctx().now()
    with read_session() as s:
        g.principal, touch = tokens.resolve_principal(
            s.connection(), secret, now, kind, via=via, address=client_address()
        )
    if touch:
        with write_session() as s:
            tokens.get(s, g.principal.token_id).last_used_at = now


def _audit(response: Response) -> Response:
    try:
        return _write_audit(response)
    except DBAPIError as exc:
        if not database_unavailable(exc):
            raise
        if response.status_code < 400:
            # Done, but its entry could not be written (the database went away after
            # the change committed): said loudly in the log; the answer stays true.
            log.error(
                "audit entry of %s %s (%d) lost: the database went away",
                request.method,
                request.path,
                response.status_code,
            )
            return response
        return unavailable_problem(exc)


def _write_audit(response: Response) -> Response:
    status = response.status_code
    changing = request.method in STATE_CHANGING
    if (not changing and status < 400) or (g.get("audit_skip") and status < 400):
        return response
    view = ctx_view()
    mark: Guard | None = getattr(view, GUARD_ATTR, None) if view else None
    who = current()
    # A sign-in that reached the password check is audited; the login rate limit bounds
    # those per address. Malformed or rate-limited attempts are only counted.
    attempt = mark is not None and mark.sign_in and (status < 400 or status == 401)
    if who is None and not attempt:
        if changing:
            audit.count_anonymous(
                ctx().sessions,
                method=request.method,
                route=request.endpoint or "unknown",
                status=status,
                address=client_address(),
                at=ctx().now(),
            )
        return response
    if g.get("audit_written") and status < 400:
        return response  # its entry committed with the change itself (record_with)
    problem = None
    if response.status_code >= 400 and response.is_json:
        body = response.get_json(silent=True) or {}
        problem = str(body.get("detail", ""))[:500]
    audit.insert_entry_now(ctx().sessions, _entry(who, mark, status, problem))
    return response


def _entry(who: Principal | None, mark: Guard | None, status: int, problem: str | None) -> Any:
    action = (mark.action.value if mark and mark.action else None) or (
        request.endpoint or request.path
    )
    detail = dict(g.get("audit_detail", {}))
    detail["method"] = request.method
    if problem is not None:
        detail["problem"] = problem
    return audit.entry_values(
        who,
        action,
        status=status,
        target=request.path,
        slice_id=g.get("audit_slice"),
        project=g.get("audit_project"),
        detail=detail,
        via="portal" if request.blueprint in COOKIE_BLUEPRINTS else "api",
        address=client_address(),
        at=ctx().now(),
    )


def record_with(s: Session, status: int) -> None:
    """This request's audit entry, written now in the transaction `s` of the change it
    records (as it will answer `status`): both commit or neither. The entry after the
    request is then not written again (unless the request fails after all, when the
    failure is recorded as usual)."""
    view = ctx_view()
    mark: Guard | None = getattr(view, GUARD_ATTR, None) if view else None
    audit.insert_entry(s, _entry(current(), mark, status, None))
    g.audit_written = True


def ctx_view() -> Callable[..., Any] | None:
    from flask import current_app

    if request.endpoint is None:
        return None
    view: Callable[..., Any] | None = current_app.view_functions.get(request.endpoint)
    return view


def check_every_view_is_guarded(app: Flask) -> None:
    """Fail at start-up, not in production, if a route forgot its policy."""
    missing = [
        name
        for name, view in app.view_functions.items()
        if not _is_static(name) and getattr(view, GUARD_ATTR, None) is None
    ]
    if missing:
        raise RuntimeError(f"routes without a policy mark (guard or public): {missing}")


def _is_static(endpoint: str | None) -> bool:
    """Flask's own file routes (the app's and the portal's assets): public, no sign-in."""
    return endpoint is not None and (endpoint == "static" or endpoint.endswith(".static"))


def register_auth(app: Flask) -> None:
    app.before_request(_authenticate)
    app.after_request(_audit)
