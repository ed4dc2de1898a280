"""Rabinowitz 2019 §5: interference between contexts in contextual bandits (Figs. 12-13, 16).

Every agent is measured the same way: q_c(t) = π_t(a*(c) | c), the probability of the
correct action when shown context c (§5.1.2), its expected reward (eq. 12), contexts
re-ordered per run by their time-averaged expected return R_c (eq. 14) so that rank k
is the k-th learned context, and the steps until q_k(t) first exceeds a cut-off.

* Learners (A.5): linear–softmax policies trained by REINFORCE, coupled (one network,
  shared bias) or decoupled (one network per context), on a conflicting bandit (every
  context its own correct action). A Learner's state is its parameters, so the policy
  is read on the fly at every training step and stored at a log-spaced schedule only.
* Meta-Learners (A.6): an LSTM outer-trained on 5-context bandits (coupled) and one
  trained on 1-context bandits run as 5 independent copies (decoupled,
  :class:`~trajprobe.apps.reproduce.decoupled.DecoupledMachine`), probed with every context
  at every step of fresh episodes (``context_dynamics``).
* Bayes: the exact per-context posterior (Thompson policy), coupled and decoupled; it
  factorises over contexts, so both show the same dynamics (§5.2.3).

Also, per agent, the confusion between contexts at the episode's end, M[c, c'] (how often
the policy shown c plays the correct action of c'; two contexts that share one memory are
near ½ both ways) and its largest pair.

Headline: steps to q > :data:`CUTOFF` of the 5th learned context over the 1st
(paper: Learner coupled ≈ 400×, decoupled ≈ 2×; Meta-Learner coupled ≈ 4.3×,
decoupled ≈ 3.9×).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from matplotlib import ticker

from trajprobe import plots
from trajprobe.adapters.bandit_learner import BanditLearner, train_bandit_learners
from trajprobe.adapters.torch_learner import SGD, Adam
from trajprobe.apps import recipes
from trajprobe.apps.reproduce.base import (
    INTERPOLATED,
    Presets,
    RunContext,
    SummaryRow,
    TargetResult,
)
from trajprobe.apps.reproduce.decoupled import DecoupledMachine
from trajprobe.apps.reproduce.outer_loop import outer_loop_spectra, plot_outer_loop
from trajprobe.apps.training import list_checkpoints
from trajprobe.dynamics import (
    context_confusion,
    mean_sem,
    most_confused_pair,
    order_contexts,
    steps_to_threshold,
    time_ratio,
)
from trajprobe.machine import logits_policy
from trajprobe.measurement import context_dynamics
from trajprobe.plots import plot_ordered_contexts
from trajprobe.reference_models import ContextualBanditPosterior
from trajprobe.tasks import ContextualBandit

__all__ = ["CUTOFF", "PAPER", "SETTINGS", "THRESHOLDS", "BanditSettings", "confusion_at_end",
           "headline_ratio", "learner_dynamics", "run"]

CUTOFF = 0.5
"""c of the headline: steps until q_k(t) > c (a correct action twice as likely as all
four others together can be reached by every agent within the quick budget)."""
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
"""Cut-offs of the steps-to-threshold figures (Fig. 12c)."""
PAPER = {"Learner (coupled)": 400.0, "Learner (decoupled)": 2.0,
         "Meta-Learner (coupled)": 4.3, "Meta-Learner (decoupled)": 3.9}
"""Rabinowitz 2019 §5.1.3, §5.2.3: 5th vs 1st learned context time ratios."""
RATIO_NOTE = (
    "The Meta-Learners' 5th/1st time ratios are largely set by the measurement: contexts are "
    "ranked per episode by R_c (eq. 14), so rank 1 is the context that happened to be shown "
    "and rewarded early and rank 5 the one shown least, and steps are episode steps (a "
    "context is shown on ~1/5 of them). A Bayes-optimal agent measured the same way (the "
    "Bayes rows, Thompson policy) has the same ratio coupled and decoupled, above the paper's "
    "4.3 / 3.9; read a Meta-Learner's ratio against the Bayes rows.")
"""Why the Meta-Learner ratios differ from the paper's (shown once per report)."""
LEARNER_NOTE = (
    "At A.5's set-up (Adam 1e-4, σ = 1/√5, plain REINFORCE, until the normalised reward "
    "reaches 0.98) the shared bias barely delays the later contexts: Adam moves every "
    "parameter by about its learning rate whatever the size of its gradient, so the "
    "suppressed contexts are not slowed the way plain gradient flow would slow them. The "
    "coupled Learner needs about twice the steps of the decoupled one, but its contexts are "
    "learned in the same proportions, so the 5th/1st ratio stays near the decoupled one, far "
    "from the paper's ≈ 400. Deterministic rewards, a reward baseline, one context per "
    "minibatch or SGD do not change this; a larger initial scale raises both ratios alike "
    "(benchmarks/bandit_learners.py --study).")
