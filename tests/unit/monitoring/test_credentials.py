"""SNMP credential sets: the built-in emulator set, v2c and v3 sets from a file, errors
naming the set and field, secrets only from the environment and never printed."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from federica.config import Settings
from federica.errors import InvalidInput, NotFound
from federica.monitoring import credentials
from federica.monitoring.poller import V3, V2c
from federica.substrate.emulator import snmpv3


def settings(tmp_path: Path, text: str | None = None) -> Settings:
    path = None
    if text is not None:
        path = tmp_path / "snmp.yaml"
        path.write_text(text)
    return Settings(data_dir=tmp_path, snmp_credentials_file=path, emulator_community="c0mm")


def resolve(s: Settings, ref: str, port: int = 17830) -> tuple[int, V2c | V3]:
    return credentials.resolve(s, credentials.load_sets(s), ref, port)


def test_the_emulator_set_is_v3_with_the_facility_secret_else_v2c(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert resolve(s, "emulator") == (17830, V2c("c0mm"))
    secret = snmpv3.ensure_secret(s.emulator_dir)
    assert resolve(s, "emulator") == (17830, V3(snmpv3.USER, secret, secret))


def test_the_facility_secret_is_made_once_private_even_when_raced(tmp_path: Path) -> None:
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(snmpv3.ensure_secret(tmp_path / "emu")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got[0]) >= 16
    path = snmpv3.secret_path(tmp_path / "emu")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "emu").iterdir()] == [snmpv3.SECRET_FILE]


def test_v2c_and_v3_sets_from_the_file_with_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings(
        tmp_path,
        "backbone: {community_env: T_COMM, port: 1161, timeout_s: 7.5, retries: 0}\n"
        "core: {username: noc, auth_key_env: T_AUTH, priv_key_env: T_PRIV,"
        " priv_protocol: aes256}\n"
        "emulator: {community_env: T_COMM, port: null}\n",
    )
    monkeypatch.setenv("T_COMM", "s3cret-community")
    monkeypatch.setenv("T_AUTH", "auth-key-12345")
    monkeypatch.setenv("T_PRIV", "priv-key-12345")
    assert resolve(s, "backbone") == (1161, V2c("s3cret-community"))
    sets = credentials.load_sets(s)
    assert credentials.timing(s, sets, "backbone") == (7.5, 0)
    assert credentials.timing(s, sets, "core") == (s.snmp_timeout_s, s.snmp_retries)
    port, auth = resolve(s, "core")
    assert port == 161
    assert auth == V3("noc", "auth-key-12345", "priv-key-12345", "sha256", "aes256")
    # The file's "emulator" replaces the built-in one; port null: the management port.
    assert resolve(s, "emulator", 17999) == (17999, V2c("s3cret-community"))
    assert "s3cret" not in repr(V2c("s3cret-community"))
    assert "auth-key" not in repr(auth) and "priv-key" not in repr(auth)


def test_a_missing_set_or_variable_is_named(tmp_path: Path) -> None:
    s = settings(tmp_path, "backbone: {community_env: T_UNSET_VARIABLE}\n")
    with pytest.raises(NotFound, match="'nowhere'"):
        resolve(s, "nowhere")
    with pytest.raises(NotFound, match="T_UNSET_VARIABLE"):
        resolve(s, "backbone")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("core: {username: noc, auth_key_env: A}\n", "core"),
        ("core: {community_env: C, username: noc, auth_key_env: A, priv_key_env: P}\n", "core"),
        ("core: {community_env: C, port: 70000}\n", "core.port"),
        ("core: {community_env: C, timeout_s: 0}\n", "core.timeout_s"),
        ("core: {community_env: C, retries: -1}\n", "core.retries"),
        ("core: {community_env: C, auth_protocol: md5}\n", "core.auth_protocol"),
        ("core: {community: C}\n", "core.community"),
        ("- just a list\n", "snmp.yaml"),
    ],
)
def test_a_bad_file_is_refused_naming_the_set_and_field(
    tmp_path: Path, text: str, field: str
) -> None:
    s = settings(tmp_path, text)
    with pytest.raises(InvalidInput) as info:
        credentials.load_sets(s)
    assert any(e.field.endswith(field) for e in info.value.errors), info.value.errors
