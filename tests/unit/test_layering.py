"""The layering contracts (.importlinter) hold for the package, and break when a module
imports across them: a copy of the package with one forbidden import is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: grimp must analyse the copy, not the installed package.
    env = os.environ | {"PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / ".importlinter"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "federica", tmp_path / "federica", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_the_package_keeps_its_contracts(package_copy: Path) -> None:
    result = lint(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("substrate/inventory.py", "import federica.slices.service", "The substrate never imports"),
        ("substrate/drivers/fake.py", "import federica.aaa.accounts", "Adapters do I/O only"),
        ("slices/service.py", "import federica.web.problems", "Nothing imports web"),
        ("worker.py", "import federica.app", "Entry points over the composition root"),
        ("slices/lifecycle.py", "import sqlalchemy", "Pure logic has no I/O"),
        ("federation/client.py", "import federica.federation.peers", "Adapters do I/O only"),
        ("federation/peers.py", "import federica.web.context", "Nothing imports web"),
        ("federation/agreement.py", "import sqlalchemy", "Pure logic has no I/O"),
        # Per-slice monitoring sits above both slices and monitoring, below the alarms.
        ("monitoring/store.py", "import federica.slicestats.queries", "Entry points over"),
        ("slicestats/queries.py", "import federica.alarms.service", "Entry points over"),
    ],
)
def test_a_forbidden_import_breaks_the_contracts(
    package_copy: Path, module: str, line: str, contract: str
) -> None:
    path = package_copy / "federica" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint(package_copy)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
