"""The Mikulik task catalogue: fourteen entries as data, each with a working Bayes machine."""

from __future__ import annotations

import pytest
import torch

from trajprobe import StateMachine, rollout
from trajprobe.reference_models import catalogue
from trajprobe.tasks import Task


def test_fourteen_entries_ten_prediction_four_bandit():
    assert len(catalogue.CATALOGUE) == 14
    assert len(catalogue.names("prediction")) == 10
    assert len(catalogue.names("bandit")) == 4
    assert len(set(catalogue.names())) == 14
    assert all(e.n_steps == 20 for e in catalogue.CATALOGUE)


def test_get_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="bernoulli_beta_1_1") as info:
        catalogue.get("bernoulli")
    assert "'bernoulli'" in str(info.value)
    with pytest.raises(ValueError, match="kind"):
        catalogue.names("regression")


def test_entries_are_frozen():
    entry = catalogue.get("bernoulli_beta_5_2")
    with pytest.raises(AttributeError):
        entry.name = "other"


# the priors the issue names, checked through the Bayes machine's prior predictive at t = 1
PRIOR_PREDICTIVE = {
    "bernoulli_beta_1_1": [0.5],
    "bernoulli_beta_0.5_0.5": [0.5],
    "bernoulli_beta_5_2": [5 / 7],
    "categorical3_dirichlet_1": [1 / 3] * 3,
    "categorical3_dirichlet_0.5": [1 / 3] * 3,
    "categorical5_dirichlet_1": [0.2] * 5,
    "exponential_gamma_1_1": [1.0, 1.0],                    # Lomax(shape, scale)
    "exponential_gamma_5_5": [5.0, 5.0],
    "gaussian_mean_normal_0_1": [0.0, 2**0.5],              # N(0, 1 + 1)
    "gaussian_normal_gamma_0_1_1_1": [2.0, 0.0, 2**0.5],    # t_2(0, sqrt(2))
}


@pytest.mark.parametrize("name", catalogue.names("prediction"))
def test_prediction_entry_task_and_bayes_machine(name):
    entry = catalogue.get(name)
    task, machine = entry.task, entry.bayes()
    assert isinstance(task, Task) and isinstance(machine, StateMachine)
    assert machine.input_size == task.input_size
    episodes = task.sample(50, entry.n_steps, seed=0, dtype=torch.float64)
    trace = rollout(machine, episodes.inputs)
    torch.testing.assert_close(trace.outputs[0, 0],
                               torch.tensor(PRIOR_PREDICTIVE[name], dtype=torch.float64))
    logp = machine.distribution(trace.outputs).log_prob(episodes.targets)
    assert logp.shape == (50, 20) and torch.isfinite(logp).all()


@pytest.mark.parametrize("name", catalogue.names("prediction"))
def test_bayes_beats_a_mismatched_learner_on_its_task(name):
    """The Bayes predictive has lower log-loss than a deliberately wrong prior (same family)."""
    entry = catalogue.get(name)
    task, machine = entry.task, entry.bayes()
    wrong = {
        "BetaBernoulli": lambda: type(machine)(30.0, 1.0),
        "DirichletCategorical": lambda: type(machine)((30.0,) + (1.0,) * (task.n_classes - 1)),
        "GammaExponential": lambda: type(machine)(30.0, 1.0),
        "NormalKnownVariance": lambda: type(machine)(3.0, 0.1, 1.0),
        "NormalGamma": lambda: type(machine)(3.0, 10.0, 30.0, 1.0),
    }[type(machine).__name__]()
    episodes = task.sample(2000, entry.n_steps, seed=1, dtype=torch.float64)
    losses = [-m.distribution(rollout(m, episodes.inputs).outputs).log_prob(episodes.targets)
              .mean().item() for m in (machine, wrong)]
    assert losses[0] < losses[1] - 0.05


@pytest.mark.parametrize("name", catalogue.names("bandit"))
def test_bandit_entries_build(name):
    entry = catalogue.get(name)
    task = entry.task
    assert task.n_actions == 2
    assert isinstance(entry.bayes(task), StateMachine)
