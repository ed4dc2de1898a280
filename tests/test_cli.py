"""The trajprobe command: help, listings, errors that say what is valid, train/compare/measure."""

from __future__ import annotations

import os
import sys

import pytest
import xarray as xr

from trajprobe import __version__
from trajprobe.apps.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"trajprobe {__version__}"


def test_recipes_lists_every_recipe_with_cost(capsys):
    assert main(["recipes", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["linear-regression-2d/meta-learner", "paper"]
               for line in out.splitlines())
    assert "bayes-optimal/bandit_gaussian_normal_0_0.25" in out
    assert "days" in out  # the contextual-bandit meta-learner at paper scale


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "nope"], "target: got 'nope' (expected one of linear-regression"),
    (["reproduce", "linear-regression", "--preset", "big"], "invalid choice: 'big'"),
    (["reproduce", "linear-regression", "--seeds", "0"], "expected a positive integer, got 0"),
    (["train", "nope", "--out", "x"], "valid names: linear-regression-2d/learner"),
    (["train", "linear-regression-2d/learner", "--out", "x"], "is a Learner set-up"),
    (["compare", "bayes", "bayes", "--task", "nope"], "valid names: bernoulli_beta_1_1"),
    (["measure", "nowhere"], "no training run or checkpoint at 'nowhere'"),
])
def test_bad_arguments_say_what_is_valid(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_then_compare_with_bayes_and_measure(tmp_path, capsys):
    run = tmp_path / "bern"
    assert main(["train", "bayes-optimal/bernoulli_beta_1_1", "--preset", "smoke",
                 "--out", str(run), "--no-progress"]) == 0
    assert main(["compare", str(run), "bayes", "--task", "bernoulli_beta_1_1",
                 "--episodes", "60", "--out", str(tmp_path / "cmp.nc")]) == 0
    out = capsys.readouterr().out
    assert "sum_t KL(A || B) (eq. 2)" in out and "a→b: D_s" in out and "b→a: D_s" in out
    saved = xr.open_dataset(tmp_path / "cmp.nc")
    assert set(saved["direction"].values) == {"a→b", "b→a"}
    assert (saved["state_dissimilarity"] >= 0).all()

    lr = tmp_path / "lr"
    assert main(["train", "linear-regression-2d/meta-learner", "--preset", "smoke",
                 "--out", str(lr), "--no-progress"]) == 0
    assert main(["measure", str(lr), "--episodes", "8", "--out", str(tmp_path / "spec")]) == 0
    spectra = xr.open_dataset(tmp_path / "spec" / "measure.nc")
    assert spectra["q"].dims == ("episode", "t", "mode")
    assert spectra.attrs["measure"] == "effective_spectra"
    assert (tmp_path / "spec" / "measure.png").stat().st_size > 1000
    # the task is the run's own: no way to measure it on another one
    with pytest.raises(SystemExit):
        main(["spectra", str(lr), "--task", "nonlinear-regression"])
    assert "unrecognized arguments: --task" in capsys.readouterr().err


def test_sweep_runs_seeds_and_prints_mean_and_standard_error(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "bayes-optimal/bernoulli_beta_1_1", "--preset", "smoke", "--seeds", "2",
            "--scheduler", "none", "--threads", "1", "--episodes", "5", "--final-only",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 seeds, mean ± s.e. over seeds" in printed
    assert "sum_t KL(Bayes || agent) (Mikulik eq. 2)" in printed
    ds = xr.open_dataset(out / "sweep.nc")
    assert dict(ds.sizes) == {"seed": 2, "checkpoint": 1, "episode": 5, "t": 20}
    ds.close()
    with pytest.raises(SystemExit) as exit_info:  # same directory, other settings
        main([*argv[:3], "quick", *argv[4:]])
    assert exit_info.value.code == 2
    assert "holds a sweep of 'bayes-optimal/bernoulli_beta_1_1' (smoke)" in capsys.readouterr().err


@pytest.mark.parametrize("main_module", [None, "trajprobe.apps.cli"])
def test_the_rerun_is_the_same_command(monkeypatch, main_module):
    import types

    from trajprobe.apps import cli

    main = types.ModuleType("__main__")
    main.__spec__ = None if main_module is None else types.SimpleNamespace(name=main_module)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/trajprobe", "reproduce", "x"])
    expected = ([sys.executable, "/venv/bin/trajprobe", "reproduce", "x"] if main_module is None
                else [sys.executable, "-m", "trajprobe.apps.cli", "reproduce", "x"])
    assert cli._same_command() == expected


@pytest.mark.parametrize("argv, env, reruns", [
    (["trajprobe", "reproduce", "linear-regression"], {}, True),
    (["trajprobe", "train", "x"], {}, True),
    (["trajprobe", "recipes"], {}, False),  # no torch work: not worth a second import
    (["trajprobe", "reproduce", "x"], {"OMP_WAIT_POLICY": "ACTIVE"}, False),  # the user's
])
def test_console_script_reruns_training_commands_with_passive_openmp(monkeypatch, argv, env,
                                                                      reruns):
    from trajprobe.apps import cli

    calls = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(os, "execve", lambda *a: calls.append(a))
    cli._rerun_with_passive_openmp()
    assert bool(calls) == reruns
    if reruns:
        _, args, new_env = calls[0]
        assert args == cli._same_command()
        assert new_env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_console_script_reruns_with_the_installed_package_not_the_working_directory(tmp_path):
    """The README's first command runs the console script in a checkout installed without
    -e: the re-run must import the installed trajprobe, not ./trajprobe (no adapters/)."""
    import subprocess

    (tmp_path / "trajprobe").mkdir()
    (tmp_path / "trajprobe" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "console-script"
    script.write_text("import sys\nfrom trajprobe.apps.cli import main\nsys.exit(main())\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, str(script), "measure", "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: trajprobe measure" in done.stdout
