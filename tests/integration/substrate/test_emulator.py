"""The emulated facility with its real processes: netconfd behind sshd, snmpd, the device
agents, namespaces and veths. Talks to it exactly as the controller will."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence

import paramiko
import pytest
from ncclient.operations import RPCError

from federica.monitoring import snmp
from federica.substrate.drivers.base import Attachment, Segment
from federica.substrate.drivers.netconf.federica_l2 import (
    parse_config,
    segments_config,
    to_xml,
)
from federica.substrate.drivers.netconf.session import (
    HostKeyMismatch,
    connect,
    sha256_fingerprint,
)
from federica.substrate.emulator import iproute
from federica.substrate.emulator.facility import host_vlan_interface
from tests.integration.conftest import Facility

pytestmark = pytest.mark.integration

# prg-mx ge-0/0/0 <-> erl-mx ge-0/0/0 is the PRG-ERL link; ge-1/0/x are V-node uplinks.
LINK_PORT = "ge-0/0/0"


def commit(
    fac: Facility,
    device: str,
    *,
    add: Sequence[Segment] = (),
    remove: Sequence[Segment] = (),
    confirmed_timeout: int | None = None,
) -> None:
    m = fac.netconf(device)
    try:
        m.edit_config(target="candidate", config=to_xml(segments_config(add, remove)))
        if confirmed_timeout:
            m.commit(confirmed=True, timeout=str(confirmed_timeout))
        else:
            m.commit()
    finally:
        m.close_session()


def circuit(name: str, uplink: str, vlan: int, bw: int | None = None) -> Segment:
    return Segment(
        name,
        (Attachment(LINK_PORT, vlan), Attachment(uplink, vlan)),
        owner="test",
        bandwidth_mbps=bw,
    )


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def address_host(fac: Facility, host: str, vlan: int, ip: str) -> str:
    plan = fac.host(host)
    ifname = host_vlan_interface(plan, vlan)
    iproute.ip("address", "replace", f"{ip}/24", "dev", ifname, ns=plan.namespace)
    return ifname


def pings(fac: Facility, host: str, ip: str, count: int = 1, size: int = 56) -> bool:
    r = fac.ns_exec(
        fac.host(host).namespace,
        "ping",
        "-c",
        str(count),
        "-i",
        "0.05",
        "-W",
        "1",
        "-s",
        str(size),
        ip,
    )
    return r.returncode == 0


def rx_bytes(fac: Facility, host: str, ifname: str) -> int:
    r = fac.ns_exec(fac.host(host).namespace, "cat", f"/sys/class/net/{ifname}/statistics/rx_bytes")
    return int(r.stdout)


def broadcast(fac: Facility, host: str, to: str, count: int, size: int) -> None:
    # Broadcast frames flood every port a bridge reaches: the strongest leak detector.
    fac.ns_exec(
        fac.host(host).namespace,
        "ping",
        "-b",
        "-c",
        str(count),
        "-i",
        "0.02",
        "-W",
        "1",
        "-s",
        str(size),
        to,
    )


def ns_links(fac: Facility, device: str) -> list[tuple[str, str | None, bool]]:
    ns = fac.plan.device(device).namespace
    return sorted((x["ifname"], x.get("master"), "UP" in x["flags"]) for x in iproute.links(ns))


@pytest.fixture
def clean_devices(emulated_core4: Facility) -> Iterator[Facility]:
    """Every test starts and ends with no segments on any device."""
    emulated_core4.wipe()
    yield emulated_core4
    emulated_core4.wipe()


def test_every_device_speaks_netconf_with_a_verified_host_key(emulated_core4: Facility) -> None:
    for d in emulated_core4.plan.devices:
        m = emulated_core4.netconf(d.name)
        caps = set(m.server_capabilities)
        m.close_session()
        assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
        assert "urn:ietf:params:netconf:capability:confirmed-commit:1.1" in caps
        assert "urn:ietf:params:netconf:capability:validate:1.1" in caps
        assert any(c.startswith("urn:federica:yang:federica-l2?") for c in caps)


def test_a_wrong_or_missing_host_key_is_refused(emulated_core4: Facility) -> None:
    with pytest.raises(HostKeyMismatch, match="the inventory expects SHA256:AAAA"):
        connect(emulated_core4.endpoint("prg-mx", fingerprint="SHA256:" + "A" * 43))
    with pytest.raises(HostKeyMismatch, match="no fingerprint is recorded"):
        connect(emulated_core4.endpoint("prg-mx", fingerprint=""))


def _read_until(channel: paramiko.Channel, end: bytes, timeout_s: float) -> bytes:
    channel.settimeout(timeout_s)
    data = b""
    while end not in data:
        chunk = channel.recv(65536)
        assert chunk, f"channel closed; got {data!r}"
        data += chunk
    return data


def test_an_rpc_that_arrives_with_the_hello_is_answered(emulated_core4: Facility) -> None:
    """netconfd 2.13 never answers an RPC it reads together with the client's hello, as
    happens when it is scheduled late: the device's subsystem relay keeps them apart."""
    fac = emulated_core4
    ep = fac.endpoint("erl-mx")
    state = fac.emulator.load_state()
    assert state is not None
    (netconfd,) = [t for t in state.processes if t.name == "netconfd erl-mx"]
    transport = paramiko.Transport((ep.host, ep.port))
    try:
        transport.connect(username=ep.username, pkey=paramiko.Ed25519Key(filename=ep.key_filename))
        key = transport.get_remote_server_key()
        assert sha256_fingerprint(key.asbytes()) == ep.host_key_fingerprint
        channel = transport.open_session()
        channel.invoke_subsystem("netconf")
        assert b"urn:ietf:params:netconf:base:1.1" in _read_until(channel, b"]]>]]>", 30)
        hello = (
            b'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:'
            b'netconf:base:1.0"><capabilities><capability>urn:ietf:params:netconf:base:1.1'
            b"</capability></capabilities></hello>]]>]]>"
        )
        rpc = (
            b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1">'
            b"<get-config><source><running/></source></get-config></rpc>"
        )
        os.kill(netconfd.pid, signal.SIGSTOP)  # a netconfd that reads late, reliably
        try:
            channel.sendall(hello + b"\n#%d\n%s\n##\n" % (len(rpc), rpc))
            time.sleep(1)  # both are on their way to netconfd before it runs again
        finally:
            os.kill(netconfd.pid, signal.SIGCONT)
        reply = _read_until(channel, b"\n##\n", 30)
        assert b"rpc-reply" in reply and b'message-id="1"' in reply, reply
    finally:
        transport.close()


