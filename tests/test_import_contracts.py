"""The layers of docs/design.md hold (issue 24): the contracts in pyproject.toml name every
core module, and an upward import (the core importing an application) breaks them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACTS = {c["name"]: c for c in PYPROJECT["tool"]["importlinter"]["contracts"]}
CORE_CONTRACT = "the core never imports the applications, adapters or reference models"
NOT_CORE = {"apps", "__init__", "__main__"}


def test_the_core_contract_names_every_core_module():
    core = {p.stem for p in (ROOT / "trajprobe").iterdir()
            if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.stem not in NOT_CORE}
    listed = {m.removeprefix("trajprobe.") for m in CONTRACTS[CORE_CONTRACT]["source_modules"]}
    assert listed == core, (f"core modules missing from the contract: {sorted(core - listed)}; "
                            f"listed but gone: {sorted(listed - core)}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory, builder_python) -> Path:
    """The package laid out as a wheel installs it (adapters/ inside trajprobe/)."""
    if shutil.which("lint-imports") is None:
        pytest.skip("needs import-linter: pip install -e '.[dev]'")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([builder_python, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)],
                   check=True, capture_output=True)
    return target


def _lint(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["lint-imports", "--config", str(ROOT / "pyproject.toml")], cwd=site,
                          capture_output=True, text=True)


@pytest.mark.parametrize(("module", "upward"), [
    ("measurement.py", "import trajprobe.apps.recipes"),
    ("task_protocol.py", "import trajprobe.reference_models"),
    ("adapters/torch_rnn.py", "import trajprobe.apps.training"),
    ("apps/models.py", "import trajprobe.apps.cli"),
])
def test_an_upward_import_breaks_the_contracts(installed, tmp_path, module, upward):
    assert _lint(installed).returncode == 0
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    path = site / "trajprobe" / module
    path.write_text(path.read_text() + f"\n{upward}  # deliberately upward\n")
    done = _lint(site)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout[-2000:]
