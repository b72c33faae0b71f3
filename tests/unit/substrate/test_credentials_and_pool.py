from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from federica.config import Settings
from federica.errors import InvalidInput, NotFound
from federica.substrate import credentials
from federica.substrate.drivers import registry
from federica.substrate.drivers.base import DeviceDriver, Unreachable
from federica.substrate.drivers.fake import FakeDevice, FakeDriver, FakeLab
from federica.substrate.drivers.pool import DriverPool


def settings_with(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "creds.yaml"
    path.write_text(text)
    return Settings(data_dir=tmp_path, netconf_credentials_file=path)


def test_builtin_emulator_set(tmp_path: Path) -> None:
    cred = credentials.resolve(Settings(data_dir=tmp_path), "emulator")
    assert cred.username == "root" and cred.key_file and cred.key_file.endswith("client_key")


def test_password_comes_from_the_environment_and_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_with(tmp_path, "lab:\n  username: netconf\n  password_env: LAB_PW\n")
    with pytest.raises(NotFound, match="LAB_PW is not set"):
        credentials.resolve(s, "lab")
    monkeypatch.setenv("LAB_PW", "s3cret-value")
    cred = credentials.resolve(s, "lab")
    assert cred.password == "s3cret-value"
    assert "s3cret" not in repr(cred)


def test_bad_credentials_file_names_the_set_and_field(tmp_path: Path) -> None:
    s = settings_with(tmp_path, "a:\n  username: x\nb:\n  username: y\n  key_file: /k\n  pw: 1\n")
    with pytest.raises(InvalidInput) as info:
        credentials.resolve(s, "a")
    fields = [e.field for e in info.value.errors]
    assert "a" in fields[0] and any(f.startswith("b.pw") for f in fields)
    with pytest.raises(NotFound, match="no NETCONF credential set 'nope'"):
        credentials.resolve(settings_with(tmp_path, "{}"), "nope")


def test_registry_picks_drivers_by_name() -> None:
    lab = FakeLab()
    drivers = registry.device_drivers(lab)
    target = registry.DeviceTarget("fk-1", "fake", "127.0.0.1", 830, None, True, ("p1", "p2"))
    driver = registry.create(drivers, target)
    assert isinstance(driver, FakeDriver)
    assert driver.dev is lab.device("fk-1", ())  # the registry's own lab, nobody else's
    assert {"ietf", "junos", "fake"} <= set(drivers.names())
    with pytest.raises(registry.UnknownDriver, match="no driver named 'cisco'"):
        registry.create(drivers, registry.DeviceTarget("x", "cisco", "h", 1, None, True, ()))


def test_a_registered_driver_does_not_hide_the_built_in_ones() -> None:
    # Each registry is its own: registering in one changes no other, and never drops the
    # built-in drivers (the old module-level table did, if someone registered first).
    first, second = registry.device_drivers(FakeLab()), registry.device_drivers(FakeLab())
    first.register("extra", lambda t: FakeDriver(FakeDevice(t.name, t.ports)))
    assert {"ietf", "junos", "fake", "extra"} <= set(first.names())
    assert "extra" not in second.names()


def test_pool_reuses_sessions_and_reopens_after_a_failure() -> None:
    dev = FakeDevice("pool-1", ("p1",))
    made: list[FakeDriver] = []

    def factory(name: str) -> DeviceDriver:
        d = FakeDriver(dev)
        made.append(d)
        return d

    pool = DriverPool(factory)
    with pool.checkout(["pool-1"]) as ds:
        first = ds["pool-1"].session  # type: ignore[attr-defined]
    with pool.checkout(["pool-1"]) as ds:
        assert ds["pool-1"].session == first  # type: ignore[attr-defined]
    with pytest.raises(Unreachable), pool.checkout(["pool-1"]) as ds:
        raise Unreachable("pool-1", "session lost")
    with pool.checkout(["pool-1"]) as ds:
        assert ds["pool-1"].session != first  # type: ignore[attr-defined]
    assert len(made) == 1
    pool.close_all()


def test_warm_opens_every_session_and_names_the_devices_it_could_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    devs = {"w-1": FakeDevice("w-1", ("p1",)), "w-2": FakeDevice("w-2", ("p1",))}
    devs["w-2"].reachable = False
    made: dict[str, FakeDriver] = {}

    def factory(name: str) -> DeviceDriver:
        made[name] = FakeDriver(devs[name])
        return made[name]

    pool = DriverPool(factory)
    with caplog.at_level("WARNING", logger="federica.substrate.drivers.pool"):
        failed = pool.warm(["w-1", "w-2"])
    assert list(failed) == ["w-2"] and "connection refused" in failed["w-2"]
    assert "device w-2 unreachable" in caplog.text
    opened = made["w-1"].session
    assert opened is not None
    with pool.checkout(["w-1"]) as ds:  # the warmed session, not a new one
        assert ds["w-1"].session == opened  # type: ignore[attr-defined]
    devs["w-2"].reachable = True  # tried again at the next checkout
    with pool.checkout(["w-2"]) as ds:
        assert ds["w-2"].session is not None  # type: ignore[attr-defined]
    pool.close_all()
    assert made["w-1"].session is None and made["w-2"].session is None


def test_close_all_does_not_wait_long_for_a_device_that_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = threading.Event()
    closed: list[str] = []

    class Silent(FakeDriver):
        def close(self) -> None:
            if self.device == "c-mute":
                answer.wait(30)  # as a close-session whose reply never comes
            closed.append(self.device)
            super().close()

    pool = DriverPool(lambda name: Silent(FakeDevice(name, ("p1",))))
    pool.warm(["c-ok", "c-mute"])
    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger="federica.substrate.drivers.pool"):
        pool.close_all(wait_s=0.3)
    took = time.monotonic() - t0
    assert took < 5, took  # 0.3 s asked; not the 30 s the silent device would take
    deadline = time.monotonic() + 10  # the other device's close goes on regardless
    while "c-ok" not in closed and time.monotonic() < deadline:
        time.sleep(0.01)
    answer.set()
    assert "c-ok" in closed
    assert "device c-mute did not answer close-session" in caplog.text
