"""Run Learners (SGD-trained networks as machines) for many steps, probing on the fly.

A Learner's state is its parameters, so keeping every state of a long run (as
:func:`trajprobe.rollout` does) would cost steps × parameters × learners floats. Here
the output function is evaluated at chosen steps only, from the state s_{t-1}, exactly
as :func:`trajprobe.probe` would (the probe of step t sees t-1 completed updates).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from trajprobe import machine as sm
from trajprobe.dynamics import eval_schedule

__all__ = ["eval_schedule", "probe_learner"]


def probe_learner(
    learner: sm.StateMachine,
    state: sm.State,
    minibatch: Callable[[int], torch.Tensor],
    probe_batch: torch.Tensor,
    steps: np.ndarray,
    *,
    progress: bool | None = None,
    desc: str = "training learners",
) -> torch.Tensor:
    """Outputs of step t on a probe minibatch, for every t in ``steps``.

    Args:
        learner: a Learner machine (e.g. :class:`~trajprobe.adapters.torch_learner.Learner`).
        state: s_0 for B learners.
        minibatch: ``t -> x_t`` ``[B, M, D]``, the minibatch of training step t (1-based).
        probe_batch: ``[B, N, D]`` the probe minibatch (only the network-input columns matter).
        steps: increasing steps t (1..T) to probe; the run stops at ``steps[-1]``.

    Returns:
        ``[B, len(steps), N, ...]``: f(probe, s_{t-1}) for every t in ``steps``.
    """
    wanted = set(int(t) for t in steps)
    outputs = []
    with torch.no_grad():
        for t in tqdm(range(1, int(steps[-1]) + 1), desc=desc, unit="step", leave=False,
                      disable=None if progress is None or progress else True):
            if t in wanted:
                outputs.append(sm.output(learner, probe_batch, state))
            _, state = learner.step(minibatch(t), state)
    return torch.stack(outputs, dim=1)
