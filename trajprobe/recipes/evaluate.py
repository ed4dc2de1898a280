"""The standard measurement of a trained Meta-Learner, chosen by its recipe's task.

Every recipe family has one measurement that the papers report per trained agent:

============================  ===========================================================
task                          measurement
============================  ===========================================================
``LinearRegression``          effective spectra ŝ_k(t), q_k(t) (Rabinowitz eqs. 3, 5)
``FourierRegression``         Fourier projections q_k(t) (Rabinowitz eq. 10)
``ContextualBandit``          per-context policy q_c(t) (Rabinowitz eqs. 12-13)
catalogue prediction task     KL(Bayes ‖ agent) per step (Mikulik eq. 2) and log-losses
catalogue bandit task         reward per step of the agent and of Bayes (Mikulik eq. 3)
============================  ===========================================================

A ``FixedTask`` recipe (an LSTM trained on one task, Figs. A4/A6) is measured on its one
task. The evaluation episodes come from ``seed`` alone, so every
training seed of a sweep is measured on the same episodes.

>>> ds = evaluate(recipe, model, n_episodes=50)           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
import xarray as xr

from trajprobe.recipes.config import MetaLearnerRecipe
from trajprobe.tasks import ContextualBandit, FourierRegression, LinearRegression

__all__ = ["DEFAULT_EPISODES", "evaluate", "log_loss", "logits_policy"]

DEFAULT_EPISODES = 100
"""Evaluation episodes when ``n_episodes`` is not given."""


def evaluate(
    recipe: MetaLearnerRecipe,
    model: torch.nn.Module,
    *,
    n_episodes: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    """Measure a trained ``model`` of ``recipe`` the way its paper does (table above).

    Args:
        recipe: the Meta-Learner recipe the model was trained by.
        model: the trained network (e.g. ``recipe.train(...).model``).
        n_episodes: evaluation episodes E (default :data:`DEFAULT_EPISODES`).
        seed: seed of the evaluation episodes and probe points.
        device: where to evaluate (default: the model's device).

    Returns:
        A Dataset with dims ``episode, t`` plus ``mode`` (spectra, Fourier) or ``context``
        (bandits); ``attrs["measure"]`` names the measurement and ``attrs["recipe"]`` the
        recipe.
    """
    if not isinstance(recipe, MetaLearnerRecipe):
        raise TypeError(f"recipe: expected a MetaLearnerRecipe, got {type(recipe).__name__}")
    n = DEFAULT_EPISODES if n_episodes is None else n_episodes
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_episodes: expected a positive int, got {n_episodes!r}")
    if device is not None and isinstance(model, torch.nn.Module):
        model = model.to(device)
    task = getattr(recipe.task, "task", recipe.task)  # a FixedTask's family
    n_steps = recipe.training.n_steps
    from trajprobe import measure

    # a FixedTask's episodes all share its one draw of the task parameters
    episodes = recipe.task.sample(n, n_steps, seed=seed) if task is not recipe.task else None
    with torch.no_grad():
        if isinstance(task, LinearRegression):
            ds = measure.effective_spectra(model, task, n, n_steps, episodes=episodes,
                                           seed=seed, progress=False)
            ds = ds.drop_vars(["W_hat", "W"])
        elif isinstance(task, FourierRegression):
            ds = measure.fourier_spectra(model, task, n, n_steps, episodes=episodes, seed=seed,
                                         progress=False)
        elif isinstance(task, ContextualBandit):
            ds = measure.context_dynamics(model, task, n, n_steps, seed=seed, policy=logits_policy,
                                          progress=False)
        elif recipe.name.startswith("bayes-optimal/"):
            ds = _against_bayes(recipe.name.split("/", 1)[1], model, n, seed)
        else:
            raise ValueError(f"recipe: no standard measurement for task "
                             f"{type(task).__name__} (recipe {recipe.name!r})")
    ds.attrs.update(recipe=recipe.name, preset=recipe.preset, eval_seed=seed)
    return ds


def _against_bayes(task_name: str, model: torch.nn.Module, n: int, seed: int) -> xr.Dataset:
    """Mikulik eqs. 2-3 per step against the catalogue task's Bayes-optimal machine."""
    from trajprobe.compare import behavioural_dissimilarity
    from trajprobe.reference_models import catalogue
    from trajprobe.rollout import rollout_env

    entry = catalogue.get(task_name)
    task, bayes = entry.task, entry.bayes()
    if isinstance(model, torch.nn.Module):
        model = model.cpu()  # the Bayes machines run on the CPU
    if entry.kind == "bandit":
        agent = rollout_env(model, task, n, entry.n_steps, seed=seed, policy=logits_policy)
        best = rollout_env(bayes, task, n, entry.n_steps, seed=seed)
        return xr.Dataset(
            {"reward": (("episode", "t"), _np(agent.rewards)),
             "bayes_reward": (("episode", "t"), _np(best.rewards))},
            attrs={"measure": "reward against Bayes (Mikulik eq. 3)", "task": task_name},
        )
    episodes = task.sample(n, entry.n_steps, seed=seed)
    kl = behavioural_dissimilarity(bayes, model, episodes.inputs)["kl"]
    return xr.Dataset(
        {"kl": kl.astype(float),
         "log_loss": (("episode", "t"), _np(log_loss(model, episodes.inputs, episodes.targets))),
         "bayes_log_loss": (("episode", "t"),
                            _np(log_loss(bayes, episodes.inputs, episodes.targets)))},
        attrs={"measure": "KL(Bayes || agent) and log-loss (Mikulik eq. 2)", "task": task_name},
    )


def logits_policy(y: torch.Tensor) -> torch.distributions.Categorical:
    """A network's policy π_t: its outputs ``[E, A]`` are the logits."""
    return torch.distributions.Categorical(logits=y)


def log_loss(machine: Any, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−log p(y_t | outputs_t) ``[E, T]`` (float64) under ``machine.distribution``.

    Args:
        machine: a machine with ``distribution(outputs)``.
        inputs: ``[E, T, input_size]``; targets: ``[E, T, ...]`` the observed y_t.
    """
    from trajprobe.rollout import rollout

    outputs = rollout(machine, inputs).outputs.detach().to(torch.float64)
    value = targets.to(torch.float64) if targets.is_floating_point() else targets
    return -machine.distribution(outputs).log_prob(value)


def _np(x: torch.Tensor) -> Any:
    return x.detach().cpu().double().numpy()
