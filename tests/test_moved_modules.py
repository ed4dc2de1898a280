"""Module paths that moved warn with a DeprecationWarning naming the new place and give the
new module itself (trajprobe._moved); none is imported by ``import trajprobe``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# old path -> new path (the layout changes of issues 24 and 34)
MOVED = {
    "trajprobe.tasks.base": "trajprobe.task_protocol",
    "trajprobe.tasks.checks": "trajprobe.task_checks",
}


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_warns_naming_the_new_one_and_gives_the_new_module(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}; import it from there"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert sys.modules[old] is module


def test_the_old_paths_give_the_same_classes():
    sys.modules.pop("trajprobe.tasks.base", None)
    with pytest.warns(DeprecationWarning):
        from trajprobe.tasks.base import _TASK_MEMBERS, Episodes
    from trajprobe.task_protocol import _TASK_MEMBERS as members
    from trajprobe.tasks import Episodes as episodes

    assert Episodes is episodes and _TASK_MEMBERS is members


def test_import_trajprobe_loads_no_old_path():
    code = ("import sys, trajprobe, trajprobe.tasks, trajprobe.measurement; "
            f"print(sorted(m for m in sys.modules if m in {sorted(MOVED)!r} "
            "or m == 'trajprobe._moved'))")
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