"""Why the Learner ratios differ from the paper's (issue 17's study)."""
EVAL_SEED = 4242
"""Seed of the evaluation episodes (task parameters, contexts, actions, rewards)."""

_LEARNERS = {"coupled": "contextual-bandits/learner-coupled",
             "decoupled": "contextual-bandits/learner-decoupled"}
_METAS = {"coupled": "contextual-bandits/meta-learner-coupled",
          "decoupled": "contextual-bandits/meta-learner-decoupled"}
_CONFUSION_KEYS = {"Meta-Learner (coupled)": "meta_learner_coupled",
                   "Meta-Learner (decoupled)": "meta_learner_decoupled",
                   "Bayes (coupled)": "bayes_coupled"}


@dataclass(frozen=True)
class BanditSettings:
    """What a preset of this target evaluates (the training budgets live in the recipes).

    Attributes:
        n_eval: evaluation episodes of the Meta-Learners and Bayes.
        n_outer: evaluation episodes per checkpoint of the outer-loop view (Fig. 16).
    """

    n_eval: int
    n_outer: int


SETTINGS: Presets[BanditSettings] = Presets(
    smoke=BanditSettings(n_eval=8, n_outer=4),
    quick=BanditSettings(n_eval=500, n_outer=100),
    paper=BanditSettings(n_eval=2000, n_outer=200),
)
"""This target's settings per preset."""


def headline_ratio(q_ordered: xr.DataArray, c: float = CUTOFF, *,
                   interpolate: bool = True) -> float:
    """Steps to q > c of the last-learned context over the first (mean curve over episodes),
    crossing times interpolated between steps by default (False: the first step above;
    :func:`~trajprobe.dynamics.steps_to_threshold`)."""
    steps = steps_to_threshold(q_ordered.mean("episode"), c, interpolate=interpolate)
    return float(time_ratio(steps, "rank").isel(rank=-1))


def confusion_at_end(ds: xr.Dataset) -> xr.DataArray:
    """M[c, c'] at the last step (``context_confusion``): how often the policy shown context
    c plays the correct action of c' (where the two differ); dims ``(context, other_context)``."""
    return context_confusion(ds["policy"].isel(t=-1), ds["correct"])


def learner_dynamics(context: RunContext, coupling: str) -> xr.Dataset:
    """Train the preset's bandit Learners closed-loop and read q_c(t) on the fly (§5.1).

    The B Learners (:class:`~trajprobe.adapters.bandit_learner.BanditLearner`, the closed
    form of A.5's linear–softmax REINFORCE learner) each train in their own conflicting
    bandit until their normalised expected reward reaches the recipe's ``stop_at``
    (:func:`~trajprobe.adapters.bandit_learner.train_bandit_learners`); before every step t
    each reads π_{t-1}(a*(c)|c) for all C contexts. R_c (eq. 14) averages eq. 12 over the
    learner's own training steps; q is kept at a log-spaced schedule (a stopped learner
    keeps its last policy).

    Returns:
        Dataset with ``q, expected_reward_context (episode, t, context)`` (episode = the
        Learner), ``expected_reward (episode, t)`` (eq. 13), ``return_score (episode,
        context)``, ``steps_trained (episode)``, ``q_ordered (episode, t, rank)``,
        ``context_order (episode, rank)`` and ``correct (episode, context)``.
    """
    name = _LEARNERS[coupling]
    recipe = recipes.get(name, context.preset)
    cfg, task = recipe.learner, recipe.task
    opt = SGD(cfg.lr) if cfg.optimiser == "sgd" else Adam(cfg.lr)
    learner = BanditLearner(task.n_contexts, task.n_actions, coupled=coupling == "coupled",
                            optimiser=opt, seed=0, dtype=torch.float64, device=context.device)
    ds = train_bandit_learners(learner, task, cfg.n_learners, minibatch=cfg.minibatch,
                               max_steps=cfg.n_steps, stop_at=cfg.stop_at, seed=7,
                               progress=context.progress, desc=f"Learners ({coupling})")
    ds.attrs.update(recipe=name, n_steps=cfg.n_steps)
    ordered, order = order_contexts(ds["q"], score=ds["return_score"])
    ds["q_ordered"] = ordered
    ds["context_order"] = order
    return ds


