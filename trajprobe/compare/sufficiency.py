"""Is the learner's state a sufficient statistic? An interventional test on any machine.

D_s and D_o (:func:`~trajprobe.compare.simulation`) ask whether *some* map takes a
learner's states to the Bayes-optimal agent's. This test asks a sharper question: when
two histories leave the Bayes-optimal agent in the same posterior, does the learner treat
them as the same? For exchangeable observations the answer needs no Bayes machine at all:
the same observations in another order give the same posterior, so a learner whose state
is a sufficient statistic of the history (as the Bayes agent's is) must reach the same
state, or at least one with the same predictions, after both.

For every step t = 1..T and every episode e (history 1, ``h1``), a partner history
``h2`` is paired with it in one of two ways (``pairs``):

* ``"equal"``: equal Bayes states. ``h2`` is ``h1`` with its first t−1 inputs rearranged
  by the task (:mod:`trajprobe.tasks.exchangeable`: a task opts in with
  ``exchangeable_from`` or ``permute_history``), e.g. its observations shuffled;
* ``"different"``: the baseline, different Bayes states. ``h2`` is another episode of the
  same task (a random derangement of the episodes): different evidence.

With s1 = s_{t−1}(h1) and s2 = s_{t−1}(h2), both after t−1 inputs:

* **observational** (pair, episode, t): the divergence between the machine's predictions
  from the two states on the same probe inputs, mean over the N probes,
  (1/N) Σ_n D(f(p_{t,n}, s1) ‖ f(p_{t,n}, s2)), where p are ``h1``'s probe inputs at step t
  (``task.probe_inputs``, through :func:`~trajprobe.probe`); a task without probes (the
  prediction tasks) is probed with ``h1``'s own input x_t (N = 1);
* **interventional** (pair, episode, t, lag): state patching. s2 is put in place of s1 and
  run on ``h1``'s future inputs x_t, x_{t+1}, ...; at lag j = 1..k (``horizon``) the
  divergence between ``h1``'s own output at step t+j−1 and the patched run's,
  D(y_{t+j−1}(h1) ‖ y_{t+j−1}(s2 → h1's future)); NaN where t+j−1 > T. Lag 1 with no probes
  is the observational divergence;
* **ratio** (t) and **interventional_ratio** (t, lag): the sufficiency ratio, the mean
  divergence of equal-posterior pairs over that of different-posterior pairs. 0: the
  learner ignores exactly what Bayes ignores (the order); 1: the order moves its
  predictions as much as different evidence does. ``ratio_overall`` pools over t (and lags):
  Σ_t mean_equal / Σ_t mean_different.

D is, for a machine with ``distribution(y)``, KL(π_1 ‖ π_2) (``divergence="kl"``, eq. 2's
summand, h1's prediction the reference) or the Jensen–Shannon divergence (``"js"``), in
bits; for a machine without one (or whose ``distribution`` rejects its own first output),
the normalised squared error
‖y_1 − y_2‖² / (2 Σ_f Var(y_f)), with Var over h1's real outputs (all episodes and steps),
so two independent outputs give 1 in expectation. The ratio does not depend on the scale.

A prediction the machine cannot make from a state (non-finite outputs, or parameters its
``distribution`` rejects: e.g. an exact Bayes agent patched into a future its posterior
excludes, as another bijection's revealed pairs) has an undefined divergence, NaN, left
out of the means. Means and s.e. (:func:`~trajprobe.dynamics.mean_sem`, over episodes)
use only the pairs whose two histories differ (``distinct``): a permutation that returns
the same sequence (e.g. coin flips that are all heads) says nothing about order. Where no
pair differs the mean is NaN; at t = 1 both states are s_0, so every ratio at t = 1 is NaN (0/0).

Known answers (tests/test_sufficiency.py): every Bayes machine gives 0 on an exchangeable
task (up to float64 rounding); a count-based machine 0; a causal transformer without
positions 0 (its cache is a set of keys and values); exponential smoothing its closed form.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe import task_checks as checks
from trajprobe._version import __version__
from trajprobe.compare.behaviour import distribution_of, js_divergence, kl
from trajprobe.dynamics import mean_sem
from trajprobe.guard import eval_mode
from trajprobe.labelled import Label, describe, label_steps
from trajprobe.measurement import _attr_value, _attrs
from trajprobe.probing import DEFAULT_MEMORY_BUDGET, probe
from trajprobe.randomness import Seed, make_generator
from trajprobe.task_protocol import Episodes
from trajprobe.tasks.exchangeable import permute_steps
from trajprobe.traces import Trace, histories, rollout
from trajprobe.validation import check_positive_int

__all__ = ["PAIRS", "partner_histories", "sufficiency"]

PAIRS = ("equal", "different")
"""The kinds of pairs: equal Bayes states (a rearranged history), different (another episode)."""

_DIVERGENCES = ("kl", "js")


def sufficiency(
    machine: sm.StateMachine,
    task: Any,
    *,
    episodes: int | Episodes = 64,
    steps: int = 20,
    probes: int | None = None,
    pairs: Sequence[str] = PAIRS,
    horizon: int = 5,
    divergence: Literal["kl", "js"] = "kl",
    seed: Seed = 0,
    device: torch.device | str | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Does ``machine`` treat histories with equal Bayes posteriors as the same?

    The module docstring gives the pairs, the divergences and the ratio.

    Args:
        machine: any :class:`~trajprobe.StateMachine` taking ``[B, task.input_size]``.
        task: an open-loop task; for ``"equal"`` pairs it must say how to rearrange a
            history without changing the posterior (``exchangeable_from`` or
            ``permute_history``, :mod:`trajprobe.tasks.exchangeable`).
        episodes: E, the number of histories h1 (each paired once per kind), or given
            :class:`~trajprobe.tasks.Episodes`; at least 2 for ``"different"``.
        steps: T (ignored when episodes are given).
        probes: N probe inputs per step (None: the task's default; a task without probes
            is probed with h1's own input).
        pairs: which kinds to measure, a subset of ``("equal", "different")``; the ratios
            need both.
        horizon: k, the steps a patched state is continued on h1's future.
        divergence: ``"kl"`` or ``"js"`` (in bits) for a machine with ``distribution``;
            otherwise the normalised squared error is used whatever this says.
        seed: one generator draws the episodes, the probes, then the rearrangements
            (equal pairs) and the derangement (different pairs), in that order.
        device: where the episodes are drawn (None: the machine's device).
        memory_budget, progress: passed to :func:`~trajprobe.probe`.

    Returns:
        Dataset with dims ``pairs``, ``episode``, ``t`` (1..T) and ``lag`` (1..k):
        ``observational (pairs, episode, t)``, ``interventional (pairs, episode, t, lag)``,
        ``distinct (pairs, episode, t)`` (the two histories' first t−1 inputs differ),
        ``partner (pairs, episode)`` (h2's episode for different pairs, −1 for equal ones),
        the ``*_mean``/``*_sem`` over episodes (distinct pairs only) and, with
        both kinds, ``ratio (t)``, ``interventional_ratio (t, lag)``, ``ratio_overall ()``,
        ``interventional_ratio_overall ()``; ``attrs``: the configuration, the divergence,
        its ``units``, the task's partner rule and ``trajprobe_version``.

    Raises:
        TypeError: ``task`` cannot make equal-posterior partners and ``"equal"`` is asked,
            or ``machine`` is not a machine.
        ValueError: a bad size, kind or divergence; a task's ``permute_history`` changed
            the inputs after t.
    """
    kinds = _check_pairs(pairs)
    check_positive_int(horizon, "horizon")
    if divergence not in _DIVERGENCES:
        raise ValueError(f"divergence: expected one of {_DIVERGENCES}, got {divergence!r}")
    if probes is not None:
        check_positive_int(probes, "probes")
    partner = _partner_rule(task) if "equal" in kinds else None
    with eval_mode(machine):
        with torch.no_grad():  # the machine's own device and dtype (its outputs may have
            machine_device = sm.tree_leaves(machine.initial_state(1))[0].device  # any size)
        dtype = sm.machine_dtype(machine)
        gen = make_generator(seed, machine_device)
        run, trace = histories(machine, task, episodes=episodes, steps=steps, seed=gen,
                               device=device or machine_device, dtype=dtype)
        if "different" in kinds and trace.n_episodes < 2:
            raise ValueError(f"episodes: different-posterior pairs need at least 2 episodes, "
                             f"got {trace.n_episodes}")
        probe_inputs, task_probes = _probe_inputs(task, run, trace, probes, gen)
        own = probe(machine, trace, probe_inputs, memory_budget=memory_budget,
                    progress=progress)
        score = _divergence_fn(machine, trace, divergence)
        results = [_measure_kind(machine, run, trace, kind, partner, probe_inputs, own, score,
                                 horizon, gen, memory_budget) for kind in kinds]
    ds = label_steps(_labelled(_dataset(results, kinds, trace, horizon), score))
    ds.attrs = {**_attrs(task), "measure": "sufficiency", "trajprobe_version": __version__,
                "divergence": score.name, "units": score.units,
                "partner_rule": "none" if partner is None else partner.rule,
                "pairs": ", ".join(kinds), "horizon": int(horizon),
                "n_episodes": trace.n_episodes, "n_steps": trace.n_steps,
                "n_probes": int(probe_inputs.shape[2]),
                "probed_with": "task probe inputs" if task_probes else "own input x_t",
                "seed": _attr_value(seed), "machine": type(machine).__name__}
    return ds


