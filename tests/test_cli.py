"""The trajprobe command: help, listings, errors that say what is valid, train/compare/measure."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import pytest
import xarray as xr

from trajprobe import __version__
from trajprobe.apps.cli import main
from trajprobe.apps.recipes import MetaLearnerRecipe, ModelConfig
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.tasks import LinearRegression


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


def test_compare_one_direction_computes_and_saves_only_that_one(tmp_path, capsys):
    # the Bayes agent against itself: no training, and B simulates A exactly (D_s ~ 0)
    assert main(["compare", "bayes", "bayes", "--task", "bernoulli_beta_1_1", "--episodes",
                 "30", "--direction", "a->b", "--out", str(tmp_path / "cmp.nc")]) == 0
    out = capsys.readouterr().out
    assert "one direction only" in out and "a→b: D_s" in out and "b→a: D_s" not in out
    saved = xr.open_dataset(tmp_path / "cmp.nc")
    assert list(saved["direction"].values) == ["a→b"]
    assert float(saved["state_dissimilarity"].sel(direction="a→b")) < 1e-6
    saved.close()


class _Recorded(Exception):
    """Raised by the stand-in for compare.simulation once it has the config."""


@pytest.mark.parametrize("option, directions", [
    ([], ("a→b", "b→a")), (["--direction", "both"], ("a→b", "b→a")),
    (["--direction", "a->b"], ("a→b",)), (["--direction", "b->a"], ("b→a",)),
    (["--direction", "b→a"], ("b→a",)),
])
def test_compare_passes_direction_to_simulation_config(option, directions, monkeypatch):
    from trajprobe import compare

    given = []

    def simulation(a, b, inputs, config, **kwargs):
        given.append(config.directions)
        raise _Recorded

    monkeypatch.setattr(compare, "simulation", simulation)
    with pytest.raises(_Recorded):
        main(["compare", "bayes", "bayes", "--task", "bernoulli_beta_1_1", "--episodes", "5",
              *option])
    assert given == [directions]


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


@dataclass(frozen=True)
class ShiftedRegression(LinearRegression):
    """A user's own task class (a field the library's task has not)."""

    shift: float = 0.25


def _own_recipe(name: str, task) -> MetaLearnerRecipe:
    """A user's own smoke-sized recipe: not in the catalogue, its own model size."""
    return MetaLearnerRecipe(
        name=name, preset="mine", paper="a test", task=task, model=ModelConfig(size=6),
        training=SupervisedConfig(100, n_steps=7, batch_size=50,
                                  optimiser=OptimiserConfig("adam", 1e-2)))


def test_measure_and_compare_take_a_run_of_ones_own_recipe(tmp_path, capsys):
    from trajprobe.reference_models import catalogue

    regression = _own_recipe("mine/shifted-regression", ShiftedRegression(dim=2))
    regression.train(tmp_path / "reg", seed=2, progress=False)
    assert main(["measure", str(tmp_path / "reg"), "--episodes", "4",
                 "--out", str(tmp_path / "m")]) == 0
    assert "mine/shifted-regression (" in capsys.readouterr().out
    ds = xr.open_dataset(tmp_path / "m" / "measure.nc")
    # the recipe's own episode length (7) and task (2 modes), read back from its record
    assert ds.sizes["t"] == 7 and ds.sizes["mode"] == 2
    ds.close()

    bernoulli = _own_recipe("mine/bernoulli", catalogue.get("bernoulli_beta_1_1").task)
    run = tmp_path / "bern"
    bernoulli.train(run, seed=3, progress=False)
    # the run against its own checkpoint file, and B's untrained network from its record
    assert main(["compare", str(run), str(run / "latest.pt"), "--task", "bernoulli_beta_1_1",
                 "--untrained", "--episodes", "20", "--out", str(tmp_path / "cmp.nc")]) == 0
    assert "sum_t KL(A || B) (eq. 2) = 0 " in capsys.readouterr().out  # itself: exactly 0
    saved = xr.open_dataset(tmp_path / "cmp.nc")
    assert saved.attrs["a_recipe"] == saved.attrs["b_recipe"] == "mine/bernoulli (mine, seed 3)"
    assert saved["state_dissimilarity_untrained"].dims == ("direction",)
    saved.close()


