"""A catalogue of bad inputs and faults (issue 14): API, CLI, files and signals.

Each case asserts the clear error (its type and a message naming the argument) or that
the data on disk were preserved. A zero-variance target in ``compare.simulation`` is
flagged, not simulated: that case is tested with the comparison
(``test_compare_simulation.py::test_zero_variance_target_is_flagged_not_simulated``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import trajprobe
from trajprobe import io
from trajprobe.adapters import wrap
from trajprobe.apps import load_run, recipes
from trajprobe.apps.cli import main
from trajprobe.tasks import LinearRegression

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
BERNOULLI = "bayes-optimal/bernoulli_beta_1_1"


def _gru(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return wrap(nn.GRU(4, 8, batch_first=True, **kwargs), readout=nn.Linear(8, 2))


class _Machine:
    """A tiny hand-written machine whose step is replaced per case."""

    def __init__(self, step):
        self._step = step

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 3)

    def step(self, x, state):
        return self._step(x, state)


def _raise(x, state):
    raise ZeroDivisionError("inside the user's code")


# ------------------------------------------------------------------------------ the engine

ENGINE_CASES = {
    "empty episodes": (lambda: trajprobe.rollout(_gru(), torch.randn(0, 5, 4)), ValueError,
                       "inputs: expected at least one episode"),
    "zero steps": (lambda: trajprobe.rollout(_gru(), torch.randn(3, 0, 4)), ValueError,
                   "inputs: expected at least one episode and one step"),
    "wrong feature size": (lambda: trajprobe.rollout(_gru(), torch.randn(3, 5, 7)), ValueError,
                           r"TorchRNN.step failed at t=1 with input \[\[3, 7\] float32\]"),
    "int64 inputs": (lambda: trajprobe.rollout(_gru(), torch.ones(3, 5, 4, dtype=torch.int64)),
                     ValueError, "hint: the inputs are torch.int64"),
    "float64 state into float32 module": (
        lambda: trajprobe.rollout(_gru(), torch.randn(3, 5, 4),
                                  initial_state=torch.zeros(3, 1, 8, dtype=torch.float64)),
        ValueError, "give initial_state the module's dtype"),
    "[layers, batch, hidden] state": (
        lambda: trajprobe.rollout(_gru(), torch.randn(3, 5, 4),
                                  initial_state=torch.zeros(1, 3, 8)),
        ValueError, "batch leading"),
    "step returns (state, y)": (
        lambda: trajprobe.rollout(_Machine(lambda x, s: ((s,), x)), torch.randn(2, 3, 4)),
        TypeError, r"swap them"),
    "NaN outputs": (
        lambda: trajprobe.rollout(_Machine(lambda x, s: (x * float("nan"), s)),
                                  torch.randn(2, 3, 4)),
        ValueError, "returned NaN outputs at t=1"),
    "error inside a user's step": (
        lambda: trajprobe.rollout(_Machine(_raise), torch.randn(2, 3, 4)),
        ZeroDivisionError, r"_Machine.step failed at t=1 .*state \[\[2, 3\] float32\]"),
    "not a machine": (lambda: trajprobe.rollout(nn.Linear(2, 2), torch.randn(2, 3, 2)),
                      TypeError, "machine: expected a StateMachine"),
    "NaN inputs": (lambda: trajprobe.rollout(_gru(), torch.full((2, 3, 4), float("nan"))),
                   ValueError, "inputs"),
    "zero singular value": (
        lambda: trajprobe.effective_spectra(_gru(), LinearRegression(2), 2, 3,
                                            spectrum=[2.0, 0.0]),
        ValueError, "spectrum: q_k"),
}


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_engine_errors_say_what_and_where(case):
    call, error, match = ENGINE_CASES[case]
    with pytest.raises(error, match=match):
        call()


def test_step_errors_are_chained_to_the_original():
    with pytest.raises(ZeroDivisionError) as info:
        trajprobe.rollout(_Machine(_raise), torch.randn(2, 3, 4))
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("module", [
    lambda: _gru(num_layers=2, dropout=0.3),
    lambda: _gru(num_layers=3, dropout=0.9),
])
def test_rollout_runs_in_eval_mode_and_restores_the_modes(module):
    machine = module()
    machine.train()
    x = torch.randn(4, 6, 4)
    first, second = trajprobe.rollout(machine, x), trajprobe.rollout(machine, x)
    torch.testing.assert_close(first.outputs, second.outputs, rtol=0, atol=0)
    assert machine.training and all(m.training for m in machine.modules())


def test_measure_is_deterministic_with_dropout_and_restores_modes():
    machine = _gru(num_layers=2, dropout=0.3)
    machine.train()
    a = trajprobe.effective_spectra(machine, LinearRegression(2), 3, 4, probes=5, seed=1)
    b = trajprobe.effective_spectra(machine, LinearRegression(2), 3, 4, probes=5, seed=1)
    np.testing.assert_array_equal(a["q"].values, b["q"].values)
    assert machine.training


def test_eval_mode_finds_modules_on_a_plain_machine_attribute():
    from trajprobe.guard import eval_mode

    class Holder:
        def __init__(self):
            self.net = nn.Dropout(0.5)

    holder = Holder()
    with eval_mode(holder):
        assert not holder.net.training
    assert holder.net.training


# ------------------------------------------------------------------ reference machines, tasks

def _obs(machine, value):
    x = torch.zeros(1, machine.input_size, dtype=torch.float64)
    x[0, 0], x[0, -1] = value, 1.0
    return machine.step(x, machine.initial_state(1))


REFERENCE_CASES = {
    "Bernoulli observation 5": ("BetaBernoulli", (), 5.0, "observations must lie in"),
    "Bernoulli observation -1": ("BetaBernoulli", (), -1.0, "observations must lie in"),
    "categorical count 3": ("DirichletCategorical", ((1.0, 1.0, 1.0),), 3.0,
                            "observations must lie in"),
    "negative exponential": ("GammaExponential", (), -2.0, "observations must lie in"),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES))
def test_conjugate_machines_refuse_impossible_observations(case):
    from trajprobe import reference_models

    name, args, value, match = REFERENCE_CASES[case]
    with pytest.raises(ValueError, match=match):
        _obs(getattr(reference_models, name)(*args), value)


def test_conjugate_machines_accept_weightless_rows_of_any_value():
    from trajprobe.reference_models import BetaBernoulli

    machine = BetaBernoulli()
    x = torch.tensor([[5.0, 0.0]], dtype=torch.float64)  # flag 0: no observation yet
    y, _ = machine.step(x, machine.initial_state(1))
    assert float(y) == 0.5


def test_gittins_agent_takes_a_numpy_float_discount():
    from trajprobe.reference_models import GittinsAgent
    from trajprobe.tasks import BernoulliBandit

    agent = GittinsAgent(BernoulliBandit(1.0, 1.0, 2), np.float32(0.9))
    assert agent.discount == pytest.approx(0.9)


@NO_CUDA
def test_sampling_on_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="device: 'cuda' was asked for but CUDA"):
        LinearRegression(2).sample(3, 4, device="cuda")


# ------------------------------------------------------------------------------------ files

def test_read_results_on_a_truncated_file(tmp_path):
    from trajprobe.apps.reproduce import read_results

    path = tmp_path / "results.nc"
    io.save_datasets({"a": trajprobe.rollout(_gru(), torch.randn(2, 3, 4)).to_dataset()}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_results(path)


def test_read_results_on_a_missing_file(tmp_path):
    from trajprobe.apps.reproduce import read_results

    with pytest.raises(FileNotFoundError, match="path: no results file"):
        read_results(tmp_path / "nope.nc")


def test_load_dataset_on_a_truncated_file(tmp_path):
    path = io.save_dataset(trajprobe.rollout(_gru(), torch.randn(2, 3, 4)).to_dataset(),
                           tmp_path / "t.nc")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable netCDF file"):
        io.load_dataset(path)


def test_load_checkpoint_on_a_truncated_file(tmp_path):
    path = io.save_checkpoint({"step": 1, "w": torch.ones(100)}, tmp_path / "c.pt")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        io.load_checkpoint(path)


def test_load_checkpoint_of_a_foreign_file(tmp_path):
    torch.save([1, 2], tmp_path / "x.pt")
    with pytest.raises(ValueError, match="expected a trajprobe checkpoint"):
        io.load_checkpoint(tmp_path / "x.pt")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with io.atomic_write(tmp_path / "f.txt", "w") as handle:
            handle.write("x")
        path = io.save_checkpoint({"a": 1}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == mode
    assert path.stat().st_mode & 0o777 == mode


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), io.atomic_write(path, "w") as handle:
        handle.write("new")
        raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def _result(names):
    import matplotlib.pyplot as plt

    from trajprobe.apps.reproduce.base import TargetResult

    figures = {}
    for name in names:
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        figures[name] = fig
    return TargetResult(title="t", figures=figures)


def test_an_interrupted_second_report_never_links_deleted_figures(tmp_path, monkeypatch):
    import re

    from trajprobe.apps.reproduce import report
    from trajprobe.apps.reproduce.base import RunContext

    context = RunContext("smoke", 1, torch.device("cpu"), tmp_path)
    report.write_report(_result(["a", "b"]), context, "linear-regression")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "atomic_write", interrupted)  # dies writing the new figures
    with pytest.raises(KeyboardInterrupt):
        report.write_report(_result(["a", "b"]), context, "linear-regression")
    links = re.findall(r"\(figures/(.+?\.png)\)", (tmp_path / "report.md").read_text())
    assert links and all((tmp_path / "figures" / name).is_file() for name in links)
    monkeypatch.undo()
    report.write_report(_result(["a"]), context, "linear-regression")  # stale staging cleaned
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".figures")) == []
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["a.png"]


# ------------------------------------------------------------------------ names, did-you-mean

NAME_CASES = {
    "recipe typo": (lambda: recipes.get("bayes-optimal/bernouli_beta_1_1"), ValueError,
                    "did you mean 'bayes-optimal/bernoulli_beta_1_1'"),
    "preset typo": (lambda: recipes.get(BERNOULLI, "papr"), ValueError, "preset"),
    "task typo": (lambda: __import__("trajprobe.reference_models.catalogue",
                                     fromlist=["get"]).get("gaussian_mean_normal_01"),
                  ValueError, "did you mean 'gaussian_mean_normal_0_1'"),
    "target typo": (lambda: trajprobe.apps.reproduce.reproduce("linear-regresion"), ValueError,
                    "did you mean 'linear-regression'"),
    "run directory typo": (lambda: load_run("runs/lr2 d"), FileNotFoundError,
                           "at 'runs/lr2 d'"),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_unknown_names_suggest_the_closest(case):
    call, error, match = NAME_CASES[case]
    with pytest.raises(error, match=match):
        call()


def test_did_you_mean_suggests_nothing_far_away():
    from trajprobe.validation import did_you_mean

    assert did_you_mean("zzzz", ["linear-regression"]) == ""


def test_a_run_directory_typo_names_the_path_given(tmp_path):
    (tmp_path / "run1").mkdir()
    with pytest.raises(FileNotFoundError, match=r"run11'; did you mean 'run1'"):
        load_run(tmp_path / "run11")


def test_a_directory_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is not a trajprobe training run"):
        load_run(tmp_path)


# --------------------------------------------------------------------------- run directories

@pytest.fixture(scope="module")
def bernoulli_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "bern"
    recipes.get(BERNOULLI, "smoke").train(out, seed=0, progress=False)
    return out


def _digest(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())
            if p.is_file()}


@pytest.mark.parametrize("recipe, seed, match", [
    ("bayes-optimal/bernoulli_beta_5_2", 0, "name: run 'bayes-optimal/bernoulli_beta_1_1'"),
    ("linear-regression-2d/meta-learner", 0, "holds another training run"),
    (BERNOULLI, 3, "seed: run 0, given 3"),
])
def test_training_into_another_run_changes_nothing(bernoulli_run, recipe, seed, match):
    before = _digest(bernoulli_run)
    with pytest.raises(ValueError, match=match):
        recipes.get(recipe, "smoke").train(bernoulli_run, seed=seed, progress=False)
    assert _digest(bernoulli_run) == before


def test_the_run_records_its_recipe_and_task(bernoulli_run):
    import json

    info = json.loads((bernoulli_run / "recipe.json").read_text())
    assert info["name"] == BERNOULLI and info["task"]["alpha"] == 1.0
    assert io.load_checkpoint(bernoulli_run / "latest.pt")["task"]["beta"] == 1.0


def test_a_checkpoint_refuses_another_task_without_recipe_json(bernoulli_run, tmp_path):
    import shutil

    from trajprobe.apps.training import train_supervised
    from trajprobe.tasks import BernoulliPrediction

    run = tmp_path / "copy"
    shutil.copytree(bernoulli_run, run)
    (run / "recipe.json").unlink()
    recipe = recipes.get(BERNOULLI, "smoke")
    before = _digest(run)
    with pytest.raises(ValueError, match="task: differs from the task of the run"):
        train_supervised(recipe.build_model(0), BernoulliPrediction(5.0, 2.0),
                         dataclasses_replace_seed(recipe), run, progress=False)
    assert _digest(run) == before


def dataclasses_replace_seed(recipe):
    from trajprobe.apps.recipes.config import _with_seed

    return _with_seed(recipe.training, 0)


def test_resuming_a_finished_run_of_the_same_recipe_is_allowed(bernoulli_run):
    before = (bernoulli_run / "recipe.json").read_text()
    recipes.get(BERNOULLI, "smoke").train(bernoulli_run, seed=0, progress=False)
    assert (bernoulli_run / "recipe.json").read_text() == before


def test_training_into_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(ValueError, match="is a file, not a run directory"):
        recipes.get(BERNOULLI, "smoke").train(tmp_path / "f", progress=False)
    assert (tmp_path / "f").read_text() == "mine"


# -------------------------------------------------------------------------------------- CLI

def _cli(argv, capsys, code=2):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert info.value.code == code, err
    assert "Traceback" not in err
    return err


CLI_CASES = {
    "--seeds abc": (["reproduce", "linear-regression", "--seeds", "abc"],
                    "--seeds: expected a positive integer, got 'abc'"),
    "--seeds 0": (["sweep", BERNOULLI, "--seeds", "0"], "expected a positive integer, got 0"),
    "--seed 10**23": (["train", BERNOULLI, "--out", "x", "--seed", str(10**23)],
                      "expected a seed below 2**63"),
    "--seed -1": (["compare", "bayes", "bayes", "--task", "x", "--seed", "-1"],
                  "expected a non-negative integer, got -1"),
    "--threads x": (["measure", "r", "--threads", "x"], "expected a positive integer"),
    "recipe typo": (["train", "bayes-optimal/bernouli_beta_1_1", "--out", "x"],
                    "did you mean 'bayes-optimal/bernoulli_beta_1_1'"),
    "Learner recipe": (["train", "linear-regression-2d/learner", "--out", "x"],
                       "is a Learner set-up"),
    "task typo": (["compare", "bayes", "bayes", "--task", "bernouli_beta_1_1"],
                  "did you mean 'bernoulli_beta_1_1'"),
    "target typo": (["reproduce", "linear-regresion", "--out", "x"],
                    "did you mean 'linear-regression'"),
    "sweep recipe typo": (["sweep", "bayes-optimal/bernouli_beta_1_1", "--scheduler", "none",
                           "--out", "x"], "did you mean"),
    "measure run typo": (["measure", "no/such/run"], "no training run or checkpoint at "
                                                     "'no/such/run'"),
    "compare run typo": (["compare", "no-run", "bayes", "--task", "bernoulli_beta_1_1"],
                         "at 'no-run'"),
    "no --task for measure (cannot happen)": (["measure", "r", "--task", "x"],
                                              "unrecognized arguments: --task"),
    "bad device": (["train", BERNOULLI, "--out", "x", "--device", "tpu9"], "device"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_arguments_are_one_line_errors(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = CLI_CASES[case]
    assert message in _cli(argv, capsys)


@NO_CUDA
@pytest.mark.parametrize("command", [["train", BERNOULLI, "--out", "x"], ["measure", "r"],
                                     ["reproduce", "bayes-optimal", "--out", "x"]])
def test_cli_cuda_without_cuda(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _cli([*command, "--device", "cuda"], capsys)
    assert "device: 'cuda' was asked for but CUDA is not available" in err
    assert not (tmp_path / "x").exists()


def test_cli_train_out_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("mine")
    assert "is a file; give a directory" in _cli(["train", BERNOULLI, "--out", tmp_path / "f"],
                                                 capsys)
    assert (tmp_path / "f").read_text() == "mine"


def test_cli_compare_out_a_directory(capsys, tmp_path):
    err = _cli(["compare", "bayes", "bayes", "--task", "bernoulli_beta_1_1", "--out", tmp_path],
               capsys)
    assert "is a directory; give a file name" in err


def test_cli_out_below_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("mine")
    err = _cli(["train", BERNOULLI, "--out", tmp_path / "f" / "run"], capsys)
    assert "is a file, so" in err


@pytest.mark.parametrize("argv", [
    ["train", BERNOULLI, "--preset", "smoke", "--out", "{d}/ro/run"],
    ["compare", "bayes", "bayes", "--task", "bernoulli_beta_1_1", "--out", "{d}/ro/x.nc"],
    ["measure", "r", "--out", "{d}/ro/m"],
])
def test_cli_unwritable_out_refused_before_the_work(argv, capsys, tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p).endswith("ro") else real(p, m))
    err = _cli([a.format(d=tmp_path) for a in argv], capsys)
    assert "cannot write in" in err and "permission denied" in err
    assert list((tmp_path / "ro").iterdir()) == []


def test_cli_an_oserror_in_the_work_is_one_line(capsys, tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/shared/run/latest.pt")

    monkeypatch.setattr(recipes, "get", denied)
    err = _cli(["train", BERNOULLI, "--out", tmp_path / "r"], capsys)
    assert err == ("trajprobe train: error: Permission denied: '/shared/run/latest.pt'\n")


def test_cli_ctrl_c_is_one_line(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes, "get", interrupted)
    err = _cli(["train", BERNOULLI, "--out", tmp_path / "r"], capsys, code=130)
    assert "interrupted; run the same command again to resume" in err


def test_cli_train_another_recipe_into_a_run(bernoulli_run, capsys):
    before = _digest(bernoulli_run)
    err = _cli(["train", "bayes-optimal/bernoulli_beta_5_2", "--preset", "smoke",
                "--out", bernoulli_run], capsys)
    assert "holds another training run" in err
    assert _digest(bernoulli_run) == before


def test_cli_compare_task_is_checked_against_the_run(bernoulli_run, capsys):
    err = _cli(["compare", bernoulli_run, "bayes", "--task", "gaussian_mean_normal_0_1"],
               capsys)
    assert "task: " in err and "bayes-optimal/bernoulli_beta_1_1" in err


def test_cli_measure_takes_the_task_from_the_run(bernoulli_run, capsys, tmp_path):
    assert main(["measure", str(bernoulli_run), "--episodes", "3", "--steps", "4",
                 "--out", str(tmp_path / "m")]) == 0
    assert io.load_dataset(tmp_path / "m" / "measure.nc").attrs["task_alpha"] == 1.0


def test_sweep_scheduler_with_nothing_listening(capsys, tmp_path):
    pytest.importorskip("distributed")
    start = time.monotonic()
    err = _cli(["sweep", BERNOULLI, "--preset", "smoke", "--seeds", "1", "--scheduler",
                "tcp://127.0.0.1:9", "--out", tmp_path / "s"], capsys)
    assert "scheduler: could not connect to 'tcp://127.0.0.1:9'" in err
    assert time.monotonic() - start < 40


# ------------------------------------------------------------------- progress, cost estimates

def test_progress_is_printed_as_lines_when_stderr_is_a_file(capsys):
    from tqdm.auto import tqdm

    from trajprobe.progress import bar_options

    options = {**bar_options(None), "delay": 0, "mininterval": 0, "maxinterval": 0}
    for _ in tqdm(range(3), desc="work", **options):
        pass
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") >= 2 and "work" in err


def test_progress_false_prints_nothing():
    from trajprobe.progress import bar_options

    assert bar_options(False) == {"disable": True}


def test_learner_cost_estimate_counts_steps():
    """Estimates count steps (× a measured fixed cost), not only FLOPs (issues 14, 17)."""
    from trajprobe.apps.recipes import config

    linear = recipes.get("linear-regression-2d/learner", "paper")  # closed form
    assert (linear.learner.n_steps * config.LINEAR_CHAIN_STEP_SECONDS
            < linear.estimated_seconds() < linear.learner.n_steps * config.LEARNER_STEP_SECONDS)
    relu = recipes.get("nonlinear-regression/learner", "paper")  # vmapped
    assert relu.estimated_seconds() > relu.learner.n_steps * config.LEARNER_STEP_SECONDS
    bandit = recipes.get("contextual-bandits/learner-coupled", "paper")
    # trained until the stopping rule, not to the cap of 1,000,000 steps
    assert bandit.expected_steps() == config.BANDIT_LEARNER_STOP_STEPS < bandit.learner.n_steps
    # derived by hand from the calibration, not from the formula: 50 learners × 200 examples
    # took 0.75 ms per step (config.BANDIT_LEARNER_STEP_SECONDS' measurement), and the
    # slowest learner stops after ~60,000 steps: 60,000 × 0.75 ms = 45 s
    assert (bandit.learner.n_learners, bandit.learner.minibatch) == (50, 200)
    assert bandit.estimated_seconds() == pytest.approx(45.0, rel=0.02)


def test_meta_learner_cost_estimate_uses_a_curriculum_s_mean_episode_length():
    """Both configs' stages — (share, T) supervised, (share, T, K) closed loop — count."""
    from dataclasses import replace

    def at(recipe, **changes):
        return replace(recipe, training=replace(recipe.training, **changes)).estimated_seconds()

    # the cost of an update is affine in the episode length, so a curriculum spending half
    # its episodes at T = 10 (or 50) costs the mean of the two recipes without a curriculum
    # run at each length: a second path, through the estimate of plain recipes
    for name, stage in (("linear-regression-2d/meta-learner", (0.5, 10)),
                        ("contextual-bandits/meta-learner-coupled", (0.5, 50, 2))):
        recipe = recipes.get(name, "quick")
        plain = [at(recipe, curriculum=(), n_steps=n) for n in (stage[1],
                                                                recipe.training.n_steps)]
        assert plain[0] < plain[1]
        assert at(recipe, curriculum=(stage,)) == pytest.approx(0.5 * plain[0] + 0.5 * plain[1],
                                                        rel=1e-12)
    # and one estimate by hand: 22,500 updates of 200 episodes of T = 20 through the 2-layer
    # LSTM(64) (105,216 FLOPs a step at 2e10 FLOP/s) plus 1 ms + 20 × 0.1 ms fixed each:
    # 22,500 × (3 ms + 200 × 20 × 105,216 / 2e10 s) = 541 s
    linear = recipes.get("linear-regression-2d/meta-learner", "quick")
    assert (linear.training.n_episodes, linear.training.batch_size) == (4_500_000, 200)
    assert linear.model.flops_per_step(linear.task.input_size, linear.output_size) == 105_216
    assert linear.estimated_seconds() == pytest.approx(541.0, rel=1e-3)


