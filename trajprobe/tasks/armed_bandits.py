"""Multi-armed (by default two-armed) bandits without contexts (Mikulik et al. 2020 §3.1).

Each episode draws the arms' mean rewards from a prior; pulling arm a returns a reward
drawn around its mean. Both tasks implement :class:`~trajprobe.task_protocol.Environment`.

Input encoding (shared by meta-learners and the Bayes agents of
``trajprobe.reference_models.bandits``): the input at step t is

    x_t = concat[ one_hot(a_{t-1}) (n_arms),  r_{t-1} (1) ]        [E, n_arms + 1]

with zeros at t = 1 (no previous action or reward). There are no contexts in the
encoding; to fit the :class:`~trajprobe.task_protocol.Environment` protocol, whose
``encode(context, None, None)`` must return ``[E, input_size]`` at t = 1, ``contexts``
returns a single constant context (zeros ``[E, T]``, long) that only carries E.
``encode`` also accepts ``context=None`` with ``batch_size=E``. Ground truth per
episode: ``params["means"]`` ``[E, n_arms]`` (success probabilities or mean rewards).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.validation import check_positive, check_positive_int

if TYPE_CHECKING:
    from trajprobe.task_protocol import Probed

__all__ = ["BernoulliBandit", "GaussianBandit", "encode_action_reward", "regret"]


def encode_action_reward(
    n_arms: int,
    prev_action: torch.Tensor | None,
    prev_reward: torch.Tensor | None,
    *,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``concat[one_hot(prev_action), prev_reward]`` ``[E, n_arms + 1]``; zeros when both None.

    Args:
        n_arms: number of arms.
        prev_action: ``[E]`` long, or None at t = 1.
        prev_reward: ``[E]``, or None at t = 1 (must be None exactly when
            ``prev_action`` is).
        batch_size: E, needed only when both are None (there is no context to infer it).
    """
    if (prev_action is None) != (prev_reward is None):
        raise ValueError(
            "prev_action, prev_reward: expected both None (t = 1) or both given, got "
            f"{'None' if prev_action is None else 'a tensor'} and "
            f"{'None' if prev_reward is None else 'a tensor'}"
        )
    if prev_action is None:
        if batch_size is None:
            raise ValueError(
                "batch_size: expected the number of episodes when prev_action and prev_reward "
                "are None (a bandit without contexts cannot infer it), got None"
            )
        return torch.zeros(batch_size, n_arms + 1, dtype=dtype, device=device)
    if prev_action.dim() != 1 or prev_reward.shape != prev_action.shape:
        raise ValueError(
            f"prev_action, prev_reward: expected matching shapes [E], got "
            f"{tuple(prev_action.shape)} and {tuple(prev_reward.shape)}"
        )
    if prev_action.is_floating_point() or bool(((prev_action < 0) | (prev_action >= n_arms)).any()):
        raise ValueError(f"prev_action: expected integer actions in 0..{n_arms - 1}")
    if batch_size is not None and batch_size != prev_action.shape[0]:
        raise ValueError(
            f"batch_size: expected {prev_action.shape[0]} (from prev_action), got {batch_size}"
        )
    device = prev_action.device if device is None else device
    one_hot = torch.nn.functional.one_hot(prev_action.long(), n_arms).to(dtype=dtype, device=device)
    return torch.cat([one_hot, prev_reward.to(dtype=dtype, device=device)[:, None]], dim=1)


