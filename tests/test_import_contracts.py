"""The layers of docs/design.md hold (issues 24, 34): the contracts in pyproject.toml name every
core module, an upward import (the core importing an application, a core row importing a row
above it) breaks them, and the import graph of the installed package has no circle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACTS = {c["name"]: c for c in PYPROJECT["tool"]["importlinter"]["contracts"]}
CORE_CONTRACT = "the core never imports the applications, adapters or reference models"
NOT_CORE = {"apps", "__init__", "__main__"}
SHIM = "from trajprobe._moved import alias"  # an old path of a module that moved


def test_the_core_contract_names_every_core_module():
    core = {p.stem for p in (ROOT / "trajprobe").iterdir()
            if ((p.suffix == ".py" and SHIM not in p.read_text())
                or (p / "__init__.py").is_file()) and p.stem not in NOT_CORE}
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
    # the core's rows: the engine never imports the task catalogue, the protocol never the engine
    ("traces.py", "import trajprobe.tasks"),
    ("task_protocol.py", "import trajprobe.traces"),
    ("machine.py", "import trajprobe.task_protocol"),
])
def test_an_upward_import_breaks_the_contracts(installed, tmp_path, module, upward):
    assert _lint(installed).returncode == 0
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    path = site / "trajprobe" / module
    path.write_text(path.read_text() + f"\n{upward}  # deliberately upward\n")
    done = _lint(site)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout[-2000:]


# every import A -> B for which B also reaches A (TYPE_CHECKING imports included)
CIRCLES = """
import grimp
graph = grimp.build_graph("trajprobe")
for a in sorted(graph.modules):
    for b in sorted(graph.find_modules_directly_imported_by(a)):
        chain = graph.find_shortest_chain(importer=b, imported=a)
        if chain:
            print(a, "->", " -> ".join(chain))
"""


def test_the_import_graph_has_no_circle(installed):
    done = subprocess.run([sys.executable, "-c", CIRCLES], cwd=installed, capture_output=True,
                          text=True, check=True)
    assert done.stdout == "", f"import circles (module -> the chain back to it):\n{done.stdout}"


def test_the_circle_finder_finds_a_circle(installed, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    path = site / "trajprobe" / "task_protocol.py"
    path.write_text(path.read_text() + "\nimport trajprobe.traces  # deliberately circular\n")
    done = subprocess.run([sys.executable, "-c", CIRCLES], cwd=site, capture_output=True,
                          text=True, check=True)
    assert "trajprobe.task_protocol -> trajprobe.traces -> trajprobe.task_protocol" in done.stdout
