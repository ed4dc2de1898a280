"""Advantage actor-critic on closed-loop episodes (Rabinowitz §5.2.1, A.6)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from trajprobe import machine as sm
from trajprobe.apps.training.closed_loop import Played, lstm_core, play, taped_lstm
from trajprobe.apps.training.config import PolicyGradientConfig
from trajprobe.apps.training.engine import TrainingResult, prepare, run
from trajprobe.apps.training.losses import discounted_returns, unroll
from trajprobe.apps.training.stages import Curriculum, StageFactory
from trajprobe.randomness import make_generator, step_seed
from trajprobe.task_checks import ENVIRONMENT_METHODS, check_methods
from trajprobe.task_protocol import Environment

__all__ = ["train_policy_gradient"]


def _policy_logits(model: nn.Module, played: Played) -> torch.Tensor:
    """The logits ``[E, T, A]`` of the played episodes, differentiable in the parameters:
    through the recorded LSTM pass when there is one, else by replaying the inputs."""
    if played.tape is None:
        return unroll(model, played.inputs)
    pre, lstm, post = lstm_core(model)
    return post(taped_lstm(pre(played.inputs), lstm, played.tape))


def _zero_baseline(model: nn.Module, dev: torch.device, dtype: torch.dtype) -> nn.Linear:
    """V(s) = w·s + b over the machine's state vector, w = 0 and b = 0 at the start."""
    with torch.no_grad():
        n_state = sm.state_vector(model, model.initial_state(1)).shape[1]
    baseline = nn.Linear(n_state, 1).to(device=dev, dtype=dtype)
    with torch.no_grad():
        nn.init.zeros_(baseline.weight)
        nn.init.zeros_(baseline.bias)
    return baseline


def train_policy_gradient(
    model: nn.Module,
    task: Environment,
    config: PolicyGradientConfig,
    out_dir: str | Path | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    resume: bool = True,
    stages: Mapping[str, StageFactory] | None = None,
) -> TrainingResult:
    """Meta-train a bandit policy ``model`` by advantage actor-critic (see the config).

    Every outer step runs ``batch_size`` episodes of ``n_steps`` (or its curriculum
    stage's length, in its stage's task: ``config.stage_at``) closed-loop
    (:func:`trajprobe.apps.training.closed_loop.play`): the input at t is
    ``task.encode(context_t, a_{t-1}, r_{t-1})``, the model's output y_t are the logits of
    π_t, a_t ~ softmax(y_t) (Gumbel-max), r_t = ``task.reward(...)``, every draw made
    before the first step from the outer step's seed. The episodes are played without
    gradients; a model with an LSTM core (``lstm_core()``) records its gates and the loss
    is backpropagated through that record (the episode is computed once), any other model
    replays the recorded inputs once (``model.unroll`` when it has one) to build the loss.

    The baseline is a linear read-out of ``state_vector(model, s_t)`` with the state's
    gradient stopped: with a shared torso the squared error of returns (scale ~1/(1-γ))
    swamped the policy gradient in Adam's normalisation: a 1-context, 5-armed bandit
    stayed at chance reward for 2,000 updates, and learned with the gradient stopped
    (measured). It is returned as
    ``TrainingResult.baseline`` and saved in the checkpoints under ``extra``.

    Args: as :func:`~trajprobe.apps.training.train_supervised`, with ``task`` a
        :class:`~trajprobe.tasks.Environment`, and
        stages: the named curriculum stages (``{name: factory}``, see
            :mod:`trajprobe.apps.training.stages`); a curriculum that names a stage not
            given here is refused before training starts.
    """
    if not isinstance(config, PolicyGradientConfig):
        raise TypeError(f"config: expected a PolicyGradientConfig, got {type(config).__name__}")
    check_methods(task, ENVIRONMENT_METHODS, "an Environment")
    curriculum = Curriculum(task, config, stages)
    dev, dtype = prepare(model, device)
    baseline = _zero_baseline(model, dev, dtype)
    total = math.ceil(config.n_episodes / config.batch_size)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen = make_generator(step_seed(config.seed, step), dev)
        n_steps, stage_task = curriculum.at(model, step, total)
        played = play(model, stage_task, config.batch_size, n_steps, generator=gen)
        log_pi = torch.log_softmax(_policy_logits(model, played), dim=-1)  # [E, T, A]
        log_prob = log_pi.gather(2, played.actions[..., None])[..., 0]
        entropy = -(log_pi.exp() * log_pi).sum(-1).mean()
        rewards = played.rewards.to(dtype)
        returns = discounted_returns(rewards, config.discount)
        v = baseline(played.state_vectors)[..., 0]
        advantage = (returns - v).detach()
        loss = (-(log_prob * advantage).mean()
                + config.baseline_cost * 0.5 * (returns - v).pow(2).mean()
                - config.entropy_cost * entropy)
        return loss, {"reward": rewards.mean(), "entropy": entropy}

    return run("policy_gradient", model, config, out_dir, loss_fn,
               ("loss", "reward", "entropy"), {"baseline": baseline, **curriculum.state_modules()},
               progress=progress, resume=resume, task=task)
