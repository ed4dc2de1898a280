"""Module paths that moved warn with a DeprecationWarning naming the new place and give the
new module itself (trajprobe._moved); none is imported by ``import trajprobe``."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

# old path -> new path (the layout changes of issues 24 and 34)
MOVED = {
    "trajprobe.cli": "trajprobe.apps.cli",
    "trajprobe.models": "trajprobe.apps.models",
    "trajprobe.sweep": "trajprobe.apps.sweep",
    "trajprobe.recipes": "trajprobe.apps.recipes",
    "trajprobe.reproduce": "trajprobe.apps.reproduce",
    "trajprobe.training": "trajprobe.apps.training",
    "trajprobe.closed_loop": "trajprobe.apps.training.closed_loop",
    "trajprobe.tasks.base": "trajprobe.task_protocol",
    "trajprobe.tasks.checks": "trajprobe.task_checks",
}
# a submodule of a moved package, through its old package path
SUBMODULES = {
    "trajprobe.recipes.catalogue": "trajprobe.apps.recipes.catalogue",
    "trajprobe.recipes.config": "trajprobe.apps.recipes.config",
    "trajprobe.reproduce.base": "trajprobe.apps.reproduce.base",
    "trajprobe.reproduce.learners": "trajprobe.apps.reproduce.learners",
    "trajprobe.training.losses": "trajprobe.apps.training.losses",
}


def _forget(*paths: str) -> None:
    """Import ``paths`` afresh (each test sees its own warning)."""
    for path in paths:
        sys.modules.pop(path, None)


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_warns_naming_the_new_one_and_gives_the_new_module(old, new):
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}; import it from there"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert sys.modules[old] is module


@pytest.mark.parametrize(("old", "new"), sorted(SUBMODULES.items()))
def test_a_submodule_of_an_old_package_path_warns_and_gives_the_new_module(old, new):
    package = old.rpartition(".")[0]
    _forget(old, package)
    with pytest.warns(DeprecationWarning) as caught:
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert [str(w.message).partition(";")[0] for w in caught] == [
        f"{package} moved to {MOVED[package]}", f"{old} moved to {new}"]


def test_the_warning_points_at_the_importing_line():
    _forget("trajprobe.reproduce", "trajprobe.reproduce.base")
    with pytest.warns(DeprecationWarning) as caught:
        from trajprobe.reproduce.base import RunContext  # noqa: F401
    assert {w.filename for w in caught} == {__file__}


def test_an_old_path_of_a_missing_submodule_names_the_new_path():
    with pytest.warns(DeprecationWarning), pytest.raises(
            ModuleNotFoundError, match=re.escape("trajprobe.apps.reproduce.no_such_target")):
        _forget("trajprobe.reproduce")
        importlib.import_module("trajprobe.reproduce.no_such_target")


def test_the_old_paths_give_the_same_classes():
    _forget("trajprobe.tasks.base")
    with pytest.warns(DeprecationWarning):
        from trajprobe.tasks.base import _TASK_MEMBERS, Episodes
    from trajprobe.task_protocol import _TASK_MEMBERS as members
    from trajprobe.tasks import Episodes as episodes

    assert Episodes is episodes and _TASK_MEMBERS is members


def test_import_trajprobe_loads_no_old_path():
    code = ("import sys, trajprobe, trajprobe.tasks, trajprobe.measurement, trajprobe.apps; "
            "import trajprobe.apps.cli, trajprobe.apps.reproduce; "
            f"print(sorted(m for m in sys.modules if m in {sorted(MOVED)!r} "
            "or m == 'trajprobe._moved'))")
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
