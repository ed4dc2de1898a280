"""Shared test fixtures."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

import pytest
import torch

PINS = Path(__file__).parent / "data" / "reproduce_smoke_pins.json"
"""Written by ``python tests/regenerate_pins.py`` (its docstring says how): per target the
rows, the tolerance from the measured 1-vs-2-thread spread, and what they were recorded
with."""


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tests (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): the simulation maps are small, and on a
    loaded 2-core machine two threads thrash (a 30x slowdown measured)."""
    from trajprobe.devices import one_thread as only_one

    with only_one():
        yield


@pytest.fixture
def assert_pinned() -> Callable[..., None]:
    """``check(out_dir, target)``: the run's ``summary.json`` equals the pinned rows, each to
    its recorded ``rtol`` (relative; 1e-8 absolute), NaN to NaN and inf to inf.

    A row's rtol is ten times the spread measured between one and two torch threads (other
    thread counts sum in other orders), at least 1e-6. Under another torch release than the
    recorded one (.ci/run's floor stage) the rows are checked to 1e-3: some kernels sum in
    another order there (on torch 2.2 the coupled bandit Meta-Learner's expected reward
    moves by 2e-4, relative; the bandit target's closed-loop Bayes reward moves more, and
    the floor stage deselects that test).
    """

    def check(out_dir: Path, target: str) -> None:
        data = json.loads(PINS.read_text())
        if "targets" not in data:  # the hand-recorded file before regenerate_pins.py
            data = {"recorded_with": {"torch": "2.13.0"}, "targets": {t: {"rtol": 1e-6, "rows": [
                {"quantity": q, "agent": a, "ours": v} for q, a, v in rows]}
                for t, rows in data.items()}}
        entry = data["targets"][target]
        rtol = entry.get("rtol", 1e-6)  # each row's own rtol, from its spread, when recorded
        recorded = data["recorded_with"]["torch"].split("+")[0].rsplit(".", 1)[0]
        if not torch.__version__.startswith(recorded + "."):
            rtol = max(rtol, 1e-3)
        rows = json.loads((Path(out_dir) / "summary.json").read_text())
        pinned = [(r["quantity"], r["agent"], r["ours"], max(rtol, r.get("rtol", rtol)))
                  for r in entry["rows"]]
        assert [(r["quantity"], r["agent"]) for r in rows] == [(q, a) for q, a, *_ in pinned]
        for row, (quantity, agent, value, tol) in zip(rows, pinned, strict=True):
            ours = row["ours"]
            assert (math.isnan(ours) and math.isnan(value)) or math.isclose(
                ours, value, rel_tol=tol, abs_tol=1e-8), (quantity, agent, ours, value, tol)

    return check


_CAN_BUILD = (
    "import importlib.util, sys, setuptools;"
    "v = tuple(int(p) for p in setuptools.__version__.split('.')[:2]);"
    "sys.exit(0 if v >= (70, 1) or (v >= (68, 0) and importlib.util.find_spec('wheel')) else 1)"
)


@pytest.fixture(scope="session")
def builder_python() -> str:
    """An interpreter that can build the wheel without build isolation (no network): this
    one, or, in a fresh virtualenv whose setuptools is too old for pyproject's
    build-system (>= 68 with wheel), the base interpreter it was made from."""
    for python in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", "")]):
        if python and subprocess.run([python, "-c", _CAN_BUILD],
                                     capture_output=True).returncode == 0:
            return python
    pytest.skip("no interpreter here has setuptools >= 70.1 (or >= 68 and wheel) to build "
                "the wheel offline: pip install -e '.[dev]' brings it")


# ------------------------------------------------------------- every test runs somewhere
# A test that needs an optional extra carries its marker (pyproject [tool.pytest]): it is
# skipped here when the extra is missing, and .ci/run's stage for that extra selects it by
# marker (-m jax). With TRAJPROBE_CHECK_SKIPS=1 (.ci/run) a skip must be explained: by
# missing hardware or privileges (HARDWARE), or by the missing extra of a marker the test
# carries; a module that imports an extra must mark its tests. With TRAJPROBE_FULL_INSTALL=1
# (.ci/run's last stage, every extra installed) only HARDWARE explains a skip.

EXTRAS = {
    "jax": ("jax", "haiku", "flax", "equinox", "optax"),
    "transformers": ("transformers",),
    "dsa": ("DSA",),
    "gymnasium": ("gymnasium",),
    "neurogym": ("neurogym",),
}
"""Marker (= pyproject extra) -> the modules it installs."""
OWN_VENV = frozenset({"neurogym"})
"""Extras .ci/run tests in a venv of their own (neurogym pins numpy 2.2, matplotlib 3.10 and
gymnasium 0.29): TRAJPROBE_FULL_INSTALL=1 does not require them beside the others."""
HARDWARE = re.compile(r"CUDA|MPS|GPU|cannot mount a tmpfs")
"""Skip reasons that no install can remove: missing hardware, missing privileges."""