def _meta(context: RunContext, coupling: str, seed: int, task: ContextualBandit,
          n_steps: int, result: TargetResult) -> tuple[xr.Dataset, xr.Dataset | None]:
    """Train (or reuse) one Meta-Learner; its context dynamics and, if coupled, outer loop."""
    name = _METAS[coupling]
    recipe = recipes.get(name, context.preset)
    run_dir = context.run_dir(name, seed)
    trained = recipe.train(run_dir, seed=seed, device=context.device, progress=context.progress)
    n_c, n_a = task.n_contexts, task.n_actions

    def machine(model):
        model.eval()
        return model if coupling == "coupled" else DecoupledMachine(model, n_c, n_a)

    settings = SETTINGS[context.preset]
    ds = context_dynamics(machine(trained.model), task, settings.n_eval, n_steps,
                          seed=EVAL_SEED, policy=logits_policy, progress=context.progress)
    final = float(trained.metrics["reward"].isel(step=slice(-5, None)).mean())
    chance = task.p_incorrect + (task.p_correct - task.p_incorrect) / n_a
    result.notes.append(
        f"Meta-Learner ({coupling}) seed {seed}: mean reward per step {final:.3f} over the "
        f"last logged outer steps (chance {chance:.2f}) after "
        f"{int(trained.metrics['episodes'].isel(step=-1)):,} episodes of "
        f"{recipe.training.n_steps} steps on a {recipe.task.n_contexts}-context bandit."
        + (" It has not learned to learn yet in this budget: its curves and ratios are "
           "not meaningful (train longer, e.g. preset paper)." if final < chance + 0.02 else ""))
    if coupling == "decoupled" and seed == 0:
        result.notes.append(RATIO_NOTE)
    outer = None
    if coupling == "coupled":
        outer = outer_loop_spectra(
            recipe, list_checkpoints(run_dir),
            lambda m: context_dynamics(machine(m), task, settings.n_outer, n_steps,
                                       seed=EVAL_SEED + 1, policy=logits_policy, progress=False),
            CUTOFF, device=context.device, var="q_ordered", dim="rank")
    return ds, outer


def _by_seed(runs: list[xr.Dataset] | list[xr.DataArray]) -> xr.Dataset | xr.DataArray:
    """Stack per-seed Datasets (or DataArrays) along a ``seed`` dim (coordinate 0..S-1)."""
    return xr.concat(runs, dim="seed", data_vars="all", coords="minimal",
                     compat="override").assign_coords(seed=np.arange(len(runs)))


def _slim(ds: xr.Dataset) -> xr.Dataset:
    """Drop the per-action policy (the largest array) to keep results.nc small."""
    return ds.drop_vars(["policy"], errors="ignore")


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """The (recipe, seed) Meta-Learner runs :func:`run` trains."""
    return [(name, seed) for name in _METAS.values() for seed in range(context.seeds)]


def run(context: RunContext) -> TargetResult:
    """Learners, Meta-Learners and Bayes, coupled and decoupled, measured identically."""
    meta_recipe = recipes.get(_METAS["coupled"], context.preset)
    task: ContextualBandit = meta_recipe.task
    n_steps = meta_recipe.training.n_steps
    result = TargetResult(title="Contextual bandits: interference between contexts "
                                "(Rabinowitz 2019 §5)")
    data: dict[str, xr.Dataset] = {}
    for coupling in ("coupled", "decoupled"):
        data[f"learner_{coupling}"] = learner_dynamics(context, coupling)
    result.notes.append(LEARNER_NOTE)

    outer = []
    confusion: dict[str, list[xr.DataArray]] = {}
    for coupling in ("coupled", "decoupled"):
        runs = []
        for seed in range(context.seeds):
            ds, out = _meta(context, coupling, seed, task, n_steps, result)
            confusion.setdefault(f"Meta-Learner ({coupling})", []).append(
                confusion_at_end(ds))
            runs.append(_slim(ds))
            if out is not None:
                outer.append(out)
        data[f"meta_learner_{coupling}"] = _by_seed(runs)
    n_eval = SETTINGS[context.preset].n_eval
    bayes = ContextualBanditPosterior(task.n_contexts, task.n_actions, task.p_correct,
                                      task.p_incorrect, policy="thompson", device=context.device)
    bayes_ds = context_dynamics(bayes, task, n_eval, n_steps, seed=EVAL_SEED,
                                progress=context.progress)
    confusion["Bayes (coupled)"] = [confusion_at_end(bayes_ds)]
    data["bayes_coupled"] = _slim(bayes_ds)
    single = ContextualBanditPosterior(1, task.n_actions, task.p_correct, task.p_incorrect,
                                       policy="thompson", device=context.device)
    data["bayes_decoupled"] = _slim(context_dynamics(
        DecoupledMachine(single, task.n_contexts, task.n_actions), task, n_eval, n_steps,
        seed=EVAL_SEED, progress=context.progress))
    data["outer_loop"] = _by_seed(outer)

    result.rows.extend(_summary_rows(data, confusion, context.seeds, n_steps))
    data["confusion"] = xr.Dataset({_CONFUSION_KEYS[agent]: _by_seed(matrices)
                                    for agent, matrices in confusion.items()})
    result.datasets = data
    result.figures = _figures(data)
    result.notes.append(_preset_note(context.preset, data, n_eval, n_steps, task))
    return result


