"""load_run: a run directory gives back its recipe, task and trained machine.

Known answers: the reloaded machine's outputs equal, to the bit, those the training script
printed from its own trained model; a bundled recipe's run comes back as the catalogue's
recipe; a task class defined where no other script can import it is refused with a message
that says how to make it importable.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from trajprobe.apps import Run, load_run
from trajprobe.apps import recipes as catalogue
from trajprobe.apps.recipes import MetaLearnerRecipe, ModelConfig
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.tasks import LinearRegression

TRAIN_SCRIPT = '''
from dataclasses import dataclass

import torch

from trajprobe.apps.recipes import MetaLearnerRecipe, ModelConfig
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.tasks import LinearRegression


@dataclass(frozen=True)
class DriftingRegression(LinearRegression):
    """A user's task: here, the bundled regression under another class and a new field."""

    drift: float = 0.5


RECIPE = MetaLearnerRecipe(
    name="mine/meta-learner", preset="smoke", paper="a test", task=DriftingRegression(dim=2),
    model=ModelConfig(size=8),
    training=SupervisedConfig(200, n_steps=5, batch_size=50,
                              optimiser=OptimiserConfig("adam", 1e-2)))

if __name__ == "__main__":
    result = RECIPE.train("run", seed=3, progress=False)
    from trajprobe.apps import load_run

    print("same script:", type(load_run("run").task).__module__)  # not re-imported
    x = torch.linspace(-1, 1, 4 * 6).reshape(6, 4)
    y, _ = result.model.step(x, result.model.initial_state(6))
    print(repr(y.flatten().tolist()))
'''

LOAD_SCRIPT = '''
import torch

from trajprobe.apps import load_run

recipe, task, machine, seed = load_run("run")
x = torch.linspace(-1, 1, 4 * 6).reshape(6, 4)
with torch.no_grad():
    y, _ = machine.step(x, machine.initial_state(6))
print(type(task).__module__, type(task).__name__, task.drift, seed, recipe.model.size)
print(repr(y.flatten().tolist()))
'''


def _python(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_a_run_trained_in_a_scripts_main_reloads_from_another_script(tmp_path: Path):
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    (tmp_path / "load.py").write_text(LOAD_SCRIPT)
    trained = _python(tmp_path, "train.py")
    assert trained.returncode == 0, trained.stderr[-2000:]
    recorded = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recorded["task"]["class"] == "train.DriftingRegression"
    assert "same script: __main__" in trained.stdout
    loaded = _python(tmp_path, "load.py")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    described, outputs = loaded.stdout.strip().splitlines()[-2:]
    assert described == "train DriftingRegression 0.5 3 8"
    assert outputs == trained.stdout.strip().splitlines()[-1]  # the trained weights, exactly


def test_a_task_defined_in_python_c_gets_a_message_saying_how_to_fix_it(tmp_path: Path):
    trained = _python(tmp_path, "-c", TRAIN_SCRIPT.replace('if __name__ == "__main__":',
                                                           "if True:"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    recorded = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recorded["task"]["class"] == "__main__.DriftingRegression"
    with pytest.raises(ValueError, match=r"__main__\.DriftingRegression.*make it importable"):
        load_run(tmp_path / "run")


def test_an_own_recipe_reloads_in_process(tmp_path: Path):
    recipe = MetaLearnerRecipe(
        name="own/lstm", preset="smoke", paper="test", task=LinearRegression(dim=2),
        model=ModelConfig(size=8),
        training=SupervisedConfig(100, n_steps=5, batch_size=50,
                                  optimiser=OptimiserConfig("adam", 1e-2, "cosine")))
    result = recipe.train(tmp_path / "run", seed=1, progress=False)
    run = load_run(tmp_path / "run")
    assert isinstance(run, Run)
    assert run.recipe == recipe and run.task == recipe.task and run.seed == 1
    for name, value in result.model.state_dict().items():
        torch.testing.assert_close(run.machine.state_dict()[name], value, rtol=0, atol=0)


def test_a_bundled_recipes_run_comes_back_from_the_catalogue(tmp_path: Path):
    name = "bayes-optimal/bernoulli_beta_1_1"
    recipe = catalogue.get(name, "smoke")
    result = recipe.train(tmp_path / "run", seed=0, progress=False)
    run = load_run(tmp_path / "run" / "latest.pt")
    assert run.recipe == recipe and run.seed == 0
    for key, value in result.model.state_dict().items():
        torch.testing.assert_close(run.machine.state_dict()[key], value, rtol=0, atol=0)


def test_not_a_run(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no training run"):
        load_run(tmp_path / "missing")
    with pytest.raises(ValueError, match=textwrap.shorten("is not a trajprobe training run", 40)):
        load_run(tmp_path)


def test_a_given_recipe_is_checked_against_the_record(tmp_path: Path):
    recipe = MetaLearnerRecipe(
        name="own/given", preset="smoke", paper="test", task=LinearRegression(dim=2),
        model=ModelConfig(size=6),
        training=SupervisedConfig(100, n_steps=5, batch_size=50,
                                  optimiser=OptimiserConfig("adam", 1e-2)))
    result = recipe.train(tmp_path / "run", seed=2, progress=False)
    run = load_run(tmp_path / "run", recipe=recipe)
    assert run.recipe is recipe and run.seed == 2 and run.label == "own/given (smoke, seed 2)"
    for key, value in result.model.state_dict().items():
        torch.testing.assert_close(run.machine.state_dict()[key], value, rtol=0, atol=0)
    other = dataclasses.replace(recipe, name="own/other", task=LinearRegression(dim=3))
    with pytest.raises(ValueError, match=r"name: recorded 'own/given', given 'own/other'; "
                                         r"task.dim: recorded 2, given 3"):
        load_run(tmp_path / "run", recipe=other)


def test_a_bundled_name_with_another_model_is_rebuilt_from_its_record(tmp_path: Path):
    """A run of a catalogue recipe whose model was changed (by its user, or by an older
    catalogue) loads with the model it was trained with, not today's catalogue's."""
    bundled = catalogue.get("bayes-optimal/bernoulli_beta_1_1", "smoke")
    recipe = dataclasses.replace(bundled, model=ModelConfig(size=5),
                                 training=dataclasses.replace(bundled.training, n_episodes=100))
    recipe.train(tmp_path / "run", seed=0, progress=False)
    run = load_run(tmp_path / "run")
    assert run.recipe == recipe and run.recipe != bundled
    assert run.machine.step(torch.zeros(4, bundled.task.input_size),
                            run.machine.initial_state(4))[0].shape[0] == 4
