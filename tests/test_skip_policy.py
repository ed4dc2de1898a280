"""Every test runs somewhere: the skip policy of tests/conftest.py (TRAJPROBE_CHECK_SKIPS,
TRAJPROBE_FULL_INSTALL) and the markers that .ci/run's extras stages select by."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

HERE = Path(__file__).parent


def _conftest():
    spec = importlib.util.spec_from_file_location("_trajprobe_conftest", HERE / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conftest = _conftest()


def _missing(extra: str) -> bool:
    return extra == "jax"  # jax missing, the others installed


@pytest.mark.parametrize("skip, full, explained", [
    (("t::a", "needs a machine with CUDA", frozenset()), True, True),
    (("t::a", "this JAX sees a GPU", frozenset()), True, True),
    (("t::a", "cannot mount a tmpfs here: permission denied", frozenset()), True, True),
    # an extra's marker explains a skip while that extra is missing, and only then
    (("t::a", "needs trajprobe[jax]", frozenset({"jax"})), False, True),
    (("t::a", "needs trajprobe[jax]", frozenset({"jax"})), True, False),
    (("t::a", "needs trajprobe[dsa]", frozenset({"dsa"})), False, False),
    # an unmarked test skipped for a missing module runs in no stage of .ci/run
    (("t::a", "could not import 'jax': No module named 'jax'", frozenset()), False, False),
    (("t::a", "no reason", frozenset()), False, False),
    # a module skipped at import (markers unknown): by the missing extra it names
    (("t.py", "could not import 'jax.numpy': No module named 'jax'", None), False, True),
    (("t.py", "could not import 'DSA': No module named 'DSA'", None), False, False),
    (("t.py", "could not import 'sybil'", None), False, False),
])
def test_a_skip_is_explained_by_hardware_or_a_missing_marked_extra(skip, full, explained):
    bad = conftest.unexplained([skip], full_install=full, is_installed=lambda e: not _missing(e))
    assert (bad == []) == explained, bad


def test_every_extra_is_a_registered_marker_and_a_pyproject_extra():
    pyproject = tomllib.loads((HERE.parent / "pyproject.toml").read_text())
    markers = {m.split(":")[0] for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]}
    extras = set(pyproject["project"]["optional-dependencies"])
    assert set(conftest.EXTRAS) <= markers & extras
    assert any(d.startswith("setuptools>=70.1")
               for d in pyproject["project"]["optional-dependencies"]["dev"])


_SUITE = '''
import pytest

def test_runs():
    pass

def test_skips_for_no_reason():
    pytest.skip("the author forgot why")

def test_skips_for_hardware():
    pytest.skip("needs a machine with CUDA")
'''


@pytest.mark.parametrize("env, failed", [({}, False), ({"TRAJPROBE_CHECK_SKIPS": "1"}, True)])
def test_an_unexplained_skip_fails_the_session_when_checked(tmp_path, env, failed):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(_SUITE)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TRAJPROBE_CHECK_SKIPS", "TRAJPROBE_FULL_INSTALL")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, env={**environ, **env}, timeout=300)
    assert done.returncode == (1 if failed else 0), done.stdout + done.stderr
    assert ("test_skips_for_no_reason: the author forgot why" in done.stdout) == failed
    assert "test_skips_for_hardware: needs" not in done.stdout
