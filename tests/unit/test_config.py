from __future__ import annotations

from pathlib import Path

import pytest

from federica.config import Settings, SettingsError


def test_defaults_are_embedded() -> None:
    s = Settings.from_env({})
    assert s.host == "127.0.0.1" and s.port == 8080 and not s.demo
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("/var/federica.db")


def test_env_overrides_and_explicit_overrides() -> None:
    env = {
        "FEDERICA_PORT": "9000",
        "FEDERICA_DEMO": "yes",
        "FEDERICA_DATA_DIR": "/srv/f",
        "FEDERICA_DATABASE_URL": "postgresql://x@h/db",
    }
    s = Settings.from_env(env, port=9100)
    assert s.port == 9100 and s.demo and s.data_dir == Path("/srv/f")
    assert s.effective_database_url == "postgresql://x@h/db"


@pytest.mark.parametrize(
    ("var", "value"), [("FEDERICA_PORT", "eighty"), ("FEDERICA_DEMO", "maybe")]
)
def test_bad_env_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: value})


def test_the_session_key_is_made_once_private_and_shared(tmp_path: Path) -> None:
    from federica.app import secret_key

    settings = Settings(data_dir=tmp_path / "var")
    first = secret_key(settings)
    assert len(first) >= 40 and secret_key(settings) == first
    path = tmp_path / "var" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # nothing left aside
    assert secret_key(Settings(data_dir=tmp_path / "var", secret_key="given")) == "given"


def test_relative_paths_are_anchored_where_the_settings_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({"FEDERICA_NETCONF_CREDENTIALS_FILE": "creds.yaml"})
    assert s.data_dir == tmp_path / "var"
    assert s.netconf_credentials_file == tmp_path / "creds.yaml"
    assert s.gateway_dir.is_absolute() and s.emulator_dir.is_absolute()
    monkeypatch.chdir("/")  # later changes of directory do not move them
    assert s.gateway_dir == tmp_path / "var" / "gateways"
    assert Settings(data_dir=Path("/srv/../srv/f")).data_dir == Path("/srv/f")


def test_a_short_scrape_token_is_refused_and_none_is_the_default() -> None:
    assert Settings.from_env({}).metrics_token == ""
    with pytest.raises(SettingsError, match="FEDERICA_METRICS_TOKEN: at least 32"):
        Settings.from_env({"FEDERICA_METRICS_TOKEN": "short"})
    assert Settings.from_env({"FEDERICA_METRICS_TOKEN": "x" * 32}).metrics_token == "x" * 32


def test_alarms_need_at_least_one_failed_poll() -> None:
    from federica.alarms.service import check_settings

    with pytest.raises(SettingsError, match="FEDERICA_ALARM_UNREACHABLE_POLLS"):
        check_settings(Settings.from_env({"FEDERICA_ALARM_UNREACHABLE_POLLS": "0"}))
    check_settings(Settings.from_env({}))


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("FEDERICA_RECONCILE_GRACE_S", "-1", "FEDERICA_RECONCILE_GRACE_S: must not be negative"),
        ("FEDERICA_RECONCILE_EVERY_S", "-5", "FEDERICA_RECONCILE_EVERY_S: must not be negative"),
        ("FEDERICA_WORKER_LEASE_S", "0", "FEDERICA_WORKER_LEASE_S: must be at least 1"),
    ],
)
def test_reconcile_and_lease_settings_are_checked(var: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({var: value})
