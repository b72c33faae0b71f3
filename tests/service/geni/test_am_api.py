"""The GENI AM API v3 over its real mutual-TLS XML-RPC listener, driven by the project's
own client (tests/geni/client.py) with credentials it signs; devices and V-nodes on the
fake drivers (the emulated facility is in tests/integration/geni)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import subprocess
import xmlrpc.client
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import func, select

from federica.aaa.models import AuditEntry
from federica.context import Context, make_context
from federica.db import transaction
from federica.estop.models import EStop
from federica.geni import rspec
from federica.geni.codes import Code
from federica.slices import service
from federica.slices.models import Slice
from federica.substrate.inventory import apply_topology
from federica.substrate.topology import parse_topology
from federica.worker import Worker
from tests.accounts import ensure_project
from tests.conftest import EXAMPLES
from tests.geni.client import GeniClient, code, sfa
from tests.geni.credentials import credential, issue
from tests.geni.support import (
    AUTHORITY,
    PROJECT,
    Federation,
    am_listener,
    facility_identity,
    make_federation,
    request_rspec,
)

AM = "urn:publicid:IDN+beta.example+authority+am"


@dataclasses.dataclass
class Setup:
    ctx: Context
    fed: Federation
    url: str
    alice: GeniClient
    bob: GeniClient
    tmp: Path

    def cred(self, slice_name: str, **kw: Any) -> list[dict[str, str]]:
        kw.setdefault("owner", self.fed.alice)
        kw.setdefault("signer", self.fed.sa)
        kw.setdefault("chain", (self.fed.root.cert,))
        return sfa(credential(target_urn=self.fed.slice_urn(slice_name), **kw))

    def user_cred(self) -> list[dict[str, str]]:
        f = self.fed
        return sfa(
            credential(owner=f.alice, target_urn=f.alice.urn, signer=f.sa, chain=(f.root.cert,))
        )

    def slices(self) -> int:
        with transaction(self.ctx.read_sessions) as s:
            return int(s.scalar(select(func.count()).select_from(Slice)) or 0)


@pytest.fixture
def geni(db: Context, tmp_path: Path) -> Iterator[Setup]:
    text = (EXAMPLES / "topologies" / "core4.yaml").read_text()
    text = text.replace("driver: ietf", "driver: fake").replace("driver: netns", "driver: fake")
    with transaction(db.sessions) as s:
        apply_topology(s, parse_topology(text))
    fed = make_federation(tmp_path / "geni")
    ctx = make_context(
        dataclasses.replace(db.settings, geni_authorities_file=fed.authorities_file),
        engine=db.engine,
    )
    ensure_project(ctx, PROJECT)
    beta = facility_identity(ctx)
    with am_listener(ctx) as url:
        yield Setup(
            ctx,
            fed,
            url,
            GeniClient(url, fed.alice, beta.ca_pem, tmp_path / "alice", fed.sa.cert_pem),
            GeniClient(url, fed.bob, beta.ca_pem, tmp_path / "bob", fed.sa.cert_pem),
            tmp_path,
        )


def two_hosts(**kw: Any) -> str:
    return request_rspec(
        AM, [("h1", None), ("h2", None)], [("lan", ["h1", "h2"], 50_000, None)], **kw
    )


def test_get_version_answers_as_omni_and_jfed_need(geni: Setup) -> None:
    v = geni.alice.get_version()
    assert code(v) == 0
    value = v["value"]
    assert value["geni_api"] == 3 and value["geni_api_versions"] == {"3": geni.url}
    assert type(value["geni_single_allocation"]) is int and value["geni_single_allocation"] == 1
    assert value["geni_allocate"] == "geni_single"
    assert {"geni_type": "geni_sfa", "geni_version": "3"} in value["geni_credential_types"]
    assert value["geni_request_rspec_versions"][0]["namespace"] == rspec.NS
    assert value["urn"] == AM


def test_list_resources_advertises_the_substrate_against_the_schema(geni: Setup) -> None:
    ad = geni.alice.list_resources(geni.user_cred())
    assert code(ad) == 0, ad
    doc = etree.fromstring(ad["value"].encode())
    assert doc.get("type") == "advertisement"
    assert doc.get(f"{{{rspec.XSI}}}schemaLocation") == f"{rspec.NS} {rspec.NS}/ad.xsd"
    assert rspec.problems(doc, "advertisement") == []
    nodes = {n.get("component_name") for n in doc.iterfind(f"{{{rspec.NS}}}node")}
    assert {"prg-v1", "mil-v1"} <= nodes
    assert all(n.get("component_manager_id") == AM for n in doc.iterfind(f"{{{rspec.NS}}}node"))
    # Compressed: zlib then base64, the same document.
    packed = geni.alice.list_resources(geni.user_cred(), geni_compressed=True)
    assert code(packed) == 0
    assert etree.fromstring(zlib.decompress(base64.b64decode(packed["value"]))).get("type") == (
        "advertisement"
    )
    # Quirks: a slice URN here, a wrong RSpec version, no credential: codes, not faults.
    r = geni.alice.list_resources(geni.user_cred(), geni_slice_urn=geni.fed.slice_urn("x"))
    assert code(r) == Code.BADARGS and "Describe" in r["output"]
    r = geni.alice.call(
        "ListResources",
        geni.user_cred(),
        {"geni_rspec_version": {"type": "ProtoGENI", "version": "2"}},
    )
    assert code(r) == Code.BADVERSION
    assert code(geni.alice.list_resources([])) == Code.FORBIDDEN


def _now(node: etree._Element) -> str:
    available = node.find(f"{{{rspec.NS}}}available")
    assert available is not None
    return available.get("now", "")


def test_available_hides_what_is_taken(geni: Setup) -> None:
    def nodes(answer: dict[str, Any]) -> dict[str, str]:
        doc = etree.fromstring(answer["value"].encode())
        return {
            n.get("component_name", ""): n.findtext(f"{{{rspec.NS}}}available") or _now(n)
            for n in doc.iterfind(f"{{{rspec.NS}}}node")
        }

    assert nodes(geni.alice.list_resources(geni.user_cred()))["prg-v1"] == "true"
    # A local slice takes every core of both PRG V-nodes for the next hours.
    now = dt.datetime.now(dt.UTC)
    full = {
        "name": "local-full",
        "window": {"start": "now", "duration": "3h"},
        "nodes": [{"name": f"n{i}", "pop": "PRG", "vcpu": 8, "kind": "host"} for i in (1, 2)],
    }
    with transaction(geni.ctx.sessions) as s:
        assert service.book(s, geni.ctx.settings, full, now=now).slice is not None
    everything = nodes(geni.alice.list_resources(geni.user_cred()))
    assert everything["prg-v1"] == everything["prg-v2"] == "false"
    assert everything["mil-v1"] == "true"
    available = nodes(geni.alice.list_resources(geni.user_cred(), geni_available=True))
    assert "prg-v1" not in available and "mil-v1" in available
    assert set(available.values()) == {"true"}


CASES: dict[str, Callable[[Setup], list[dict[str, str]]]] = {
    "altered": lambda g: sfa(
        credential(
            owner=g.fed.alice,
            target_urn=g.fed.slice_urn("s1"),
            signer=g.fed.sa,
            chain=(g.fed.root.cert,),
        ).replace("<name>*</name>", "<name>* </name>")
    ),
    "untrusted": lambda g: sfa(
        credential(
            owner=g.fed.alice,
            target_urn=g.fed.slice_urn("s1"),
            signer=(rogue := issue(f"urn:publicid:IDN+{AUTHORITY}+authority+sa", ca=True)),
            chain=(rogue.cert,),
        )
    ),
    "expired": lambda g: g.cred("s1", expires=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)),
    "wrong target": lambda g: g.cred("other"),
    "wrong type": lambda g: [
        {"geni_type": "geni_abac", "geni_version": "1", "geni_value": g.cred("s1")[0]["geni_value"]}
    ],
    "not a privilege credential": lambda g: g.cred("s1", kind="abac"),
    "someone else's": lambda g: g.cred("s1", owner=g.fed.bob),
    "no rights": lambda g: g.cred("s1", privileges=("info",)),
    "another authority's signer": lambda g: g.cred(
        "s1",
        signer=(
            _other := issue("urn:publicid:IDN+elsewhere+authority+sa", issuer=g.fed.root, ca=True)
        ),
        chain=(g.fed.root.cert,),
    ),
    "malformed": lambda g: sfa("<signed-credential><credential"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_credential_is_refused_and_changes_nothing(geni: Setup, case: str) -> None:
    creds = CASES[case](geni)
    r = geni.alice.allocate(geni.fed.slice_urn("s1"), creds, two_hosts())
    assert code(r) in ((Code.BADARGS,) if case == "malformed" else (Code.FORBIDDEN,)), r
    assert r["output"]
    assert geni.slices() == 0
    with transaction(geni.ctx.read_sessions) as s:
        refused = s.scalars(select(AuditEntry).where(AuditEntry.action == "geni.Allocate")).all()
    assert [e.actor for e in refused] == [geni.fed.alice.urn]
    assert refused[0].status != 200


def test_malformed_calls_get_codes_not_faults(geni: Setup) -> None:
    assert code(geni.alice.raw(b"<methodCall><methodName>GetVersion")) == Code.BADARGS
    assert (
        code(geni.alice.raw(xmlrpc.client.dumps((), "CreateSliver").encode())) == Code.UNSUPPORTED
    )
    assert code(geni.alice.call("Allocate", "x")) == Code.BADARGS
    bad = geni.alice.allocate(geni.fed.slice_urn("s1"), geni.cred("s1"), "<rspec type='request'")
    assert code(bad) == Code.BADARGS and "well-formed" in bad["output"]
    invalid = two_hosts().replace("<sliver_type", "<bogus/><sliver_type")
    r = geni.alice.allocate(geni.fed.slice_urn("s1"), geni.cred("s1"), invalid)
    assert code(r) == Code.BADARGS and "not a valid GENI v3 request" in r["output"]
    r = geni.alice.allocate("urn:publicid:IDN+x+user+y", geni.cred("s1"), two_hosts())
    assert code(r) == Code.BADARGS
    for urns in ([], ["not-a-urn"]):
        assert code(geni.alice.describe(urns, geni.cred("s1"))) == Code.BADARGS
    assert (
        code(geni.alice.describe([geni.fed.slice_urn("nothing")], geni.cred("nothing")))
        == Code.SEARCHFAILED
    )
    assert geni.slices() == 0


def test_requests_that_do_not_fit_get_their_codes(geni: Setup) -> None:
    urn, cred = geni.fed.slice_urn("s1"), geni.cred("s1")
    stranger = "urn:publicid:IDN+elsewhere.example+authority+cm"
    r = geni.alice.allocate(urn, cred, two_hosts(node_cm=stranger))
    assert code(r) == Code.SEARCHFAILED and stranger in r["output"]
    nowhere = request_rspec(AM, [("h1", "urn:publicid:IDN+beta.example+node+atlantis-v9")], [])
    assert code(geni.alice.allocate(urn, cred, nowhere)) == Code.SEARCHFAILED
    # 5 Gb/s where links carry 1 Gb/s; 200 Gb/s where none ever could.
    for kbps in (5_000_000, 200_000_000):
        fat = request_rspec(
            AM, [("h1", _on("prg-v1")), ("h2", _on("mil-v1"))], [("lan", ["h1", "h2"], kbps, None)]
        )
        r = geni.alice.allocate(urn, cred, fat)
        assert code(r) == Code.INSUFFICIENT_BANDWIDTH, r
    assert code(geni.alice.allocate(urn, cred, two_hosts(sliver_type="xen-vm"))) == Code.BADARGS
    assert geni.slices() == 0
    # A VLAN tag another slice holds.
    first = request_rspec(
        AM, [("a", _on("prg-v1")), ("b", _on("mil-v1"))], [("l", ["a", "b"], None, 1234)]
    )
    r = geni.alice.allocate(geni.fed.slice_urn("s2"), geni.cred("s2"), first)
    assert code(r) == 0, r
    manifest = etree.fromstring(r["value"]["geni_rspec"].encode())
    assert manifest.xpath("//*[local-name()='link']/@vlantag") == ["1234"]
    second = first.replace('client_id="a"', 'client_id="c"').replace("a:l", "c:l")
    r = geni.alice.allocate(geni.fed.slice_urn("s3"), geni.cred("s3"), second)
    assert code(r) == Code.VLAN_UNAVAILABLE and "1234" in r["output"], r
    assert geni.slices() == 1


def _on(host: str) -> str:
    return f"urn:publicid:IDN+beta.example+node+{host}"


def _key(tmp: Path) -> str:
    key = tmp / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text().strip()


def _states(answer: dict[str, Any]) -> set[tuple[str, str]]:
    slivers = (
        answer["value"]["geni_slivers"] if isinstance(answer["value"], dict) else answer["value"]
    )
    return {(s["geni_allocation_status"], s.get("geni_operational_status", "")) for s in slivers}


def test_the_whole_life_of_a_geni_slice(geni: Setup) -> None:
    urn, cred, me = geni.fed.slice_urn("life"), geni.cred("life"), geni.alice
    start_by = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = me.allocate(urn, cred, two_hosts(), geni_end_time=start_by)
    assert code(r) == 0, r
    assert _states(r) == {("geni_allocated", "geni_pending_allocation")}
    manifest = etree.fromstring(r["value"]["geni_rspec"].encode())
    assert rspec.problems(manifest, "manifest") == []
    assert manifest.get(f"{{{rspec.XSI}}}schemaLocation") == f"{rspec.NS} {rspec.NS}/manifest.xsd"
    assert code(me.allocate(urn, cred, two_hosts())) == Code.ALREADYEXISTS
    # geni_start before Provision: refused, and nothing runs.
    assert code(me.action([urn], cred, "geni_start")) == Code.BADARGS
    assert code(me.provision([urn], cred, [])) == Code.BADARGS
    r = me.provision([urn], cred, [{"urn": geni.fed.alice.urn, "keys": [_key(geni.tmp)]}])
    assert code(r) == 0, r
    assert _states(r) == {("geni_provisioned", "geni_notready")}
    worker = Worker(geni.ctx, name="geni-test")
    try:
        worker.run_once()  # the start is deferred until geni_start: nothing is built
        assert _states(me.status([urn], cred)) == {("geni_provisioned", "geni_notready")}
        r = me.action([urn], cred, "geni_dance")
        assert code(r) == Code.UNSUPPORTED and "geni_start" in r["output"]
        assert code(me.action([urn], cred, "geni_start")) == 0
        _run_until(
            worker, lambda: _states(me.status([urn], cred)) == {("geni_provisioned", "geni_ready")}
        )
        d = me.describe([urn], cred)
        assert code(d) == 0 and d["value"]["geni_urn"] == urn
        manifest = etree.fromstring(d["value"]["geni_rspec"].encode())
        assert rspec.problems(manifest, "manifest") == []
        login = manifest.find(f".//{{{rspec.NS}}}login")
        assert (
            login is not None
            and login.get("hostname") == "127.0.0.1"
            and int(login.get("port", "0")) > 0
        )
        assert login.get("username") == "root"
        # Sliver URNs address the same slice.
        slivers = [s["geni_sliver_urn"] for s in d["value"]["geni_slivers"]]
        assert code(me.status(slivers, cred)) == 0
        assert code(me.action([urn], cred, "geni_stop")) == 0
        assert _states(me.status([urn], cred)) == {("geni_provisioned", "geni_notready")}
        assert code(me.action([urn], cred, "geni_restart")) == 0
        assert _states(me.status([urn], cred)) == {("geni_provisioned", "geni_ready")}
        # Renew: later is fine; past the slice credential's expiry is not.
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = me.renew([urn], cred, later)
        assert code(r) == 0 and {s["geni_expires"] for s in r["value"]} == {later}
        too_late = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = me.renew([urn], cred, too_late)
        assert code(r) == Code.BADARGS and "expires" in r["output"]
        assert code(me.delete([urn], cred)) == 0
        _run_until(worker, lambda: code(me.status([urn], cred)) == Code.SEARCHFAILED)
    finally:
        worker.stop()
    with transaction(geni.ctx.read_sessions) as s:
        sl = s.scalars(select(Slice)).one()
        assert sl.status.value == "ended" and sl.project == PROJECT
        actors = set(s.scalars(select(AuditEntry.actor).where(AuditEntry.action.like("geni.%"))))
    assert actors == {geni.fed.alice.urn}


def test_shutdown_stops_the_slice_and_refuses_what_follows(geni: Setup) -> None:
    urn, cred, me = geni.fed.slice_urn("sd"), geni.cred("sd"), geni.alice
    assert code(me.allocate(urn, cred, two_hosts())) == 0
    r = me.shutdown(urn, cred)
    assert code(r) == 0 and r["value"] is True
    assert code(me.shutdown(urn, cred)) == 0  # idempotent
    # It is the facility's emergency stop, once, in the GENI user's name (operators lift).
    with transaction(geni.ctx.read_sessions) as s:
        stops = [(e.by, e.via, e.reason) for e in s.scalars(select(EStop))]
    assert stops == [(geni.fed.alice.urn, "geni", f"GENI Shutdown by {geni.fed.alice.urn}")]
    for r in (
        me.provision([urn], cred, [{"urn": geni.fed.alice.urn, "keys": [_key(geni.tmp)]}]),
        me.delete([urn], cred),
        me.renew([urn], cred, (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()),
        me.action([urn], cred, "geni_start"),
    ):
        assert code(r) == Code.REFUSED and "shut down" in r["output"]
    st = me.status([urn], cred)
    assert code(st) == 0 and {
        s["geni_operational_status"] for s in st["value"]["geni_slivers"]
    } == {"geni_failed"}


def test_an_allocation_not_provisioned_in_time_is_released(geni: Setup) -> None:
    urn, cred, me = geni.fed.slice_urn("late"), geni.cred("late"), geni.alice
    assert code(me.allocate(urn, cred, two_hosts())) == 0
    with transaction(geni.ctx.sessions) as s:
        sl = s.scalars(select(Slice)).one()
        ends = sorted(e.due for e in sl.events if e.kind.value == "end")
    minutes = geni.ctx.settings.geni_allocation_minutes
    assert ends[0] - sl.created_at <= dt.timedelta(minutes=minutes, seconds=5)
    from federica.clock import MovableClock

    clock = MovableClock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes + 1))
    later = make_context(geni.ctx.settings, engine=geni.ctx.engine, clock=clock)
    worker = Worker(later, name="geni-late")
    try:
        worker.run_once()
    finally:
        worker.stop()
    assert code(me.status([urn], cred)) == Code.SEARCHFAILED
    assert geni.slices() == 1  # kept as a record, ended


def _run_until(worker: Worker, done: Any, timeout_s: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        worker.run_once()
        time.sleep(0.05)


def test_an_advance_reservation_starts_at_its_window_not_at_geni_start(geni: Setup) -> None:
    urn, cred, me = geni.fed.slice_urn("later"), geni.cred("later"), geni.alice
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=1)
    r = me.allocate(
        urn,
        cred,
        two_hosts(),
        geni_start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        geni_end_time=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert code(r) == 0, r
    with transaction(geni.ctx.read_sessions) as s:
        sl = s.scalars(select(Slice)).one()
        assert (sl.start, sl.end) == (start, end)
    keys = [{"urn": geni.fed.alice.urn, "keys": [_key(geni.tmp)]}]
    assert code(me.provision([urn], cred, keys)) == 0
    assert code(me.action([urn], cred, "geni_start")) == 0
    worker = Worker(geni.ctx, name="geni-later")
    try:
        worker.run_once()  # not due before its window
    finally:
        worker.stop()
    st = me.status([urn], cred)
    assert _states(st) == {("geni_provisioned", "geni_configuring")}
    with transaction(geni.ctx.read_sessions) as s:
        sl = s.scalars(select(Slice)).one()
        assert sl.status.value == "scheduled"
        assert [e.due for e in sl.events if e.kind.value == "start"] == [start]
    # A window past the slice credential's expiry is refused before anything is booked.
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = me.allocate(geni.fed.slice_urn("far"), geni.cred("far"), two_hosts(), geni_end_time=far)
    assert code(r) == Code.BADARGS and "expires" in r["output"]
