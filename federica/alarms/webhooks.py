"""Projects' alarm webhooks: a project sets a URL; each alarm raised or cleared that lists
one of its slices is POSTed there as JSON, signed with HMAC-SHA256 under the project's
secret.

Nothing is sent on a request's path: `check` (after each poll round) queues a delivery
row per project and event, with its body frozen, and the monitor's loop sends what is
due (`deliver_due`): one POST at a time, each bounded by a timeout, redirects not
followed, failures retried with doubling waits up to a number of attempts, every
outcome recorded on the row. The secret is shown once, when set, and never logged.

The receiver's address is checked before each attempt: loopback, private, link-local
and other non-global addresses are refused unless the facility allows them (a receiver
in-house; tests), so a URL cannot make the controller call its own neighbours. The check
is made again on the connected socket itself, before a byte is sent: a name that
resolves to a public address for the check and to a private one for the connection (DNS
rebinding) is refused too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from federica.aaa.models import Project
from federica.alarms.models import Alarm, ProjectWebhook, WebhookDelivery
from federica.config import Settings, SettingsError
from federica.db import transaction
from federica.errors import FieldError, InvalidInput, NotFound, shown

log = logging.getLogger(__name__)

URL_MAX = 2048
SIGNATURE_HEADER = "X-Federica-Signature"
EVENT_HEADER = "X-Federica-Event"
DELIVERY_HEADER = "X-Federica-Delivery"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
RECENT = 20  # deliveries shown with a webhook
ERROR_MAX = 500


class Context(Protocol):
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]

    def now(self) -> dt.datetime: ...


def check_settings(settings: Settings) -> None:
    if settings.webhook_timeout_s <= 0:
        raise SettingsError(
            f"FEDERICA_WEBHOOK_TIMEOUT_S: must be positive, got {settings.webhook_timeout_s:g}"
        )
    if settings.webhook_max_attempts < 1:
        raise SettingsError(
            "FEDERICA_WEBHOOK_MAX_ATTEMPTS: must be at least 1, "
            f"got {settings.webhook_max_attempts}"
        )
    if settings.webhook_retry_first_s <= 0:
        raise SettingsError(
            "FEDERICA_WEBHOOK_RETRY_FIRST_S: must be positive, "
            f"got {settings.webhook_retry_first_s:g}"
        )


# -- the setting ----------------------------------------------------------------------------


def validate_url(url: str, *, private_allowed: bool) -> str:
    """An http(s) URL with a host, no user name or password in it (it would be shown and
    logged) and no fragment; an address literal must be one the facility may call."""

    def bad(reason: str) -> InvalidInput:
        return InvalidInput([FieldError("url", reason)])

    if not url or len(url) > URL_MAX:
        raise bad(f"must be 1 to {URL_MAX} characters")
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise bad("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as exc:
        raise bad(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise bad("must be an http:// or https:// URL")
    if not parts.hostname:
        raise bad("must name a host")
    if parts.username is not None or parts.password is not None:
        raise bad("must not carry a user name or password (use the signature to authenticate)")
    if parts.fragment:
        raise bad("must not have a #fragment")
    literal = _address(parts.hostname)
    if literal is not None and not private_allowed and not literal.is_global:
        raise bad(f"{literal} is not a public address (this facility does not allow it)")
    return url


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"no project {shown(name)}")
    return project


def set_webhook(
    session: Session, project_name: str, url: str, who: str, now: dt.datetime, settings: Settings
) -> tuple[ProjectWebhook, str]:
    """Set (or replace) the project's webhook with a new secret; returns it and the
    secret, which is not shown again."""
    validate_url(url, private_allowed=settings.webhook_private_addresses)
    project = _project(session, project_name)
    secret = secrets.token_urlsafe(32)
    hook = session.get(ProjectWebhook, project.id)
    if hook is None:
        hook = ProjectWebhook(project_id=project.id)
        session.add(hook)
    hook.url, hook.secret, hook.set_at, hook.set_by = url, secret, now, who[:128]
    session.flush()
    return hook, secret


def get_webhook(session: Session, project_name: str) -> ProjectWebhook:
    project = _project(session, project_name)
    hook = session.get(ProjectWebhook, project.id)
    if hook is None:
        raise NotFound(f"project {shown(project_name)} has no webhook")
    return hook


def remove_webhook(session: Session, project_name: str) -> None:
    """Remove it; deliveries still queued for it are given up."""
    hook = get_webhook(session, project_name)
    for d in session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.project_id == hook.project_id, WebhookDelivery.state == PENDING
        )
    ):
        d.state, d.next_attempt_at, d.last_error = FAILED, None, "the webhook was removed"
    session.delete(hook)
    session.flush()


def describe(session: Session, hook: ProjectWebhook, project_name: str) -> dict[str, Any]:
    """The webhook and its latest deliveries (never the secret)."""
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.project_id == hook.project_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(RECENT)
    )
    return {
        "project": project_name,
        "url": hook.url,
        "set_at": hook.set_at.isoformat(),
        "set_by": hook.set_by,
        "deliveries": [describe_delivery(d) for d in rows],
    }


def describe_delivery(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "alarm_id": d.alarm_id,
        "event": d.event,
        "state": d.state,
        "attempts": d.attempts,
        "queued_at": d.queued_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        "last_status": d.last_status,
        "last_error": d.last_error,
    }


# -- queueing (inside the alarms' check) ----------------------------------------------------


def queue(
    session: Session,
    alarm: Alarm,
    event: str,
    projects: Iterable[str],
    now: dt.datetime,
    describe_alarm: Callable[[Alarm, frozenset[str]], dict[str, Any]],
) -> int:
    """A delivery for each of `projects` that has a webhook; returns how many. The body
    shows the alarm as that project's members see it (only their slices)."""
    names = sorted(set(projects))
    if not names:
        return 0
    hooks = session.execute(
        select(Project.id, Project.name)
        .join(ProjectWebhook, ProjectWebhook.project_id == Project.id)
        .where(Project.name.in_(names))
    ).all()
    for project_id, name in hooks:
        body = {
            "event": f"alarm.{event}",
            "project": name,
            "at": now.isoformat(),
            "alarm": describe_alarm(alarm, frozenset({name})),
        }
        session.add(
            WebhookDelivery(
                project_id=project_id,
                alarm_id=alarm.id,
                event=event,
                body=json.dumps(body, sort_keys=True),
                queued_at=now,
                state=PENDING,
                attempts=0,
                next_attempt_at=now,
                last_error="",
            )
        )
    return len(hooks)


