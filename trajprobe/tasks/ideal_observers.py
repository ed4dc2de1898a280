"""Ideal observers of neurogym's cognitive tasks: exact Bayes machines over their trials.

An ideal observer reads exactly the inputs a network trained on the task reads (the
environment's observations, :class:`~trajprobe.tasks.neurogym_trials.NeurogymTask`) and
outputs, at every step, the posterior over that step's ground-truth label (the action the
task rewards): one-hot on "fixate" where the label is certain, the posterior over the
choices in the decision period. Its ``distribution`` is ``Categorical(probs=y)``; the
decision rule is the MAP action, argmax y. Every parameter is read from the environment
itself (``from_env``), and it computes in float64.

==========================  =======================================  =================
observer                    state (sufficient statistic)             output y_t
==========================  =======================================  =================
PerceptualDecisionObserver  log-likelihood per (coherence, choice)   P(label_t) ``[B,
                            ``[B, C, K]``, step within the trial     1 + K]``
                            ``[B]``
ContextDecisionObserver     log-likelihood per (modality,            P(label_t) ``[B,
                            coherence, choice) ``[B, 2, C, K]``,     1 + K]``
                            P(relevant modality) ``[B, 2]``, step
==========================  =======================================  =================

They follow the supervised trials (open loop), whose length the timing fixes. In closed
loop (:class:`~trajprobe.tasks.gym_env.GymEnvironment`) neurogym's ``reset`` takes the
first step of the first trial itself (the first observation is the trial's second), and a
trial aborted by a broken fixation (``abort=True``) or ended by a response before the
decision period's last step is shorter than the timing says: the observers' step count
would then be off.

They live beside the tasks (in the core) so that a task hands out its own
(``task.bayes_machine()``, read by :func:`trajprobe.posterior_error`); their public home
is :mod:`trajprobe.reference_models.ideal_observers`. None of them imports neurogym.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import distributions as D

from trajprobe.devices import resolve_device
from trajprobe.validation import check_finite_tensor, check_positive, check_positive_int

__all__ = ["IDEAL_OBSERVERS", "ContextDecisionObserver", "ContextDecisionState",
           "PerceptualDecisionObserver", "PerceptualDecisionState", "ideal_observer"]

PERIODS = ("fixation", "stimulus", "delay", "decision")
"""The periods of a PerceptualDecisionMaking trial, in order (its ``_new_trial``)."""


class PerceptualDecisionState(NamedTuple):
    """State of :class:`PerceptualDecisionObserver`.

    Attributes:
        loglik: ``[B, C, K]`` log p(stimulus so far | coherence c, choice k), up to a
            constant shared by all (c, k): the sufficient statistic of the trial so far.
        phase: ``[B]`` how many steps of the current trial have been seen (0..L−1; 0: the
            next input starts a trial, and resets ``loglik``).
    """

    loglik: torch.Tensor
    phase: torch.Tensor


class _TrialObserver:
    """Shared by the observers: trials of fixed period lengths (fixation, stimulus, delay,
    decision), ring stimuli 0.5 + cos(θ_i − θ_k)·c/200 + σε, labels [fixate, choice 1..K]."""

    input_size: int

    def __init__(self, cohs: Sequence[float], sigma: float, periods: Mapping[str, int], *,
                 dim_ring: int, dtype: torch.dtype, device: torch.device | str | None,
                 lapse: float = 0.0) -> None:
        self.cohs = tuple(float(c) for c in cohs)
        if not (isinstance(lapse, int | float) and 0 <= lapse < 1):
            raise ValueError(f"lapse: expected a probability in [0, 1), got {lapse!r}")
        self.lapse = float(lapse)
        if not self.cohs:
            raise ValueError("cohs: expected at least one coherence level, got none")
        check_positive(sigma, "sigma")
        self.sigma = float(sigma)
        self.dim_ring = check_positive_int(dim_ring, "dim_ring")
        self.periods = _periods(periods)
        self.trial_steps = sum(self.periods.values())
        self.output_size = 1 + self.dim_ring
        self.dtype, self.device = dtype, resolve_device(device)
        theta = np.linspace(0, 2 * np.pi, self.dim_ring, endpoint=False)
        means = 0.5 + np.cos(theta[None, :] - theta[:, None])[None] * (
            np.asarray(self.cohs)[:, None, None] / 200)
        self.means = torch.as_tensor(means, dtype=dtype, device=self.device)  # [C, K, K]
        bounds = np.cumsum([self.periods[p] for p in PERIODS])
        self._starts = dict(zip(PERIODS, [0, *bounds[:-1].tolist()], strict=True))

    def output(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        """f(x, s) alone."""
        return self.step(x, state)[0]

    def state_from_vector(self, vector: torch.Tensor) -> Any:
        """The state from its vector ``[B, S]`` (the leaves flattened in order, as
        :func:`trajprobe.machine.state_vector` makes it), the step within the trial rounded
        to the nearest integer (a simulation map's embedded state is real-valued)."""
        template = self.initial_state(1)
        sizes = [int(np.prod(leaf.shape[1:])) for leaf in template]
        if vector.dim() != 2 or vector.shape[1] != sum(sizes):
            raise ValueError(f"vector: expected shape [batch, {sum(sizes)}], got "
                             f"{tuple(vector.shape)}")
        parts = torch.split(vector.to(self.device), sizes, dim=1)
        leaves = [part.reshape(vector.shape[0], *leaf.shape[1:]).to(self.dtype)
                  for part, leaf in zip(parts[:-1], template[:-1], strict=True)]
        return type(template)(*leaves, parts[-1][:, 0].round().long())

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Categorical(probs = y) from ``y`` ``[..., 1 + K]``."""
        return D.Categorical(probs=y)

    def choice_posterior(self, loglik: torch.Tensor) -> torch.Tensor:
        """P(k | x) ``[..., K]`` from ℓ ``[..., C, K]``: softmax over k of logsumexp over c."""
        return torch.softmax(torch.logsumexp(loglik, dim=-2), dim=-1)

    def _evidence(self, channels: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """The log-likelihood increment ``[B, C, K]`` of ring channels ``[B, K]`` at a
        stimulus step, −Σ_i (x_i − μ_cki)² / 2σ² (0 outside the stimulus period)."""
        sq = (channels[:, None, None, :] - self.means[None]).square().sum(-1)
        return -self._in(phase, "stimulus")[:, None, None] * sq / (2 * self.sigma ** 2)

    def _labels(self, phase: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """P(label_t) ``[B, 1 + K]``: "fixate" outside the decision period, else
        ``[0, choice]`` (``choice`` ``[B, K]``)."""
        y = torch.zeros(phase.shape[0], self.output_size, dtype=self.dtype, device=self.device)
        y[:, 0] = 1.0
        decide = self._in(phase, "decision").bool()
        y[decide] = torch.cat([torch.zeros_like(y[decide, :1]), choice[decide]], dim=1)
        return y if self.lapse == 0 else (1 - self.lapse) * y + self.lapse / self.output_size

    def _in(self, phase: torch.Tensor, period: str) -> torch.Tensor:
        start = self._starts[period]
        return ((phase >= start) & (phase < start + self.periods[period])).to(self.dtype)

    def _leaf(self, leaf: Any, shape: tuple[int, ...], name: str) -> torch.Tensor:
        if not isinstance(leaf, torch.Tensor) or tuple(leaf.shape[1:]) != shape or \
                leaf.dim() != len(shape) + 1:
            raise ValueError(f"{name}: expected shape [B, {', '.join(map(str, shape))}], got "
                             f"{tuple(getattr(leaf, 'shape', ())) or type(leaf).__name__}")
        check_finite_tensor(leaf, name)
        return leaf.to(device=self.device, dtype=self.dtype)

    def _phase(self, phase: Any) -> torch.Tensor:
        return phase.to(self.device).round().long() % self.trial_steps

    def _input(self, x: Any, batch: int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != (batch, self.input_size):
            raise ValueError(f"x: expected a tensor [{batch}, {self.input_size}] (the "
                             "environment's observations), got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        check_finite_tensor(x, "x")
        return x.to(device=self.device, dtype=self.dtype)


class PerceptualDecisionObserver(_TrialObserver):
    """The ideal observer of neurogym's ``PerceptualDecisionMaking``: exact and marginal.

    A trial draws a choice k uniformly from K ring locations and a coherence c uniformly
    from the list ``cohs``; during the stimulus period, channel i of the input is

        x_ti = 0.5 + cos(θ_i − θ_k) · c / 200 + σ ε_ti,   ε_ti ~ N(0, 1) i.i.d.

    (σ = ``env.sigma``, already divided by √dt; θ_i = 2πi/K). With the stimulus steps of the
    trial so far, the posterior over the choice, marginalised over the coherences, is

        P(k | x) ∝ Σ_c exp(ℓ_ck),   ℓ_ck = −Σ_t Σ_i (x_ti − μ_cki)² / (2σ²)

    (the uniform priors cancel). The state holds ℓ ``[B, C, K]``, updated at every stimulus
    step, and the step within the trial. Periods have fixed lengths (read from the
    environment's timing; a random duration is refused): fixation, stimulus, delay, then
    decision. The label is 0 ("fixate") outside the decision period and 1 + k in it, so
    y_t is one-hot on 0 there and ``[0, P(1 | x), ..., P(K | x)]`` in the decision period.
    Episodes must start at a trial's start, as :class:`NeurogymTask` and the first batch of
    ``neurogym.Dataset`` draw them (or pass a state with the right ``phase``).

    Args:
        cohs: the coherence levels C (in %, as the environment's ``cohs``).
        sigma: σ, the per-step noise standard deviation (the environment's ``sigma``).
        periods: steps in each period, ``{"fixation": n, "stimulus": n, "delay": n,
            "decision": n}``.
        dim_ring: K, the number of choices.
        dtype, device: of the computation (default float64, the CPU).
        lapse: ε, a lapse rate: the output is (1 − ε) y + ε / (1 + K), P(label) mixed with
            the uniform (0, the default: exact). A KL into an observer certain of "fixate"
            is infinite for any machine that is not; ε > 0 makes it finite.
    """

    def __init__(self, cohs: Sequence[float], sigma: float, periods: Mapping[str, int], *,
                 dim_ring: int = 2, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, lapse: float = 0.0) -> None:
        super().__init__(cohs, sigma, periods, dim_ring=dim_ring, dtype=dtype, device=device,
                         lapse=lapse)
        self.input_size = 1 + self.dim_ring

    @classmethod
    def from_env(cls, env: Any, **kwargs: Any) -> PerceptualDecisionObserver:
        """The observer of a neurogym ``PerceptualDecisionMaking`` environment (or wrapper).

        Reads ``cohs``, ``sigma``, ``dim_ring``, ``dt`` and ``timing`` from the environment.

        Raises:
            ValueError: a period's duration is random (a list or a distribution).
        """
        env = getattr(env, "unwrapped", env)
        return cls(env.cohs, env.sigma, _fixed_periods(env.timing, env.dt),
                   dim_ring=env.dim_ring, **kwargs)

    @staticmethod
    def accepts(env: Any) -> bool:
        """Whether ``env`` is neurogym's ``PerceptualDecisionMaking`` (wrapped or not)."""
        from neurogym.envs.native.perceptualdecisionmaking import PerceptualDecisionMaking

        return isinstance(getattr(env, "unwrapped", env), PerceptualDecisionMaking)

    def __repr__(self) -> str:
        return (f"PerceptualDecisionObserver(cohs={list(self.cohs)}, sigma={self.sigma:.6g}, "
                f"periods={self.periods}, dim_ring={self.dim_ring}"
                + (f", lapse={self.lapse:g})" if self.lapse else ")"))

    def initial_state(self, batch_size: int) -> PerceptualDecisionState:
        """No evidence, at the start of a trial."""
        b = check_positive_int(batch_size, "batch_size")
        return PerceptualDecisionState(
            torch.zeros(b, len(self.cohs), self.dim_ring, dtype=self.dtype, device=self.device),
            torch.zeros(b, dtype=torch.long, device=self.device))

    def step(self, x: torch.Tensor, state: PerceptualDecisionState
             ) -> tuple[torch.Tensor, PerceptualDecisionState]:
        """Read x_t ``[B, 1 + K]``; return (P(label_t) ``[B, 1 + K]``, s_t) (class docstring)."""
        loglik = self._leaf(state[0], (len(self.cohs), self.dim_ring), "state.loglik")
        phase = self._phase(state[1])
        x = self._input(x, loglik.shape[0])
        loglik = torch.where((phase == 0)[:, None, None], torch.zeros_like(loglik), loglik)
        loglik = loglik + self._evidence(x[:, 1:], phase)
        y = self._labels(phase, self.choice_posterior(loglik))
        return y, PerceptualDecisionState(loglik, (phase + 1) % self.trial_steps)

    def posterior(self, state: PerceptualDecisionState) -> torch.Tensor:
        """P(c, k | x) ``[B, C, K]``, the joint posterior over coherence and choice."""
        loglik = self._leaf(state[0], (len(self.cohs), self.dim_ring), "state.loglik")
        return torch.softmax(loglik.flatten(1), dim=1).reshape(loglik.shape)

    def log_odds(self, state: PerceptualDecisionState) -> torch.Tensor:
        """log P(k = 1 | x) − log P(k = 2 | x) ``[B]`` (two choices): the decision variable."""
        if self.dim_ring != 2:
            raise ValueError(f"log_odds: defined for two choices, this observer has "
                             f"{self.dim_ring}")
        loglik = self._leaf(state[0], (len(self.cohs), self.dim_ring), "state.loglik")
        marginal = torch.logsumexp(loglik, dim=-2)
        return marginal[:, 0] - marginal[:, 1]


class ContextDecisionState(NamedTuple):
    """State of :class:`ContextDecisionObserver`.

    Attributes:
        loglik: ``[B, 2, C, K]`` log-likelihood per (modality, coherence, choice).
        context: ``[B, 2]`` P(modality m is the relevant one | the context inputs so far).
        phase: ``[B]`` steps of the current trial seen (0: the next input starts a trial).
    """

    loglik: torch.Tensor
    context: torch.Tensor
    phase: torch.Tensor


class ContextDecisionObserver(_TrialObserver):
    """The ideal observer of neurogym's ``ContextDecisionMaking`` (Mante et al. 2013).

    Two modalities m = 1, 2 each show a ring stimulus for their own choice k_m and
    coherence c_m (all four independent and uniform; channels ``1..K`` and ``K+1..2K``);
    the context says which modality's choice is the label. Given the context inputs (or the
    fixed modality of an implicit context), with P(m) the posterior over the relevant
    modality,

        P(label = k | x) = Σ_m P(m | context) · P(k_m = k | x_m),

    P(k_m | x_m) as in :class:`PerceptualDecisionObserver` on that modality's channels (the
    other modality's evidence is independent and cancels). An explicit context (inputs
    ``2K+1, 2K+2``, on through the trial) is read when it is on; before, and with an
    implicit context, P(m) is the prior over ``contexts``. Same periods and labels as
    :class:`PerceptualDecisionObserver`; random durations are refused.

    Args:
        cohs, sigma, periods, dim_ring, dtype, device, lapse: as for
            :class:`PerceptualDecisionObserver`.
        contexts: the modalities a trial's context is drawn from (the environment's
            ``contexts``: ``[0, 1]`` explicit, ``[m]`` implicit).
        explicit: whether the context is an input (``use_expl_context``).
    """

    def __init__(self, cohs: Sequence[float], sigma: float, periods: Mapping[str, int], *,
                 dim_ring: int = 2, contexts: Sequence[int] = (0, 1), explicit: bool = True,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, lapse: float = 0.0) -> None:
        super().__init__(cohs, sigma, periods, dim_ring=dim_ring, dtype=dtype, device=device,
                         lapse=lapse)
        counts = np.bincount(np.asarray(contexts, dtype=int), minlength=2)
        if len(counts) != 2 or counts.sum() == 0:
            raise ValueError(f"contexts: expected modalities among 0 and 1, got {contexts!r}")
        self.contexts, self.explicit = tuple(int(c) for c in contexts), bool(explicit)
        self.prior = torch.as_tensor(counts / counts.sum(), dtype=dtype, device=self.device)
        self.input_size = 1 + 2 * self.dim_ring + (2 if self.explicit else 0)

    @classmethod
    def from_env(cls, env: Any, **kwargs: Any) -> ContextDecisionObserver:
        """The observer of a neurogym ``ContextDecisionMaking`` environment (or wrapper):
        ``cohs``, ``sigma``, ``dim_ring``, ``dt``, ``timing``, ``contexts`` and
        ``use_expl_context`` read from it (its default delay is random: pass a fixed one)."""
        env = getattr(env, "unwrapped", env)
        return cls(env.cohs, env.sigma, _fixed_periods(env.timing, env.dt),
                   dim_ring=env.dim_ring, contexts=env.contexts,
                   explicit=env.use_expl_context, **kwargs)

    @staticmethod
    def accepts(env: Any) -> bool:
        """Whether ``env`` is neurogym's ``ContextDecisionMaking`` (wrapped or not)."""
        from neurogym.envs.native.contextdecisionmaking import ContextDecisionMaking

        return isinstance(getattr(env, "unwrapped", env), ContextDecisionMaking)

    def __repr__(self) -> str:
        return (f"ContextDecisionObserver(cohs={list(self.cohs)}, sigma={self.sigma:.6g}, "
                f"periods={self.periods}, dim_ring={self.dim_ring}, "
                f"contexts={list(self.contexts)}, explicit={self.explicit}"
                + (f", lapse={self.lapse:g})" if self.lapse else ")"))

    def initial_state(self, batch_size: int) -> ContextDecisionState:
        """No evidence, the prior over the context, at the start of a trial."""
        b, k = check_positive_int(batch_size, "batch_size"), self.dim_ring
        return ContextDecisionState(
            torch.zeros(b, 2, len(self.cohs), k, dtype=self.dtype, device=self.device),
            self.prior.expand(b, 2).clone(),
            torch.zeros(b, dtype=torch.long, device=self.device))

    def step(self, x: torch.Tensor, state: ContextDecisionState
             ) -> tuple[torch.Tensor, ContextDecisionState]:
        """Read x_t; return (P(label_t) ``[B, 1 + K]``, s_t) (class docstring)."""
        k = self.dim_ring
        loglik = self._leaf(state[0], (2, len(self.cohs), k), "state.loglik")
        context = self._leaf(state[1], (2,), "state.context")
        phase = self._phase(state[2])
        x = self._input(x, loglik.shape[0])
        start = phase == 0
        loglik = torch.where(start[:, None, None, None], torch.zeros_like(loglik), loglik)
        context = torch.where(start[:, None], self.prior.expand_as(context), context)
        if self.explicit:
            cue = x[:, 1 + 2 * k:]
            context = torch.where((cue.sum(-1) > 0)[:, None],
                                  cue / cue.sum(-1, keepdim=True).clamp_min(1e-300), context)
        loglik = loglik + torch.stack([self._evidence(x[:, 1:1 + k], phase),
                                       self._evidence(x[:, 1 + k:1 + 2 * k], phase)], dim=1)
        choice = (context[:, :, None] * self.choice_posterior(loglik)).sum(1)
        return (self._labels(phase, choice),
                ContextDecisionState(loglik, context, (phase + 1) % self.trial_steps))


def _periods(periods: Mapping[str, int]) -> dict[str, int]:
    missing = [p for p in PERIODS if p not in periods]
    if missing:
        raise ValueError(f"periods: expected steps for {', '.join(PERIODS)}, missing "
                         f"{', '.join(missing)}")
    steps = {p: int(periods[p]) for p in PERIODS}
    if any(n < 0 for n in steps.values()) or steps["decision"] < 1:
        raise ValueError(f"periods: expected steps >= 0 and a decision period >= 1, got {steps}")
    return steps


def _fixed_periods(timing: Mapping[str, Any], dt: float) -> dict[str, int]:
    """Steps per period from a neurogym ``timing`` of fixed durations (ms, floored to dt)."""
    random = {p: v for p, v in timing.items() if not isinstance(v, int | float)}
    if random:
        raise ValueError(f"timing: the ideal observer needs fixed period durations, got random "
                         f"ones {random}; pass timing={{period: ms}} to the environment")
    return {p: int(timing.get(p, 0) // dt) for p in PERIODS}


IDEAL_OBSERVERS: tuple[type, ...] = (PerceptualDecisionObserver, ContextDecisionObserver)
"""Observer classes, each with ``accepts(env)`` and ``from_env(env)``."""


def ideal_observer(env: Any, **kwargs: Any) -> Any:
    """The ideal observer of a neurogym environment (:data:`IDEAL_OBSERVERS`).

    Raises:
        ValueError: no observer models ``env``.
    """
    for observer in IDEAL_OBSERVERS:
        if observer.accepts(env):
            return observer.from_env(env, **kwargs)
    names = ", ".join(o.__name__ for o in IDEAL_OBSERVERS)
    name = type(getattr(env, "unwrapped", env)).__name__
    raise ValueError(f"env: no ideal observer models {name} (there are: {names}); give "
                     "trajprobe.posterior_error(..., bayes=<a machine>) one")
