"""Request RSpecs read into slice requests; advertisements and manifests written and
checked against the vendored GENI v3 schemas."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from federica.geni import rspec
from federica.geni.codes import Code, GeniError
from tests.geni.support import request_rspec

AM = "urn:publicid:IDN+beta.example+authority+am"
HOSTS = {"prg-v1": "PRG", "mil-v1": "MIL"}
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def parse(text: str) -> rspec.Parsed:
    return rspec.parse_request(text, am_urn=AM, authority="beta.example", host_pops=HOSTS)


def refused(text: str) -> GeniError:
    with pytest.raises(GeniError) as exc:
        parse(text)
    return exc.value


def test_a_request_becomes_nodes_and_circuits() -> None:
    text = request_rspec(
        AM,
        [("a", "urn:publicid:IDN+beta.example+node+prg-v1"), ("b", None), ("c", None)],
        [("ab", ["a", "b"], 1500, None), ("abc", ["a", "b", "c"], None, 777)],
        sliver_type="router",
    )
    p = parse(text)
    assert p.nodes == [
        {"name": "a", "pop": "PRG", "kind": "router"},
        {"name": "b", "kind": "router"},
        {"name": "c", "kind": "router"},
    ]
    # 1500 kb/s is 2 Mb/s (never less than asked); no capacity: the default.
    assert p.circuits == [
        {"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 2},
        {"name": "abc", "endpoints": ["a", "b", "c"], "bandwidth_mbps": rspec.DEFAULT_MBPS},
    ]
    assert p.vlans == {"abc": 777}


def test_what_is_not_here_is_searchfailed() -> None:
    stranger = "urn:publicid:IDN+other.example+authority+cm"
    assert refused(request_rspec(AM, [("a", None)], [], node_cm=stranger)).code is Code.SEARCHFAILED
    text = request_rspec(AM, [("a", "urn:publicid:IDN+beta.example+node+zzz")], [])
    assert refused(text).code is Code.SEARCHFAILED
    text = request_rspec(AM, [("a", None), ("b", None)], [("l", ["a", "b"], None, None)])
    text = text.replace(
        f'<component_manager name="{AM}"/>', f'<component_manager name="{stranger}"/>'
    )
    err = refused(text)
    assert err.code is Code.SEARCHFAILED and "link l" in err.output


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (('client_id="a"', 'client_id="A b"'), Code.BADARGS, "client_id"),
        (('<sliver_type name="host"/>', '<sliver_type name="xen"/>'), Code.BADARGS, "offered"),
        (('exclusive="false"', 'exclusive="true"'), Code.UNSUPPORTED, "exclusive"),
        (('capacity="1000"', 'capacity="fast"'), Code.BADARGS, "kb/s"),
        (('capacity="1000"', 'capacity="200000000"'), Code.INSUFFICIENT_BANDWIDTH, "Mb/s"),
        (('vlantag="5"', 'vlantag="5000"'), Code.BADARGS, "1..4094"),
        (
            ('<interface_ref client_id="b:l"/>', '<interface_ref client_id="z:l"/>'),
            Code.BADARGS,
            "no interface",
        ),
        (('type="request"', 'type="manifest"'), Code.BADARGS, "not a GENI v3 request"),
        (("<sliver_type", "<nonsense/><sliver_type"), Code.BADARGS, "not a valid GENI v3 request"),
        (("</rspec>", ""), Code.BADARGS, "well-formed"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(
    change: tuple[str, str], code: Code, words: str
) -> None:
    text = request_rspec(AM, [("a", None), ("b", None)], [("l", ["a", "b"], 1000, 5)])
    assert change[0] in text
    err = refused(text.replace(change[0], change[1], 1))
    assert err.code is code and words in err.output, err.output


def test_no_entity_is_ever_resolved() -> None:
    text = request_rspec(AM, [("a", None)], [])
    xxe = '<?xml version="1.0"?><!DOCTYPE rspec [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
    err = refused(xxe + text.replace('client_id="a"', 'client_id="&x;"'))
    assert err.code is Code.BADARGS
    assert refused("").code is Code.BADARGS
    assert refused("x" * (rspec.MAX_RSPEC_BYTES + 1)).code is Code.TOOBIG


def test_the_advertisement_and_manifest_pass_their_schemas() -> None:
    ad = rspec.advertisement(
        am_urn=AM,
        authority="beta.example",
        hosts=[rspec.AdHost("prg-v1", "PRG", "CZ", 50.08, 14.43, True)],
        links=[rspec.AdLink("prg-erl", "prg-mx:ge-0/0/0", "erl-mx:ge-0/0/0", 900_000)],
        now=NOW,
    )
    doc = etree.fromstring(ad)
    assert rspec.problems(doc, "advertisement") == []
    assert doc.get(f"{{{rspec.XSI}}}schemaLocation") == f"{rspec.NS} {rspec.NS}/ad.xsd"
    manifest = rspec.manifest(
        am_urn=AM,
        authority="beta.example",
        nodes=[
            rspec.ManifestNode(
                "a",
                "prg-v1",
                "host",
                "debian",
                "urn:publicid:IDN+beta.example+sliver+s1-node-a",
                [("eth1", "10.0.1.1/24")],
            ),
            rspec.ManifestNode(
                "b",
                "prg-v1",
                "host",
                "debian",
                "urn:publicid:IDN+beta.example+sliver+s1-node-b",
                [("eth1", "10.0.1.2/24")],
            ),
        ],
        links=[
            rspec.ManifestLink(
                "l", "urn:publicid:IDN+beta.example+sliver+s1-link-l", 100, 10, ["a:eth1", "b:eth1"]
            )
        ],
        login=rspec.Login("127.0.0.1", 2222, "root"),
        expires=NOW + dt.timedelta(hours=1),
        now=NOW,
    )
    doc = etree.fromstring(manifest)
    assert rspec.problems(doc, "manifest") == []
    assert doc.xpath("//*[local-name()='ip']/@netmask") == ["255.255.255.0"] * 2
    # The schemas do refuse: a manifest link without its VLAN tag is not a manifest.
    link = doc.find(f"{{{rspec.NS}}}link")
    assert link is not None
    del link.attrib["vlantag"]
    assert any("vlantag" in p for p in rspec.problems(doc, "manifest"))