# -- partners -----------------------------------------------------------------------------
class _Partner:
    """A task's rule for equal-posterior partners: ``make(episodes, t, gen) -> [E, T, ...]``."""

    def __init__(self, make: Callable[[Episodes, int, torch.Generator], torch.Tensor],
                 rule: str, task: Any):
        self.make, self.rule = make, rule
        self.name = f"task: {type(task).__name__}'s {rule}"


def _partner_rule(task: Any) -> _Partner:
    """The task's hook (``permute_history``), else its ``exchangeable_from``; else TypeError."""
    hook = getattr(task, "permute_history", None)
    if callable(hook):
        return _Partner(lambda run, t, gen: hook(run, t, seed=gen), "permute_history", task)
    first = getattr(task, "exchangeable_from", None)
    if isinstance(first, numbers.Integral) and not isinstance(first, bool) and first >= 1:
        return _Partner(lambda run, t, gen: permute_steps(run.inputs, t, first=int(first),
                                                          seed=gen),
                        f"exchangeable_from={int(first)}", task)
    raise TypeError(
        f"task: {type(task).__name__} does not say which histories have equal Bayes "
        "posteriors; give it exchangeable_from = k (inputs from step k on are exchangeable "
        "observations) or permute_history(episodes, t, *, seed) -> inputs [E, T, ...] "
        "(trajprobe.tasks.exchangeable), or measure pairs=('different',) only"
    )


