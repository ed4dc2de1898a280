"""Recipes: every set-up at every preset builds, names are checked, trained runs reload."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trajprobe import rollout
from trajprobe.apps import load_run, recipes


def test_every_recipe_builds_at_every_preset_with_the_papers_values():
    for name in recipes.names():
        for preset in recipes.PRESETS:
            recipe = recipes.get(name, preset)
            assert recipe.name == name and recipe.preset == preset
            assert recipe.estimated_seconds() > 0
    paper = recipes.get("linear-regression-2d/meta-learner", "paper")
    assert paper.training.n_episodes == 80_000_000  # Rabinowitz A.2
    assert paper.training.optimiser.name == "sgd" and paper.training.optimiser.lr == 1e-2
    assert paper.model.size == 64
    learner = recipes.get("linear-regression-2d/learner", "paper").learner
    assert (learner.hidden, learner.minibatch, learner.n_steps) == (10, 100, 4_000)  # A.1
    assert recipes.get("nonlinear-regression/meta-learner", "paper").training.n_steps == 40
    assert len([n for n in recipes.names() if n.startswith("bayes-optimal/")]) == 14


def test_meta_learner_presets_shrink():
    for name in recipes.names():
        if not isinstance(recipes.get(name, "smoke"), recipes.MetaLearnerRecipe):
            continue
        costs = [recipes.get(name, p).estimated_seconds() for p in ("smoke", "quick", "paper")]
        assert costs[0] <= costs[1] <= costs[2], name


def test_bad_names_list_the_valid_ones():
    with pytest.raises(ValueError,
                       match=r"name: no recipe 'nope' \(valid names: linear-regression"):
        recipes.get("nope")
    with pytest.raises(ValueError, match="preset: expected one of smoke, quick, paper"):
        recipes.get("linear-regression-2d/meta-learner", "huge")


def test_trained_run_reloads_with_identical_outputs(tmp_path):
    recipe = recipes.get("bayes-optimal/bernoulli_beta_1_1", "smoke")
    recipe = replace(recipe, training=replace(recipe.training, n_episodes=200))
    result = recipe.train(tmp_path / "run", seed=1, progress=False)
    loaded_recipe, _, model, seed = load_run(tmp_path / "run")
    assert loaded_recipe == recipe and seed == 1  # not the catalogue's: n_episodes differs
    inputs = recipe.task.sample(4, 20, seed=0).inputs
    assert torch.equal(rollout(model, inputs).outputs, rollout(result.model, inputs).outputs)
    with pytest.raises(ValueError, match="is not a trajprobe training run"):
        load_run(tmp_path)


def test_fixed_task_repeats_its_parameters():
    recipe = recipes.get("linear-regression-2d/learner-lstm", "smoke")
    a = recipe.task.sample(3, 5, seed=0)
    b = recipe.task.sample(2, 5, seed=1)
    assert torch.equal(a.params["W"][0], b.params["W"][1])
    expected = torch.einsum("eij,etj->eti", a.params["W"], a.inputs[..., :2])
    assert torch.allclose(a.targets, expected, atol=0.05)  # noise 0.01
    assert not torch.equal(a.inputs[0], b.inputs[0])


def test_training_train_runs_a_recipe(tmp_path):
    from trajprobe.apps.training import train

    recipe = recipes.get("bayes-optimal/bernoulli_beta_1_1", "smoke")
    recipe = replace(recipe, training=replace(recipe.training, n_episodes=100))
    result = train(recipe, tmp_path, seed=0, progress=False)
    assert int(result.metrics["episodes"].isel(step=-1)) == 100
    assert (tmp_path / "latest.pt").is_file() and (tmp_path / "recipe.json").is_file()
    with pytest.raises(TypeError, match="recipe: expected a Meta-Learner recipe"):
        train(recipes.get("linear-regression-2d/learner", "smoke").learner, tmp_path)


def test_one_optimiser_vocabulary_in_configs_and_learner_factories():
    from trajprobe.adapters.torch_learner import (
        SGD,
        Adam,
        bandit_learner,
        linear_regression_learner,
        make_optimiser,
    )
    from trajprobe.apps.training import OPTIMISERS, OptimiserConfig

    assert OPTIMISERS == ("sgd", "adam")
    with pytest.raises(ValueError, match="optimiser: expected 'sgd' or 'adam', got 'rmsprop'"):
        recipes.LearnerConfig("linear-mlp", "rmsprop", 1e-3, 10, 100, 10, 2)
    with pytest.raises(ValueError, match="name: expected 'sgd' or 'adam', got 'rmsprop'"):
        OptimiserConfig("rmsprop")
    # a Learner recipe's (name, lr) and the factories' names give the same optimiser
    learner = recipes.get("linear-regression-2d/learner-adam", "paper").learner
    assert make_optimiser(learner.optimiser, learner.lr) == Adam(1e-3)
    assert linear_regression_learner(optimiser="adam", lr=0.01).optimiser == Adam(0.01)
    assert linear_regression_learner().optimiser == SGD(1e-3)  # the paper's defaults
    assert bandit_learner(3, 3, optimiser="sgd", lr=0.5).optimiser == SGD(0.5)
    assert bandit_learner(3, 3).optimiser == Adam(1e-4)
    assert linear_regression_learner(optimiser=Adam(0.01)).optimiser == Adam(0.01)  # as before
    with pytest.raises(ValueError, match="lr: give it with an optimiser's name"):
        make_optimiser(SGD(0.1), 0.2)
