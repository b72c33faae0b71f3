"""One GENI federation for the tests: a clearinghouse root CA, a slice authority under
it, users; the aggregate's authorities file; a running AM listener; request RSpecs."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from federica.context import Context
from federica.federation import identity
from federica.web.geni.listener import make_aggregate, make_server
from tests.geni.credentials import Holder, issue

AUTHORITY = "ch.test"
PROJECT = "geni-ch"


@dataclass(frozen=True)
class Federation:
    root: Holder  # the clearinghouse CA (a trust root)
    sa: Holder  # its slice authority (signs credentials)
    alice: Holder
    bob: Holder
    authorities_file: Path

    def slice_urn(self, name: str) -> str:
        return f"urn:publicid:IDN+{AUTHORITY}:proj+slice+{name}"


def make_federation(root_dir: Path) -> Federation:
    root_dir.mkdir(parents=True, exist_ok=True)
    root = issue(f"urn:publicid:IDN+{AUTHORITY}+authority+ca", ca=True, days=365)
    sa = issue(f"urn:publicid:IDN+{AUTHORITY}+authority+sa", issuer=root, ca=True, days=365)
    alice = issue(f"urn:publicid:IDN+{AUTHORITY}+user+alice", issuer=sa)
    bob = issue(f"urn:publicid:IDN+{AUTHORITY}+user+bob", issuer=sa)
    (root_dir / "ch.pem").write_text(root.cert_pem)
    authorities = root_dir / "geni-authorities.yaml"
    authorities.write_text(
        f"authorities:\n  - authority: {AUTHORITY}\n    ca: ch.pem\n    project: {PROJECT}\n"
    )
    return Federation(root, sa, alice, bob, authorities)


@contextmanager
def am_listener(context: Context) -> Iterator[str]:
    """The AM API served on a free port of 127.0.0.1; yields its URL."""
    am = make_aggregate(context, "127.0.0.1", 0)
    server = make_server(context, "127.0.0.1", 0, aggregate=am)
    server.expiration_interval = 0.05  # stop() waits up to one (cheroot's: 0.5 s)
    server.prepare()
    url = f"https://127.0.0.1:{server.bind_addr[1]}/"
    am.url = url
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.stop()
        thread.join(timeout=30)


def facility_identity(context: Context, name: str = "beta") -> identity.Facility:
    return identity.init(
        context.settings.data_dir,
        name,
        f"{name}.example",
        hosts=["127.0.0.1"],
        now=dt.datetime.now(dt.UTC),
    )


def request_rspec(
    am_urn: str,
    nodes: list[tuple[str, str | None]],
    links: list[tuple[str, list[str], int | None, int | None]],
    *,
    sliver_type: str = "host",
    node_cm: str | None = None,
) -> str:
    """nodes: (client_id, component_id or None); links: (client_id, node ends, capacity
    kb/s or None, VLAN tag or None)."""
    ifaces: dict[str, list[str]] = {n: [] for n, _ in nodes}
    for name, ends, _cap, _tag in links:
        for end in ends:
            ifaces[end].append(f"{end}:{name}")
    out = [
        '<rspec type="request" xmlns="http://www.geni.net/resources/rspec/3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:sharedvlan="http://www.protogeni.net/resources/rspec/ext/shared-vlan/1" '
        'xsi:schemaLocation="http://www.geni.net/resources/rspec/3 '
        'http://www.geni.net/resources/rspec/3/request.xsd">'
    ]
    for name, component in nodes:
        cid = f' component_id="{component}"' if component else ""
        out.append(
            f'<node client_id="{name}" component_manager_id="{node_cm or am_urn}"{cid} '
            f'exclusive="false"><sliver_type name="{sliver_type}"/>'
        )
        out += [f'<interface client_id="{i}"/>' for i in ifaces[name]]
        out.append("</node>")
    for name, ends, capacity, tag in links:
        out.append(f'<link client_id="{name}"><component_manager name="{am_urn}"/>')
        out += [f'<interface_ref client_id="{e}:{name}"/>' for e in ends]
        if capacity is not None:
            out.append(
                f'<property source_id="{ends[0]}:{name}" dest_id="{ends[1]}:{name}" '
                f'capacity="{capacity}"/>'
            )
        if tag is not None:
            out.append(f'<sharedvlan:link_shared_vlan name="v{tag}" vlantag="{tag}"/>')
        out.append("</link>")
    out.append("</rspec>")
    return "\n".join(out)
