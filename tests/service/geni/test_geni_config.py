"""Starting the AM API: what it needs, and a broken authorities file named field by field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from federica.app import geni_server
from federica.context import Context, make_context
from federica.errors import InvalidInput
from federica.federation.identity import NoIdentity
from federica.geni import trust
from tests.geni.support import facility_identity, make_federation


def test_the_listener_needs_an_authorities_file(db: Context) -> None:
    facility_identity(db)
    with pytest.raises(NoIdentity, match="FEDERICA_GENI_AUTHORITIES_FILE"):
        geni_server(db, "127.0.0.1", 0)


def test_a_broken_authorities_file_is_refused_naming_each_field(tmp_path: Path) -> None:
    fed = make_federation(tmp_path / "geni")
    assert [a.name for a in trust.load(fed.authorities_file).authorities] == ["ch.test"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "authorities:\n"
        "  - {authority: ch.test, ca: missing.pem, project: p}\n"
        "  - {authority: ch.test, ca: geni/ch.pem, project: p}\n"
        "  - {authority: 'Not Valid', ca: geni/ch.pem, project: p, colour: red}\n"
    )
    with pytest.raises(InvalidInput) as exc:
        trust.load(bad)
    fields = {e.field for e in exc.value.errors}
    assert {"authorities[2].authority", "authorities[2].colour"} <= fields
    bad.write_text(
        "authorities:\n"
        "  - {authority: ch.test, ca: missing.pem, project: p}\n"
        "  - {authority: ch.test, ca: geni/ch.pem, project: p}\n"
    )
    with pytest.raises(InvalidInput) as exc:
        trust.load(bad)
    assert {e.field for e in exc.value.errors} == {"authorities[0].ca", "authorities[1].authority"}
    with pytest.raises(InvalidInput, match="cannot read"):
        trust.load(tmp_path / "nowhere.yaml")


def test_the_listener_starts_with_its_authorities(db: Context, tmp_path: Path) -> None:
    fed = make_federation(tmp_path / "geni")
    facility_identity(db)
    ctx = make_context(
        dataclasses.replace(db.settings, geni_authorities_file=fed.authorities_file),
        engine=db.engine,
    )
    server = geni_server(ctx, "127.0.0.1", 0)
    server.expiration_interval = 0.05  # stop() waits up to one (cheroot's: 0.5 s)
    server.prepare()
    try:
        assert server.bind_addr[1] > 0
    finally:
        server.stop()
