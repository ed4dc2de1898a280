"""The contextual-bandit Learner in closed form, vectorised over learners and samples.

Rabinowitz 2019 §5.1 and A.5: a linear–softmax policy π(a|c) = softmax(Wc + b) (eq. 11)
trained by REINFORCE with minibatches of M contexts. For one-hot contexts the minibatch
gradient depends on the minibatch only through two count tables per learner,

* ``taken[c, a]`` — how many of the M rows showed context c and took action a,
* ``rewarded[c, a]`` — the sum of the rewards of those rows,

because ∂/∂z_c of -(1/M) Σ_m (r_m - β) log π(a_m | c_m) is
-(1/M) (w_c - (Σ_a w_ca) π_c) with w = rewarded - β·taken (z_c = the logits of context c).
So :class:`BanditLearner` updates B learners with a few batched ops on ``[B, C, A]``
tables (no autograd, no per-row work), and :func:`train_bandit_learners` draws those
tables directly — context counts ~ Multinomial(M, 1/C), action counts ~ Multinomial(n_c,
π_c), reward sums ~ Binomial(taken, p(c, a)) — which is the distribution of the tables of
M rows sampled one by one, at a cost independent of M.

Coupled (one network, the bias b shared by every context; interference, Schaul et al.
2019) and decoupled (one network per context, :class:`~trajprobe.adapters.torch_learner.
DecoupledLinearPolicy`) are both covered: state ``weight`` ``[B, C, A]`` holds W's columns
(Wᵀ; for the decoupled network, column c of network c), ``bias`` ``[B, 1, A]`` (coupled) or
``[B, C, A]`` (decoupled, network c's bias in row c). The update equals
:func:`~trajprobe.adapters.torch_learner.bandit_learner`'s autograd step on the same rows
(tested), at about a millisecond per step for 50 learners (drawing the tables
dominates) where the autograd Learner in ``Interaction`` took several
(``benchmarks/bandit_learners.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from torch.nn import functional
from tqdm.auto import tqdm

from trajprobe.adapters.torch_learner import SGD, Adam, Optimiser
from trajprobe.devices import one_thread, resolve_device
from trajprobe.dynamics import eval_schedule
from trajprobe.estimators.policy import expected_context_reward
from trajprobe.labelled import Label, describe
from trajprobe.progress import bar_options
from trajprobe.randomness import Seed, make_generator
from trajprobe.validation import check_positive_int

__all__ = ["BanditLearner", "multinomial_counts", "train_bandit_learners"]

State = dict[str, Any]
_CHUNK = 256
"""Steps whose context counts are drawn at once."""


class BanditLearner:
    """B linear–softmax policies trained by REINFORCE and SGD/Adam (Rabinowitz A.5): a machine.

    Args:
        n_contexts, n_actions: C and A (paper: 5 and 5).
        coupled: one network with a shared bias (True) or one network per context.
        optimiser: :class:`~trajprobe.adapters.torch_learner.SGD` or ``Adam`` (paper: Adam,
            lr 1e-4), applied elementwise as ``torch.optim`` does.
        init_std: every parameter ~ N(0, σ²) truncated at ±2σ; default σ = 1/√C (A.5).
        baseline: β subtracted from every reward (0: plain REINFORCE, as in the paper).
        seed: seed of the initialisation; learner b gets the b-th draw.
        dtype, device: of the state.

    The machine protocol (a Learner, ``feedback = "same"``): ``step(x, s)`` takes a
    minibatch per learner ``x`` ``[B, M, C + A + 1]`` with rows ``[one-hot context, one-hot
    action, reward]`` (a :class:`~trajprobe.tasks.ContextualBandit`'s encoding) and returns
    the logits of the rows' contexts under s_{t-1} ``[B, M, A]`` and s_t. :meth:`update`
    takes the count tables instead.
    """

    feedback = "same"

    def __init__(
        self,
        n_contexts: int = 5,
        n_actions: int = 5,
        *,
        coupled: bool = True,
        optimiser: Optimiser | None = None,
        init_std: float | None = None,
        baseline: float = 0.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        self.n_contexts = check_positive_int(n_contexts, "n_contexts")
        self.n_actions = check_positive_int(n_actions, "n_actions")
        self.optimiser = optimiser if optimiser is not None else Adam(1e-4)
        if not isinstance(self.optimiser, SGD | Adam):
            raise TypeError(f"optimiser: expected SGD or Adam, got "
                            f"{type(self.optimiser).__name__}")
        self.init_std = init_std if init_std is not None else 1 / math.sqrt(n_contexts)
        if not (self.init_std >= 0 and math.isfinite(self.init_std)):
            raise ValueError(f"init_std: expected a finite number >= 0, got {init_std!r}")
        if not math.isfinite(baseline):
            raise ValueError(f"baseline: expected a finite number, got {baseline!r}")
        self.coupled, self.baseline, self.seed = bool(coupled), float(baseline), seed
        self.dtype, self.device = dtype, resolve_device(device)

    @property
    def input_size(self) -> int:
        """C + A + 1: the columns of a minibatch row."""
        return self.n_contexts + self.n_actions + 1

    # -- state --------------------------------------------------------------------------

    def initial_state(self, batch_size: int) -> State:
        """θ_0 for B learners and a fresh optimiser state; leaves ``[B, ...]``.

        Learner b's parameters are the b-th draw of one generator seeded with ``seed``
        (weight, then bias), so the first learners are the same whatever B.
        """
        check_positive_int(batch_size, "batch_size")
        c, a, std = self.n_contexts, self.n_actions, self.init_std
        generator = make_generator(self.seed, self.device)
        n_bias = 1 if self.coupled else c
        draws = torch.empty(batch_size, (c + n_bias) * a, dtype=torch.float64,
                            device=generator.device)
        for row in draws:  # one learner at a time: learner b is draw b whatever B
            torch.nn.init.trunc_normal_(row, std=std, a=-2 * std, b=2 * std,
                                        generator=generator)
        draws = draws.to(dtype=self.dtype, device=self.device)
        params = {"weight": draws[:, : c * a].reshape(batch_size, c, a),
                  "bias": draws[:, c * a:].reshape(batch_size, n_bias, a)}
        return {"params": params, "opt": self._init_opt(params)}

    def _init_opt(self, params: dict[str, torch.Tensor]) -> dict[str, Any]:
        opt = self.optimiser.init(params)
        if "count" in opt:  # Adam: one step count per learner, broadcasting over [B, C, A]
            ref = params["weight"]
            opt["count"] = torch.zeros(ref.shape[0], 1, 1, dtype=ref.dtype, device=ref.device)
        return opt

    def logits(self, state: State) -> torch.Tensor:
        """z_c = W c + b for every context: ``[B, C, A]`` (eq. 11 before the softmax)."""
        params = state["params"]
        return params["weight"] + params["bias"]

    def policy(self, state: State) -> torch.Tensor:
        """π(a | c) for every learner and context ``[B, C, A]``."""
        return torch.softmax(self.logits(state), dim=-1)

    # -- the machine protocol -----------------------------------------------------------

    def output(self, x: torch.Tensor, state: State) -> torch.Tensor:
        """Logits of the rows' contexts ``[B, M, A]`` (the rows' other columns are ignored)."""
        self._check_rows(x, needs_outcome=False)
        context = x[..., : self.n_contexts].to(self.dtype)
        return torch.einsum("bmc,bca->bma", context, self.logits(state))

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x ``[B, M, C + A + 1]`` → (logits under s_{t-1} ``[B, M, A]``, s_t)."""
        self._check_rows(x, needs_outcome=True)
        c, a = self.n_contexts, self.n_actions
        x = x.to(self.dtype)
        context, action, reward = x[..., :c], x[..., c:c + a], x[..., c + a]
        taken = torch.einsum("bmc,bma->bca", context, action)
        rewarded = torch.einsum("bmc,bma->bca", context * reward[..., None], action)
        y = torch.einsum("bmc,bca->bma", context, self.logits(state))
        return y, self.update(rewarded, taken, state, minibatch=x.shape[1])

    def update(self, rewarded: torch.Tensor, taken: torch.Tensor, state: State, *,
               minibatch: int) -> State:
        """s_t from the count tables ``[B, C, A]`` of a minibatch of M rows.

        REINFORCE's gradient w.r.t. the logits of context c is
        g_c = -(1/M) (w_c - (Σ_a w_ca) π_c), w = rewarded - β·taken; the weight's column c
        receives g_c, the shared bias Σ_c g_c (coupled) or network c's bias g_c.
        """
        pi = self.policy(state)
        w = rewarded - self.baseline * taken if self.baseline else rewarded
        g = (w.sum(-1, keepdim=True) * pi - w) / minibatch
        grads = {"weight": g, "bias": g.sum(1, keepdim=True) if self.coupled else g}
        params, opt = self.optimiser.update(grads, state["opt"], state["params"])
        return {"params": params, "opt": opt}

    def _check_rows(self, x: torch.Tensor, *, needs_outcome: bool) -> None:
        width = self.input_size if needs_outcome else self.n_contexts
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] < width:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a minibatch per learner [B, M, {self.input_size}] "
                             f"(one-hot context, one-hot action, reward), got {shape}")


