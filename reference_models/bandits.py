"""Bayes-optimal bandit agents as state machines (Mikulik et al. 2020 §3.1; Rabinowitz 2019 §5).

Every agent's state is its posterior (sufficient statistics, float64) and its input is
the task's encoding, so the same probes and comparisons run on agents and meta-learners:

* n-armed (by default two-armed) bandits, :mod:`trajprobe.tasks.armed_bandits`:
  ``x_t = concat[one_hot(a_{t-1}) (A), r_{t-1} (1)]``, zeros at t = 1;
* contextual bandits (Rabinowitz 2019 §5): ``x_t = concat[one_hot(c_t) (C),
  one_hot(a_{t-1}) (A), r_{t-1} (1)]``, zeros for a_0 and r_0.

Output convention (all agents): ``y_t`` ``[B, A]`` is the vector of **action
probabilities** π_t(a) (float64, rows sum to 1), and ``distribution(y)`` returns
``torch.distributions.Categorical(probs=y)``; a closed-loop runner samples a_t from it.
Deterministic policies put equal mass on tied best actions ("ties split evenly"; two
scores tie when they differ by at most ``TIE_TOLERANCE``).

The input at step t carries the previous action and reward, so ``step`` first updates
the posterior with them (s_t) and then acts from s_t: y_t = π(s_t).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from trajprobe.devices import resolve_device
from trajprobe.reference_models.gittins import bernoulli_gittins_index, gaussian_gittins_index
from trajprobe.tasks.armed_bandits import BernoulliBandit, GaussianBandit
from trajprobe.validation import check_positive, check_positive_int

__all__ = [
    "TIE_TOLERANCE",
    "ContextualBanditPosterior",
    "ContextualPosteriorState",
    "FiniteHorizonBernoulliAgent",
    "GittinsAgent",
]

TIE_TOLERANCE = 1e-9
"""Scores within this absolute distance of the best are treated as tied."""


def _split_ties(scores: torch.Tensor) -> torch.Tensor:
    """Uniform probabilities over the maximisers of ``scores`` ``[B, A]`` (ties split evenly)."""
    best = scores.max(dim=1, keepdim=True).values
    winners = (scores >= best - TIE_TOLERANCE).to(torch.float64)
    return winners / winners.sum(dim=1, keepdim=True)


def _categorical(y: torch.Tensor) -> torch.distributions.Categorical:
    if y.dim() < 1:
        raise ValueError(f"y: expected action probabilities [..., A], got shape {tuple(y.shape)}")
    return torch.distributions.Categorical(probs=y)


def _check_input(x: torch.Tensor, batch: int, size: int, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.shape != (batch, size):
        raise ValueError(f"{name}: expected shape [{batch}, {size}], got {tuple(x.shape)}")
    return x.to(torch.float64)


def _check_posterior(state: torch.Tensor, n_arms: int) -> torch.Tensor:
    if not isinstance(state, torch.Tensor) or state.dim() != 3 or state.shape[1:] != (n_arms, 2):
        shape = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"state: expected a tensor [B, {n_arms}, 2], got {shape}")
    return state


# ----------------------------------------------------------------------------- Gittins agent


class _UpdateThenAct:
    """Agents whose step updates the posterior with (a_{t-1}, r_{t-1}), then acts.

    Subclasses define ``update(x, state) -> state`` and ``policy(state) -> [B, A]``.
    """

    def output(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """y_t = π(update(x_t, s_{t-1})) ``[B, A]``."""
        return self.policy(self.update(x, state))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_t, s_t): update the posterior with (a_{t-1}, r_{t-1}), then act."""
        new_state = self.update(x, state)
        return self.policy(new_state), new_state

    def distribution(self, y: torch.Tensor) -> torch.distributions.Categorical:
        """``Categorical(probs=y)``."""
        return _categorical(y)