def _summary_rows(data: dict[str, xr.Dataset], confusion: dict[str, list[xr.DataArray]],
                  seeds: int, n_steps: int) -> list[SummaryRow]:
    """The report's rows: time ratios (5th vs 1st learned context), mean expected reward
    per step (eq. 13) and the most confused pair of contexts, per agent."""
    rows: list[SummaryRow] = []
    ratios = {
        "Learner (coupled)": (headline_ratio(data["learner_coupled"]["q_ordered"]), None),
        "Learner (decoupled)": (headline_ratio(data["learner_decoupled"]["q_ordered"]), None),
    }
    for coupling in ("coupled", "decoupled"):
        ds = data[f"meta_learner_{coupling}"]
        ratios[f"Meta-Learner ({coupling})"] = mean_sem(
            [headline_ratio(ds["q_ordered"].isel(seed=s)) for s in range(ds.sizes["seed"])])
    ratios["Bayes (coupled)"] = (headline_ratio(data["bayes_coupled"]["q_ordered"]), None)
    ratios["Bayes (decoupled)"] = (headline_ratio(data["bayes_decoupled"]["q_ordered"]), None)
    for agent, (ours, sem) in ratios.items():
        note = ("training steps" if agent.startswith("Learner") else "episode steps"
                ) + f", {INTERPOLATED}"
        if agent.startswith("Meta") and seeds > 1:
            note += f", mean ± s.e. over {seeds} seeds"
        if agent.startswith("Bayes"):
            note += ", Thompson policy"
        rows.append(SummaryRow(f"time to q > {CUTOFF}: 5th vs 1st learned context",
                               agent, ours, PAPER.get(agent), note, sem=sem))
    for key, label in (("meta_learner_coupled", "Meta-Learner (coupled)"),
                       ("meta_learner_decoupled", "Meta-Learner (decoupled)"),
                       ("bayes_coupled", "Bayes (coupled)")):
        rows.append(SummaryRow("mean expected reward per step (eq. 13)", label,
                               float(data[key]["expected_reward"].mean()), None,
                               f"{n_steps}-step episodes"))
    for agent, matrices in confusion.items():
        share, sem = mean_sem([most_confused_pair(m)[2] for m in matrices])
        rows.append(SummaryRow(
            "the most confused pair of contexts: ½(M[c, c'] + M[c', c]) at t = T", agent,
            share, None, "how often one context's policy plays the other's correct action",
            sem=sem))
    return rows


def _preset_note(preset: str, data: dict[str, xr.Dataset], n_eval: int, n_steps: int,
                 task: ContextualBandit) -> str:
    """What was run at this preset, in one paragraph of the report."""
    learner = data["learner_coupled"].attrs
    trained = {c: np.median(data[f"learner_{c}"]["steps_trained"]) for c in _LEARNERS}
    return (
        f"Preset {preset}: {data['learner_coupled'].sizes['episode']} Learners per "
        f"condition ({learner['optimiser']}, lr {learner['lr']}, minibatch "
        f"{learner['minibatch']}, REINFORCE without baseline) on a conflicting 5×5 bandit, "
        f"each until its normalised expected reward reached {learner['stop_at']} (cap "
        f"{learner['n_steps']:,} steps; median {trained['coupled']:,.0f} steps coupled, "
        f"{trained['decoupled']:,.0f} decoupled); "
        f"Meta-Learners and Bayes probed on {n_eval} episodes × {n_steps} steps × "
        f"{task.n_contexts} contexts, contexts ranked per run by R_c (eq. 14); time ratios "
        f"from the run-mean curve of each rank. Bayes uses the Thompson policy "
        f"(q = posterior probability of the correct action).")


