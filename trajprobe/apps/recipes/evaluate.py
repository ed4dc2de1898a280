"""The standard measurement of a trained Meta-Learner: its task's own (:func:`trajprobe.measure`).

Every task carries its measurement — effective spectra for linear regression (Rabinowitz
eqs. 3, 5), Fourier projections for nonlinear regression (eq. 10), per-context policies
for contextual bandits (eqs. 12–13), the log-loss for sequential prediction, rewards and
regret for bandits, or a user's own — so one call measures any recipe. When the task has
a Bayes-optimal machine in :mod:`trajprobe.reference_models.catalogue`, the comparison
with it is added: KL(Bayes ‖ agent) per step and both log-losses (Mikulik eq. 2), or both
agents' rewards (eq. 3). The evaluation episodes come from ``seed`` alone, so every
training seed of a sweep is measured on the same episodes.

>>> ds = evaluate(recipe, model, episodes=50)             # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
import xarray as xr

from trajprobe.apps.recipes.config import MetaLearnerRecipe
from trajprobe.machine import logits_policy
from trajprobe.measurement import measure
from trajprobe.task_protocol import is_environment
from trajprobe.validation import check_positive_int, renamed_arguments

__all__ = ["DEFAULT_EPISODES", "evaluate"]

DEFAULT_EPISODES = 100
"""Evaluation episodes when ``episodes`` is not given."""


@renamed_arguments(n_episodes="episodes")
def evaluate(
    recipe: MetaLearnerRecipe,
    model: torch.nn.Module,
    *,
    episodes: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    """Measure a trained ``model`` of ``recipe`` by its task's measurement (module docstring).

    Args:
        recipe: the Meta-Learner recipe the model was trained by.
        model: the trained network (e.g. ``recipe.train(...).model``).
        episodes: evaluation episodes E (default :data:`DEFAULT_EPISODES`; the old name
            ``n_episodes`` still works, deprecated).
        seed: seed of the evaluation episodes and probe points.
        device: where to evaluate (default: the model's device).

    Returns:
        A Dataset with dims ``episode, t`` plus the task's own (``mode``, ``context``);
        ``attrs["measure"]`` names the measurement and ``attrs["recipe"]`` the recipe.
    """
    if not isinstance(recipe, MetaLearnerRecipe):
        raise TypeError(f"recipe: expected a MetaLearnerRecipe, got {type(recipe).__name__}")
    n = check_positive_int(DEFAULT_EPISODES if episodes is None else episodes, "episodes")
    if device is not None and isinstance(model, torch.nn.Module):
        model = model.to(device)
    task, n_steps = recipe.task, recipe.training.n_steps
    bayes = _bayes_machine(task)
    if bayes is not None and isinstance(model, torch.nn.Module):
        model = model.cpu()  # the Bayes machines run on the CPU
    # with a Bayes reference, both machines see the same open-loop episodes
    shared = (task.sample(n, n_steps, seed=seed)
              if bayes is not None and not is_environment(task) else n)
    with torch.no_grad():
        ds = measure(model, task, episodes=shared, steps=n_steps, seed=seed,
                     policy=logits_policy, progress=False)
        if "W_hat" in ds:
            ds = ds.drop_vars(["W_hat", "W"])
        if bayes is not None:
            ds = _against_bayes(ds, bayes, model, task, shared, n_steps, seed)
    ds.attrs.update(recipe=recipe.name, preset=recipe.preset, eval_seed=seed)
    return ds


def _bayes_machine(task: Any) -> Any:
    """The catalogue's Bayes-optimal machine for ``task``, or None."""
    from trajprobe.reference_models import catalogue

    entry = catalogue.find(task)
    return None if entry is None else entry.bayes(task)


def _against_bayes(ds: xr.Dataset, bayes: Any, model: Any, task: Any, episodes: Any,
                   n_steps: int, seed: int) -> xr.Dataset:
    """Mikulik eqs. 2-3 per step against the Bayes-optimal machine, on the same episodes
    (an environment: the same seed, so the same arms and contexts)."""
    from trajprobe.compare import behavioural_dissimilarity

    best = measure(bayes, task, episodes=episodes, steps=n_steps, seed=seed, progress=False)
    if is_environment(task):
        return ds.assign(bayes_reward=best["reward"]).assign_attrs(
            measure="reward against Bayes (Mikulik eq. 3)")
    kl = behavioural_dissimilarity(bayes, model, episodes.inputs)["kl"]
    return ds.assign(kl=kl.astype(float), bayes_log_loss=best["log_loss"]).assign_attrs(
        measure="KL(Bayes || agent) and log-loss (Mikulik eq. 2)")