def test_circuit_carries_traffic_only_while_configured_and_vlans_stay_apart(
    clean_devices: Facility,
) -> None:
    fac = clean_devices
    address_host(fac, "prg-v1", 100, "10.70.0.1")
    same = address_host(fac, "erl-v1", 100, "10.70.0.2")
    # A second circuit on the same link, VLAN 200, in the same IP subnet on purpose.
    other_a = address_host(fac, "prg-v2", 200, "10.70.0.3")
    other_b = address_host(fac, "erl-v2", 200, "10.70.0.4")
    assert not pings(fac, "prg-v1", "10.70.0.2"), "connected before any configuration"

    c1_prg, c1_erl = circuit("c1", "ge-1/0/0", 100), circuit("c1", "ge-1/0/0", 100)
    commit(fac, "prg-mx", add=[c1_prg])
    commit(fac, "erl-mx", add=[c1_erl])
    assert eventually(lambda: pings(fac, "prg-v1", "10.70.0.2"))

    commit(fac, "prg-mx", add=[circuit("c2", "ge-1/0/1", 200)])
    commit(fac, "erl-mx", add=[circuit("c2", "ge-1/0/1", 200)])
    assert eventually(lambda: pings(fac, "prg-v2", "10.70.0.4"))
    assert not pings(fac, "prg-v1", "10.70.0.3"), "VLAN 100 reached a host on VLAN 200"
    assert not pings(fac, "prg-v1", "10.70.0.4"), "VLAN 100 reached a host on VLAN 200"
    before = [
        rx_bytes(fac, "erl-v1", same),
        rx_bytes(fac, "prg-v2", other_a),
        rx_bytes(fac, "erl-v2", other_b),
    ]
    broadcast(fac, "prg-v1", "10.70.0.255", count=20, size=1200)
    grew = [
        after - b
        for after, b in zip(
            [
                rx_bytes(fac, "erl-v1", same),
                rx_bytes(fac, "prg-v2", other_a),
                rx_bytes(fac, "erl-v2", other_b),
            ],
            before,
            strict=True,
        )
    ]
    assert grew[0] >= 20 * 1200, "the broadcasts did not even cross circuit 1"
    assert grew[1] < 2 * 1200 and grew[2] < 2 * 1200, f"VLAN 200 hosts received {grew[1:]} bytes"

    commit(fac, "prg-mx", remove=[c1_prg])
    commit(fac, "erl-mx", remove=[c1_erl])
    assert eventually(lambda: not pings(fac, "prg-v1", "10.70.0.2"))
    assert pings(fac, "prg-v2", "10.70.0.4"), "removing c1 disturbed c2"


def test_schema_invalid_edit_changes_neither_datastore_nor_data_plane(
    clean_devices: Facility,
) -> None:
    fac = clean_devices
    commit(fac, "prg-mx", add=[circuit("keep", "ge-1/0/0", 300)])
    assert eventually(lambda: any(n == "ge-0_0_0.300" for n, _, _ in ns_links(fac, "prg-mx")))
    m = fac.netconf("prg-mx")
    try:
        running = m.get_config(source="running").data_xml
        candidate = m.get_config(source="candidate").data_xml
        links = ns_links(fac, "prg-mx")
        bad = circuit("bad", "ge-1/0/1", 5000)
        with pytest.raises(RPCError) as info:
            m.edit_config(target="candidate", config=to_xml(segments_config([bad])))
        assert "not in range" in str(info.value)
        with pytest.raises(RPCError):  # a port the device does not have
            m.edit_config(
                target="candidate",
                config=to_xml(
                    segments_config(
                        [Segment("bad2", (Attachment("ge-9/9/9", 7), Attachment(LINK_PORT, 7)))]
                    )
                ),
            )
        assert m.get_config(source="running").data_xml == running
        assert m.get_config(source="candidate").data_xml == candidate
    finally:
        m.close_session()
    time.sleep(0.3)  # give a (wrong) agent reaction the time to show
    assert ns_links(fac, "prg-mx") == links


