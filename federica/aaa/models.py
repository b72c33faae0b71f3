"""Accounts, projects, API tokens, failed logins and the audit log in the database."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from federica.aaa.roles import ProjectRole, Role
from federica.db import Base, UTCDateTime, str_enum, utcnow

__all__ = ["ProjectRole", "Role"]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"), default=Role.RESEARCHER)
    # scrypt, see passwords.py; None: the account logs in only through an identity provider.
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    identities: Mapped[list[Identity]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class Identity(Base):
    """A login at an OpenID provider (issuer + subject) that maps to a user."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="identities")

    __table_args__ = (UniqueConstraint("issuer", "subject"),)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )


class Membership(Base):
    __tablename__ = "memberships"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[ProjectRole] = mapped_column(
        str_enum(ProjectRole, "project_role"), default=ProjectRole.MEMBER
    )
    # "local" (added by a lead or an admin) or the issuer whose claim granted it.
    source: Mapped[str] = mapped_column(String(500), default="local")

    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class TokenKind(enum.StrEnum):
    API = "api"  # a bearer token (Authorization header): scripts, the CLI
    SESSION = "session"  # a portal browser's session id (its cookie only, never a bearer)


class ApiToken(Base):
    """A bearer token for scripts and the CLI, or a portal browser's session. Only its
    SHA-256 is stored: the secret has 256 random bits, so a fast hash suffices and lookup
    is one indexed equality. A token made with another token (or in a portal session) is
    that one's child: it expires no later, holds no more scopes, and is revoked with it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), default=None, index=True
    )
    kind: Mapped[TokenKind] = mapped_column(
        str_enum(TokenKind, "token_kind"), default=TokenKind.API, server_default="api"
    )

    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """A failed password login, kept for the rate limit (in the database, so every
    replica of the API counts the same failures)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )


class AuditEntry(Base):
    """One state-changing action: who, what, when, from where, and how it ended.
    Append-only: the database refuses UPDATE and DELETE (triggers, see migration 0005).
    The actor is kept by name too, so the record outlives any change to the account."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    via: Mapped[str] = mapped_column(String(16))  # api, cli, worker
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    slice_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    project: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[str] = mapped_column(String(16))  # ok, refused, failed
    status: Mapped[int] = mapped_column(Integer, default=0)  # HTTP status, or exit code
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (CheckConstraint("result IN ('ok', 'refused', 'failed')", name="result"),)


class AnonymousRequest(Base):
    """Anonymous state-changing requests that were refused (no or a bad credential, an
    unknown route), counted per day, method, route and status instead of one audit row
    each: a caller without an account cannot grow the append-only log. An ordinary table:
    the operators may delete old days (docs/aaa.md)."""

    __tablename__ = "anonymous_requests"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    method: Mapped[str] = mapped_column(String(8), primary_key=True)
    route: Mapped[str] = mapped_column(String(64), primary_key=True)  # endpoint, or "unknown"
    status: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last caller's address, for a first look at who is knocking.
    last_address: Mapped[str] = mapped_column(String(64), default="")
