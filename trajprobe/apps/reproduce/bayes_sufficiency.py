"""The sufficiency test (issue 36) in the bayes-optimal report: do the agents treat coin-flip
histories with equal Beta posteriors (the same flips in another order) as the same?

On the Beta(1, 1)-Bernoulli task (:data:`TASK`) every agent of the report is measured with
:func:`trajprobe.compare.sufficiency` on the same K evaluation histories: the Bayes-optimal
agent (its state, the counts, is sufficient: exactly 0), the Meta-Learner trained and
untrained (checkpoint 0: an untrained network), and an SGD Learner (:class:`SGDLogit`,
one logit trained online by SGD with a constant step, i.e. a Learner whose state is its
parameter). The row is the pooled sufficiency ratio (0: order ignored as Bayes ignores it;
1: order moves the predictions as much as different evidence does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import plots
from trajprobe.apps import recipes
from trajprobe.apps.recipes.config import default_out_dir
from trajprobe.apps.reproduce.base import RunContext, SummaryRow, TargetResult
from trajprobe.compare import sufficiency
from trajprobe.io import save_dataset
from trajprobe.reference_models import catalogue

__all__ = ["AGENTS", "EVAL_EPISODES", "EVAL_SEED", "SGD_LR", "TASK", "SGDLogit",
           "add_to_report", "main", "measure_seeds", "measure_sufficiency",
           "plot_sufficiency", "sufficiency_rows"]

TASK = "bernoulli_beta_1_1"
"""The catalogue task of the test: exchangeable coin flips."""
AGENTS = ("Bayes", "Meta-Learner trained", "Meta-Learner untrained", "SGD Learner")
"""The agents measured, in the row order."""
SGD_LR = 0.3
"""The SGD Learner's constant step size on the log-loss."""
HORIZON = 5
"""k, the steps a patched state is continued."""
EVAL_EPISODES = {"smoke": 30, "quick": 300, "paper": 500}
"""K per preset and the evaluation seed of :func:`main`: the bayes-optimal target's
(``SETTINGS[preset].n_episodes``, ``_EVAL_SEED``; tests/test_sufficiency.py keeps them
equal), so the command prints the report's rows."""
EVAL_SEED = 12345
_SUMMARY = ("observational_mean", "observational_sem", "interventional_mean",
            "interventional_sem", "ratio", "interventional_ratio", "ratio_overall",
            "interventional_ratio_overall")