def partner_histories(task: Any, episodes: Episodes, t: int, *, seed: Seed = None
                      ) -> torch.Tensor:
    """Equal-posterior partners of ``episodes`` after t inputs, by the task's rule, checked.

    Returns:
        ``[E, T, input_size]``: the first t inputs rearranged (the Bayes state after t is
        unchanged), the inputs after t the episodes' own.

    Raises:
        TypeError: the task has no rule (see :mod:`trajprobe.tasks.exchangeable`).
        ValueError: the rule returned another shape or changed an input after t.
    """
    return _partners(_partner_rule(task), episodes, t, make_generator(seed))


def _partners(partner: _Partner, run: Episodes, t: int, gen: torch.Generator) -> torch.Tensor:
    value = partner.make(run, t, gen)
    name = partner.name
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(run.inputs.shape):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} returned {shape}, expected inputs of shape "
                         f"{tuple(run.inputs.shape)} (as the episodes')")
    value = value.to(device=run.inputs.device, dtype=run.inputs.dtype)
    if not torch.equal(value[:, t:], run.inputs[:, t:]):
        raise ValueError(f"{name} changed the inputs after step t = {t}; it must rearrange "
                         "only the first t inputs (the future continues both histories)")
    return value


# -- divergences --------------------------------------------------------------------------
class _Divergence:
    """D(y1 ‖ y2) for outputs ``[..., out]`` → ``[...]`` float64, with its name and units."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str,
                 units: str):
        self.fn, self.name, self.units = fn, name, units

    def __call__(self, y1: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
        return self.fn(y1, y2)


def _divergence_fn(machine: sm.StateMachine, trace: Trace, divergence: str) -> _Divergence:
    """KL or JS in bits with ``distribution``; else the normalised squared error."""
    out_ndim = trace.outputs.dim() - 2  # an output's own axes
    if _has_distribution(machine, trace):
        between = kl if divergence == "kl" else js_divergence

        def bits(y1: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
            lead = y1.shape[:y1.dim() - out_ndim]
            a = y1.detach().to(torch.float64).reshape(-1, *y1.shape[len(lead):])
            b = y2.detach().to(torch.float64).reshape(-1, *y2.shape[len(lead):])
            ok = _valid_rows(machine, a) & _valid_rows(machine, b)
            value = torch.full((a.shape[0],), math.nan, dtype=torch.float64, device=a.device)
            if bool(ok.any()):
                p = distribution_of(machine, a[ok], "machine")
                q = distribution_of(machine, b[ok], "machine")
                if tuple(p.batch_shape) != (int(ok.sum()),):
                    raise ValueError(
                        "machine: distribution(y) must treat every trailing axis of y as one "
                        f"prediction: batch shape ({int(ok.sum())},) expected, got "
                        f"{tuple(p.batch_shape)}")
                value[ok] = between(p, q).clamp_min(0.0) / math.log(2.0)  # round-off: -1e-17
            return value.reshape(lead)

        label = "KL(pi_1 || pi_2)" if divergence == "kl" else "JS(pi_1, pi_2)"
        return _Divergence(bits, label, "bits")
    outputs = trace.outputs.detach().to(torch.float64).flatten(0, 1).flatten(1)
    scale = 2.0 * float(outputs.var(dim=0, unbiased=False).sum()) if outputs.shape[0] > 1 else 0.0

    def normalised(y1: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
        diff = y1.detach().to(torch.float64) - y2.detach().to(torch.float64)
        sq = diff.square()
        if out_ndim:
            sq = sq.flatten(start_dim=sq.dim() - out_ndim).sum(-1)
        return torch.where(sq == 0, sq, sq / scale if scale > 0 else sq * math.inf)

    return _Divergence(normalised, "||y_1 - y_2||^2 / (2 sum_f Var(y_f))",
                       "1 (normalised squared error)")


def _has_distribution(machine: sm.StateMachine, trace: Trace) -> bool:
    """``machine.distribution`` exists and accepts the machine's own first output (a model
    whose ``distribution`` raises, having been built without a family, has none)."""
    if not callable(getattr(machine, "distribution", None)):
        return False
    try:
        distribution_of(machine, trace.outputs[:1, 0].detach().to(torch.float64), "machine")
    except (ValueError, NotImplementedError):
        return False
    return True


def _valid_rows(machine: sm.StateMachine, y: torch.Tensor) -> torch.Tensor:
    """``[M]`` bool: the rows of outputs ``y`` ``[M, ...]`` that make a distribution (finite,
    and parameters ``machine.distribution`` accepts)."""
    ok = torch.isfinite(y.flatten(1)).all(1)
    try:
        distribution_of(machine, y[ok], "machine")
    except ValueError:  # e.g. all-zero probabilities: find the rows, one by one
        for i in ok.nonzero().flatten().tolist():
            try:
                distribution_of(machine, y[i:i + 1], "machine")
            except ValueError:
                ok[i] = False
    return ok


# -- measurement --------------------------------------------------------------------------
def _probe_inputs(task: Any, run: Episodes, trace: Trace, probes: int | None,
                  gen: torch.Generator) -> tuple[torch.Tensor, bool]:
    """``(probe inputs [E, T, N, ...], from the task?)``: the task's for h1, else h1's own
    inputs (N = 1)."""
    value = None
    if callable(getattr(task, "probe_inputs", None)):
        value = checks.probe_inputs(task, task.probe_inputs(run, probes, seed=gen),
                                    trace.n_episodes, trace.n_steps, probes)
    if value is None:
        return trace.inputs[:, :, None], False
    return value.to(device=trace.inputs.device, dtype=trace.inputs.dtype), True


def _measure_kind(machine: sm.StateMachine, run: Episodes, trace: Trace, kind: str,
                  partner: _Partner | None, probe_inputs: torch.Tensor, own: torch.Tensor,
                  score: _Divergence, horizon: int, gen: torch.Generator,
                  memory_budget: int) -> dict[str, np.ndarray]:
    """One kind of pair: the partner states s2_{t-1} for every t, then both divergences."""
    n_ep, n_t = trace.n_episodes, trace.n_steps
    index = torch.full((n_ep,), -1, dtype=torch.long)
    if kind == "different":
        states, distinct, index = _different_partners(trace, gen)
    else:
        states, distinct = _equal_partners(machine, run, trace, partner, gen)
    patched = Trace(inputs=trace.inputs, outputs=trace.outputs, states=states)
    other = probe(machine, patched, probe_inputs, memory_budget=memory_budget, progress=False)
    observational = score(own, other).mean(-1)  # [E, T]
    interventional = torch.full((n_ep, n_t, horizon), math.nan, dtype=torch.float64)
    for t in range(1, n_t + 1):
        k = min(horizon, n_t - t + 1)
        s2 = sm.tree_map(lambda leaf, t=t: leaf[:, t - 1], states)
        continued = rollout(machine, trace.inputs[:, t - 1:t - 1 + k], initial_state=s2)
        interventional[:, t - 1, :k] = score(trace.outputs[:, t - 1:t - 1 + k],
                                             continued.outputs).cpu()
    return {"observational": observational.cpu().numpy(),
            "interventional": interventional.numpy(), "distinct": distinct.cpu().numpy(),
            "partner": index.cpu().numpy()}


def _different_partners(trace: Trace, gen: torch.Generator
                        ) -> tuple[sm.State, torch.Tensor, torch.Tensor]:
    """Another episode's states: a random single-cycle derangement of the episodes."""
    n_ep = trace.n_episodes
    order = torch.randperm(n_ep, generator=gen, device=gen.device).to(trace.inputs.device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    states = sm.index(trace.states, partner)
    differs = (trace.inputs[partner] != trace.inputs).flatten(2).any(-1)  # [E, T] step differs
    return states, _distinct_before(differs), partner


def _equal_partners(machine: sm.StateMachine, run: Episodes, trace: Trace, partner: _Partner,
                    gen: torch.Generator) -> tuple[sm.State, torch.Tensor]:
    """s_{t-1} of h1 rearranged by the task's rule (a new rearrangement for every t)."""
    n_ep, n_t = trace.n_episodes, trace.n_steps
    states = [trace.state_at(0)]
    distinct = torch.zeros(n_ep, n_t, dtype=torch.bool, device=trace.inputs.device)
    for t in range(2, n_t + 1):
        inputs = _partners(partner, run, t - 1, gen)
        distinct[:, t - 1] = (inputs[:, :t - 1] != trace.inputs[:, :t - 1]).flatten(1).any(-1)
        states.append(rollout(machine, inputs[:, :t - 1]).state_at(t - 1))
    states.append(trace.state_at(n_t))  # s_T: not probed
    return sm.stack(states, dim=1), distinct


def _distinct_before(differs: torch.Tensor) -> torch.Tensor:
    """``[E, T]``: the histories' first t−1 inputs differ somewhere (t = 1: never)."""
    before = torch.zeros_like(differs)
    before[:, 1:] = differs[:, :-1].cumsum(1) > 0
    return before


# -- result -------------------------------------------------------------------------------
def _check_pairs(pairs: Sequence[str]) -> tuple[str, ...]:
    if isinstance(pairs, str):
        pairs = (pairs,)
    kinds = tuple(pairs)
    bad = [k for k in kinds if k not in PAIRS]
    if not kinds or bad or len(set(kinds)) != len(kinds):
        raise ValueError(f"pairs: expected distinct kinds from {PAIRS}, got {pairs!r}")
    return tuple(k for k in PAIRS if k in kinds)


def _dataset(results: list[dict[str, np.ndarray]], kinds: tuple[str, ...], trace: Trace,
             horizon: int) -> xr.Dataset:
    dims = {"observational": ("pairs", "episode", "t"), "distinct": ("pairs", "episode", "t"),
            "interventional": ("pairs", "episode", "t", "lag"), "partner": ("pairs", "episode")}
    ds = xr.Dataset(
        {name: (dim, np.stack([r[name] for r in results])) for name, dim in dims.items()},
        coords={"pairs": list(kinds), "episode": np.arange(trace.n_episodes),
                "t": np.arange(1, trace.n_steps + 1), "lag": np.arange(1, horizon + 1)},
    )
    for name in ("observational", "interventional"):
        values = ds[name].where(ds["distinct"])  # only pairs whose histories differ
        ds[f"{name}_mean"], ds[f"{name}_sem"] = mean_sem(values, "episode", skipna=True)
    if kinds != PAIRS:
        return ds
    for name, prefix in (("observational", ""), ("interventional", "interventional_")):
        equal = ds[f"{name}_mean"].sel(pairs="equal", drop=True)
        different = ds[f"{name}_mean"].sel(pairs="different", drop=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            ds[f"{prefix}ratio"] = equal / different
        both = np.isfinite(equal) & np.isfinite(different)
        pooled = float(different.where(both).sum())
        ds[f"{prefix}ratio_overall"] = ((), float(equal.where(both).sum()) / pooled
                                        if pooled > 0 else math.nan)
    return ds


def _labelled(ds: xr.Dataset, score: _Divergence) -> xr.Dataset:
    """``long_name``, ``units`` and a description on every variable (trajprobe.labelled)."""
    units = "bits" if score.units == "bits" else "1"
    labels = {
        "observational": Label("prediction divergence from the partner's state", units,
                               f"mean over probes of {score.name} on the same probe inputs"),
        "interventional": Label("divergence after state patching", units,
                                f"{score.name}: h1's own continuation vs from h2's state"),
        "distinct": Label("histories differ", "1", "the two histories' first t-1 inputs differ"),
        "partner": Label("partner episode", "1", "h2's episode (different pairs); -1: equal"),
        "lag": Label("steps after patching", "1", "lag j: the output of step t + j - 1"),
    }
    for name in ("observational", "interventional"):
        labels[f"{name}_mean"] = Label(labels[name].long_name, units,
                                       "mean over episodes whose histories differ")
        labels[f"{name}_sem"] = Label(f"s.e. of the {labels[name].long_name}", units,
                                      "standard error over episodes (dynamics.mean_sem)")
    if "ratio" in ds:
        text = "mean divergence, equal-posterior pairs / different-posterior pairs"
        labels.update(
            ratio=Label("sufficiency ratio", "1", text),
            interventional_ratio=Label("sufficiency ratio, interventional", "1", text),
            ratio_overall=Label("sufficiency ratio, pooled over t", "1", text),
            interventional_ratio_overall=Label("interventional sufficiency ratio, pooled", "1",
                                               text))
    return describe(ds, labels)
