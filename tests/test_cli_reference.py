"""docs/cli.md is the ``trajprobe`` parser, rendered: it fails when the page drifts from it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from trajprobe.apps.cli import build_parser
from trajprobe.apps.cli_reference import PAGE, main, render

ROOT = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_the_committed_page_is_the_parser_rendered():
    """docs/cli.md equals a fresh render of build_parser() (regenerate it when this fails)."""
    committed = (ROOT / PAGE).read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/cli.md differs from the trajprobe parser: run "
        "`python -m trajprobe.apps.cli_reference` and commit docs/cli.md")


def test_every_command_and_option_is_on_the_page():
    """Each command has its section, usage and every option string; aliases are named."""
    page = render()
    for name, command in _subparsers(build_parser()).items():
        if name == "spectra":  # an alias of measure
            assert "Also `trajprobe spectra`." in page
            continue
        section = page.split(f"## trajprobe {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"usage: trajprobe {name} " in section
        for action in command._actions:
            for option in action.option_strings:
                assert option in section, (name, option)
    train = page.split("## trajprobe train\n", 1)[1].split("\n## ", 1)[0]
    assert "| `--out OUT` | the run directory (required; " in train
    assert "--out OUT [--no-progress]" in train  # required: no brackets in the usage
    assert "| `--preset {smoke,quick,paper}` |" in train and "(default: quick) |" in train


def test_a_changed_parser_renders_a_different_page():
    """A new option, a changed default or a changed help text changes the page."""
    before = render()
    parser = build_parser()
    _subparsers(parser)["train"].add_argument("--resume-from", help="a new option")
    assert "| `--resume-from RESUME_FROM` | a new option |" in render(parser)
    parser = build_parser()
    episodes = next(a for a in _subparsers(parser)["measure"]._actions
                    if "--episodes" in a.option_strings)
    episodes.default = 300
    changed = render(parser)
    assert changed != before
    assert "episodes measured (default: 300)" in changed
    assert "episodes measured (default: 200)" in before


def test_check_reports_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """`--check` exits 1 on a stale or missing page and 0 once the page is rewritten."""
    page = tmp_path / "cli.md"
    assert main(["--check", "--out", str(page)]) == 1
    page.write_text(render().replace("default: quick", "default: paper"), encoding="utf-8")
    assert main(["--check", "--out", str(page)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--out", str(page)]) == 0
    assert main(["--check", "--out", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == render()
