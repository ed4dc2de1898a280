"""Histories a Bayes-optimal agent cannot tell apart: the task hook behind
:func:`trajprobe.compare.sufficiency`.

When the observations of a task are exchangeable given its latent parameters (i.i.d.
draws, as in every prediction and regression task here), the posterior after a history
depends on the observations seen, not on their order: two histories that hold the same
observations in another order leave the Bayes-optimal agent in the same state. A task
opts in to the sufficiency test in one of two ways:

* **an attribute** ``exchangeable_from: int`` (1-based): the inputs of steps
  ``exchangeable_from``.. are single observations whose order the posterior ignores, so
  the generic :func:`permute_steps` applies (the prediction tasks: 2, since step 1 is
  the "no observation yet" input; a task whose every input is an i.i.d. observation: 1);
* **a method** ``permute_history(episodes, t, *, seed) -> [E, T, input_size]`` for any
  other encoding: inputs of partner histories whose first t inputs leave the Bayes agent
  in the same state as the episodes' first t inputs, and whose inputs after t are the
  episodes' own (so either history's future continues both). Linear regression's
  ``[x_t, y_{t-1}]`` encoding uses :func:`permute_examples`.

The method wins when a task has both. Nothing here reads a task's class.
"""

from __future__ import annotations

import torch

from trajprobe.randomness import Seed, make_generator
from trajprobe.validation import check_positive_int

__all__ = ["permute_examples", "permute_steps"]


def _check(inputs: torch.Tensor, t: int) -> None:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 3:
        raise ValueError(f"inputs: expected a tensor [E, T, features...], got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)}")
    if not isinstance(t, int) or not 0 <= t <= inputs.shape[1]:
        raise ValueError(f"t: expected a step in 0..{inputs.shape[1]}, got {t!r}")


def _permutations(n_episodes: int, n: int, seed: Seed, device: torch.device) -> torch.Tensor:
    """An independent uniform permutation of 0..n-1 per episode: ``[E, n]`` (long)."""
    gen = make_generator(seed, device)
    return torch.rand(n_episodes, n, generator=gen, device=device).argsort(dim=1)


def permute_steps(inputs: torch.Tensor, t: int, *, first: int = 1,
                  seed: Seed = None) -> torch.Tensor:
    """Inputs with steps ``first``..t shuffled, independently per episode.

    Args:
        inputs: ``[E, T, ...]`` the episodes' inputs.
        t: the last step (1-based) of the shuffled block, 0..T; steps after t are kept.
        first: the first shuffled step (1-based); steps before it are kept.
        seed: the permutations' randomness (an int, a generator used as is, or None).

    Returns:
        ``[E, T, ...]``: row e holds ``inputs[e]`` with its steps first..t in a uniformly
        random order (a new tensor; ``inputs`` is not modified).
    """
    _check(inputs, t)
    check_positive_int(first, "first")
    out = inputs.clone()
    n = t - first + 1
    if n < 2:
        return out
    perm = _permutations(inputs.shape[0], n, seed, inputs.device) + (first - 1)
    block = torch.gather(inputs, 1, perm.view(*perm.shape, *([1] * (inputs.dim() - 2)))
                         .expand(-1, -1, *inputs.shape[2:]))
    out[:, first - 1:t] = block
    return out


def permute_examples(inputs: torch.Tensor, t: int, x_size: int, *,
                     seed: Seed = None) -> torch.Tensor:
    """Shuffle the completed (x, y) examples of a ``[x_t, y_{t-1}]`` encoding.

    With input i = ``[x_i, y_{i-1}]`` (y_0 = 0), the first t inputs hold the completed
    examples (x_i, y_i), i < t, and a pending x_t. The examples are shuffled as pairs,
    independently per episode; x_t stays pending, so input t+1 = ``[x_{t+1}, y_t]`` still
    pairs y_t with it and every input after t is kept.

    Args:
        inputs: ``[E, T, x_size + y_size]``.
        t: the history length, 0..T.
        x_size: the width of x (the leading features of an input).
        seed: the permutations' randomness.

    Returns:
        ``[E, T, x_size + y_size]`` (a new tensor).
    """
    _check(inputs, t)
    check_positive_int(x_size, "x_size")
    if inputs.dim() != 3 or inputs.shape[2] <= x_size:
        raise ValueError(f"inputs: expected [E, T, x_size + y_size] with x_size = {x_size}, "
                         f"got {tuple(inputs.shape)}")
    out = inputs.clone()
    n = t - 1  # completed examples
    if n < 2:
        return out
    perm = _permutations(inputs.shape[0], n, seed, inputs.device)
    x = inputs[:, :n, :x_size]  # x_1..x_{t-1}
    y = inputs[:, 1:t, x_size:]  # y_1..y_{t-1} (input i+1 holds y_i)
    out[:, :n, :x_size] = torch.gather(x, 1, perm[..., None].expand(-1, -1, x.shape[2]))
    out[:, 1:t, x_size:] = torch.gather(y, 1, perm[..., None].expand(-1, -1, y.shape[2]))
    return out