def regret(means: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Per-step expected regret ``[E, T]`` (float64): the best arm's mean minus the mean of
    the arm pulled, from every arm's mean ``[E, n_arms]`` and the actions ``[E, T]``."""
    means = means.to(torch.float64)
    pulled = means.gather(1, actions.long().to(means.device))
    return means.max(1, keepdim=True).values - pulled


def _check_action(action: torch.Tensor, n_arms: int, n_episodes: int) -> torch.Tensor:
    if action.shape != (n_episodes,):
        raise ValueError(f"action: expected shape [{n_episodes}], got {tuple(action.shape)}")
    if action.is_floating_point() or bool(((action < 0) | (action >= n_arms)).any()):
        raise ValueError(f"action: expected integer actions in 0..{n_arms - 1}")
    return action.long()


def _single_context(params: dict[str, torch.Tensor], n_steps: int) -> torch.Tensor:
    check_positive_int(n_steps, "n_steps")
    means = params["means"]
    return torch.zeros(means.shape[0], n_steps, dtype=torch.long, device=means.device)


def _batch_from_context(context: torch.Tensor | None, batch_size: int | None) -> int | None:
    if context is None:
        return batch_size
    if not isinstance(context, torch.Tensor) or context.dim() != 1:
        raise ValueError(
            "context: expected None or the constant context [E] from contexts(), got "
            f"{tuple(context.shape) if isinstance(context, torch.Tensor) else context!r}"
        )
    if batch_size is not None and batch_size != context.shape[0]:
        raise ValueError(
            f"batch_size: expected {context.shape[0]} (from context), got {batch_size}"
        )
    return context.shape[0]


def _numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded from ``generator`` (for draws torch cannot seed, e.g. Beta)."""
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item()
    return np.random.default_rng(int(seed))


class _Arms:
    """What every context-free bandit of this module shares: sizes, contexts, encoding."""

    n_arms: int
    exchangeable_from: int = 2
    """From step 2 on an input is one (a_{t-1}, r_{t-1}) pair, and the posterior over the
    arms' means depends on the pairs seen, not their order
    (:mod:`trajprobe.tasks.exchangeable`; the sufficiency test)."""

    @property
    def input_size(self) -> int:
        """n_arms + 1: one-hot previous action and previous reward."""
        return self.n_arms + 1

    @property
    def n_actions(self) -> int:
        """The number of arms."""
        return self.n_arms

    def contexts(
        self, params: dict[str, torch.Tensor], n_steps: int, *, generator: torch.Generator
    ) -> torch.Tensor:
        """A single constant context: zeros ``[E, T]`` (long); see the module docstring."""
        return _single_context(params, n_steps)

    def encode(
        self,
        context: torch.Tensor | None,
        prev_action: torch.Tensor | None,
        prev_reward: torch.Tensor | None,
        *,
        dtype: torch.dtype = torch.float32,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """``concat[one_hot(a_{t-1}), r_{t-1}]`` ``[E, n_arms + 1]``; zeros at t = 1.

        ``context`` (the constant context, ``[E]``) is not encoded; at t = 1 it, or
        ``batch_size``, gives the number of episodes E.
        """
        return encode_action_reward(
            self.n_arms, prev_action, prev_reward,
            batch_size=_batch_from_context(context, batch_size), dtype=dtype,
        )

    def probe_inputs(self, episodes: Episodes, n_probes: int | None = None, *,
                     seed: Seed = None) -> None:
        """None: a bandit's measurement reads the actions it took."""
        if n_probes is not None:
            raise ValueError(f"n_probes: {type(self).__name__} is measured without probes "
                             f"(its rewards and regret), got {n_probes}")
        return None

    def summarise(self, probed: Probed) -> xr.Dataset:
        """Rewards and regret of the actions taken (Mikulik et al. eq. 3's per-step terms).

        Returns:
            ``reward (episode, t)`` (realised), ``expected_reward (episode, t)`` (the mean
            of the arm pulled) and ``regret (episode, t)`` (best arm's mean minus it).
        """
        trace = probed.trace
        means = probed.episodes.params["means"].to(torch.float64)
        pulled = means.gather(1, trace.actions.long().to(means.device))
        ds = xr.Dataset(
            {"reward": (("episode", "t"), to_numpy(trace.rewards)),
             "expected_reward": (("episode", "t"), to_numpy(pulled)),
             "regret": (("episode", "t"), to_numpy(regret(means, trace.actions)))},
            attrs={"measure": "reward"},
        )
        return describe(ds, {
            "reward": Label("reward", "1", "realised reward of the arm pulled"),
            "expected_reward": Label("expected reward", "1", "mean reward of the arm pulled"),
            "regret": Label("regret", "1", "best arm's mean minus the pulled arm's"),
        })


@dataclass(frozen=True)
class BernoulliBandit(_Arms):
    """Bernoulli arms with success probabilities p_a ~ Beta(alpha, beta) i.i.d. per episode.

    Reward r ∈ {0, 1} with P(r = 1 | a) = p_a. Encoding: see the module docstring.

    Attributes:
        alpha, beta: the Beta prior, both > 0.
        n_arms: number of arms (>= 1; 2 in the Mikulik set-up).
    """

    alpha: float = 1.0
    beta: float = 1.0
    n_arms: int = 2

    def __post_init__(self) -> None:
        check_positive(self.alpha, "alpha")
        check_positive(self.beta, "beta")
        check_positive_int(self.n_arms, "n_arms")

    def sample_params(
        self,
        n_episodes: int,
        *,
        generator: torch.Generator | Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, torch.Tensor]:
        """``{"means": [E, n_arms]}``: every arm's success probability, drawn from the prior."""
        check_positive_int(n_episodes, "n_episodes")
        gen = make_generator(generator, device)
        p = _numpy_rng(gen).beta(self.alpha, self.beta, size=(n_episodes, self.n_arms))
        return {"means": torch.as_tensor(p, dtype=dtype, device=device)}

    def reward(
        self,
        params: dict[str, torch.Tensor],
        context: torch.Tensor | None,
        action: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Bernoulli rewards ``[E]`` (0 or 1, dtype of the means) for ``action`` ``[E]``."""
        means = params["means"]
        action = _check_action(action, self.n_arms, means.shape[0])
        p = means.gather(1, action.to(means.device)[:, None])[:, 0]
        u = torch.rand(p.shape, generator=generator, device=generator.device, dtype=p.dtype)
        return (u.to(p.device) < p).to(p.dtype)

    def expected_reward(
        self, params: dict[str, torch.Tensor], context: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean reward of every arm ``[E, n_arms]``: the success probabilities."""
        return params["means"]

    def prior_mean_of_best(self) -> float:
        """E[max_a p_a] under the prior (for Bayes regret); numerical integration."""
        from scipy import integrate, special

        # E[max] = ∫_0^1 (1 - F(x)^n) dx, F the Beta CDF (regularised incomplete beta)
        val, _ = integrate.quad(
            lambda x: 1.0 - special.betainc(self.alpha, self.beta, x) ** self.n_arms,
            0.0, 1.0, limit=200,
        )
        return float(val)


@dataclass(frozen=True)
class GaussianBandit(_Arms):
    """Gaussian arms: means μ_a ~ N(prior_mean, prior_std²) i.i.d.; r | a ~ N(μ_a, reward_std²).

    Encoding: see the module docstring.

    Attributes:
        prior_mean: mean of the prior on every arm's mean reward.
        prior_std: > 0, its standard deviation (not the variance).
        reward_std: > 0, the known standard deviation of rewards around the arm's mean.
        n_arms: number of arms (>= 1; 2 in the Mikulik set-up).
    """

    prior_mean: float = 0.0
    prior_std: float = 1.0
    reward_std: float = 1.0
    n_arms: int = 2

    def __post_init__(self) -> None:
        if not math.isfinite(self.prior_mean):
            raise ValueError(f"prior_mean: expected a finite number, got {self.prior_mean!r}")
        check_positive(self.prior_std, "prior_std")
        check_positive(self.reward_std, "reward_std")
        check_positive_int(self.n_arms, "n_arms")

    def sample_params(
        self,
        n_episodes: int,
        *,
        generator: torch.Generator | Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, torch.Tensor]:
        """``{"means": [E, n_arms]}``: every arm's mean reward, drawn from the prior."""
        check_positive_int(n_episodes, "n_episodes")
        gen = make_generator(generator, device)
        z = torch.randn((n_episodes, self.n_arms), generator=gen, device=gen.device, dtype=dtype)
        return {"means": (self.prior_mean + self.prior_std * z).to(device)}

    def reward(
        self,
        params: dict[str, torch.Tensor],
        context: torch.Tensor | None,
        action: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Gaussian rewards ``[E]`` N(μ_action, reward_std²) for ``action`` ``[E]``."""
        means = params["means"]
        action = _check_action(action, self.n_arms, means.shape[0])
        mu = means.gather(1, action.to(means.device)[:, None])[:, 0]
        z = torch.randn(mu.shape, generator=generator, device=generator.device, dtype=mu.dtype)
        return mu + self.reward_std * z.to(mu.device)

    def expected_reward(
        self, params: dict[str, torch.Tensor], context: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean reward of every arm ``[E, n_arms]``."""
        return params["means"]

    def prior_mean_of_best(self) -> float:
        """E[max_a μ_a] under the prior (for Bayes regret): prior_mean + prior_std e_n, with
        e_n = E[max of n_arms standard normals] (1/sqrt(π) for two arms)."""
        from scipy import integrate, special

        n = self.n_arms
        e_n, _ = integrate.quad(
            lambda x: x * n * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
            * special.ndtr(x) ** (n - 1),
            -12.0, 12.0,
        )
        return float(self.prior_mean + self.prior_std * e_n)