def test_a_symlink_loop_as_out_is_one_clear_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for argv in (["train", "bayes-optimal/bernoulli_beta_1_1", "--preset", "smoke", "--out",
                  str(loop)], ["measure", str(loop)]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"{str(loop)!r}" in err and "loop" in err and "Traceback" not in err


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


def _subcommands():
    from trajprobe.apps.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return {name: p for name, p in sub.choices.items() if name != "spectra"}


def test_every_option_has_help_that_shows_its_default():
    commands = _subcommands()
    assert sorted(commands) == ["compare", "measure", "recipes", "reproduce", "sweep", "train"]
    for name, parser in commands.items():
        text = " ".join(parser.format_help().split())  # unwrapped
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings[0]}: no help"
            if action.default is not False and not action.required:  # flags: off unless given
                line = parser._get_formatter()._get_help_string(action)
                assert "default" in line, f"{name} {action.option_strings[0]}: {line!r}"
        assert "--seed SEED" not in text or "--seed SEED random seed of" in text
    train = " ".join(commands["train"].format_help().split())
    assert "paper (the papers' sizes; hours to days on a CPU) (default: quick)" in train
    assert "the same seed gives the same numbers (default: 0)" in train
    assert "where torch runs: cpu, cuda, cuda:1, mps (default: cpu)" in train
    assert "(default: 4)" in " ".join(commands["sweep"].format_help().split())


def test_measure_dir_is_beside_the_run(tmp_path):
    from trajprobe.apps.cli import measure_dir

    run = tmp_path / "runs" / "lr2d"
    run.mkdir(parents=True)
    (run / "checkpoint_100.pt").write_bytes(b"")
    assert measure_dir(run) == tmp_path / "runs" / "lr2d-measure"
    assert measure_dir(f"{run}/") == tmp_path / "runs" / "lr2d-measure"
    assert (measure_dir(run / "checkpoint_100.pt")
            == tmp_path / "runs" / "lr2d-checkpoint_100-measure")


def test_measure_prints_a_summary_table_and_writes_beside_the_run(tmp_path, monkeypatch, capsys):
    lr = tmp_path / "runs" / "lr"
    assert main(["train", "linear-regression-2d/meta-learner", "--preset", "smoke",
                 "--out", str(lr), "--no-progress"]) == 0
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["measure", str(lr), "--episodes", "6", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []  # nothing in the working directory
    saved = xr.open_dataset(tmp_path / "runs" / "lr-measure" / "measure.nc")
    assert "<xarray" not in out and "Dimensions" not in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("quantity"))
    assert header.split()[-9:] == ["t", "=", "1", "t", "=", "5", "t", "=", "10"]
    row = next(line for line in lines if line.startswith("proportion learned q_k = ŝ_k / s_k, "
                                                           "mode 2"))
    last = saved["q"].sel(mode=2).isel(t=-1)
    assert row.split()[-3] == f"{float(last.mean()):.3g}"
    assert f"wrote {tmp_path / 'runs' / 'lr-measure'}/measure.nc" in out


def test_progress_in_a_log_prints_nothing_stuck_at_zero(monkeypatch):
    import io
    import time

    from tqdm.auto import tqdm

    from trajprobe import progress

    class Log(io.StringIO):
        def isatty(self):
            return False

    log = Log()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.15)
    for _ in tqdm(range(5), desc="quick", leave=False, **progress.bar_options(None)):
        pass  # ends before the first interval: no line at all
    assert log.getvalue() == ""
    for _ in tqdm(range(4), desc="slow", **progress.bar_options(None)):
        time.sleep(0.1)
    lines = log.getvalue().splitlines()
    assert lines and all(line.startswith("slow:") and " 0%" not in line for line in lines)
    assert lines[-1].startswith("slow: 100%") and "\r" not in log.getvalue()


def test_cost_estimates_grow_with_the_preset():
    """smoke < quick < paper for every recipe, except where the quick preset does more work
    than the paper's: the 2-D linear Learner's quick preset runs 5x the paper's steps
    (lr x 10, so its slow mode finishes), 20,000 steps x 48 learners against 4,000 x 100."""
    from trajprobe.apps import recipes

    more_work_at_quick = []
    for name in recipes.names():
        costs = [recipes.get(name, p).estimated_seconds() for p in recipes.PRESETS]
        if not costs[0] < costs[1] < costs[2]:
            more_work_at_quick.append(name)
    assert more_work_at_quick == ["linear-regression-2d/learner",
                                  "linear-regression-2d/learner-adam"]
    quick, paper = (recipes.get("linear-regression-2d/learner", p).learner
                    for p in ("quick", "paper"))
    assert quick.n_steps * quick.n_learners > paper.n_steps * paper.n_learners