@functools.cache
def installed(extra: str) -> bool:
    """Every module of ``extra`` can be imported here."""
    return all(importlib.util.find_spec(m) is not None for m in EXTRAS[extra])


def _extra_of(module: str) -> str | None:
    top = module.split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def unexplained(skips: Iterable[tuple[str, str, frozenset[str] | None]], *, full_install: bool,
                is_installed: Callable[[str], bool] = installed) -> list[str]:
    """The skips no rule explains, as ``"nodeid: reason"`` lines.

    Args:
        skips: ``(nodeid, reason, markers)`` of each skipped test, or of a module skipped
            at import (markers None: unknown).
        full_install: every extra should be installed: only HARDWARE (or a missing extra
            of OWN_VENV) explains a skip.
        is_installed: ``extra -> bool``.
    """
    bad = []
    for nodeid, reason, markers in skips:
        if HARDWARE.search(reason):
            continue
        may_miss = OWN_VENV if full_install else EXTRAS.keys()
        if markers is None:  # a module skipped at import (its tests: _unmarked_users)
            imported = re.search(r"could not import '([\w.]+)'", reason)
            extra = _extra_of(imported.group(1)) if imported else None
            if extra in may_miss and not is_installed(extra):
                continue
        elif any(m in may_miss and not is_installed(m) for m in markers):
            continue
        bad.append(f"{nodeid}: {reason}")
    return bad


_MODULE_LEVEL_SKIP = re.compile(r"^\w+ = pytest\.importorskip\(\"([\w.]+)\"", re.MULTILINE)


@functools.cache
def _needed_at_import(module: ModuleType) -> frozenset[str]:
    """The extras a test module needs to import at all (a module-level importorskip)."""
    source = Path(module.__file__).read_text(encoding="utf-8")
    return frozenset(e for e in map(_extra_of, _MODULE_LEVEL_SKIP.findall(source)) if e)


def _unmarked_users(items) -> list[str]:
    """Tests of a module skipped at import without an extra, that lack its marker (they
    would run in no stage of .ci/run: the extra's stage selects by marker)."""
    bad = []
    for item in items:
        module = getattr(item, "module", None)
        for extra in sorted(_needed_at_import(module) if module is not None else ()):
            if item.get_closest_marker(extra) is None:
                bad.append(f"{item.nodeid}: its module skips at import without trajprobe[{extra}]; "
                           f"mark it @pytest.mark.{extra}")
    return bad


def _checking() -> tuple[bool, bool]:
    full = os.environ.get("TRAJPROBE_FULL_INSTALL") == "1"
    return full or os.environ.get("TRAJPROBE_CHECK_SKIPS") == "1", full


_SKIPS = pytest.StashKey[list]()
_PROBLEMS = pytest.StashKey[list]()
_CONFIG: list[pytest.Config] = []  # the reports do not carry it


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SKIPS] = []
    config.stash[_PROBLEMS] = []
    _CONFIG[:] = [config]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked with a missing extra, unless marked ``partly=True`` (it runs
    without the extra and skips only the parts that need it, e.g. a docs page)."""
    for extra in EXTRAS:
        marker = item.get_closest_marker(extra)
        if marker is not None and not marker.kwargs.get("partly") and not installed(extra):
            pytest.skip(f"needs trajprobe[{extra}]: pip install -e '.[{extra}]'")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _checking()[0]:  # before -m deselects: every test, marked or not
        config.stash[_PROBLEMS].extend(_unmarked_users(items))


def _reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _CONFIG[0].stash[_SKIPS].append((report.nodeid, _reason(report), None))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        markers = frozenset(k for k in report.keywords if k in EXTRAS)
        _CONFIG[0].stash[_SKIPS].append((report.nodeid, _reason(report), markers))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    check, full = _checking()
    if not check:
        return
    problems = session.config.stash[_PROBLEMS]
    if full:
        problems += [f"TRAJPROBE_FULL_INSTALL=1 but trajprobe[{e}] is not installed"
                     for e in EXTRAS if e not in OWN_VENV and not installed(e)]
    problems += unexplained(session.config.stash[_SKIPS], full_install=full)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    problems = config.stash[_PROBLEMS]
    if problems:
        terminalreporter.section("skips no install explains (TRAJPROBE_CHECK_SKIPS)", red=True)
        for line in problems:
            terminalreporter.line(line)
