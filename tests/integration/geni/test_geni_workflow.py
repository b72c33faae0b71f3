"""A GENI client builds a slice on the real emulated facility through the AM API v3:
Allocate → Provision → geni_start → Status ready → ping between the nodes and a login
through the manifest's login service → Renew → Delete → nothing left anywhere."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from federica.context import make_context
from federica.db import transaction
from federica.federation import identity
from federica.geni import rspec
from federica.geni.codes import Code
from federica.geni.models import GeniSlice
from federica.slices import runner, service
from federica.worker import Worker
from tests.accounts import ensure_project
from tests.geni.client import GeniClient, code, sfa
from tests.geni.credentials import credential
from tests.geni.support import PROJECT, am_listener, make_federation, request_rspec
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import (
    address_of,
    known_hosts_for,
    node_namespace,
    pings,
    slice_residue,
    ssh,
)

pytestmark = [pytest.mark.integration, needs_root]


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_geni_slice_on_the_emulated_facility(emulated_core4: Facility, tmp_path: Path) -> None:
    fac = emulated_core4
    fac.wipe()
    fed = make_federation(tmp_path / "geni")
    ctx = make_context(
        dataclasses.replace(fac.settings, geni_authorities_file=fed.authorities_file),
        engine=fac.context.engine,
    )
    ensure_project(ctx, PROJECT)
    try:
        beta = identity.load(fac.settings.data_dir)
    except identity.NoIdentity:
        beta = identity.init(
            fac.settings.data_dir, "beta", "beta.example", hosts=["127.0.0.1"],
            now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    am = f"urn:publicid:IDN+{beta.authority}+authority+am"
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    urn = fed.slice_urn("emu")
    cred = sfa(credential(owner=fed.alice, target_urn=urn, signer=fed.sa, chain=(fed.root.cert,)))
    request = request_rspec(
        am,
        [("h1", f"urn:publicid:IDN+{beta.authority}+node+prg-v1"),
         ("h2", f"urn:publicid:IDN+{beta.authority}+node+erl-v1")],
        [("lan", ["h1", "h2"], 100_000, None)],
    )  # fmt: skip
    worker = Worker(ctx, name="geni-e2e")
    body: dict[str, Any] | None = None
    shut_down = False
    with am_listener(ctx) as url:
        me = GeniClient(url, fed.alice, beta.ca_pem, tmp_path / "alice", fed.sa.cert_pem)
        try:
            ends = _stamp(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
            r = me.allocate(urn, cred, request, geni_end_time=ends)
            assert code(r) == 0, r
            r = me.provision(
                [urn], cred, [{"urn": fed.alice.urn, "keys": [key.with_suffix(".pub").read_text()]}]
            )
            assert code(r) == 0, r
            assert code(me.action([urn], cred, "geni_start")) == 0
            deadline = time.monotonic() + 120
            while True:
                st = me.status([urn], cred)
                states = {s["geni_operational_status"] for s in st["value"]["geni_slivers"]}
                if states == {"geni_ready"}:
                    break
                assert "geni_failed" not in states, st
                assert time.monotonic() < deadline, st
                worker.run_once()
                time.sleep(0.1)
            with transaction(ctx.read_sessions) as s:
                g = s.query(GeniSlice).filter_by(slice_urn=urn).one()
                body = service.describe(g.slice)
            # Packets cross the circuit the request asked for.
            assert pings(node_namespace(fac, body, "h1"), address_of(body, "h2", "lan"))
            assert pings(node_namespace(fac, body, "h2"), address_of(body, "h1", "lan"))
            # The manifest names the login service; the key given to Provision logs in.
            d = me.describe([urn], cred)
            manifest = etree.fromstring(d["value"]["geni_rspec"].encode())
            assert rspec.problems(manifest, "manifest") == []
            login = manifest.find(f".//{{{rspec.NS}}}login")
            assert login is not None
            port = int(login.get("port", "0"))
            known = known_hosts_for(
                tmp_path / "known_hosts", port, fac.settings.gateway_dir, body["id"]
            )
            out = ssh(key, port, "h2", "ip -4 -o addr show dev eth1", known_hosts=known)
            assert out.returncode == 0 and address_of(body, "h2", "lan") in out.stdout, out.stderr
            later = _stamp(dt.datetime.now(dt.UTC) + dt.timedelta(hours=6))
            r = me.renew([urn], cred, later)
            assert code(r) == 0 and {s["geni_expires"] for s in r["value"]} == {later}
            # Shutdown is the emergency stop: packets stop at once, the slice is kept,
            # later calls are refused; the facility's operators release it.
            r = me.shutdown(urn, cred)
            assert code(r) == 0 and r["value"] is True
            assert not pings(node_namespace(fac, body, "h1"), address_of(body, "h2", "lan"))
            assert code(me.renew([urn], cred, later)) == Code.REFUSED
            assert code(me.delete([urn], cred)) == Code.REFUSED
            shut_down = True
            with transaction(ctx.sessions) as s:
                runner.request_release(s, service.get(s, body["id"]), ctx.now(), staff=True)
        finally:
            if shut_down:
                deadline = time.monotonic() + 120
                while code(me.status([urn], cred)) == 0 and _live(ctx, urn):
                    assert time.monotonic() < deadline, "not released"
                    worker.run_once()
                    time.sleep(0.1)
            elif body is not None or code(me.status([urn], cred)) == 0:
                assert code(me.delete([urn], cred)) == 0
                deadline = time.monotonic() + 120
                while code(me.status([urn], cred)) == 0:
                    assert time.monotonic() < deadline, "not released"
                    worker.run_once()
                    time.sleep(0.1)
            worker.stop()
    assert body is not None
    assert slice_residue(fac, body) == []


def _live(ctx: Any, urn: str) -> bool:
    """The GENI slice's local slice has not ended yet."""
    with transaction(ctx.read_sessions) as s:
        g = s.query(GeniSlice).filter_by(slice_urn=urn).order_by(GeniSlice.id.desc()).first()
        return g is not None and g.slice.status.value != "ended"
