"""Contextual bandits with one correct action per context (Rabinowitz 2019 §5).

Encoding (keep it): the input at step t is ``[one-hot c_t (C), one-hot a_{t-1} (A),
r_{t-1} (1)]`` with a_0 = the zero vector and r_0 = 0; the machine's outputs are logits
over the A actions. Taking the correct action pays 1 with probability ``p_correct``,
any other action with probability ``p_incorrect``. The context shown at every step is
drawn uniformly at random (from a per-episode subset of ``n_shown`` contexts when set,
or from the fixed ``shown_contexts``: curriculum stages that show fewer contexts with the
same input encoding).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr
from torch.nn import functional

from trajprobe.dynamics import order_contexts
from trajprobe.estimators.policy import (
    correct_action_probability,
    expected_context_reward,
    expected_reward,
    policy_probabilities,
)
from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.task_protocol import Episodes, Seed
from trajprobe.tasks._sampling import rand
from trajprobe.validation import as_tensor, check_positive_int

if TYPE_CHECKING:
    from trajprobe.task_protocol import Probed

__all__ = ["ContextualBandit"]


@dataclass(frozen=True)
class ContextualBandit:
    """An :class:`~trajprobe.tasks.Environment` with C contexts and A actions, and its measurement.

    Args:
        n_contexts: C (paper: 5).
        n_actions: A (paper: 5).
        p_correct: reward probability of the correct action (paper: 0.8).
        p_incorrect: reward probability of any other action (paper: 0.2).
        conflicting: False: the correct action of every context is drawn independently
            and uniformly per episode (the meta-learner's distribution, §5.2.1). True:
            every context has a unique correct action (a random injection of contexts
            into actions, §5.1.1), which needs C <= A.
        n_shown: None: every step shows one of all C contexts. K in 1..C: each episode
            draws K of the C contexts uniformly without replacement and shows only those
            (input size and correct actions unchanged; for a curriculum, see
            :meth:`showing`).
        shown_contexts: None, or the contexts that every episode shows (distinct indices in
            0..C-1; ``n_shown`` is then their number). See :meth:`only`.

    ``params``: ``"correct"`` ``[E, C]`` (long), the correct action of every context; with
    ``n_shown`` set also ``"shown"`` ``[E, K]`` (long), the contexts the episode shows.
    """

    n_contexts: int = 5
    n_actions: int = 5
    p_correct: float = 0.8
    p_incorrect: float = 0.2
    conflicting: bool = False
    n_shown: int | None = field(default=None, metadata={"added": True})
    shown_contexts: tuple[int, ...] | None = field(default=None, metadata={"added": True})

    def __post_init__(self) -> None:
        check_positive_int(self.n_contexts, "n_contexts")
        check_positive_int(self.n_actions, "n_actions")
        for name in ("p_correct", "p_incorrect"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
        if self.conflicting and self.n_contexts > self.n_actions:
            raise ValueError(
                f"n_contexts: a conflicting bandit needs n_contexts <= n_actions = "
                f"{self.n_actions}, got {self.n_contexts}"
            )
        if self.shown_contexts is not None:
            self._check_shown_contexts()
        if self.n_shown is not None:
            check_positive_int(self.n_shown, "n_shown")
            if self.n_shown > self.n_contexts:
                raise ValueError(f"n_shown: expected None or at most n_contexts = "
                                 f"{self.n_contexts} contexts, got {self.n_shown}")

    def _check_shown_contexts(self) -> None:
        shown = self.shown_contexts
        ok = (isinstance(shown, tuple) and len(shown) == len(set(shown)) >= 1
              and all(isinstance(c, int) and not isinstance(c, bool)
                      and 0 <= c < self.n_contexts for c in shown))
        if not ok:
            raise ValueError(f"shown_contexts: expected a tuple of distinct context indices in "
                             f"0..{self.n_contexts - 1}, got {shown!r}")
        if self.n_shown != len(shown):
            raise ValueError(f"n_shown: expected len(shown_contexts) = {len(shown)} with "
                             f"shown_contexts {shown!r}, got {self.n_shown!r}; use only()")

    def showing(self, n_shown: int | None) -> ContextualBandit:
        """This bandit with ``n_shown`` contexts shown per episode (None: all C).

        The hook of :class:`~trajprobe.apps.training.PolicyGradientConfig`'s curriculum.
        """
        return replace(self, n_shown=n_shown, shown_contexts=None)

    def only(self, contexts: tuple[int, ...]) -> ContextualBandit:
        """This bandit showing the same ``contexts`` (indices into 0..C-1) in every episode.

        The hook of a ``"confused"`` curriculum stage of
        :class:`~trajprobe.apps.training.PolicyGradientConfig`, which shows the pair of contexts
        the policy confuses most (:func:`~trajprobe.dynamics.context_confusion`).
        """
        try:
            contexts = tuple(operator.index(c) for c in contexts)
        except TypeError:
            raise TypeError(f"contexts: expected context indices (integers), got "
                            f"{contexts!r}") from None
        return replace(self, n_shown=len(contexts), shown_contexts=contexts)

    @property
    def input_size(self) -> int:
        """C + A + 1."""
        return self.n_contexts + self.n_actions + 1

    @property
    def output_size(self) -> int:
        """A logits."""
        return self.n_actions

    def sample_params(
        self,
        n_episodes: int,
        *,
        generator: torch.Generator,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"correct": [E, C] long}``: independent uniform draws, or a random injection;
        with ``n_shown`` = K also ``"shown": [E, K] long``, K distinct contexts (drawn after
        ``"correct"``, so the correct actions do not depend on K; ``shown_contexts`` in
        every episode when set)."""
        check_positive_int(n_episodes, "n_episodes")
        shape = (n_episodes, self.n_actions if self.conflicting else self.n_contexts)
        u = rand(shape, generator, device=device, dtype=torch.float64)
        if self.conflicting:
            correct = u.argsort(dim=1)[:, : self.n_contexts]
        else:
            correct = (u * self.n_actions).long().clamp_max(self.n_actions - 1)
        if self.n_shown is None:
            return {"correct": correct}
        if self.shown_contexts is not None:
            shown = torch.tensor(self.shown_contexts, device=correct.device)
            return {"correct": correct, "shown": shown.expand(n_episodes, -1)}
        u = rand((n_episodes, self.n_contexts), generator, device=device, dtype=torch.float64)
        return {"correct": correct, "shown": u.argsort(dim=1)[:, : self.n_shown]}

    def contexts(
        self, params: dict[str, torch.Tensor], n_steps: int, *, generator: torch.Generator
    ) -> torch.Tensor:
        """Context shown at every step ``[E, T]`` (long), uniform over the C contexts (over
        the episode's ``params["shown"]`` when ``n_shown`` is set)."""
        check_positive_int(n_steps, "n_steps")
        correct = params["correct"]
        u = rand((correct.shape[0], n_steps), generator, device=correct.device,
                 dtype=torch.float64)
        if self.n_shown is None:
            return (u * self.n_contexts).long().clamp_max(self.n_contexts - 1)
        shown = params.get("shown")
        if shown is None or shown.shape != (correct.shape[0], self.n_shown):
            raise ValueError(f"params: n_shown = {self.n_shown} needs params['shown'] of shape "
                             f"[{correct.shape[0]}, {self.n_shown}] from sample_params, got "
                             f"{None if shown is None else tuple(shown.shape)}")
        pick = (u * self.n_shown).long().clamp_max(self.n_shown - 1)
        return shown.gather(1, pick)

    def expected_reward(
        self, params: dict[str, torch.Tensor], context: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean reward of every action ``[E, A]`` in ``context`` ``[E]`` (float64)."""
        if context is None:
            raise ValueError("context: a contextual bandit needs the context index [E], got None")
        correct = params["correct"]
        best = correct.gather(1, context.long().reshape(-1, 1))
        hit = torch.arange(self.n_actions, device=correct.device) == best
        return torch.where(hit, self.p_correct, self.p_incorrect).to(torch.float64)

    def reward(
        self,
        params: dict[str, torch.Tensor],
        context: torch.Tensor | None,
        action: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Bernoulli reward ``[E]`` (float64, 0 or 1) for ``action`` ``[E]`` in ``context``."""
        p = self.expected_reward(params, context).gather(1, action.long().reshape(-1, 1))[:, 0]
        u = rand(tuple(p.shape), generator, device=p.device, dtype=torch.float64)
        return (u < p).to(torch.float64)

    def encode(
        self,
        context: torch.Tensor | None,
        prev_action: torch.Tensor | None,
        prev_reward: torch.Tensor | None,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Input ``[E, C + A + 1]``; ``prev_action``/``prev_reward`` None (zeros) at t = 1."""
        if context is None:
            raise ValueError("context: a contextual bandit needs the context index [E], got None")
        context = context.long()
        one_hot_c = functional.one_hot(context, self.n_contexts).to(dtype)
        if prev_action is None:
            one_hot_a = torch.zeros(*context.shape, self.n_actions, dtype=dtype,
                                    device=context.device)
        else:
            one_hot_a = functional.one_hot(prev_action.long(), self.n_actions).to(dtype)
        if prev_reward is None:
            reward = torch.zeros(*context.shape, 1, dtype=dtype, device=context.device)
        else:
            reward = prev_reward.to(dtype).unsqueeze(-1)
        return torch.cat([one_hot_c, one_hot_a, reward], dim=-1)

    def probe_inputs(self, inputs: torch.Tensor | Episodes, n_probes: int | None = None, *,
                     seed: Seed = None) -> torch.Tensor:
        """Every context at every step: ``[E, T, C, C + A + 1]`` (§5.2.2).

        Probe c at step t shows context c and keeps a_{t-1}, r_{t-1} from the history.
        ``n_probes`` must be None or C; nothing is drawn.
        """
        if n_probes is not None and n_probes != self.n_contexts:
            raise ValueError(f"n_probes: a ContextualBandit probes its n_contexts = "
                             f"{self.n_contexts} contexts, got {n_probes}")
        if isinstance(inputs, Episodes):
            inputs = inputs.inputs
        inputs = as_tensor(inputs, "inputs")
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"inputs: expected shape [E, T, {self.input_size}], got {tuple(inputs.shape)}"
            )
        n_episodes, n_steps = inputs.shape[:2]
        c = self.n_contexts
        eye = torch.eye(c, dtype=inputs.dtype, device=inputs.device)
        history = inputs[:, :, None, c:].expand(-1, -1, c, -1)
        return torch.cat([eye.expand(n_episodes, n_steps, c, c), history], dim=-1)

    def summarise(self, probed: Probed) -> xr.Dataset:
        """Per-context policies q_c(t) = π_t(a*(c)|c) and their ranking (§5.2.2, eqs. 12–14).

        At every step the state after t-1 observations was probed with every context
        (keeping a_{t-1}, r_{t-1}); the policy is the caller's, else
        ``machine.distribution`` when the machine has one, else the softmax of its outputs.

        Returns:
            ``q (episode, t, context)``, ``policy (episode, t, context, action)``,
            ``expected_reward_context (episode, t, context)`` (eq. 12), ``expected_reward
            (episode, t)`` (eq. 13), ``return_score (episode, context)`` (R_c, eq. 14),
            ``q_ordered (episode, t, rank)`` and ``context_order (episode, rank)`` (rank k =
            the k-th learned context), ``correct (episode, context)``, and the realised
            ``action_taken, reward (episode, t)`` and ``context_shown (episode, t)``.
        """
        trace = probed.trace
        probs = policy_probabilities(probed.outputs, probed.policy).to(torch.float64)
        correct = probed.episodes.params["correct"].to(probs.device)
        q = correct_action_probability(probs, correct)
        r_context = expected_context_reward(q, self.p_correct, self.p_incorrect)
        ds = xr.Dataset(
            {
                "q": (("episode", "t", "context"), to_numpy(q)),
                "policy": (("episode", "t", "context", "action"), to_numpy(probs)),
                "expected_reward_context": (("episode", "t", "context"), to_numpy(r_context)),
                "expected_reward": (("episode", "t"), to_numpy(
                    expected_reward(q, self.p_correct, self.p_incorrect))),
                "correct": (("episode", "context"), to_numpy(correct)),
                "action_taken": (("episode", "t"), to_numpy(trace.actions)),
                "reward": (("episode", "t"), to_numpy(trace.rewards)),
                "context_shown": (("episode", "t"), to_numpy(trace.contexts)),
            },
            coords={"context": np.arange(self.n_contexts), "action": np.arange(self.n_actions)},
            attrs={"measure": "context_dynamics"},
        )
        ds["return_score"] = ds["expected_reward_context"].mean("t")
        ds["q_ordered"], ds["context_order"] = order_contexts(ds["q"], score=ds["return_score"])
        return describe(ds, {
            "q": Label("P(correct action | context) q_c", "1",
                       "probability of the correct action when shown context c (q_c(t))"),
            "policy": Label("policy π(a | c)", "1"),
            "expected_reward_context": Label("expected reward in context c", "1",
                                             "E[r_c(t)] (eq. 12)"),
            "expected_reward": Label("expected reward", "1", "E[r(t)] (eq. 13)"),
            "correct": Label("correct action a*(c)", "1"),
            "action_taken": Label("action taken", "1"),
            "reward": Label("reward", "1"),
            "context_shown": Label("context shown", "1"),
            "return_score": Label("return score R_c", "1", "R_c = E_t E[r_c(t)] (eq. 14)"),
            "q_ordered": Label("P(correct action) of the k-th learned context", "1",
                               "q of the k-th learned context (ranked by R_c)"),
            "context_order": Label("context index", "1", "original context index at each rank"),
            "context": Label("context c", "1"),
            "action": Label("action a", "1"),
            "rank": Label("k-th learned context", "1"),
        })