class GittinsAgent(_UpdateThenAct):
    """Plays the arm of largest Gittins index (Bayes-optimal for discounted bandits).

    State ``[B, A, 2]`` float64, per arm:

    * Bernoulli arms (:class:`~trajprobe.tasks.armed_bandits.BernoulliBandit`): the Beta
      posterior (α, β) = (α0 + successes, β0 + failures);
    * Gaussian arms (:class:`~trajprobe.tasks.armed_bandits.GaussianBandit`): the posterior
      mean μ of the arm's mean and its precision τ = 1/prior_std² + pulls/reward_std².

    Update from x_t = [one_hot(a_{t-1}), r_{t-1}]: only the pulled arm changes,
    (α, β) += (r, 1 - r) or τ' = τ + 1/σ², μ' = (τ μ + r/σ²)/τ'. Indices:
    :func:`~trajprobe.reference_models.gittins.bernoulli_gittins_index` (α, β) and
    :func:`~trajprobe.reference_models.gittins.gaussian_gittins_index` (μ, n = σ² τ, σ).

    A state mapped in from elsewhere (e.g. ``state_from_vector``) is projected onto the
    lattice of reachable posteriors before indices are looked up: counts are rounded to
    the nearest integer >= 0 (Bernoulli), pulls likewise from the precision (Gaussian).

    Args:
        task: a ``BernoulliBandit`` or ``GaussianBandit`` (its prior and arm count).
        discount: γ in (0, 1).
        device: where states and outputs live (CPU by default; indices are computed
            with numpy on the CPU).
    """

    def __init__(
        self,
        task: BernoulliBandit | GaussianBandit,
        discount: float,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(task, (BernoulliBandit, GaussianBandit)):
            raise TypeError(
                f"task: expected a BernoulliBandit or GaussianBandit, got {type(task).__name__}"
            )
        if isinstance(discount, bool) or not isinstance(discount, numbers.Real):
            raise TypeError(f"discount: expected a float in (0, 1), got {discount!r}")
        if not 0.0 < float(discount) < 1.0:
            raise ValueError(f"discount: expected a number in (0, 1), got {discount}")
        self.task = task
        self.discount = float(discount)
        self.n_arms = task.n_arms
        self.device = resolve_device(device)
        if isinstance(task, BernoulliBandit):
            self._prior = (float(task.alpha), float(task.beta))
        else:
            self._prior = (float(task.prior_mean), 1.0 / float(task.prior_std) ** 2)

    @property
    def input_size(self) -> int:
        """A + 1."""
        return self.n_arms + 1

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The prior for every arm, ``[B, A, 2]`` float64."""
        check_positive_int(batch_size, "batch_size")
        prior = torch.tensor(self._prior, dtype=torch.float64, device=self.device)
        return prior.expand(batch_size, self.n_arms, 2).clone()

    def update(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The posterior after the previous action and reward in ``x`` ``[B, A + 1]``."""
        state = _check_posterior(state, self.n_arms)
        x = _check_input(x, state.shape[0], self.input_size).to(state.device)
        pulled, reward = x[:, : self.n_arms], x[:, self.n_arms :]
        if isinstance(self.task, BernoulliBandit):
            delta = torch.stack([pulled * reward, pulled * (1.0 - reward)], dim=2)
            return state + delta
        noise_precision = 1.0 / self.task.reward_std**2
        mean, precision = state[..., 0], state[..., 1]
        new_precision = precision + pulled * noise_precision
        new_mean = (precision * mean + pulled * reward * noise_precision) / new_precision
        return torch.stack([new_mean, new_precision], dim=2)

    def indices(self, state: torch.Tensor) -> torch.Tensor:
        """Gittins index of every arm ``[B, A]`` float64 (after projection onto the lattice)."""
        state = _check_posterior(state, self.n_arms)
        s = state.detach().cpu().numpy()
        if isinstance(self.task, BernoulliBandit):
            a0, b0 = self._prior
            succ = np.maximum(np.rint(s[..., 0] - a0), 0.0)
            fail = np.maximum(np.rint(s[..., 1] - b0), 0.0)
            idx = bernoulli_gittins_index(a0 + succ, b0 + fail, self.discount)
        else:
            sigma2 = self.task.reward_std**2
            n0 = self._prior[1] * sigma2
            pulls = np.maximum(np.rint((s[..., 1] - self._prior[1]) * sigma2), 0.0)
            idx = gaussian_gittins_index(
                s[..., 0], n0 + pulls, self.discount, reward_std=self.task.reward_std
            )
        return torch.as_tensor(np.asarray(idx, dtype=np.float64), device=state.device)

    def policy(self, state: torch.Tensor) -> torch.Tensor:
        """Action probabilities ``[B, A]``: uniform over the arms of largest index."""
        return _split_ties(self.indices(state))



# ----------------------------------------------------------------------------- finite horizon

_MAX_HORIZON = 30
"""The exact DP stores (horizon + 1)^4 values per arm; 30 is about 7 MB each."""


class FiniteHorizonBernoulliAgent(_UpdateThenAct):
    """Exact Bayes-optimal agent for a two-armed Bernoulli bandit over ``horizon`` pulls.

    Maximises the expected *undiscounted* total reward over T = ``horizon`` steps with
    independent Beta(α, β) priors on both arms, by backward induction over the counts
    (s1, f1, s2, f2) (successes and failures per arm; t = s1 + f1 + s2 + f2 pulls done):

        V(c) = 0 if t = T,      V(c) = max_a Q_a(c),
        Q_a(c) = p_a (1 + V(c + success_a)) + (1 - p_a) V(c + failure_a),
        p_a = (α + s_a) / (α + β + s_a + f_a).

    State ``[B, 2, 2]`` float64: the Beta posterior (α, β) per arm, as for
    :class:`GittinsAgent`; the number of pulls done is read off the counts. Inputs and
    outputs as :class:`GittinsAgent` (action probabilities, ties split evenly). Past the
    horizon (t >= T, e.g. when probed on longer episodes) it acts greedily on the
    posterior means (the optimal last step). Mapped-in states are projected as for
    :class:`GittinsAgent` (counts rounded, clipped to 0..T).

    Args:
        alpha, beta: the Beta prior of both arms, > 0.
        horizon: T, 1..30.
        device: where states and outputs live.

    Attributes:
        q_table: ``[2, T+1, T+1, T+1, T+1]`` Q_a at counts (s1, f1, s2, f2) with t < T.
        value: V at the prior, the Bayes-optimal expected total reward over T steps.
    """

    n_arms = 2

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        horizon: int = 20,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        check_positive(alpha, "alpha")
        check_positive(beta, "beta")
        check_positive_int(horizon, "horizon")
        if horizon > _MAX_HORIZON:
            raise ValueError(
                f"horizon: expected at most {_MAX_HORIZON} (the exact DP table grows as T^4), "
                f"got {horizon}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.horizon = int(horizon)
        self.device = resolve_device(device)
        self.q_table, self.value = self._solve()

    def _solve(self) -> tuple[np.ndarray, float]:
        T = self.horizon
        k = np.arange(T + 1, dtype=np.float64)
        s1, f1, s2, f2 = np.meshgrid(k, k, k, k, indexing="ij")
        level = (s1 + f1 + s2 + f2).astype(np.int64)
        p1 = (self.alpha + s1) / (self.alpha + self.beta + s1 + f1)
        p2 = (self.alpha + s2) / (self.alpha + self.beta + s2 + f2)
        v = np.zeros((T + 2,) * 4)  # padded so that count + 1 stays in range
        q = np.zeros((2,) + (T + 1,) * 4)
        inner = (slice(0, T + 1),) * 4
        for t in range(T - 1, -1, -1):
            vv = v[inner]
            q1 = p1 * (1.0 + v[1:, :-1, :-1, :-1]) + (1.0 - p1) * v[:-1, 1:, :-1, :-1]
            q2 = p2 * (1.0 + v[:-1, :-1, 1:, :-1]) + (1.0 - p2) * v[:-1, :-1, :-1, 1:]
            here = level == t
            q[0] = np.where(here, q1, q[0])
            q[1] = np.where(here, q2, q[1])
            v[inner] = np.where(here, np.maximum(q1, q2), vv)
        q.flags.writeable = False
        return q, float(v[0, 0, 0, 0])

    @property
    def input_size(self) -> int:
        """3: one-hot previous action (2) and previous reward."""
        return 3

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The prior Beta(α, β) for both arms, ``[B, 2, 2]`` float64."""
        check_positive_int(batch_size, "batch_size")
        prior = torch.tensor([self.alpha, self.beta], dtype=torch.float64, device=self.device)
        return prior.expand(batch_size, 2, 2).clone()

    def update(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The posterior after the previous action and reward in ``x`` ``[B, 3]``."""
        state = _check_posterior(state, 2)
        x = _check_input(x, state.shape[0], 3).to(state.device)
        pulled, reward = x[:, :2], x[:, 2:]
        return state + torch.stack([pulled * reward, pulled * (1.0 - reward)], dim=2)

    def q_values(self, state: torch.Tensor) -> torch.Tensor:
        """Q_a ``[B, 2]``: expected remaining reward when pulling a now, then acting optimally.

        Past the horizon: the posterior means (one greedy step).
        """
        state = _check_posterior(state, 2)
        s = state.detach().cpu().numpy()
        T = self.horizon
        succ = np.clip(np.rint(s[..., 0] - self.alpha), 0, T).astype(np.int64)
        fail = np.clip(np.rint(s[..., 1] - self.beta), 0, T).astype(np.int64)
        t = succ.sum(axis=1) + fail.sum(axis=1)
        means = (self.alpha + succ) / (self.alpha + self.beta + succ + fail)
        within = t < T
        q = means.copy()
        if within.any():
            s1, f1, s2, f2 = succ[within, 0], fail[within, 0], succ[within, 1], fail[within, 1]
            q[within] = np.stack(
                [self.q_table[0, s1, f1, s2, f2], self.q_table[1, s1, f1, s2, f2]], axis=1
            )
        return torch.as_tensor(q, dtype=torch.float64, device=state.device)

    def policy(self, state: torch.Tensor) -> torch.Tensor:
        """Action probabilities ``[B, 2]``: uniform over the arms of largest Q."""
        return _split_ties(self.q_values(state))



# ----------------------------------------------------------------------------- contextual


class ContextualPosteriorState(NamedTuple):
    """State of :class:`ContextualBanditPosterior`.

    Attributes:
        posterior: ``[B, C, A]`` float64, P(action a is the correct one in context c | data).
        prev_context: ``[B, C]`` float64, one-hot context of the previous step (zeros at
            the start), needed to credit (a_{t-1}, r_{t-1}) arriving with the next input.
    """

    posterior: torch.Tensor
    prev_context: torch.Tensor


@dataclass(frozen=True)
class _ContextualConfig:
    n_contexts: int
    n_actions: int
    p_correct: float
    p_incorrect: float
    policy: str


class ContextualBanditPosterior:
    """Exact per-context posterior over the correct action (Rabinowitz 2019 §5).

    Task: in each of C contexts one of A actions is correct, uniformly and independently
    per context; the correct action pays 1 with probability ``p_correct``, the others
    with ``p_incorrect``. Contexts are independent, so data from context c only update
    context c's posterior:

        P(k | data_c) ∝ ∏_{(a, r) in c} [r q_k(a) + (1 - r)(1 - q_k(a))],
        q_k(a) = p_correct if a = k else p_incorrect.

    Evidence impossible under every hypothesis leaves the posterior unchanged. (For
    ``ContextualBandit(conflicting=True)``, where contexts share no correct action, the
    contexts are not independent and this agent is not exactly Bayes-optimal.)

    Input ``x_t = concat[one_hot(c_t) (C), one_hot(a_{t-1}) (A), r_{t-1} (1)]`` (zeros for
    a_0, r_0). ``step`` credits (a_{t-1}, r_{t-1}) to the *previous* context (kept in the
    state), then acts in context c_t. Output: action probabilities ``[B, A]``:

    * ``policy="greedy"``: uniform over the actions of largest expected reward
      p_incorrect + (p_correct - p_incorrect) P(correct = a);
    * ``policy="thompson"``: the probability that the action is optimal under a posterior
      sample, i.e. P(correct = a) when p_correct > p_incorrect (the sampling itself is
      left to the runner, which draws from ``distribution(y)``).

    Args:
        n_contexts: C >= 1.
        n_actions: A >= 2.
        p_correct, p_incorrect: reward probabilities in [0, 1].
        policy: ``"greedy"`` or ``"thompson"``.
        device: where states and outputs live.
    """

    def __init__(
        self,
        n_contexts: int,
        n_actions: int,
        p_correct: float = 0.8,
        p_incorrect: float = 0.2,
        policy: str = "greedy",
        *,
        device: torch.device | str | None = None,
    ) -> None:
        check_positive_int(n_contexts, "n_contexts")
        check_positive_int(n_actions, "n_actions")
        if n_actions < 2:
            raise ValueError(f"n_actions: expected at least 2 actions, got {n_actions}")
        for name, p in (("p_correct", p_correct), ("p_incorrect", p_incorrect)):
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
        if policy not in ("greedy", "thompson"):
            raise ValueError(f"policy: expected 'greedy' or 'thompson', got {policy!r}")
        self.config = _ContextualConfig(
            int(n_contexts), int(n_actions), float(p_correct), float(p_incorrect), policy
        )
        self.device = resolve_device(device)

    @property
    def n_contexts(self) -> int:
        """C."""
        return self.config.n_contexts

    @property
    def n_actions(self) -> int:
        """A."""
        return self.config.n_actions

    @property
    def input_size(self) -> int:
        """C + A + 1."""
        return self.n_contexts + self.n_actions + 1

    def initial_state(self, batch_size: int) -> ContextualPosteriorState:
        """Uniform posterior in every context and no previous context."""
        check_positive_int(batch_size, "batch_size")
        c, a = self.n_contexts, self.n_actions
        post = torch.full((batch_size, c, a), 1.0 / a, dtype=torch.float64, device=self.device)
        prev = torch.zeros(batch_size, c, dtype=torch.float64, device=self.device)
        return ContextualPosteriorState(post, prev)

    def _split(self, x: torch.Tensor, batch: int) -> tuple[torch.Tensor, ...]:
        x = _check_input(x, batch, self.input_size)
        c, a = self.n_contexts, self.n_actions
        return x[:, :c], x[:, c : c + a], x[:, c + a]

    def update(self, x: torch.Tensor, state: ContextualPosteriorState) -> ContextualPosteriorState:
        """Credit (a_{t-1}, r_{t-1}) of ``x`` to the previous context; remember c_t."""
        post, prev = state
        if post.dim() != 3 or post.shape[1:] != (self.n_contexts, self.n_actions):
            raise ValueError(
                f"state.posterior: expected [B, {self.n_contexts}, {self.n_actions}], "
                f"got {tuple(post.shape)}"
            )
        context, action, reward = self._split(x, post.shape[0])
        context, action, reward = (v.to(post.device) for v in (context, action, reward))
        pc, pi = self.config.p_correct, self.config.p_incorrect
        # P(r | correct = k) for the pulled action (a mixture over a soft one-hot action)
        q = pi + (pc - pi) * action  # [B, A]: q_k(a_{t-1}) as a function of k
        lik = reward[:, None] * q + (1.0 - reward[:, None]) * (1.0 - q)
        credit = prev * action.sum(dim=1, keepdim=True)  # [B, C]: context to update (if any)
        factor = credit[:, :, None] * lik[:, None, :] + (1.0 - credit[:, :, None])
        new = post * factor
        total = new.sum(dim=2, keepdim=True)
        new = torch.where(total > 0, new / total.clamp_min(1e-300), post)
        return ContextualPosteriorState(new, context)

    def posterior_correct(self, state: ContextualPosteriorState) -> torch.Tensor:
        """P(correct action = a | data) per context, ``[B, C, A]``."""
        return state.posterior

    def policy(self, state: ContextualPosteriorState) -> torch.Tensor:
        """Action probabilities ``[B, A]`` in the context recorded in ``state.prev_context``."""
        post, context = state
        p = torch.einsum("bc,bca->ba", context, post)  # posterior in the current context
        pc, pi = self.config.p_correct, self.config.p_incorrect
        if self.config.policy == "greedy":
            return _split_ties(pi + (pc - pi) * p)
        if pc > pi:
            probs = p
        elif pc < pi:
            probs = (1.0 - p) / (self.n_actions - 1)
        else:
            probs = torch.ones_like(p)
        total = probs.sum(dim=1, keepdim=True)
        uniform = torch.full_like(probs, 1.0 / self.n_actions)
        return torch.where(total > 0, probs / total.clamp_min(1e-300), uniform)

    def output(self, x: torch.Tensor, state: ContextualPosteriorState) -> torch.Tensor:
        """y_t = π(update(x_t, s_{t-1})) ``[B, A]``."""
        return self.policy(self.update(x, state))

    def step(
        self, x: torch.Tensor, state: ContextualPosteriorState
    ) -> tuple[torch.Tensor, ContextualPosteriorState]:
        """(y_t, s_t)."""
        new_state = self.update(x, state)
        return self.policy(new_state), new_state

    def distribution(self, y: torch.Tensor) -> torch.distributions.Categorical:
        """``Categorical(probs=y)``."""
        return _categorical(y)
