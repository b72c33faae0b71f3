"""The one conformance suite every device driver passes (fake, ietf live, junos).

A test module subclasses `DriverConformance` and provides a `harness` fixture: a device
with a link port and two edge ports, freshly cleaned, and a way to open drivers to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from federica.substrate.drivers.base import (
    Attachment,
    ConfigRejected,
    DeviceDriver,
    LockDenied,
    Segment,
    missing_capabilities,
)


@dataclass
class Harness:
    device: str
    link_port: str
    edge_ports: tuple[str, str]
    open_driver: Callable[[], DeviceDriver]
    # A driver to a device of the same kind that cannot translate VLAN tags, if any.
    open_strict_driver: Callable[[], DeviceDriver] | None = None
    # Whether the data plane carries a segment (None: not observable for this driver).
    data_plane_has: Callable[[Segment], bool] | None = None

    def seg(
        self,
        name: str,
        vlan: int,
        edge: int = 0,
        *,
        owner: str = "",
        bandwidth_mbps: int | None = None,
    ) -> Segment:
        return Segment(
            name,
            (Attachment(self.link_port, vlan), Attachment(self.edge_ports[edge], vlan)),
            owner=owner,
            bandwidth_mbps=bandwidth_mbps,
        )


def stage_and_validate(d: DeviceDriver, segment: Segment) -> None:
    """Devices reject bad input at edit-config or at validate; either is conformant."""
    d.add_segment(segment)
    d.validate()


def eventually(check: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def commit_now(d: DeviceDriver, persist: str = "conf") -> None:
    d.commit_confirmed(30, persist)
    d.confirm(persist)


class DriverConformance:
    def test_opens_and_reports_the_required_capabilities(self, harness: Harness) -> None:
        d = harness.open_driver()
        try:
            assert missing_capabilities(d.capabilities()) == []
            assert harness.link_port in d.get_config().port_enabled
        finally:
            d.close()

    def test_a_staged_segment_shows_in_the_diff_then_in_running(self, harness: Harness) -> None:
        d = harness.open_driver()
        s = harness.seg("conf-a", 101, owner="slice-1", bandwidth_mbps=100)
        try:
            d.lock()
            d.add_segment(s)
            assert "conf-a" in d.diff()
            assert "conf-a" not in d.get_config("running").segments
            d.validate()
            commit_now(d)
            # validate() must not disturb what is staged (netconfd 2.13 would, see ietf.py).
            assert d.get_config("running").segments.get("conf-a") == s
            assert d.diff() == ""
            d.unlock()
            if harness.data_plane_has:
                assert eventually(lambda: harness.data_plane_has(s), 2.0)  # type: ignore[misc]
        finally:
            d.close()

    def test_discard_drops_what_was_staged(self, harness: Harness) -> None:
        d = harness.open_driver()
        try:
            d.lock()
            before = d.get_config("running")
            d.add_segment(harness.seg("conf-b", 102))
            d.discard()
            assert d.get_config("candidate") == before
            assert d.diff() == ""
            d.unlock()
        finally:
            d.close()

    def test_readding_and_removing_absent_are_no_ops(self, harness: Harness) -> None:
        d = harness.open_driver()
        s = harness.seg("conf-c", 103)
        try:
            d.lock()
            d.add_segment(s)
            commit_now(d)
            d.add_segment(s)
            d.remove_segment("never-existed")
            assert d.diff() == ""
            d.remove_segment("conf-c")
            assert "conf-c" in d.diff()
            commit_now(d, "conf2")
            assert "conf-c" not in d.get_config().segments
            d.unlock()
        finally:
            d.close()

    def test_changing_a_segment_replaces_its_attachments(self, harness: Harness) -> None:
        d = harness.open_driver()
        try:
            d.lock()
            d.add_segment(harness.seg("conf-d", 104, edge=0))
            commit_now(d)
            moved = harness.seg("conf-d", 104, edge=1, bandwidth_mbps=10)
            d.add_segment(moved)
            commit_now(d, "conf2")
            assert d.get_config().segments["conf-d"] == moved
            d.unlock()
        finally:
            d.close()

    @pytest.mark.parametrize(
        ("make", "words"),
        [
            (lambda h: h.seg("bad-vlan", 5000), "range"),
            (
                lambda h: Segment(
                    "bad-port", (Attachment("ge-9/9/9", 7), Attachment(h.link_port, 7))
                ),
                "ge-9/9/9",
            ),
        ],
        ids=["vlan-out-of-range", "unknown-port"],
    )
    def test_invalid_segments_are_rejected_and_change_nothing(
        self, harness: Harness, make: Callable[[Harness], Segment], words: str
    ) -> None:
        d = harness.open_driver()
        try:
            d.lock()
            before = d.get_config("candidate")
            with pytest.raises(ConfigRejected) as info:
                stage_and_validate(d, make(harness))
            assert info.value.device == harness.device
            assert words in str(info.value) or any(words in i.path for i in info.value.issues)
            d.discard()
            assert d.get_config("candidate") == before == d.get_config("running")
            d.unlock()
        finally:
            d.close()

    def test_a_port_vlan_held_by_another_segment_is_refused(self, harness: Harness) -> None:
        d = harness.open_driver()
        try:
            d.lock()
            d.add_segment(harness.seg("conf-e", 105))
            commit_now(d)
            with pytest.raises(ConfigRejected):
                stage_and_validate(d, harness.seg("conf-f", 105, edge=1))
            d.discard()
            assert set(d.get_config().segments) == {"conf-e"}
            d.unlock()
        finally:
            d.close()

    def test_a_lock_held_elsewhere_is_denied(self, harness: Harness) -> None:
        other, d = harness.open_driver(), harness.open_driver()
        try:
            other.lock()
            with pytest.raises(LockDenied) as info:
                d.lock()
            assert info.value.device == harness.device
            with pytest.raises(LockDenied):
                d.add_segment(harness.seg("conf-g", 106))
            other.unlock()
            d.lock()
            d.unlock()
        finally:
            other.close()
            d.close()

    def test_an_unconfirmed_commit_rolls_back_by_itself(self, harness: Harness) -> None:
        d = harness.open_driver()
        try:
            d.lock()
            d.add_segment(harness.seg("conf-h", 107))
            d.commit_confirmed(2, "never-confirmed")
            assert "conf-h" in d.get_config().segments
            # Poll slowly: netconfd checks confirm timeouts only after ~1 s without requests.
            assert eventually(lambda: "conf-h" not in d.get_config().segments, 15.0, every=2.5)
            d.unlock()
        finally:
            d.close()

    def test_cancel_commit_rolls_back_at_once(self, harness: Harness) -> None:
        d = harness.open_driver()
        try:
            d.lock()
            d.add_segment(harness.seg("conf-i", 108))
            d.commit_confirmed(60, "to-cancel")
            d.cancel_commit("to-cancel")
            assert "conf-i" not in d.get_config().segments
            d.unlock()
        finally:
            d.close()

    def test_port_and_segment_admin_state(self, harness: Harness) -> None:
        d = harness.open_driver()
        port = harness.edge_ports[1]
        try:
            d.lock()
            d.add_segment(harness.seg("conf-j", 109))
            d.set_port_state(port, False)
            commit_now(d)
            assert {i.name: i.admin_up for i in d.interfaces()}[port] is False
            d.set_segment_state("conf-j", False)
            commit_now(d, "conf2")
            assert d.get_config().segments["conf-j"].enabled is False
            d.set_port_state(port, True)
            d.set_segment_state("conf-j", True)
            commit_now(d, "conf3")
            assert d.get_config().port_enabled[port] is True
            assert d.get_config().segments["conf-j"].enabled is True
            d.unlock()
        finally:
            d.close()

    def test_vlan_rewrite_only_where_the_device_can(self, harness: Harness) -> None:
        rewrite = Segment(
            "conf-k", (Attachment(harness.link_port, 110), Attachment(harness.edge_ports[0], 111))
        )
        d = harness.open_driver()
        try:
            d.lock()
            d.add_segment(rewrite)
            commit_now(d)
            assert d.get_config().segments["conf-k"] == rewrite
            d.unlock()
        finally:
            d.close()
        if harness.open_strict_driver is None:
            pytest.skip("no device without VLAN translation in this harness")
        strict = harness.open_strict_driver()
        try:
            strict.lock()
            with pytest.raises(ConfigRejected, match="cannot translate VLAN tags"):
                stage_and_validate(strict, rewrite)
            strict.discard()
            strict.unlock()
        finally:
            strict.close()