def multinomial_counts(n: torch.Tensor, probs: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """Multinomial(n, probs) counts by conditional binomials: ``n`` [...], ``probs`` [..., K].

    Returns ``[..., K]`` (n's dtype): x_k ~ Binomial(n - Σ_{j<k} x_j, p_k / Σ_{j>=k} p_j).
    """
    tail = probs.flip(-1).cumsum(-1).flip(-1)  # Σ_{j>=k} p_j
    share = (probs / tail.clamp_min(torch.finfo(probs.dtype).tiny)).clamp(0.0, 1.0)
    remaining, counts = n, []
    for k in range(probs.shape[-1] - 1):
        x = torch.binomial(remaining, share[..., k].contiguous(), generator=generator)
        counts.append(x)
        remaining = remaining - x
    counts.append(remaining)
    return torch.stack(counts, dim=-1)


@dataclass(frozen=True)
class _Schedule:
    """How :func:`train_bandit_learners` runs: rows per step, cap, stopping, recording."""

    minibatch: int
    max_steps: int
    stop_at: float | None
    contexts: str
    record: np.ndarray

    def context_counts(self, n: int, n_contexts: int,
                       generator: torch.Generator) -> torch.Tensor:
        """Rows per context for the next :data:`_CHUNK` steps ``[chunk, n, C]`` (float64)."""
        shape = (_CHUNK, n, n_contexts)
        if self.contexts == "single":
            shown = torch.randint(n_contexts, shape[:2], generator=generator,
                                  device=generator.device)
            return functional.one_hot(shown, n_contexts).double() * self.minibatch
        uniform = torch.full(shape, 1.0 / n_contexts, dtype=torch.float64,
                             device=generator.device)
        rows = torch.full(shape[:2], float(self.minibatch), dtype=torch.float64,
                          device=generator.device)
        return multinomial_counts(rows, uniform, generator)


@dataclass(frozen=True)
class _Run:
    """What :func:`train_bandit_learners` records while the learners train."""

    q: list[torch.Tensor]
    score: torch.Tensor
    steps_trained: torch.Tensor


def train_bandit_learners(
    learner: BanditLearner,
    task: Any,
    n_learners: int,
    *,
    minibatch: int = 200,
    max_steps: int = 1_000_000,
    stop_at: float | None = 0.98,
    contexts: Literal["mixed", "single"] = "mixed",
    record: np.ndarray | None = None,
    seed: Seed = 0,
    progress: bool | None = None,
    desc: str = "bandit learners",
) -> xr.Dataset:
    """Train B Learners in a Bernoulli contextual bandit, each until it has learned (A.5).

    Each step, every learner draws its minibatch's count tables (see the module
    docstring), reads q_c(t) = π_{t-1}(a*(c) | c) for every context c (§5.1.2) and takes
    one REINFORCE update. A learner stops — its parameters frozen — at the first step at
    which its normalised expected reward (E[r] - p_incorrect) / (p_correct - p_incorrect) =
    mean_c q_c reaches ``stop_at``: how we read A.5's "until E[r(t)] reaches 0.98", which
    the raw E[r] ≤ p_correct = 0.8 could never meet. The run ends when every learner has
    stopped or at ``max_steps``.

    Args:
        learner: the Learners' set-up.
        task: a :class:`~trajprobe.tasks.ContextualBandit` (any Environment with
            contexts, ``params["correct"]``, Bernoulli rewards and ``p_correct`` /
            ``p_incorrect``).
        n_learners: B, each with its own initialisation and its own bandit.
        minibatch: M rows per step.
        max_steps: the cap.
        stop_at: the normalised expected reward at which a learner stops; None: never.
        contexts: ``"mixed"``: every row of a minibatch draws its own context;
            ``"single"``: one context per step, shared by the M rows (§5.1.1: "on each
            step, the context is sampled randomly").
        record: increasing steps (1-based) at which to keep q; default
            :func:`~trajprobe.dynamics.eval_schedule` (every step up to 20, then 60 per
            decade); entries after the run's end are dropped.
        seed: the draws of the bandits and of every minibatch.

    Returns:
        Dataset with ``q (episode, t, context)`` (episode = the Learner; a stopped learner
        keeps its last policy), ``expected_reward_context (episode, t, context)`` (eq. 12),
        ``expected_reward (episode, t)`` (eq. 13), ``return_score (episode, context)``
        (R_c, eq. 14, the mean of eq. 12 over the learner's own training steps),
        ``steps_trained (episode)`` and ``correct (episode, context)``.
    """
    check_positive_int(n_learners, "n_learners")
    check_positive_int(minibatch, "minibatch")
    check_positive_int(max_steps, "max_steps")
    if contexts not in ("mixed", "single"):
        raise ValueError(f"contexts: expected 'mixed' or 'single', got {contexts!r}")
    if stop_at is not None and not 0 < stop_at <= 1:
        raise ValueError(f"stop_at: expected a normalised reward in (0, 1] or None, "
                         f"got {stop_at!r}")
    if (task.n_contexts, task.n_actions) != (learner.n_contexts, learner.n_actions):
        raise ValueError(f"task: {task.n_contexts} contexts × {task.n_actions} actions, but the "
                         f"learner has {learner.n_contexts} × {learner.n_actions}")
    steps = _record_steps(record, max_steps)
    state = learner.initial_state(n_learners)
    device = state["params"]["weight"].device
    generator = make_generator(seed, device)
    correct = task.sample_params(n_learners, generator=generator, device=device)["correct"]
    with one_thread():
        run = _train(learner, task, state, correct, generator,
                     _Schedule(minibatch, max_steps, stop_at, contexts, steps), progress, desc)
    ds = _dataset(task, learner, run, steps[: len(run.q)], correct, minibatch, stop_at)
    ds.attrs["contexts"] = contexts
    return ds


def _record_steps(record: np.ndarray | None, max_steps: int) -> np.ndarray:
    steps = np.unique(np.asarray(eval_schedule(max_steps) if record is None else record,
                                 dtype=int))
    if steps.size == 0 or steps[0] < 1:
        raise ValueError(f"record: expected increasing steps >= 1, got {record!r}")
    return steps[steps <= max_steps]


def _train(learner: BanditLearner, task: Any, state: State, correct: torch.Tensor,
           generator: torch.Generator, plan: _Schedule, progress: bool | None,
           desc: str) -> _Run:
    n, c = correct.shape
    gen_device = generator.device
    p_reward = torch.full((n, c, learner.n_actions), task.p_incorrect, dtype=torch.float64,
                          device=gen_device)
    p_reward.scatter_(2, correct[:, :, None].to(gen_device), task.p_correct)
    index = correct[:, :, None]
    score = torch.zeros(n, c, dtype=torch.float64, device=correct.device)
    active = torch.ones(n, dtype=torch.bool, device=correct.device)
    trained = torch.zeros(n, dtype=torch.long, device=correct.device)
    wanted, kept = set(int(t) for t in plan.record), []
    bar = tqdm(total=plan.max_steps, desc=desc, unit="step", leave=False,
               **bar_options(progress))
    with torch.no_grad(), bar:
        for t in range(1, plan.max_steps + 1):
            pi = learner.policy(state)
            q = pi.gather(2, index)[:, :, 0].double()
            if t in wanted:
                kept.append(q)
            if plan.stop_at is not None and t % 10 == 1:  # the stopping rule, every 10 steps
                active &= q.mean(1) < plan.stop_at
                if not bool(active.any()):
                    break
            score += torch.where(active[:, None],
                                 expected_context_reward(q, task.p_correct, task.p_incorrect),
                                 0.0)
            trained += active
            if (t - 1) % _CHUNK == 0:  # the contexts do not depend on the policy
                contexts = plan.context_counts(n, c, generator)
            taken = multinomial_counts(contexts[(t - 1) % _CHUNK],
                                       pi.to(gen_device, torch.float64), generator)
            rewarded = torch.binomial(taken, p_reward, generator=generator)
            new = learner.update(rewarded.to(pi), taken.to(pi), state, minibatch=plan.minibatch)
            state = _freeze(state, new, active)
            bar.update()
    return _Run(kept, score / trained.clamp_min(1)[:, None], trained)


def _freeze(old: State, new: State, active: torch.Tensor) -> State:
    if bool(active.all()):
        return new

    def pick(o: Any, n: Any) -> Any:
        if isinstance(o, dict):
            return {k: pick(o[k], n[k]) for k in o}
        mask = active.reshape(-1, *[1] * (n.dim() - 1))
        return torch.where(mask, n, o)

    return pick(old, new)


def _dataset(task: Any, learner: BanditLearner, run: _Run, steps: np.ndarray,
             correct: torch.Tensor, minibatch: int, stop_at: float | None) -> xr.Dataset:
    q = torch.stack(run.q, dim=1).cpu().numpy()
    n, c = correct.shape
    ds = xr.Dataset(
        {"q": (("episode", "t", "context"), q),
         "correct": (("episode", "context"), correct.cpu().numpy()),
         "return_score": (("episode", "context"), run.score.cpu().numpy()),
         "steps_trained": (("episode",), run.steps_trained.cpu().numpy())},
        coords={"episode": np.arange(n), "t": steps, "context": np.arange(c)},
        attrs={"agent": f"learner-{'coupled' if learner.coupled else 'decoupled'}",
               "optimiser": type(learner.optimiser).__name__.lower(),
               "lr": learner.optimiser.lr, "minibatch": minibatch,
               "init_std": learner.init_std, "baseline": learner.baseline,
               "stop_at": -1.0 if stop_at is None else stop_at},
    )
    ds["expected_reward_context"] = expected_context_reward(ds["q"], task.p_correct,
                                                            task.p_incorrect)
    ds["expected_reward"] = ds["expected_reward_context"].mean("context")
    return describe(ds, {
        "q": Label("P(correct action | context) q_c", "1",
                   "probability of the correct action in context c, π_{t-1}(a*(c)|c)"),
        "return_score": Label("return score R_c", "1",
                              "R_c (eq. 14) over the learner's own training steps"),
        "steps_trained": Label("training steps until the stopping rule", "steps",
                               "REINFORCE steps until the learner met the stopping rule"),
        "expected_reward_context": Label("expected reward in context c", "1", "eq. 12"),
        "expected_reward": Label("expected reward", "1", "eq. 13"),
        "t": Label("training step t (after t − 1 updates)", "1"),
        "correct": Label("correct action a*(c)", "1"),
        "context": Label("context c", "1"),
    })
