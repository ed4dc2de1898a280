"""Rabinowitz 2019 §4: Fourier learning dynamics of Learner, Meta-Learner and Bayes (Figs. 8-11).

Every agent is probed on the paper's 40-point grid (footnote 1) and the Fourier
projections q_k(t) = Re⟨ĝ_{k,t}, g_k⟩ / |g_k|² (eq. 10) of its function are tracked
for the frequencies k = 1..5 of g(x) = Σ_k sin(2πkx + φ_k) (eq. 9):

* the Learner — a 6-layer ReLU MLP trained by Adam on one g — over training steps t
  (Fig. 8);
* the Meta-Learner — an LSTM outer-trained across g — over the steps t of an episode
  (Fig. 9), on the same evaluation episodes as
* the Bayes reference — a posterior over a grid of phases (§4.2.5, Fig. 11).

Headline (§4.2.3): how many times as long frequency k = 5 takes to reach q > c as
k = 1 (paper: Learner ≈ 6.4×, Meta-Learner ≈ 1.5×, and ≈ 1.2× once every curve is
normalised by its own asymptote, footnote 4 and Fig. A5). Also: a Meta-Learner trained
on band-pass functions (a_3 = a_4 = a_5 = 1) fits none of the stop band of low-pass
functions (§4.2.4, Fig. A7), and the outer-loop view (§6, Fig. 15).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import io, plots
from trajprobe.adapters.torch_learner import SGD, Adam, mlp_learner
from trajprobe.apps import recipes
from trajprobe.apps.reproduce.base import (
    INTERPOLATED,
    Presets,
    RunContext,
    SummaryRow,
    TargetResult,
)
from trajprobe.apps.reproduce.learners import eval_schedule, probe_learner
from trajprobe.apps.reproduce.outer_loop import outer_loop_spectra, plot_outer_loop
from trajprobe.apps.training import list_checkpoints
from trajprobe.dynamics import normalise_to_asymptote, steps_to_threshold, time_ratio
from trajprobe.estimators.fourier import fourier_coefficients, fourier_projection
from trajprobe.measurement import fourier_spectra
from trajprobe.plots import plot_learning_curves, plot_progress, plot_steps_to_threshold
from trajprobe.reference_models import FourierGridPosterior
from trajprobe.tasks import Episodes, FourierRegression, make_generator

__all__ = [
    "CUTOFF",
    "MIN_ASYMPTOTE",
    "SETTINGS",
    "THRESHOLDS",
    "NonlinearSettings",
    "assumed_noise",
    "bayes_spectra",
    "learner_spectra",
    "run",
    "time_ratio_k5_k1",
]

CUTOFF = 0.5
"""c of the headline "steps until q_k > c" (the paper's Fig. 8c shows several)."""
MIN_ASYMPTOTE = 0.2
"""Below this final q a mode is "not learned" for the normalised ratio (Fig. A5)."""
THRESHOLDS = (0.3, 0.5, 0.7)
"""Cut-offs of the steps-to-threshold figure (Fig. 8c)."""
N_STEPS = 40
"""Episode length T of the Meta-Learner and Bayes (§4.2.1)."""


@dataclass(frozen=True)
class NonlinearSettings:
    """What a preset of this target evaluates (the training budgets live in the recipes).

    Attributes:
        n_eval: evaluation episodes of the Meta-Learners (the paper: 2000, §4.2.2).
        n_outer_eval: evaluation episodes per checkpoint of the outer-loop view.
        bayes_bins: phase bins B per frequency of the Bayes grid (B^5 functions; the
            paper: 16).
        n_bayes_eval: evaluation episodes of the Bayes reference (the first of the
            Meta-Learner's).
    """

    n_eval: int
    n_outer_eval: int
    bayes_bins: int
    n_bayes_eval: int


SETTINGS: Presets[NonlinearSettings] = Presets(
    smoke=NonlinearSettings(n_eval=8, n_outer_eval=4, bayes_bins=3, n_bayes_eval=4),
    quick=NonlinearSettings(n_eval=400, n_outer_eval=100, bayes_bins=10, n_bayes_eval=200),
    paper=NonlinearSettings(n_eval=2000, n_outer_eval=500, bayes_bins=16, n_bayes_eval=2000),
)
"""This target's settings per preset."""
STOP_BAND = (1, 2)
PASS_BAND = (3, 4, 5)

_META = "nonlinear-regression/meta-learner"
_BANDPASS = "nonlinear-regression/meta-learner-bandpass"
_LEARNER = "nonlinear-regression/learner"


def assumed_noise(n_bins: int, n_modes: int = 5, noise_std: float = 0.01) -> float:
    """Observation noise a B-bin phase grid should assume for off-grid true phases.

    A true phase lies within π/B of a bin centre (uniformly), so the nearest grid
    function misses each unit-amplitude mode by a phase error δ ~ U[-π/B, π/B], i.e. by
    a residual of variance E[δ²]/2 = (π/B)²/6 per mode. The grid's likelihood assumes
    σ² = σ_ε² + K (π/B)²/6, so the posterior does not collapse onto a wrong bin.
    """
    return math.sqrt(noise_std**2 + n_modes * (math.pi / n_bins) ** 2 / 6)


def time_ratio_k5_k1(q: xr.DataArray, c: float = CUTOFF, *, normalise: bool = False,
                     interpolate: bool = True) -> float:
    """Steps to q > c of the highest frequency over those of k = 1, on the episode mean.

    Args:
        q: ``(episode, t, mode)`` Fourier projections (eq. 10).
        c: the cut-off.
        normalise: divide each mean curve by its final value first (Fig. A5). A mode whose
            final value is below :data:`MIN_ASYMPTOTE` counts as never learned (its
            normalised curve would be noise over ~0).
        interpolate: crossing times interpolated between steps (the default; False: the
            first step above, :func:`~trajprobe.dynamics.steps_to_threshold`).

    Returns:
        The ratio; inf if the highest frequency never crosses, NaN if k = 1 never does.
    """
    mean = q.mean("episode")
    if normalise:
        final = mean.isel(t=-1).values
        if final[0] < MIN_ASYMPTOTE:
            return math.nan
        if final[-1] < MIN_ASYMPTOTE:
            return math.inf
        mean = normalise_to_asymptote(mean, "t")
    steps = steps_to_threshold(mean, c, interpolate=interpolate)
    return float(time_ratio(steps, "mode").isel(mode=-1))


def _projections(values: torch.Tensor, target: torch.Tensor, n_modes: int) -> torch.Tensor:
    """q ``[..., K]`` from values on the grid ``[..., N]`` and target g_k ``[..., K]``."""
    coef = fourier_coefficients(values.double(), n_modes)
    return fourier_projection(coef, target.to(coef.dtype))


def learner_spectra(context: RunContext) -> xr.Dataset:
    """Train the preset's Learners (one g each) and probe them on the grid on the fly (eq. 10).

    Learner e is trained on minibatches (x ~ U[-0.5, 0.5], y = g_e(x) + ε) and its
    function f_{θ_{t-1}} is read on the 40-point grid at the steps of
    :func:`~trajprobe.apps.reproduce.learners.eval_schedule`. The result is kept in
    ``context.runs_dir`` and reused when the recipe is unchanged (a finished run).

    Returns:
        Dataset with ``q (episode, t, mode)``, ``amplitude_hat (episode, t, mode)``,
        ``function (episode, t, x)``, ``target_function (episode, x)``, ``phases
        (episode, mode)`` and ``probe_loss (episode, t)`` (grid mean of (f - g)²);
        ``t`` = training step, ``mode`` = frequency k.
    """
    recipe = recipes.get(_LEARNER, context.preset)
    cfg, task = recipe.learner, recipe.task
    cache = context.runs_dir / _LEARNER.replace("/", "-") / "spectra.nc"
    settings = {"n_steps": cfg.n_steps, "lr": cfg.lr, "optimiser": cfg.optimiser,
                "hidden": cfg.hidden, "minibatch": cfg.minibatch, "n_learners": cfg.n_learners}
    if cache.exists():
        saved = io.load_dataset(cache)
        if all(saved.attrs.get(k) == v for k, v in settings.items()):
            return saved
    ds = _train_learners(context, cfg, task)
    ds.attrs.update(settings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    io.save_dataset(ds, cache)
    return ds


def _train_learners(context: RunContext, cfg, task: FourierRegression) -> xr.Dataset:
    opt = SGD(cfg.lr) if cfg.optimiser == "sgd" else Adam(cfg.lr)
    learner = mlp_learner(hidden=cfg.hidden, optimiser=opt, seed=0, device=context.device)
    n, dev = cfg.n_learners, context.device
    gen = make_generator(1, dev)
    params = task.sample_params(n, seed=gen, device=dev)

    def minibatch(t: int) -> torch.Tensor:
        x = torch.rand(n, cfg.minibatch, generator=gen, device=dev) - 0.5
        noise = torch.randn(x.shape, generator=gen, device=dev)
        y = task.function(params, x) + task.noise_std * noise
        return torch.stack([x, y], dim=-1)

    grid = task.grid(device=dev)
    probe_batch = torch.stack([grid, torch.zeros_like(grid)], dim=-1).expand(n, -1, -1)
    steps = eval_schedule(cfg.n_steps)
    values = probe_learner(learner, learner.initial_state(n), minibatch, probe_batch.contiguous(),
                           steps, progress=context.progress, desc="Learners (Adam)")[..., 0]
    params64 = {k: v.double() for k, v in params.items()}
    target = task.target_coefficients(params64)[:, None]
    q = _projections(values, target, task.n_modes)
    coef = fourier_coefficients(values.double(), task.n_modes)
    target_values = task.function(params64, grid.double().expand(n, -1))
    probe_loss = (values.double() - target_values[:, None]).square().mean(-1)
    return xr.Dataset(
        {"q": (("episode", "t", "mode"), q.cpu().numpy()),
         "amplitude_hat": (("episode", "t", "mode"),
                           (2 * coef.abs() / task.n_points).cpu().numpy()),
         "function": (("episode", "t", "x"), values.double().cpu().numpy()),
         "target_function": (("episode", "x"), target_values.cpu().numpy()),
         "phases": (("episode", "mode"), params64["phases"].cpu().numpy()),
         "probe_loss": (("episode", "t"), probe_loss.cpu().numpy())},
        coords={"episode": np.arange(n), "t": steps, "mode": np.arange(1, task.n_modes + 1),
                "x": grid.double().cpu().numpy()},
        attrs={"agent": "learner", "recipe": _LEARNER, "n_layers": 6},
    )


def _with_probe_loss(ds: xr.Dataset) -> xr.Dataset:
    """Add ``probe_loss (episode, t)``: grid mean of (ĝ_t - g)², progress for Fig. 10."""
    loss = ((ds["function"].astype(float) - ds["target_function"]) ** 2).mean("x")
    return ds.assign(probe_loss=loss)


def bayes_spectra(task: FourierRegression, episodes: Episodes, n_bins: int, *,
                  device: torch.device | str | None = None,
                  progress: bool | None = None) -> xr.Dataset:
    """Fourier projections of the B^K phase-grid posterior mean ḡ_t (§4.2.5, Fig. 11).

    The grid assumes the noise of :func:`assumed_noise` (its bins miss off-grid true
    phases); episodes are converted to float64.
    """
    noise = assumed_noise(n_bins, task.n_modes, task.noise_std)
    machine = FourierGridPosterior.from_task(task, n_bins=n_bins, noise_std=noise,
                                             device=device)
    eps64 = Episodes(episodes.inputs.double(), episodes.targets.double(),
                     {k: v.double() for k, v in episodes.params.items()})
    ds = fourier_spectra(machine, task, episodes=eps64, progress=progress)
    ds.attrs.update({"agent": "bayes", "n_bins": n_bins, "grid_size": machine.grid_size,
                     "assumed_noise_std": noise})
    return _with_probe_loss(ds)


def _subset(episodes: Episodes, n: int) -> Episodes:
    return Episodes(episodes.inputs[:n], episodes.targets[:n],
                    {k: v[:n] for k, v in episodes.params.items()})


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """The (recipe, seed) Meta-Learner runs :func:`run` trains."""
    return [(name, seed) for name in (_META, _BANDPASS) for seed in range(context.seeds)]


def run(context: RunContext) -> TargetResult:
    """Train, probe and compare the Learner, the Meta-Learners and Bayes (Rabinowitz §4)."""
    meta_recipe = recipes.get(_META, context.preset)
    band_recipe = recipes.get(_BANDPASS, context.preset)
    task: FourierRegression = meta_recipe.task
    settings = SETTINGS[context.preset]
    n_eval = settings.n_eval
    episodes = task.sample(n_eval, N_STEPS, seed=12345, device=context.device)
    result = TargetResult(title="Nonlinear regression: Fourier modes of Learner, Meta-Learner "
                                "and Bayes (Rabinowitz 2019 §4)")

    learner = learner_spectra(context)
    metas, bands, outer = [], [], []
    for seed in range(context.seeds):
        run_dir = context.run_dir(_META, seed)
        trained = meta_recipe.train(run_dir, seed=seed, device=context.device,
                                    progress=context.progress)
        metas.append(_with_probe_loss(fourier_spectra(
            trained.model, task, episodes=episodes, progress=context.progress)))
        outer_eps = _subset(episodes, settings.n_outer_eval)
        outer.append(outer_loop_spectra(
            meta_recipe, list_checkpoints(run_dir),
            lambda m, e=outer_eps: fourier_spectra(m, task, episodes=e, progress=False),
            CUTOFF, device=context.device))
        band_dir = context.run_dir(_BANDPASS, seed)
        band = band_recipe.train(band_dir, seed=seed, device=context.device,
                                 progress=context.progress)
        # out of distribution: the band-pass Meta-Learner sees low-pass functions
        bands.append(_with_probe_loss(fourier_spectra(
            band.model, task, episodes=episodes, progress=context.progress)))
        for name, res in (("Meta-Learner", trained), ("band-pass Meta-Learner", band)):
            result.notes.append(
                f"{name} seed {seed}: final training loss "
                f"{float(res.metrics['loss'].isel(step=-1)):.4g} after "
                f"{int(res.metrics['episodes'].isel(step=-1)):,} episodes.")
    seeds = {"seed": np.arange(context.seeds)}
    meta = xr.concat(metas, dim="seed").assign_coords(seeds)
    bandpass = xr.concat(bands, dim="seed").assign_coords(seeds)
    outer_ds = xr.concat(outer, dim="seed").assign_coords(seeds)
    n_bins = settings.bayes_bins
    bayes = bayes_spectra(task, _subset(episodes, settings.n_bayes_eval), n_bins,
                          device=context.device, progress=context.progress)

    meta.attrs.update({"agent": "meta-learner", "recipe": _META})
    bandpass.attrs.update({"agent": "meta-learner-bandpass", "recipe": _BANDPASS,
                           "probed_on": "low-pass functions (a_k = 1, k = 1..5)"})
    result.datasets = {"learner": learner, "meta_learner": meta, "bayes": bayes,
                       "bandpass_meta_learner": bandpass, "outer_loop": outer_ds}
    result.rows = _rows(learner, metas, bayes, bands, outer_ds, context.seeds)
    result.figures = _figures(learner, meta.isel(seed=0), bayes, bandpass.isel(seed=0),
                              outer_ds)
    result.notes.append(
        f"Preset {context.preset}: {learner.sizes['episode']} Learners (6-layer ReLU MLP, "
        f"{learner.attrs['hidden']} units) for {learner.attrs['n_steps']:,} Adam steps "
        f"(lr {learner.attrs['lr']}, minibatch {learner.attrs['minibatch']}); {context.seeds} "
        f"Meta-Learner(s) and band-pass Meta-Learner(s) probed on {n_eval} episodes × "
        f"{N_STEPS} steps × 40 grid points; outer loop on {settings.n_outer_eval} "
        f"episodes per checkpoint.")
    result.notes.append(
        f"Bayes: posterior over a {n_bins}^5 = {n_bins ** 5:,} phase grid (paper: 16^5), "
        f"assumed noise σ = {bayes.attrs['assumed_noise_std']:.3g} (task noise 0.01 plus "
        f"the grid's phase misfit, see assumed_noise), on the first "
        f"{bayes.sizes['episode']} evaluation episodes.")
    result.notes.append(
        f"Headline cut-off c = {CUTOFF}: a ratio is 'never' when k = 5 never reaches q > c "
        "within the run (the Meta-Learner's T = 40 steps or the Learner's training), and "
        "'n/a' when k = 1 never does. The normalised variant thresholds q_k(t) / q_k(T); a mode "
        f"with q_k(T) < {MIN_ASYMPTOTE} counts as never learned there.")
    return result


def _mean_q(ds: xr.Dataset, modes: tuple[int, ...]) -> float:
    """Episode-mean q at the last t, averaged over ``modes`` (and seeds)."""
    return float(ds["q"].isel(t=-1).sel(mode=list(modes)).mean())


def _rows(learner: xr.Dataset, metas: list[xr.Dataset], bayes: xr.Dataset,
          bands: list[xr.Dataset], outer: xr.Dataset, n_seeds: int) -> list[SummaryRow]:
    rows = []
    seeds_note = f"{INTERPOLATED}; mean over seeds" if n_seeds > 1 else INTERPOLATED
    for normalise, label, paper in ((False, "", (6.4, 1.5)),
                                    (True, " (normalised to asymptote, Fig. A5)", (None, 1.2))):
        quantity = f"time to q > {CUTOFF}: k = 5 vs k = 1{label}"
        ratios = {
            "Learner": (time_ratio_k5_k1(learner["q"], normalise=normalise), paper[0]),
            "Meta-Learner": (float(np.mean([time_ratio_k5_k1(m["q"], normalise=normalise)
                                            for m in metas])), paper[1]),
            "Bayes": (time_ratio_k5_k1(bayes["q"], normalise=normalise), None),
        }
        for agent, (ours, ref) in ratios.items():
            rows.append(SummaryRow(quantity, agent, ours, ref,
                                   seeds_note if agent == "Meta-Learner" else INTERPOLATED))
    for agent, ds in (("Learner", learner), ("Meta-Learner", xr.concat(metas, "seed")),
                      ("Bayes", bayes)):
        rows.append(SummaryRow("q at the last step, k = 5", agent, _mean_q(ds, (5,)), None,
                               f"k = 1: {_mean_q(ds, (1,)):.3g}"))
    band = xr.concat(bands, "seed")
    low = xr.concat(metas, "seed")
    untrained = _mean_q(band, PASS_BAND) < MIN_ASYMPTOTE
    rows.append(SummaryRow("band-pass Meta-Learner on low-pass g: q(T), stop band k = 1, 2",
                           "Meta-Learner (band-pass)", _mean_q(band, STOP_BAND), 0.0,
                           f"low-pass Meta-Learner: {_mean_q(low, STOP_BAND):.3g}"
                           + ("; the band-pass Meta-Learner has not learned its own pass "
                              "band either, so q ≈ 0 here is not evidence of a learned prior"
                              if untrained else "")))
    rows.append(SummaryRow("band-pass Meta-Learner on low-pass g: q(T), pass band k = 3-5",
                           "Meta-Learner (band-pass)", _mean_q(band, PASS_BAND), None,
                           f"low-pass Meta-Learner: {_mean_q(low, PASS_BAND):.3g}"))
    first = _first_checkpoint(outer)
    rows.append(SummaryRow(
        f"outer loop: first checkpoint with inner q > {CUTOFF}, k = 5 vs k = 1",
        "Meta-Learner", first[-1] / first[0] if np.isfinite(first[0]) else math.nan, None,
        f"outer steps: k = 1 at {first[0]:.0f}, k = 5 at {first[-1]:.0f} "
        "(paper Fig. 15: high frequencies later)"))
    bayes_loss = float(bayes["probe_loss"].mean())
    meta_loss = float(low["probe_loss"].isel(episode=slice(0, bayes.sizes["episode"])).mean())
    rows.append(SummaryRow("episode-average grid error mean_t,x (ĝ_t - g)²", "Meta-Learner",
                           meta_loss, None, f"Bayes: {bayes_loss:.3g} on the same episodes"))
    return rows


def _first_checkpoint(outer: xr.Dataset) -> np.ndarray:
    """Per mode, the first outer step whose (seed-mean) inner curve crosses the cut-off."""
    steps = outer["steps_to_threshold"]
    if "seed" in steps.dims:
        steps = steps.max("seed")
    crossed = np.isfinite(steps.values)  # (checkpoint, mode)
    ckpt = outer["checkpoint"].values.astype(float)
    return np.array([ckpt[crossed[:, m].argmax()] if crossed[:, m].any() else np.inf
                     for m in range(crossed.shape[1])])


# ------------------------------------------------------------------------------ figures


def _figures(learner: xr.Dataset, meta: xr.Dataset, bayes: xr.Dataset, bandpass: xr.Dataset,
             outer: xr.Dataset) -> dict[str, plt.Figure]:
    agents = (("Learner", learner), ("Meta-Learner", meta), ("Bayes", bayes))
    return {"fig8ab_learning_curves": _fig8ab(agents),
            "fig8c_steps_to_threshold": _fig8c(agents),
            "figA5_normalised": _figA5(agents),
            "fig10_q_vs_progress": _fig10(agents),
            "figA7_bandpass": _figA7(meta, bandpass),
            "fig15_outer_loop": plot_outer_loop(outer, CUTOFF, label="k =")}


def _fig8ab(agents) -> plt.Figure:
    fig, axes = plots.subplots(2, 3, figsize=(14, 7.5))
    for col, (name, ds) in enumerate(agents):
        ax = axes[0, col]
        plot_learning_curves(ds, "q", ax=ax)
        ax.set_title(f"{name}: q_k(t) per frequency k (Fig. 8b)")
        ax.set_ylabel("q_k(t) (eq. 10)")
        ax.legend(title="frequency k", fontsize="small")
        _q_by_frequency(ds, axes[1, col], name)
    axes[0, 0].set_xscale("log")
    axes[0, 0].set_xlabel("training step t")
    axes[1, 0].set_title("Learner: q_k at selected training steps (Fig. 8a)")
    fig.tight_layout()
    return fig


def _fig8c(agents) -> plt.Figure:
    fig, axes = plots.subplots(1, 3, figsize=(14, 3.8))
    for ax, (name, ds) in zip(axes, agents, strict=True):
        with warnings.catch_warnings():  # seaborn warns when no curve crosses (smoke runs)
            warnings.filterwarnings("ignore", message="Ignoring `palette`")
            plot_steps_to_threshold(ds, THRESHOLDS, ax=ax, interpolate=True)
        ax.set_xlabel("frequency k")
        ax.set_xticks(ds["mode"].values)
        ax.set_title(f"{name} (Fig. 8c)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(title="cut-off c", fontsize="small")
        else:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.text(0.5, 0.5, "no curve crosses any cut-off", transform=ax.transAxes,
                    ha="center", va="center", color="0.4")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training steps until q_k > c")
    for ax in axes[1:]:  # one scale for both in-context learners: the episode's T steps
        ax.set_ylabel("episode steps until q_k > c")
        ax.set_ylim(0, N_STEPS + 1)
    fig.tight_layout()
    return fig


def _figA5(agents) -> plt.Figure:
    fig, axes = plots.subplots(1, 3, figsize=(14, 3.8))
    for ax, (name, ds) in zip(axes, agents, strict=True):
        mean = ds["q"].mean("episode")
        norm = normalise_to_asymptote(mean, "t")
        palette = plt.get_cmap("rocket") if "rocket" in plt.colormaps() else plt.get_cmap("magma")
        for i, k in enumerate(ds["mode"].values):
            unlearned = float(mean.sel(mode=k).isel(t=-1)) < MIN_ASYMPTOTE
            ax.plot(ds["t"].values, norm.sel(mode=k).values, color=palette(0.15 + 0.7 * i / 4),
                    ls=":" if unlearned else "-",
                    label=f"k = {k}" + (f" (q(T) < {MIN_ASYMPTOTE}: not learned)"
                                        if unlearned else ""))
        ax.axhline(CUTOFF, color="0.6", lw=0.8, ls="--")
        ax.set_title(f"{name}: normalised to asymptote (Fig. A5)")
        ax.set_ylabel("q_k(t) / q_k(T)")
        ax.set_xlabel("episode step t" if name != "Learner" else "training step t")
        ax.legend(fontsize="small")
    axes[0].set_xscale("log")
    fig.tight_layout()
    return fig


def _fig10(agents) -> plt.Figure:
    fig, axes = plots.subplots(1, 3, figsize=(14, 3.8))
    for ax, (name, ds) in zip(axes, agents, strict=True):
        plot_progress(ds, "q", "probe_loss", ax=ax)
        ax.set_title(f"{name}: q_k against progress (Fig. 10)")
        ax.set_xlabel("progress: −mean grid error (ĝ - g)²")
        ax.set_ylabel("q_k")
        ax.get_legend().set_title("frequency k")
    fig.tight_layout()
    return fig


def _figA7(meta: xr.Dataset, bandpass: xr.Dataset) -> plt.Figure:
    fig, axes = plots.subplots(1, 2, figsize=(11, 3.8))
    plot_learning_curves(bandpass, "q", ax=axes[0])
    axes[0].set_title("Band-pass Meta-Learner on low-pass g (Fig. A7)")
    axes[0].set_ylabel("q_k(t)")
    axes[0].legend(title="frequency k (1-2: stop band)", fontsize="small")
    k = meta["mode"].values
    width = 0.38
    axes[1].bar(k - width / 2, meta["q"].isel(t=-1).mean("episode"), width,
                label="trained on low-pass (a_1..a_5 = 1)")
    axes[1].bar(k + width / 2, bandpass["q"].isel(t=-1).mean("episode"), width,
                label="trained on band-pass (a_3..a_5 = 1)")
    axes[1].axvspan(0.5, 2.5, color="0.9", zorder=0)
    axes[1].text(1.5, 0.97, "stop band", ha="center", va="top", fontsize="small")
    axes[1].axhline(1.0, color="0.6", lw=0.8, ls="--")
    axes[1].set_xticks(k)
    axes[1].set_xlabel("frequency k")
    axes[1].set_ylabel(f"q_k at the last step t = {int(meta['t'].values[-1])}")
    axes[1].set_title("Same low-pass episodes, both Meta-Learners")
    axes[1].legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    return fig


def _q_by_frequency(ds: xr.Dataset, ax: plt.Axes, name: str) -> None:
    """Fig. 8a: episode-mean q_k against k at a few times t (log-spaced)."""
    t = ds["t"].values
    picks = np.unique(np.geomspace(t[0], t[-1], 5).round().astype(int))
    picks = [int(t[np.abs(t - p).argmin()]) for p in picks]
    mean = ds["q"].mean("episode")
    cmap = plt.get_cmap("viridis")
    for i, step in enumerate(dict.fromkeys(picks)):
        ax.plot(ds["mode"].values, mean.sel(t=step).values, marker="o",
                color=cmap(i / max(len(picks) - 1, 1)), label=f"t = {step}")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set_xticks(ds["mode"].values)
    ax.set_xlabel("frequency k")
    ax.set_ylabel("q_k(t)")
    ax.set_title(f"{name}: q_k at selected steps (Fig. 8a)")
    ax.legend(fontsize="small")
