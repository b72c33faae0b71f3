"""Facilities for federation service tests: identities in temporary directories, and
this test's database holding the second facility's substrate (tests/data/jgn3.yaml)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from federica.context import Context
from federica.db import transaction
from federica.federation import identity
from federica.substrate.inventory import apply_topology
from federica.substrate.topology import parse_topology
from tests.conftest import DATA


def make_facility(root: Path, name: str) -> identity.Facility:
    return identity.init(
        root / name,
        name,
        f"{name}.example",
        hosts=["127.0.0.1", "localhost"],
        now=dt.datetime.now(dt.UTC),
    )


@pytest.fixture(scope="session")
def facilities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, identity.Facility]:
    """alpha (the calling peer), gamma (another peer) and mallory (a CA nobody trusts)."""
    root = tmp_path_factory.mktemp("facilities")
    return {name: make_facility(root, name) for name in ("alpha", "gamma", "mallory")}


@pytest.fixture
def beta(db: Context) -> identity.Facility:
    """The facility under test: its identity in its data directory, its substrate loaded."""
    with transaction(db.sessions) as session:
        apply_topology(session, parse_topology((DATA / "jgn3.yaml").read_bytes()))
    return identity.init(
        db.settings.data_dir,
        "beta",
        "beta.example",
        hosts=["127.0.0.1"],
        now=dt.datetime.now(dt.UTC),
    )
