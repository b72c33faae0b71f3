"""Behind nginx every connection comes from the proxy: the client's address must come from
X-Forwarded-For, but only when a proxy is configured to be there (any client can send the
header)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from federica.aaa.models import AuditEntry, LoginFailure
from federica.app import create_app
from federica.config import Settings, SettingsError
from federica.context import Context
from federica.db import transaction

CLIENT, PROXY = "198.51.100.7", "127.0.0.1"
# What nginx's $proxy_add_x_forwarded_for sends for a client that forged a header of its own.
FORGED = f"203.0.113.66, {CLIENT}"


def _failed_login_from(settings: Settings, db: Context, forwarded: str) -> tuple[str, str]:
    """One failed password login through the proxy: the address its limit counts and the
    one its audit row names."""
    app = create_app(settings, context=db)
    client = app.test_client()
    r = client.post(
        "/api/v1/auth/login",
        json={"username": "nobody", "password": "wrong"},
        headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": PROXY},
    )
    assert r.status_code == 401, r.get_json()
    with transaction(db.read_sessions) as s:
        failure = s.scalars(select(LoginFailure).order_by(LoginFailure.id.desc())).first()
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert failure is not None and entry is not None
    return failure.address, entry.address


def test_behind_one_trusted_proxy_the_client_is_the_address_it_saw(
    settings: Settings, db: Context
) -> None:
    behind = dataclasses.replace(settings, trusted_proxies=1)
    assert _failed_login_from(behind, db, FORGED) == (CLIENT, CLIENT)


def test_without_a_proxy_the_header_is_ignored(settings: Settings, db: Context) -> None:
    assert settings.trusted_proxies == 0
    assert _failed_login_from(settings, db, FORGED) == (PROXY, PROXY)


@pytest.mark.parametrize("raw", ["-1", "6", "two"])
def test_an_impossible_number_of_proxies_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="FEDERICA_TRUSTED_PROXIES"):
        Settings.from_env({"FEDERICA_TRUSTED_PROXIES": raw})
