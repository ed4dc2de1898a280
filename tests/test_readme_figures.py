"""docs/scripts/readme_figures.py regenerates the README's figures from a reproduce run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "readme_figures.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_smoke_run_writes_the_three_figures_and_prints_the_caption_numbers(tmp_path):
    figures = tmp_path / "figures"
    result = _run("--preset", "smoke", "--figures", str(figures), "--out",
                  str(tmp_path / "run"), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(p.name for p in figures.iterdir())
    assert written == ["linear-regression-smoke-outer-loop.png",
                       "linear-regression-smoke-steps.png", "linear-regression-smoke.png"]
    for name in written:
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Meta-Learner: episode-average squared error on these spectra = " in result.stdout
    assert "time ratios, s = 0.05 vs 2.5 (interpolated / integer rule):" in result.stdout
    assert "  Bayes: " in result.stdout.split("integer rule):", 1)[1]


def test_docs_figures_are_written_only_at_quick(tmp_path):
    """At smoke, without --figures, it refuses before any work (docs/figures is quick's)."""
    result = _run("--preset", "smoke", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert "--figures is required at --preset smoke" in result.stderr
    assert not (tmp_path / "run").exists()