# ------------------------------------------------------------------------------------ signals

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_signal_during_cli_train_resumes_bit_identically(tmp_path, sig):
    """Ctrl-C stops cleanly (exit 0 or 130, no traceback); SIGKILL may land anywhere, also
    while a checkpoint is being written: the atomic writes leave the last complete one."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "trajprobe.apps.cli", "train", BERNOULLI, "--preset", "quick",
           "--out", str(out), "--no-progress", "--threads", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    latest = out / "latest.pt"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not latest.exists():
            time.sleep(0.05)
    finally:
        if sig == signal.SIGKILL:
            time.sleep(1.5)  # a few more saves: the kill may hit one mid-write
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode in (0, 130), err
        assert "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
        assert 0 < io.load_checkpoint(latest)["step"]
    subprocess.run(cmd, check=True, capture_output=True)
    whole = tmp_path / "whole"
    subprocess.run([*cmd[:-4], str(whole), "--no-progress", "--threads", "1"], check=True,
                   capture_output=True)
    a = io.load_checkpoint(latest)["model"]
    b = io.load_checkpoint(whole / "latest.pt")["model"]
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


# ------------------------------------------------- issue 27: the edges added since issue 14
# (a user's own task and environment: tests/test_task_checks.py; full disks on a real
# tmpfs: tests/test_disk_full.py; checksums in detail: tests/test_io.py)

def _run_copy(bernoulli_run: Path, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(bernoulli_run, run)
    return run


def _edit_recipe_json(run: Path, **changes) -> None:
    import json

    path = run / "recipe.json"
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del record[key]
        elif isinstance(value, dict):
            record[key] = {**record[key], **value}
        else:
            record[key] = value
    path.write_text(json.dumps(record))


def test_cli_measure_of_a_checkpoint_with_flipped_bytes_names_it_and_offers_another(
        bernoulli_run, capsys, tmp_path):
    import zipfile

    run = _run_copy(bernoulli_run, tmp_path)
    latest = run / "latest.pt"
    with zipfile.ZipFile(latest) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)  # the largest tensor
    data = bytearray(latest.read_bytes())
    data[info.header_offset + 200] ^= 0xFF  # inside that tensor's bytes (past its header)
    latest.write_bytes(bytes(data))
    err = _cli(["measure", run, "--episodes", "2", "--out", tmp_path / "m"], capsys)
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err
    assert f"{str(latest)!r}" in err and "is damaged" in err and "it is refused" in err
    assert "the newest intact checkpoint beside it is" in err and "checkpoint_" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("changes, match", [
    ({"seed": None}, r"recipe.json' lacks the field 'seed'"),
    ({"preset": 3}, r"recipe.json' field 'preset' is 3, expected a str"),
    # a task that is not the bundled recipe's makes the run one's own recipe (load_run),
    # rebuilt from the record: its task must still be the checkpoint's
    ({"task": {"alpha": 5.0}},
     r"recipe.json' field 'task' disagrees with the task recorded in the checkpoint "
     r"'.*latest.pt' \(alpha: checkpoint 1.0, recipe.json 5.0\)"),
    ({"name": "bayes-optimal/bernoulli_beta_5_2", "task": {"alpha": 5.0, "beta": 2.0}},
     r"recipe.json' field 'name' disagrees with the task recorded in the checkpoint "
     r"'.*latest.pt'"),
], ids=["missing key", "mistyped", "task vs checkpoint", "name vs checkpoint"])
def test_cli_a_hand_edited_recipe_json_names_the_file_and_the_field(
        bernoulli_run, capsys, tmp_path, changes, match):
    import re

    run = _run_copy(bernoulli_run, tmp_path)
    _edit_recipe_json(run, **changes)
    err = _cli(["measure", run, "--episodes", "2", "--out", tmp_path / "m"], capsys)
    assert re.search(match, err), err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, match", [
    (["train", BERNOULLI, "--out", ""], r"argument --out: out: got an empty path '' \(an unset "
                                        r"shell variable\?\)"),
    (["train", BERNOULLI, "--out", "   "], r"out: got an empty path '   '"),
    (["train", BERNOULLI, "--out", "/"], r"out: refusing to write into '/'"),
    (["train", BERNOULLI, "--out", "/etc"], r"out: refusing to write into '/etc'"),
    (["train", BERNOULLI, "--out", "~"], r"out: refusing to write into '.*' \(the file system's "
                                         r"root, a system directory or your home directory\)"),
    (["train", BERNOULLI, "--out", "run\0x"], r"out: the path 'run\\x00x' holds a NUL byte"),
    (["reproduce", "linear-regression", "--out", ""], r"out: got an empty path"),
    (["measure", ""], r"argument MODEL: path: got an empty path"),
    (["compare", "", "bayes", "--task", "bernoulli_beta_1_1"], r"argument A: path: got an empty"),
], ids=["train empty", "blank", "root", "etc", "home", "NUL", "reproduce empty", "measure empty",
        "compare empty"])
def test_cli_unusable_or_dangerous_paths_are_refused_before_any_work(argv, match, capsys,
                                                                     tmp_path, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    err = _cli(argv, capsys)
    assert re.search(match, err), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, match", [
    (["reproduce", "bayes-optimal", "--seeds", "100000"],
     r"reproduce bayes-optimal --preset quick --seeds 100,000: refused before any work: .*"
     r"it is estimated to take \d+ days on this machine, 100,000x the preset's .*; use fewer "
     r"--seeds \(or another --preset\), or add --force to run it anyway"),
    (["sweep", BERNOULLI, "--seeds", "1000000000", "--scheduler", "none"],
     r"sweep .* --seeds 1,000,000,000: refused before any work: it writes about .* TB"),
], ids=["reproduce --seeds 100000", "sweep --seeds 1e9"])
def test_cli_jobs_far_beyond_the_preset_are_refused_up_front(argv, match, capsys, tmp_path):
    import re

    out = tmp_path / "out"
    err = _cli([*argv, "--out", out], capsys)
    assert re.search(match, err), err
    assert not out.exists()


def test_measure_beyond_memory_is_refused_with_the_numbers(bernoulli_run, capsys, tmp_path):
    err = _cli(["measure", bernoulli_run, "--episodes", "1000000000", "--out", tmp_path / "m"],
               capsys)
    assert ("measure: episodes=1,000,000,000 × steps=20: refused before any work: it needs "
            "about") in err
    assert "of memory and this machine has" in err and "use fewer episodes" in err


def test_cli_a_full_disk_during_train_is_one_line(capsys, tmp_path, monkeypatch):
    """Simulated here (torch's own message, a disk with no space left); on a real tmpfs in
    tests/test_disk_full.py."""
    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(io, "_LOW_SPACE", 1 << 62)  # every disk looks full
    out = tmp_path / "run"
    err = _cli(["train", BERNOULLI, "--preset", "smoke", "--out", out, "--no-progress"], capsys)
    assert err.startswith(f"trajprobe train: error: no space left on the device to write "
                          f"'{out / 'checkpoint_00000000.pt'}': it needs about ")
    assert len(err.strip().splitlines()) == 1
    assert not [p for p in out.iterdir() if p.suffix in (".pt", ".tmp")]


def _tiny_transformer(max_len: int, positions: int = 16):
    from trajprobe.adapters import wrap_transformer

    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    return wrap_transformer(nn.TransformerEncoder(layer, 1), read_in=nn.Linear(3, 8),
                            read_out=nn.Linear(8, 2), position=nn.Embedding(positions, 8),
                            max_len=max_len)


TRANSFORMER_CASES = {
    "position table shorter than max_len": (
        lambda: _tiny_transformer(max_len=6, positions=4), ValueError,
        r"max_len: 6 steps × 1 tokens need 6 positions, but the position table \(Embedding\) "
        r"has 4 \(n_positions\); build the machine with max_len <= 4"),
    "batch against the cache": (
        lambda: _tiny_transformer(4).step(torch.zeros(3, 3), _tiny_transformer(4)
                                          .initial_state(2)), ValueError,
        r"x: a batch of 3 rows for a state \(cache\) of 2"),
    "a cache of another transformer": (
        lambda: _tiny_transformer(4).step(torch.zeros(2, 3), _tiny_transformer(5)
                                          .initial_state(2)), ValueError,
        r"state: a cache of shape \[2, 1, 2, 5, 4\] does not fit this transformer's "
        r"\[batch, 1, 2, 4, 4\]"),
    "more steps than the cache": (
        lambda: trajprobe.rollout(_tiny_transformer(2), torch.zeros(1, 3, 3)), ValueError,
        r"step failed at t=3 .*the cache holds 2 steps \(max_len\) and is full after step 2; "
        r"run at most 2 steps"),
    "unroll longer than max_len": (
        lambda: _tiny_transformer(2).unroll(torch.zeros(1, 3, 3)), ValueError,
        r"inputs: 3 steps exceed max_len=2 of this transformer"),
    "not a tensor": (lambda: _tiny_transformer(2).step([[0.0] * 3], None), TypeError,
                     r"x: expected a tensor \[batch, 3\], got list"),
}


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_transformer_machines_check_lengths_and_batches(case):
    build, kind, match = TRANSFORMER_CASES[case]
    with pytest.raises(kind, match=match):
        build()


@pytest.mark.parametrize("construct, hint", [
    ("if", r"\(TracerBoolConversionError\): a Python if/while/and/or/bool\(\) on an array; "
           r"use jnp.where"),
    ("int", r"\((TracerInteger|Concretization)\w*Error\): int\(\) of an array"),
    ("numpy", r"\(TracerArrayConversionError\): np.asarray, .item\(\) or float\(\) of an array"),
])
@pytest.mark.jax
def test_a_jax_step_that_is_not_jittable_says_so_with_the_fix(construct, hint):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from trajprobe.adapters.jax import JaxMachine

    def step(params, x, h):
        if construct == "if" and (x > 0).any():
            h = h + 1
        if construct == "int":
            h = h * int(x.sum())
        if construct == "numpy":
            h = h + np.asarray(x).sum()
        return h @ params["v"], h

    machine = JaxMachine(step, {"v": jnp.ones((3, 2))}, lambda params, b: jnp.zeros((b, 3)))
    with pytest.raises(TypeError, match=r"JaxMachine.step failed at t=1 .*step: .*step is not "
                                        r"jittable " + hint + r".*must be a pure function"):
        trajprobe.rollout(machine, torch.ones(2, 3, 3))


def test_measure_of_a_user_environment_with_inf_rewards_fails_loudly():
    from trajprobe.tasks import BernoulliBandit

    class Broken(BernoulliBandit):
        def reward(self, params, context, action, *, generator):
            return super().reward(params, context, action, generator=generator) / 0

    task = Broken()
    torch.manual_seed(0)
    machine = wrap(nn.GRU(task.input_size, 4, batch_first=True), readout=nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"task: Broken.reward returned non-finite rewards "
                                         r"\((NaN and )?inf"):
        trajprobe.measure(machine, task, episodes=2, steps=3)


def test_check_estimate_refuses_with_the_numbers_and_the_override(tmp_path, monkeypatch):
    from trajprobe import resources

    day = resources.TIME_LIMIT_FLOOR
    resources.check_estimate(resources.Estimate("job", seconds=day, reference_seconds=1.0))
    with pytest.raises(resources.ResourceError, match=r"job: refused before any work: it is "
                       r"estimated to take 21 days on this machine, 1,814,400x the preset's "
                       r"1 s; make the job smaller, or add --yes to run it anyway"):
        resources.check_estimate(resources.Estimate("job", seconds=21 * day,
                                                    reference_seconds=1.0), override="--yes")
    monkeypatch.setattr(resources, "available_memory", lambda: 1_000_000)
    with pytest.raises(ValueError, match=r"it needs about 2.0 MB of memory and this machine "
                                         r"has 1.0 MB available; fewer$"):
        resources.check_estimate(resources.Estimate("job", memory=2_000_000), fix="fewer")
    free = resources.free_disk(tmp_path / "not" / "yet")  # the nearest existing parent
    with pytest.raises(ValueError, match=r"it writes about .* and '.*not/yet' has .* free"):
        resources.check_estimate(resources.Estimate("job", disk=free + 10**12),
                                 out=tmp_path / "not" / "yet")
    assert resources.format_duration(4 * 365.25 * 86400) == "4 years"


def test_check_path_accepts_ordinary_paths_and_expands_home(tmp_path):
    from trajprobe.paths import check_path

    assert check_path(tmp_path / "run") == tmp_path / "run"
    assert check_path("runs/x") == Path("runs/x")
    assert check_path("~/runs/x") == Path.home() / "runs" / "x"
    assert check_path("/", output=False) == Path("/")  # reading from / is fine
    with pytest.raises(TypeError, match="out: expected a path, got int"):
        check_path(3)


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_comparing_machines_of_other_input_sizes_names_the_one_that_refused(order):
    from trajprobe import compare
    from trajprobe.apps.models import RabinowitzLSTM

    reads_3, reads_5 = RabinowitzLSTM(3, 2, 4, seed=0), RabinowitzLSTM(5, 2, 4, seed=1)
    a, b = (reads_3, reads_5) if order == "ab" else (reads_5, reads_3)
    refused = "b" if order == "ab" else "a"
    inputs = torch.randn(10, 4, 3)  # 3 features: the 5-input machine refuses them
    for call in (compare.behavioural_dissimilarity, compare.simulation):
        with pytest.raises(ValueError, match=rf"^{refused}: machine {refused} \(RabinowitzLSTM\) "
                                             r"refused its inputs: .*expected shape \[batch, 5\]"):
            call(a, b, inputs)
