"""One exception hierarchy for the whole controller.

Every error carries an HTTP status, a short title and a detail a researcher can act on;
the web layer renders them as RFC 9457 problem documents (application/problem+json).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any


def shown(value: object, limit: int = 64) -> str:
    """A caller's value quoted for a message, cut to `limit` characters: a 300,000-byte
    name is not echoed back whole."""
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of an input, e.g. `links[3].b`."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class FedericaError(Exception):
    status = 500
    title = "Internal error"
    type_slug = "internal-error"
    headers: dict[str, str] = {}

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://federica.example/problems/{self.type_slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class InvalidInput(FedericaError):
    """Malformed or impossible input; lists every problem found, each with its field."""

    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        self.errors = errors
        summary = detail or "; ".join(str(e) for e in errors[:5])
        if len(errors) > 5:
            summary += f" (and {len(errors) - 5} more)"
        super().__init__(summary)

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        body["errors"] = [e.as_dict() for e in self.errors]
        return body


class BadRequest(FedericaError):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class PayloadTooLarge(FedericaError):
    status = 413
    title = "Request too large"
    type_slug = "payload-too-large"


class NotFound(FedericaError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(FedericaError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class InUse(Conflict):
    """Something cannot be removed or changed because something else uses it."""

    title = "In use"
    type_slug = "in-use"

    def __init__(self, detail: str, users: list[str]) -> None:
        super().__init__(detail, users=users)
        self.users = users


class Unauthorized(FedericaError):
    """No credentials, or credentials that are not (or no longer) valid."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="federica"'}


class Forbidden(FedericaError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class TooManyRequests(FedericaError):
    status = 429
    title = "Too many requests"
    type_slug = "too-many-requests"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers = {"Retry-After": str(retry_after_s)}


class ServiceUnavailable(FedericaError):
    status = 503
    title = "Try again"
    type_slug = "unavailable"

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers = {"Retry-After": str(retry_after_s)}


def correlation_id() -> str:
    """A short reference that ties a response (or a recorded failure) to its log lines."""
    return uuid.uuid4().hex[:12]


class InternalError(FedericaError):
    """A bug caught where it surfaced: the caller gets a reference, only the log gets the
    exception (its text may hold SQL and its parameters)."""

    def __init__(self, detail: str, correlation_id: str) -> None:
        super().__init__(
            f"{detail}; the operators can find it in the log under {correlation_id}",
            correlation_id=correlation_id,
        )
        self.correlation_id = correlation_id


def log_internal(logger: logging.Logger, detail: str) -> InternalError:
    """Log the exception being handled under a new correlation id; the error to raise."""
    ref = correlation_id()
    logger.exception("%s [ref %s]", detail, ref)
    return InternalError(detail, ref)