def _steps_by_rank(ds: xr.Dataset) -> xr.DataArray:
    q = ds["q_ordered"]
    if "seed" in q.dims:
        q = q.mean("seed")
    return steps_to_threshold(q.mean("episode"), list(THRESHOLDS), interpolate=True)


def _plot_steps(ds: xr.Dataset, ax: plt.Axes, time_label: str) -> None:
    steps = _steps_by_rank(ds)
    colours = plt.get_cmap("crest")(np.linspace(0.1, 0.9, len(THRESHOLDS)))
    for colour, c in zip(colours, THRESHOLDS, strict=True):
        y = steps.sel(threshold=c).values
        ax.plot(steps["rank"].values, np.where(np.isfinite(y), y, np.nan), marker="o",
                color=colour, label=f"c = {c}")
    if not np.isfinite(steps.values).any():
        ax.text(0.5, 0.5, "no learned context reached\nany cut-off in this episode",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xticks(steps["rank"].values)
    ax.set_xlabel("k-th learned context")
    ax.set_ylabel(f"{time_label} until q_k > c")
    ax.legend(fontsize="small", title="cut-off")


def _row(axes, ds: xr.Dataset, title: str, time_label: str) -> None:
    if "seed" in ds.dims:
        ds = ds.isel(seed=0)
    plot_ordered_contexts(ds, ax=axes[0])
    axes[0].set_title(f"{title}: q_k(t)")
    axes[0].set_xlabel(f"{time_label}, log scale")
    axes[0].set_ylim(0, 1.05)  # the legend (plot_ordered_contexts) says what the band is
    _plot_steps(ds, axes[1], time_label)
    axes[1].set_title(f"{title}: steps to threshold")


def _figures(data: dict[str, xr.Dataset]) -> dict[str, plt.Figure]:
    figures = {}
    panels = {
        "fig12_learner": (("learner_coupled", "Learner, coupled"),
                          ("learner_decoupled", "Learner, decoupled"), "training step t"),
        "fig13_meta_learner": (("meta_learner_coupled", "Meta-Learner, coupled"),
                               ("meta_learner_decoupled", "Meta-Learner, decoupled"),
                               "episode step t"),
        "bayes": (("bayes_coupled", "Bayes, coupled"), ("bayes_decoupled", "Bayes, decoupled"),
                  "episode step t"),
    }
    for stem, (top, bottom, time_label) in panels.items():
        fig, axes = plots.subplots(2, 2, figsize=(11, 7.5))
        for row, (key, title) in zip(axes, (top, bottom), strict=True):
            _row(row, data[key], title, time_label)
        fig.tight_layout()
        figures[stem] = fig
    outer = data["outer_loop"]
    fig = plot_outer_loop(outer, CUTOFF, label="rank", dim="rank")
    if not np.isfinite(outer["steps_to_threshold"].values).any():
        fig.axes[0].text(0.5, 0.5, f"no rank reached q > {CUTOFF}\nat any checkpoint",
                         ha="center", va="center", transform=fig.axes[0].transAxes)
    fig.suptitle("Fig. 16: the coupled Meta-Learner's inner learning at successive checkpoints "
                 "(rank k = k-th learned context)")
    fig.tight_layout()
    figures["fig16_outer_loop"] = fig
    figures["confusion"] = _plot_confusion(data["confusion"])
    return figures


def _plot_confusion(confusion: xr.Dataset) -> plt.Figure:
    """Heat maps of M[c, c'] at t = T (mean over seeds), one per agent."""
    titles = {key: agent for agent, key in _CONFUSION_KEYS.items()}
    fig, axes = plots.subplots(1, len(confusion.data_vars), figsize=(4.2 * len(confusion), 4))
    for ax, (key, m) in zip(np.atleast_1d(axes), confusion.data_vars.items(), strict=True):
        values = m.mean("seed").values
        image = ax.imshow(values, vmin=0, vmax=0.6, cmap="rocket_r")
        for (c, other), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(other, c, f"{v:.2f}", ha="center", va="center", fontsize="small",
                        color="white" if v > 0.35 else "black")
        ax.set_title(titles[key])
        ax.set_xlabel("c': whose correct action is played")
        ax.set_ylabel("c: context shown")
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
    fig.colorbar(image, ax=axes, shrink=0.8, label="M[c, c']")
    fig.suptitle("Confusion between contexts at t = T: two contexts near ½ both ways share "
                 "one memory")
    return fig
