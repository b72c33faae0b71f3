"""The SNMP backend is a setting: pysnmp by default, gufo on request, nothing else."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from federica.config import Settings, SettingsError
from federica.monitoring.poller import BACKENDS, Poller
from federica.monitoring.service import check_settings


def ctx(env: dict[str, str]) -> Any:
    return SimpleNamespace(settings=Settings.from_env(env))


def test_pysnmp_is_the_default_and_gufo_is_accepted() -> None:
    assert Settings.from_env({}).snmp_backend == "pysnmp"
    check_settings(ctx({}))
    check_settings(ctx({"FEDERICA_SNMP_BACKEND": "gufo"}))
    assert set(BACKENDS) == {"pysnmp", "gufo"}


def test_an_unknown_backend_is_refused_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="FEDERICA_SNMP_BACKEND: must be one of pysnmp, gufo"):
        check_settings(ctx({"FEDERICA_SNMP_BACKEND": "netsnmp"}))
    with pytest.raises(ValueError, match="unknown SNMP backend 'netsnmp'"):
        Poller(list, lambda _r: None, clock=lambda: dt.datetime.now(dt.UTC), backend="netsnmp")
