"""The transaction manager over fake devices: all or nothing, named errors, no deadlock."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from federica.substrate.drivers.base import (
    Attachment,
    Change,
    CommitFailed,
    DeviceConfig,
    Segment,
    Unreachable,
)
from federica.substrate.drivers.fake import FakeDevice, FakeDriver
from federica.substrate.transaction import TransactionFailed, run_transaction

NAMES = ["d1", "d2", "d3", "d4"]
PORTS = ("ge-0/0/0", "ge-0/0/1", "ge-1/0/0")


@pytest.fixture
def lab() -> Iterator[dict[str, FakeDevice]]:
    devices = {n: FakeDevice(n, PORTS) for n in NAMES}
    yield devices
    for d in devices.values():
        if d.pending:
            d.pending.timer.cancel()


def drivers(lab: dict[str, FakeDevice]) -> dict[str, FakeDriver]:
    out = {n: FakeDriver(d) for n, d in lab.items()}
    for d in out.values():
        d.open()
    return out


def circuit(vlan: int = 100) -> dict[str, Change]:
    seg = Segment("s1-c1", (Attachment("ge-0/0/0", vlan), Attachment("ge-0/0/1", vlan)), owner="s1")
    return {n: Change(add=(seg,)) for n in NAMES}


def runnings(lab: dict[str, FakeDevice]) -> dict[str, DeviceConfig]:
    return {n: d.running for n, d in lab.items()}


def assert_untouched(lab: dict[str, FakeDevice], before: dict[str, DeviceConfig]) -> None:
    assert runnings(lab) == before
    assert all(d.lock_owner is None and d.pending is None for d in lab.values())
    assert all(d.candidate == d.running for d in lab.values())


def test_success_commits_everywhere(lab: dict[str, FakeDevice]) -> None:
    report = run_transaction(drivers(lab), circuit())
    assert report.changed == NAMES and report.unchanged == []
    assert all("s1-c1" in d.running.segments and d.pending is None for d in lab.values())
    assert list(report.phases_ms) == ["locked", "validated", "committed", "confirmed"]
    assert all(d.lock_owner is None for d in lab.values())


def test_reapplying_is_a_no_op(lab: dict[str, FakeDevice]) -> None:
    run_transaction(drivers(lab), circuit())
    commits = {n: d.commits for n, d in lab.items()}
    report = run_transaction(drivers(lab), circuit())
    assert report.changed == [] and report.unchanged == NAMES
    assert {n: d.commits for n, d in lab.items()} == commits


def test_a_rejected_edit_on_one_device_changes_nothing_anywhere(lab: dict[str, FakeDevice]) -> None:
    before = runnings(lab)
    changes = circuit()
    changes["d3"] = circuit(5000)["d3"]
    with pytest.raises(TransactionFailed) as info:
        run_transaction(drivers(lab), changes)
    assert info.value.device == "d3" and "value not in range" in info.value.reason
    assert info.value.phase == "load and validate"
    assert_untouched(lab, before)


def test_a_lock_held_elsewhere_fails_naming_the_device(lab: dict[str, FakeDevice]) -> None:
    before = runnings(lab)
    other = FakeDriver(lab["d3"])
    other.open()
    other.lock()
    with pytest.raises(TransactionFailed) as info:
        run_transaction(drivers(lab), circuit(), lock_wait_s=0.1)
    assert info.value.device == "d3" and "locked" in info.value.reason
    assert lab["d3"].lock_owner == other.session
    other.unlock()
    assert_untouched(lab, before)


def test_a_failed_confirmed_commit_cancels_the_others(lab: dict[str, FakeDevice]) -> None:
    before = runnings(lab)
    lab["d3"].fail["commit_confirmed"] = CommitFailed("d3", "commit failed: disk full")
    with pytest.raises(TransactionFailed) as info:
        run_transaction(drivers(lab), circuit())
    assert (info.value.device, info.value.phase) == ("d3", "confirmed commit")
    assert_untouched(lab, before)


def test_a_failed_confirm_puts_the_confirmed_ones_back(lab: dict[str, FakeDevice]) -> None:
    before = runnings(lab)
    lab["d3"].fail["confirm"] = Unreachable("d3", "confirming commit: session lost")
    with pytest.raises(TransactionFailed) as info:
        run_transaction(drivers(lab), circuit())
    assert (info.value.device, info.value.phase) == ("d3", "confirm")
    assert_untouched(lab, before)


def test_after_a_denied_lock_locks_are_taken_one_by_one_in_name_order(
    lab: dict[str, FakeDevice],
) -> None:
    order: list[str] = []

    class Recording(FakeDriver):
        def lock(self) -> None:
            order.append(self.device)
            super().lock()

    other = FakeDriver(lab["d2"])
    other.open()
    other.lock()
    threading.Timer(0.3, other.unlock).start()
    ds = {n: Recording(lab[n]) for n in reversed(NAMES)}
    for d in ds.values():
        d.open()
    run_transaction(ds, circuit(), lock_wait_s=3)
    first_round, rest = order[:4], order[4:]
    assert sorted(first_round) == NAMES  # the optimistic parallel attempt
    retried = [n for i, n in enumerate(rest) if i == 0 or rest[i - 1] != n]
    assert retried == NAMES  # the fallback: in name order, d2 retried until free


def test_two_controllers_on_overlapping_devices_both_finish(lab: dict[str, FakeDevice]) -> None:
    seg_b = Segment("s2-c1", (Attachment("ge-1/0/0", 200), Attachment("ge-0/0/1", 200)))
    changes_b = {n: Change(add=(seg_b,)) for n in ["d2", "d3", "d4"]}
    errors: list[BaseException] = []

    def run(changes: dict[str, Change]) -> None:
        try:
            for _ in range(20):
                run_transaction(drivers(lab), changes, lock_wait_s=5)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in (circuit(), changes_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert {"s1-c1", "s2-c1"} <= set(lab["d3"].running.segments)


def test_nothing_to_do_touches_no_device(lab: dict[str, FakeDevice]) -> None:
    report = run_transaction(drivers(lab), {n: Change() for n in NAMES})
    assert report.changed == [] and all(d.lock_owner is None for d in lab.values())


def test_lock_denied_is_retried_until_the_wait_ends(lab: dict[str, FakeDevice]) -> None:
    other = FakeDriver(lab["d1"])
    other.open()
    other.lock()
    threading.Timer(0.2, other.unlock).start()
    report = run_transaction(drivers(lab), circuit(), lock_wait_s=3)
    assert report.changed == NAMES