def test_device_without_translation_refuses_vlan_rewrite(clean_devices: Facility) -> None:
    rewrite = Segment("rw", (Attachment(LINK_PORT, 10), Attachment("ge-1/0/0", 20)))
    m = clean_devices.netconf("psn-mx")
    try:
        with pytest.raises(RPCError, match="cannot translate VLAN tags"):
            m.edit_config(target="candidate", config=to_xml(segments_config([rewrite])))
        m.discard_changes()
    finally:
        m.close_session()
    commit(clean_devices, "prg-mx", add=[rewrite])  # a router may


def test_unconfirmed_commit_reverts_the_data_plane(clean_devices: Facility) -> None:
    """The session stays open and idle, so the revert comes from the confirm timeout (not
    from the session closing, which also reverts a confirmed commit without persist)."""
    fac = clean_devices
    m = fac.netconf("erl-mx")
    try:
        m.edit_config(
            target="candidate", config=to_xml(segments_config([circuit("temp", "ge-1/0/0", 400)]))
        )
        m.commit(confirmed=True, timeout="2")

        def names() -> set[str]:
            return {n for n, _, _ in ns_links(fac, "erl-mx")}

        assert eventually(lambda: "ge-0_0_0.400" in names(), 1.0)
        assert eventually(lambda: "ge-0_0_0.400" not in names(), 8.0)
        assert "temp" not in parse_config(m.get_config(source="running").data_ele).segments
    finally:
        m.close_session()


def test_bandwidth_is_a_tbf_on_each_attachment(clean_devices: Facility) -> None:
    fac = clean_devices
    commit(fac, "mil-mx", add=[circuit("bw", "ge-1/0/0", 500, bw=50)])
    ns = fac.plan.device("mil-mx").namespace

    def rates() -> dict[str, int]:
        return {
            q["dev"]: int(q["options"]["rate"]) * 8
            for q in iproute.qdiscs(ns)
            if q["kind"] == "tbf"
        }

    assert eventually(lambda: rates() == {"ge-0_0_0.500": 50_000_000, "ge-1_0_0.500": 50_000_000})


def test_snmp_counts_octets_and_reports_admin_state(clean_devices: Facility) -> None:
    fac = clean_devices
    dev = fac.plan.device("prg-mx")
    idx = [p.name for p in dev.ports].index(LINK_PORT) + 1
    oids = [
        f"{snmp.IF_HC_IN_OCTETS}.{idx}",
        f"{snmp.IF_HC_OUT_OCTETS}.{idx}",
        f"{snmp.IF_NAME}.{idx}",
        f"{snmp.IF_ADMIN_STATUS}.{idx}",
    ]

    def read() -> dict[str, int | str]:
        return snmp.get(dev.mgmt_host, dev.snmp_port, "federica", oids)

    address_host(fac, "prg-v1", 600, "10.71.0.1")
    address_host(fac, "erl-v1", 600, "10.71.0.2")
    commit(fac, "prg-mx", add=[circuit("snmp", "ge-1/0/0", 600)])
    commit(fac, "erl-mx", add=[circuit("snmp", "ge-1/0/0", 600)])
    assert eventually(lambda: pings(fac, "prg-v1", "10.71.0.2"))
    before = read()
    assert before[oids[2]] == LINK_PORT and before[oids[3]] == 1
    assert pings(fac, "prg-v1", "10.71.0.2", count=20, size=1000)
    after = read()
    assert int(after[oids[0]]) - int(before[oids[0]]) >= 20 * 1000
    assert int(after[oids[1]]) - int(before[oids[1]]) >= 20 * 1000

    # Port admin state follows ietf-interfaces' enabled leaf, and cuts the circuit.
    m = fac.netconf("prg-mx")
    disable = (
        f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces '
        f'xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>{LINK_PORT}'
        f"</name><enabled>{{}}</enabled></interface></interfaces></config>"
    )
    try:
        m.edit_config(target="candidate", config=disable.format("false"))
        m.commit()
        assert eventually(lambda: read()[oids[3]] == 2)
        assert not pings(fac, "prg-v1", "10.71.0.2")
        m.edit_config(target="candidate", config=disable.format("true"))
        m.commit()
        assert eventually(lambda: read()[oids[3]] == 1)
        assert eventually(lambda: pings(fac, "prg-v1", "10.71.0.2"))
    finally:
        m.close_session()