def told_raised(session: Session, alarm_id: int) -> set[str]:
    """The projects whose webhook was given this alarm's raise (they get its clear)."""
    return set(
        session.scalars(
            select(Project.name)
            .join(WebhookDelivery, WebhookDelivery.project_id == Project.id)
            .where(WebhookDelivery.alarm_id == alarm_id, WebhookDelivery.event == "raised")
        )
    )


# -- delivery (the monitor's loop) ----------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""


@dataclass(frozen=True)
class _Due:
    id: int
    project: str
    event: str
    body: str
    url: str
    secret: str
    attempts: int


def deliver_due(ctx: Context, budget_s: float | None = None) -> int:
    """Send the deliveries that are due, oldest first, until none is left or `budget_s`
    (default: a third of the polling interval) is spent; returns how many were tried."""
    settings = ctx.settings
    budget = settings.monitor_interval_s / 3 if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    tried = 0
    done: set[int] = set()
    while time.monotonic() < deadline:
        due = _next_due(ctx, done)
        if due is None:
            break
        done.add(due.id)
        outcome = attempt(due, settings)
        _record(ctx, due, outcome)
        tried += 1
    return tried


def _next_due(ctx: Context, skip: set[int]) -> _Due | None:
    now = ctx.now()
    with transaction(ctx.read_sessions) as s:
        query = (
            select(WebhookDelivery, Project.name, ProjectWebhook.url, ProjectWebhook.secret)
            .join(Project, Project.id == WebhookDelivery.project_id)
            .join(ProjectWebhook, ProjectWebhook.project_id == WebhookDelivery.project_id)
            .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(1)
        )
        if skip:
            query = query.where(WebhookDelivery.id.not_in(skip))
        row = s.execute(query).first()
        if row is None:
            return None
        d, project, url, secret = row
        return _Due(d.id, project, d.event, d.body, url, secret, d.attempts)


def attempt(due: _Due, settings: Settings) -> Outcome:
    """One POST, outside any database transaction."""
    parts = urlsplit(due.url)
    host = parts.hostname or ""
    if not settings.webhook_private_addresses:
        refused = _non_global(host, parts.port or (443 if parts.scheme == "https" else 80))
        if refused:
            return Outcome(False, None, refused)
    body = due.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "federica-alarms",
        EVENT_HEADER: f"alarm.{due.event}",
        DELIVERY_HEADER: str(due.id),
        SIGNATURE_HEADER: sign(due.secret, body),
    }
    try:
        with requests.Session() as http:
            if not settings.webhook_private_addresses:
                http.mount("http://", _PublicOnlyAdapter())
                http.mount("https://", _PublicOnlyAdapter())
            r = http.post(
                due.url,
                data=body,
                headers=headers,
                timeout=settings.webhook_timeout_s,
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX])
    if 200 <= r.status_code < 300:
        return Outcome(True, r.status_code)
    return Outcome(False, r.status_code, f"HTTP {r.status_code} {r.reason or ''}".strip())


def _non_global(host: str, port: int) -> str:
    """Why the host may not be called ("" if it may): every address it resolves to must
    be a global one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"[:ERROR_MAX]
    for info in infos:
        ip = _address(str(info[4][0]).split("%", 1)[0])
        if ip is None or not ip.is_global:
            return f"{host} is {ip}, not a public address (this facility does not allow it)"
    return ""


class _PublicOnly:
    """A connection that, once connected, refuses a peer that is not a public address."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        peer = _address(str(sock.getpeername()[0]).split("%", 1)[0])
        if peer is not None and isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
            peer = peer.ipv4_mapped
        if peer is None or not peer.is_global:
            sock.close()
            raise NewConnectionError(
                self,  # type: ignore[arg-type]
                f"{self.host} is {peer}, not a public address (this facility does not allow it)",
            )
        return sock


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


def _record(ctx: Context, due: _Due, outcome: Outcome) -> None:
    settings = ctx.settings
    now = ctx.now()
    with transaction(ctx.sessions) as s:
        d = s.get(WebhookDelivery, due.id)
        if d is None or d.state != PENDING:
            return  # removed meanwhile
        d.attempts += 1
        d.last_status, d.last_error = outcome.status, outcome.error
        if outcome.ok:
            d.state, d.delivered_at, d.next_attempt_at = DELIVERED, now, None
        elif d.attempts >= settings.webhook_max_attempts:
            d.state, d.next_attempt_at = FAILED, None
        else:
            wait = settings.webhook_retry_first_s * 2 ** (d.attempts - 1)
            d.next_attempt_at = now + dt.timedelta(seconds=wait)
        attempts, state = d.attempts, d.state
    if not outcome.ok:
        log.warning(
            "webhook of project %s: delivery %d (alarm %s) attempt %d failed%s: %s",
            due.project,
            due.id,
            due.event,
            attempts,
            ", given up" if state == FAILED else "",
            outcome.error,
        )
