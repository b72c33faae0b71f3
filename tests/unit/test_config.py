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
