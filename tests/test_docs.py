"""Every Python block in README.md and docs/ runs as written, in order, one script per page.

The blocks are found and run by Sybil (https://sybil.readthedocs.io): each page's blocks
share one namespace (``__name__ == "__main__"``, as in a script), in an empty temporary
folder. A block shown for reading only is marked on the page, visibly ("not run"), and
preceded by Sybil's ``<!-- skip: next -->``; blocks that need an optional extra sit between
``<!-- skip: start if(missing("jax"), reason=...) -->`` and ``<!-- skip: end -->`` and run
when the extra is installed (``.ci/run`` installs the extras and runs this file again).

Each tutorial's example script in ``examples/`` is the same code as its page: the test
below compares the script, less its docstring, with the page's blocks, line by line.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from pathlib import Path
from unittest import SkipTest

import pytest

sybil = pytest.importorskip("sybil", reason="the docs tests need Sybil: pip install -e '.[dev]'")
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# tutorial page -> the example script that is the same code
SCRIPTS = {
    "README.md": "quickstart.py",
    "docs/tutorials/wrap-your-rnn.md": "wrap_your_rnn.py",
    "docs/tutorials/wrap-a-transformer.md": "wrap_a_transformer.py",
    "docs/tutorials/wrap-jax.md": "wrap_jax.py",
    "docs/tutorials/measure-your-own-task.md": "measure_your_own_task.py",
}


_EXTRA_OF = {"jax": "jax", "haiku": "jax", "flax": "jax", "equinox": "jax", "optax": "jax",
             "transformers": "transformers", "DSA": "dsa", "gymnasium": "gymnasium",
             "neurogym": "neurogym"}
"""A page's ``missing(...)`` module -> the extra (and pytest marker) that installs it (as
tests/conftest.py's EXTRAS)."""


def _page(page: Path):
    """``page`` as a parameter marked with the extras its skip conditions name: .ci/run's
    stage for an extra selects it (-m jax). ``partly``: it runs without them, skipping
    those regions."""
    text = page.read_text(encoding="utf-8")
    modules = {m for args in re.findall(r"missing\(([^)]*)\)", text)
               for m in re.findall(r"[\"']([\w.]+)[\"']", args)}
    extras = sorted({_EXTRA_OF[m.split(".")[0]] for m in modules})
    return pytest.param(page, marks=[getattr(pytest.mark, e)(partly=True) for e in extras],
                        id=_relative(page))


def missing(*modules: str) -> bool:
    """True when one of ``modules`` cannot be imported (used in the pages' skip conditions)."""
    return not all(importlib.util.find_spec(m) for m in modules)


def _setup(namespace: dict) -> None:
    namespace.update(__name__="__main__", missing=missing)


SYBIL = sybil.Sybil(parsers=[PythonCodeBlockParser(), SkipParser()], setup=_setup)


def _relative(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _blocks(page: Path) -> list[str]:
    """The sources of ``page``'s ``python`` blocks that run, in order (Sybil's parsers).

    A block after ``<!-- skip: next -->`` (shown for reading) is left out; blocks under
    ``skip: start if(...)`` (an optional extra) are kept.
    """
    document = sybil.Document(page.read_text(encoding="utf-8"), str(page))
    regions = [*PythonCodeBlockParser()(document), *SkipParser()(document)]
    blocks, skip_next = [], False
    for region in sorted(regions, key=lambda region: region.start):
        if isinstance(region.parsed, tuple):  # a skip directive: (action, reason)
            skip_next = region.parsed[0] == "next"
        elif skip_next:
            skip_next = False
        else:
            blocks.append(str(region.parsed))
    return blocks


@pytest.mark.parametrize("page", [_page(p) for p in PAGES])
def test_page_runs_as_written(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The page's blocks run in order, as one script, in an empty folder."""
    monkeypatch.chdir(tmp_path)
    document = SYBIL.parse(page)
    SYBIL.setup(document.namespace)
    ran, skipped = 0, []
    for example in document.examples():
        try:
            example.evaluate()
        except SkipTest as reason:
            skipped.append(f"line {example.line}: {reason}")
        else:
            ran += 1
    if skipped and os.environ.get("TRAJPROBE_DOCS_EXTRAS"):  # .ci/run, extras installed
        pytest.fail(f"{_relative(page)}: skipped with the extras installed: {skipped}")
    if skipped:
        pytest.skip(f"{_relative(page)}: ran {ran} regions, skipped {len(skipped)} "
                    f"({'; '.join(skipped)})")


def _code_lines(source: str) -> list[str]:
    """The non-blank lines of ``source``, less a leading module docstring."""
    tree = ast.parse(source)
    lines = source.splitlines()
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(
            getattr(tree.body[0], "value", None), ast.Constant) and isinstance(
            tree.body[0].value.value, str):
        lines = lines[tree.body[0].end_lineno:]
    return [line.rstrip() for line in lines if line.strip()]


@pytest.mark.parametrize("page, script", SCRIPTS.items())
def test_example_script_is_the_page(page: str, script: str):
    """examples/<script> is the page's blocks, in order (blank lines aside)."""
    blocks = _blocks(ROOT / page)
    assert blocks, f"{page} has no python block"
    from_page = _code_lines("\n\n".join(blocks))
    from_script = _code_lines((ROOT / "examples" / script).read_text())
    assert from_script == from_page, (
        f"examples/{script} and {page} differ: copy the page's blocks into the script "
        "(or the other way round)")


def test_every_tutorial_has_its_script():
    """Each tutorial page has an example script of the same code (or is named here)."""
    tutorials = {_relative(p) for p in (ROOT / "docs" / "tutorials").glob("*.md")}
    others = {"docs/tutorials/compare-agents.md", "docs/tutorials/fixed-points.md"}
    assert tutorials - others <= set(SCRIPTS)