class SGDLogit:
    """An SGD Learner on coin flips: one logit θ trained by SGD on each flip's log-loss.

    Input ``[x_{t-1}, flag]`` (the task's encoding); the update θ ← θ + lr · flag ·
    (x_{t-1} − σ(θ)) is one SGD step on −log p(x_{t-1} | θ); the output is θ (a logit,
    ``distribution`` Bernoulli). State θ ``[B, 1]`` (float64), θ_0 = 0 (p = ½).
    """

    def __init__(self, lr: float = SGD_LR):
        self.lr = float(lr)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """θ_0 = 0, ``[B, 1]``."""
        return torch.zeros(batch_size, 1, dtype=torch.float64)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on the previous flip, then the logit: (θ_t ``[B, 1]``, θ_t)."""
        x = x.to(torch.float64)
        new = state + self.lr * x[:, 1:2] * (x[:, :1] - torch.sigmoid(state))
        return new, new

    def distribution(self, y: torch.Tensor) -> torch.distributions.Bernoulli:
        """Bernoulli(logits = y[..., 0])."""
        return torch.distributions.Bernoulli(logits=y[..., 0])


def measure_sufficiency(models: dict[str, torch.nn.Module], n_episodes: int,
                        seed: int) -> xr.Dataset:
    """Every agent on the same K histories: the summary variables, dim ``agent`` first.

    Args:
        models: ``{"untrained": net, "trained": net}`` (one training seed's Meta-Learners).
        n_episodes: K.
        seed: the histories, probes and partners (the same for every agent).
    """
    entry = catalogue.get(TASK)
    machines = {"Bayes": entry.bayes(entry.task), "Meta-Learner trained": models["trained"],
                "Meta-Learner untrained": models["untrained"], "SGD Learner": SGDLogit()}
    results = [sufficiency(machines[name], entry.task, episodes=n_episodes,
                           steps=entry.n_steps, horizon=HORIZON, seed=seed)[list(_SUMMARY)]
               for name in AGENTS]
    ds = xr.concat(results, dim="agent", combine_attrs="drop_conflicts")
    return ds.assign_coords(agent=list(AGENTS)).assign_attrs(task=TASK, sgd_lr=SGD_LR)


def sufficiency_rows(ds: xr.Dataset) -> list[SummaryRow]:
    """One row per agent: the pooled ratio, median over seeds, with the interventional one."""
    rows = []
    for agent in ds["agent"].values:
        sel = ds.sel(agent=agent)
        ratio = float(sel["ratio_overall"].median("seed"))
        inter = float(sel["interventional_ratio_overall"].median("seed"))
        eq = sel["observational_mean"].sel(pairs="equal").mean("t", skipna=True)
        diff = sel["observational_mean"].sel(pairs="different").mean("t", skipna=True)
        note = (f"interventional (k = {HORIZON}) {inter:.3g}; mean KL equal "
                f"{float(eq.median()):.3g} vs different {float(diff.median()):.3g} bits/step")
        if agent == "Bayes":
            note = "exactly 0 expected (sufficient statistics); " + note
        rows.append(SummaryRow(f"{TASK}: sufficiency ratio (equal / different posteriors, "
                               "KL bits)", str(agent), ratio, None, note))
    return rows


def plot_sufficiency(ds: xr.Dataset) -> plt.Figure:
    """Divergence per step for both kinds of pairs (seed 0) and the ratio per step."""
    fig, axes = plots.subplots(1, 2, figsize=(11, 5))
    colours = dict(zip(AGENTS, ("crimson", "tab:blue", "0.55", "tab:green"), strict=True))
    first = ds.isel(seed=0)
    for agent in first["agent"].values:
        for kind, style in (("equal", "-"), ("different", "--")):
            mean = first["observational_mean"].sel(agent=agent, pairs=kind)
            sem = first["observational_sem"].sel(agent=agent, pairs=kind)
            ok = np.isfinite(mean) & (mean > 0)
            if not bool(ok.any()):
                continue
            t = mean["t"][ok]
            axes[0].plot(t, mean[ok], style, color=colours[str(agent)],
                         label=f"{agent}, {kind}")
            axes[0].fill_between(t, (mean - sem)[ok].clip(min=1e-12), (mean + sem)[ok],
                                 color=colours[str(agent)], alpha=0.15, lw=0)
        ratio = ds["ratio"].sel(agent=agent).median("seed")
        ok = np.isfinite(ratio) & (ratio > 0)
        if bool(ok.any()):
            axes[1].plot(ratio["t"][ok], ratio[ok], "o-", ms=3, color=colours[str(agent)],
                         label=str(agent))
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step t (states after t − 1 inputs)")
    axes[0].set_ylabel("KL(π_1 ‖ π_2), bits")
    axes[0].set_title("prediction divergence, mean ± s.e. over pairs (seed 0)\n"
                      "solid: the same flips reordered; dashed: another episode\n"
                      "(Bayes, reordered: exactly 0, not drawn)", fontsize=9)
    axes[0].legend(fontsize=7, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    axes[1].set_yscale("log")
    axes[1].axhline(1, color="0.3", lw=0.8, ls=":")
    axes[1].set_xlabel("step t")
    axes[1].set_ylabel("sufficiency ratio")
    axes[1].set_title("sufficiency ratio: reordered / another episode (median over seeds)\n"
                      "0: order ignored as by Bayes (Bayes: exactly 0, not drawn)\n"
                      "1: order moves predictions as much as other evidence", fontsize=9)
    axes[1].legend(fontsize=7, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    fig.suptitle(f"Is the agent's state a sufficient statistic? {TASK}", fontsize=11)
    fig.tight_layout()
    return fig


def measure_seeds(context: RunContext, n_episodes: int, seed: int) -> xr.Dataset:
    """Every agent for training seeds 0..seeds-1, dim ``seed``: the trained Meta-Learner is
    the bayes-optimal target's run of :data:`TASK` (trained, or reused when finished)."""
    recipe = recipes.get(f"bayes-optimal/{TASK}", context.preset)
    per_seed = []
    for s in range(context.seeds):
        trained = recipe.train(context.run_dir(f"bayes-optimal/{TASK}", s), seed=s,
                               device=context.device, progress=context.progress).model.cpu()
        per_seed.append(measure_sufficiency({"trained": trained,
                                             "untrained": recipe.build_model(s)},
                                            n_episodes, seed))
    return xr.concat(per_seed, dim="seed").assign_coords(seed=list(range(context.seeds)))


def add_to_report(result: TargetResult, context: RunContext, n_episodes: int,
                  seed: int) -> xr.Dataset:
    """The bayes-optimal report's part: the ``sufficiency`` dataset, its rows and figure."""
    ds = measure_seeds(context, n_episodes, seed)
    result.datasets["sufficiency"] = ds
    result.rows += sufficiency_rows(ds)
    result.figures["sufficiency"] = plot_sufficiency(ds)
    return ds


def main(argv: list[str] | None = None) -> xr.Dataset:
    """The rows alone, without the rest of the report: ``python -m
    trajprobe.apps.reproduce.bayes_sufficiency --preset quick --seeds 2``.

    Trains (or reuses, in the bayes-optimal target's run directories) the Meta-Learners of
    :data:`TASK`, measures every agent on the target's evaluation histories, prints the rows
    as a markdown table and writes ``sufficiency.png`` and ``sufficiency.nc`` into the out
    directory (default: the target's, ``./trajprobe-runs/bayes-optimal-<preset>``).
    """
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or default_out_dir("bayes-optimal", args.preset)
    context = RunContext(preset=args.preset, seeds=args.seeds, device=torch.device("cpu"),
                         out_dir=out, progress=False)
    ds = measure_seeds(context, EVAL_EPISODES[args.preset], EVAL_SEED)
    print("| quantity | agent | ours (median over seeds) | note |\n|---|---|---|---|")
    for row in sufficiency_rows(ds):
        quantity, agent, ours, _, note = row.formatted()
        print(f"| {quantity} | {agent} | {ours} | {note} |")
    out.mkdir(parents=True, exist_ok=True)
    plot_sufficiency(ds).savefig(out / "sufficiency.png", dpi=120)
    save_dataset(ds, out / "sufficiency.nc")
    return ds


if __name__ == "__main__":
    main()
