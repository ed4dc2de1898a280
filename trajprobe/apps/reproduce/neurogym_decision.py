"""neurogym's perceptual decision: GRU and LSTM against the ideal observer (issue 37).

A GRU and an LSTM are trained on the supervised trials of neurogym's
``PerceptualDecisionMaking-v0`` (:class:`~trajprobe.tasks.NeurogymTask`), by cross-entropy
on its labels as neurogym's own examples train (Adam, sequences of concatenated trials);
the runs live in ``out_dir/runs`` and resume. On the same held-out trials, beside the
exact ideal observer (:class:`~trajprobe.reference_models.PerceptualDecisionObserver`):

* **psychometric curves**: accuracy against coherence (:meth:`NeurogymTask.psychometric`)
  and P(choice 1) against the signed coherence (+c: the evidence favours choice 1), with
  the observer's closed form P(choice 1 | c) = Φ(c √n / (100 σ √2)) (n stimulus steps);
* **D_s and D_o** in both directions (:func:`trajprobe.compare.simulation`, KL between the
  label distributions: the networks' logits read by ``Categorical``), the unit-free
  output simulation score first and D_o in bits per step. The observer is given a lapse
  rate ε (its output mixed with the uniform, :attr:`DecisionSettings.lapse`): a KL into an
  observer certain of "fixate" is infinite for any network that is not;
* **fixed and slow points** (:func:`trajprobe.fixed_points`) of each network under the
  stimulus-off input (fixation, ``[1, 0, 0]``) and under each signed coherence's mean
  stimulus ``[0, 0.5 + c/200, 0.5 − c/200]``, and whether those under the 0 % stimulus
  form a **line** along the network's own choice axis (:func:`line_projection`: their
  extent along it, the gain uᵀJu there). The network's state on that axis (and on the
  slow points' first principal component) is set against the observer's log-odds
  log P(1 | x) − log P(2 | x) at every stimulus step (Mante et al. 2013's picture: does the
  network integrate the evidence along a line attractor?).

Needs the ``neurogym`` extra (``pip install "trajprobe[neurogym]"``); this module imports
without it and :func:`run` says what to install.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy import stats
from scipy.special import ndtr
from sklearn.linear_model import RidgeCV

from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.apps.recipes.config import MetaLearnerRecipe
from trajprobe.apps.recipes.flipflop import FlipFlopModel, PredictiveGRU
from trajprobe.apps.reproduce.base import Presets, RunContext, SummaryRow, TargetResult
from trajprobe.apps.reproduce.neurogym_decision_figures import figures
from trajprobe.apps.reproduce.neurogym_decision_geometry import (
    at_condition,
    median_speed,
    slow_point_remoteness,
)
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.dynamics import mean_sem
from trajprobe.fixed_point_search import fixed_points
from trajprobe.linearised import jacobians
from trajprobe.machine import state_vector
from trajprobe.measurement import measure
from trajprobe.traces import rollout

__all__ = ["AGENTS", "DIRECTIONS", "REQUIRES", "SETTINGS", "DecisionModel",
           "DecisionSettings", "at_condition", "choice_curves", "conditions",
           "line_projection", "make_task", "psychometric", "recipe", "run", "slow_points",
           "training_runs"]

ENV_ID = "PerceptualDecisionMaking-v0"
AGENTS = ("GRU", "LSTM")
"""The trained networks, by display name."""
IDEAL = "ideal observer"
REQUIRES = ("neurogym",)
"""The modules this target needs (the ``neurogym`` extra)."""
DIRECTIONS = {"network→observer": "b→a", "observer→network": "a→b"}
"""Display label → :data:`trajprobe.compare.DIRECTIONS` label of ``simulation(observer,
network)``: ``network→observer`` embeds
the network's states into the observer's (the observer simulates the network)."""
_EVAL_SEED = 7_000_000
"""Held-out trials: environment seeds from here on (training uses step seeds)."""


@dataclass(frozen=True)
class DecisionSettings:
    """What a preset trains and measures.

    Attributes:
        hidden_size: units of the GRU and of the LSTM (neurogym's examples: 64).
        training: the supervised loop (cross-entropy on the labels, fixed updates).
        sigma: the environment's ``sigma`` (neurogym divides it by √dt: σ = sigma / 10 per
            100 ms step). 3, not the default 1, so that the observer's curve is a curve and
            integrating the whole stimulus pays.
        n_eval_episodes: held-out episodes, each ``trials_per_episode`` whole trials.
        trials_per_episode: trials per held-out episode.
        n_simulation_episodes: the first this many held-out episodes feed D_s/D_o.
        simulation: the simulation maps (:class:`~trajprobe.compare.SimulationConfig`).
        lapse: ε of the observer in the D_s/D_o comparison (module docstring).
        fixed_point_states: initial states per input (stimulus-period states of the
            held-out trials), ``noise`` added.
        fixed_point_noise: their noise (FixedPointFinder's ``noise_scale``).
        max_iters: Newton steps per search.
        max_q: a slow point has q = ½‖F(s, x) − s‖² at most this.
    """

    hidden_size: int
    training: SupervisedConfig
    n_eval_episodes: int
    trials_per_episode: int
    n_simulation_episodes: int
    simulation: SimulationConfig
    fixed_point_states: int
    max_iters: int
    sigma: float = 3.0
    lapse: float = 1e-3
    fixed_point_noise: float = 0.02
    max_q: float = 1e-4


_QUICK_TRAINING = SupervisedConfig(
    38_400, n_steps=100, batch_size=32, loss="log_loss",
    optimiser=OptimiserConfig("adam", 1e-2, "cosine"), max_grad_norm=1.0,
    n_checkpoints=4, save_every=100, log_every=25)
"""1,200 updates of 32 sequences of 100 steps (neurogym's example: 16 × 100, 2,000)."""

SETTINGS: Presets[DecisionSettings] = Presets(
    smoke=DecisionSettings(
        8, replace(_QUICK_TRAINING, n_episodes=480, n_steps=44, batch_size=16,
                   n_checkpoints=2, save_every=10, log_every=5),
        n_eval_episodes=40, trials_per_episode=2, n_simulation_episodes=20,
        simulation=SimulationConfig(max_epochs=3, patience=1, n_folds=2),
        fixed_point_states=16, max_iters=30),
    quick=DecisionSettings(
        64, _QUICK_TRAINING, n_eval_episodes=400, trials_per_episode=5,
        n_simulation_episodes=200, simulation=SimulationConfig(max_epochs=40),
        fixed_point_states=128, max_iters=100),
    paper=DecisionSettings(
        128, replace(_QUICK_TRAINING, n_episodes=640_000, batch_size=64, n_checkpoints=20,
                     save_every=500, log_every=100),
        n_eval_episodes=2_000, trials_per_episode=5, n_simulation_episodes=500,
        simulation=SimulationConfig(), fixed_point_states=512, max_iters=1_000),
)
"""This target's settings per preset."""


@dataclass(frozen=True)
class DecisionModel(FlipFlopModel):
    """:class:`~trajprobe.apps.recipes.flipflop.PredictiveGRU` or
    :class:`~trajprobe.apps.models.RabinowitzLSTM` of ``size`` units, both read by
    Categorical(logits = y)."""

    def build(self, input_size: int, output_size: int, *, seed: int = 0,
              distribution: Any = None) -> torch.nn.Module:
        """A freshly initialised model (parameters drawn from ``seed``)."""
        if self.architecture == "gru":
            return PredictiveGRU(input_size, output_size, self.size,
                                 distribution="categorical", seed=seed)
        return RabinowitzLSTM(input_size, output_size, self.size, distribution="categorical",
                              seed=seed)


def _check_installed() -> None:
    missing = [m for m in REQUIRES if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"the neurogym-decision target needs {', '.join(missing)}: pip install "
            "\"trajprobe[neurogym]\" (neurogym pins numpy 2.2, matplotlib 3.10 and gymnasium "
            "0.29: a virtual environment of its own is safest)")


def make_task(settings: DecisionSettings) -> Any:
    """``NeurogymTask("PerceptualDecisionMaking-v0", sigma=settings.sigma)`` (its other
    parameters neurogym's defaults: dt 100 ms, 1 + 20 + 0 + 1 steps a trial)."""
    _check_installed()
    from trajprobe.tasks.neurogym_trials import NeurogymTask

    return NeurogymTask(ENV_ID, sigma=settings.sigma)


def recipe(agent: str, preset: str) -> MetaLearnerRecipe:
    """The training recipe of ``agent`` (``"GRU"`` or ``"LSTM"``) at ``preset``."""
    if agent not in AGENTS:
        raise ValueError(f"agent: expected one of {', '.join(AGENTS)}, got {agent!r}")
    settings = SETTINGS[preset]
    return MetaLearnerRecipe(
        name=f"neurogym-decision/{agent.lower()}", preset=preset,
        paper="neurogym's PerceptualDecisionMaking and its supervised examples",
        task=make_task(settings),
        model=DecisionModel(agent.lower(), settings.hidden_size),  # type: ignore[arg-type]
        training=settings.training, agent="network",
        description=f"{agent}({settings.hidden_size}) on PerceptualDecisionMaking-v0")


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """None for a cluster: :func:`run` trains its networks in this process (their recipes
    need neurogym, so they are not in the recipe catalogue)."""
    return []


# ----------------------------------------------------------------------- behaviour


def _decisions(machine: Any, episodes: Any) -> dict[str, np.ndarray]:
    """At every decision step (label > 0): the choice (1..K, argmax of the choice
    actions' outputs), the label, the coherence."""
    outputs = rollout(machine, episodes.inputs).outputs.cpu()
    labels = episodes.targets.cpu()
    decide = (labels > 0).numpy()
    return {"choice": (outputs[..., 1:].argmax(-1) + 1).numpy()[decide],
            "label": labels.numpy()[decide],
            "coh": np.round(episodes.params["coh"].double().cpu().numpy()[decide], 6)}


def choice_curves(machines: dict[str, Any], episodes: Any, observer: Any) -> xr.Dataset:
    """P(choice 1) against the signed coherence (+c when the label is choice 1), per
    machine, with the observer's closed form Φ(c √n / (100 σ √2)) (two choices).

    Returns:
        Dataset over ``agent`` and ``signed_coh``: ``p_choice_1``, ``p_choice_1_sem``,
        ``n_signed`` (decisions); ``closed_form (signed_coh)``.
    """
    if observer.dim_ring != 2:
        raise ValueError(f"observer: P(choice 1) is defined for two choices, got "
                         f"{observer.dim_ring}")
    rows = {}
    for name, machine in machines.items():
        d = _decisions(machine, episodes)
        signed = np.where(d["label"] == 1, d["coh"], -d["coh"])
        rows[name] = (signed, (d["choice"] == 1).astype(np.float64))
    levels = np.unique(np.concatenate([r[0] for r in rows.values()]))
    p = np.full((len(rows), len(levels)), np.nan)
    sem, count = np.full_like(p, np.nan), np.zeros_like(p)
    for i, (signed, chose) in enumerate(rows.values()):
        for j, level in enumerate(levels):
            picked = chose[signed == level]
            count[i, j] = len(picked)
            if len(picked):
                p[i, j] = picked.mean()
                sem[i, j] = picked.std(ddof=1) / np.sqrt(len(picked)) if len(picked) > 1 \
                    else np.nan
    n = observer.periods["stimulus"]
    exact = ndtr(levels * np.sqrt(n) / (100 * observer.sigma * np.sqrt(2)))
    return xr.Dataset(
        {"p_choice_1": (("agent", "signed_coh"), p, {"long_name": "P(choice 1)"}),
         "p_choice_1_sem": (("agent", "signed_coh"), sem),
         "n_signed": (("agent", "signed_coh"), count.astype(int)),
         "closed_form": (("signed_coh",), exact, {
             "long_name": "ideal observer: Φ(c √n / (100 σ √2))"})},
        coords={"agent": list(rows), "signed_coh": levels})


def psychometric(task: Any, machines: dict[str, Any], episodes: Any,
                 observer: Any) -> xr.Dataset:
    """Accuracy against coherence (``task.psychometric``) and :func:`choice_curves`, per
    machine, on the same episodes; one Dataset over ``agent``."""
    accuracy = xr.concat([task.psychometric(m, episodes) for m in machines.values()],
                         dim="agent").assign_coords(agent=list(machines))
    return xr.merge([accuracy, choice_curves(machines, episodes, observer)])


# ------------------------------------------------------------------------ dynamics


def _stimulus_steps(observer: Any, n_steps: int) -> np.ndarray:
    """Whether step t (0-based, episodes starting at a trial's start) is a stimulus step."""
    phase = np.arange(n_steps) % observer.trial_steps
    start = observer.periods["fixation"]
    return (phase >= start) & (phase < start + observer.periods["stimulus"])


def conditions(cohs: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The constant inputs searched: ``"fixation"`` ``[1, 0, 0]`` (stimulus off) and each
    signed coherence's mean stimulus ``[0, 0.5 + c/200, 0.5 − c/200]`` (two choices), 0 %
    always among them (:func:`line_projection` reads its slow points)."""
    out = {"fixation": np.array([1.0, 0.0, 0.0])}
    for c in sorted({0.0} | {-c + 0.0 for c in cohs} | {c + 0.0 for c in cohs}):  # no "-0"
        out[f"{c:+g} %"] = np.array([0.0, 0.5 + c / 200, 0.5 - c / 200])
    return out


def slow_points(network: Any, trace: Any, observer: Any, settings: DecisionSettings,
                seed: int) -> xr.Dataset:
    """Fixed and slow points of ``network`` under every input of :func:`conditions`,
    started from ``fixed_point_states`` stimulus-period states of ``trace`` (plus noise).

    Returns:
        :func:`trajprobe.fixed_points`' Dataset, concatenated over ``point`` with
        ``condition (point)``; only points with q ≤ ``max_q``.
    """
    vectors = trace.state_vectors(network)[:, 1:]  # s_t after x_t, [E, T, S]
    stim = torch.as_tensor(_stimulus_steps(observer, vectors.shape[1]))
    pool = vectors[:, stim].reshape(-1, vectors.shape[-1])
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(pool), generator=generator)[:settings.fixed_point_states]
    found = []
    for name, x in conditions(observer.cohs).items():
        ds = fixed_points(network, torch.as_tensor(x, dtype=pool.dtype), pool[pick],
                          noise=settings.fixed_point_noise, max_iters=settings.max_iters,
                          max_q=settings.max_q, seed=seed)
        found.append(ds.drop_vars("jacobian").assign_coords(
            condition=("point", [name] * ds.sizes["point"])))
    out = xr.concat(found, dim="point", data_vars="all", coords="different", compat="equals",
                    combine_attrs="drop_conflicts")
    return out.assign_coords(point=np.arange(out.sizes["point"]))


def line_projection(network: Any, trace: Any, observer: Any, observer_trace: Any,
                    points: xr.Dataset) -> xr.Dataset:
    """The network's stimulus-period states on its choice axis and on the line of its slow
    points under the 0 % stimulus, beside the observer's log-odds at the same steps.

    The **choice axis** u is the network's own (no observer in it): the difference of its
    mean states at the last stimulus step of trials it answered 1 and of trials it
    answered 2, normalised (a choice coding direction, the targeted dimension of Mante et
    al. 2013). States enter with their mean over trials at the same stimulus step
    removed (the condition-independent drift). The slow points lie on a line along it
    when their extent along u covers the states' and the gain uᵀ J u at them
    (J = ∂F/∂s) is near 1 (a perfect integrator; below 1, a leak). ``pc1_slow`` is the
    slow points' own first principal component, ``pc1`` the stimulus-period states';
    every direction oriented towards choice 1. ``decoder_r2``: R² of a ridge read-out of
    the log-odds from the states, fitted on the first half of the episodes and scored
    on the second (how much of the log-odds the state carries linearly at all).

    Returns:
        Dataset over ``sample`` (every stimulus step of every held-out trial): ``on_axis``,
        ``on_slow_pc1``, ``on_pc1``, ``log_odds``, ``step`` (within the stimulus);
        ``axis (unit)``; scalars ``r_axis``, ``rho_axis`` (Spearman), ``r_slow_pc1``,
        ``r_pc1`` (Pearson), ``extent`` (the slow points' extent along u over the
        states'), ``gain`` (median uᵀ J u over the slow points; NaN without any),
        ``n_slow``, ``decoder_r2``; ``remoteness`` (the slow points' median distance to
        the nearest visited stimulus-period state over the median distance between two
        visited states: above 1, they lie away from where the network runs; NaN without
        any) and ``q_visited`` (median q at the visited states under the 0 % input: a
        slow point has q ≤ ``max_q``).
    """
    vectors = trace.state_vectors(network)[:, 1:].double().cpu().numpy()
    stim = _stimulus_steps(observer, vectors.shape[1])
    states = vectors[:, stim].reshape(-1, vectors.shape[-1])
    loglik, phase = (leaf[:, 1:][:, stim] for leaf in observer_trace.states)
    log_odds = observer.log_odds(type(observer_trace.states)(
        loglik.flatten(0, 1), phase.flatten(0, 1))).cpu().numpy()
    n_stim = observer.periods["stimulus"]
    step = np.tile(np.arange(n_stim), len(states) // n_stim)
    drift = np.stack([states[step == k].mean(0) for k in range(n_stim)])[step]
    axis = _choice_axis(vectors, trace.outputs, observer)
    zero = at_condition(points, "+0 %")
    slow = zero.state.values
    pc1 = _components(states, axis, 1)[0]
    slow_pc1 = _components(slow, axis, 1)[0] if len(slow) >= 2 else np.full_like(pc1, np.nan)
    on_axis = (states - drift) @ axis
    on_slow = (states - drift) @ slow_pc1
    on_pc1 = (states - drift) @ pc1
    extent = np.ptp(slow @ axis) / np.ptp(states @ axis) if len(slow) else 0.0
    remoteness = slow_point_remoteness(slow, states)
    half = len(states) // 2 // n_stim * n_stim  # whole trials, first half of the episodes
    decoder = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(states[:half], log_odds[:half])
    return xr.Dataset(
        {"on_axis": ("sample", on_axis), "on_slow_pc1": ("sample", on_slow),
         "on_pc1": ("sample", on_pc1), "log_odds": ("sample", log_odds),
         "step": ("sample", step), "axis": ("unit", axis),
         "r_axis": ((), stats.pearsonr(on_axis, log_odds)[0]),
         "rho_axis": ((), stats.spearmanr(on_axis, log_odds)[0]),
         "r_slow_pc1": ((), stats.pearsonr(on_slow, log_odds)[0] if len(slow) >= 2
                        else np.nan),
         "r_pc1": ((), stats.pearsonr(on_pc1, log_odds)[0]),
         "extent": ((), extent), "gain": ((), _gain(network, zero, axis)),
         "n_slow": ((), len(slow)), "remoteness": ((), remoteness),
         "q_visited": ((), median_speed(network, conditions((0.0,))["+0 %"], states)),
         "decoder_r2": ((), decoder.score(states[half:], log_odds[half:]))})


def _choice_axis(vectors: np.ndarray, outputs: torch.Tensor, observer: Any) -> np.ndarray:
    """The network's choice axis (:func:`line_projection`) from its state vectors
    ``[E, T, S]`` (after each input) and outputs ``[E, T, 1 + K]``."""
    phase = np.arange(vectors.shape[1]) % observer.trial_steps
    last = phase == observer.periods["fixation"] + observer.periods["stimulus"] - 1
    decide = phase == observer.trial_steps - 1
    end = vectors[:, last].reshape(-1, vectors.shape[-1])
    choice = (outputs[:, decide, 1:].argmax(-1) + 1).cpu().numpy().ravel()[:len(end)]
    one, two = end[choice == 1], end[choice == 2]
    if len(one) == 0 or len(two) == 0:  # a network that never chose one side
        return _components(end, np.zeros(end.shape[1]), 1)[0]
    u = one.mean(0) - two.mean(0)
    return u / np.linalg.norm(u)


def _gain(network: Any, points: xr.Dataset, u: np.ndarray) -> float:
    """Median uᵀ J u over ``points`` (J = ∂F/∂s at each, under its own input); NaN
    without points."""
    if points.sizes["point"] == 0:
        return float("nan")
    dtype = state_vector(network, network.initial_state(1)).dtype
    _, jac, _ = jacobians(network, torch.as_tensor(points.input.values, dtype=dtype),
                          torch.as_tensor(points.state.values, dtype=dtype), output=False)
    unit = torch.as_tensor(u, dtype=jac.dtype)
    return float(torch.einsum("i,nij,j->n", unit, jac, unit).median())


def _components(x: np.ndarray, towards: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` principal components of rows ``x`` ``[k, S]``, each with the sign
    of ``towards``."""
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    v = vt[:k]
    return v * np.where(v @ towards < 0, -1.0, 1.0)[:, None]


# ------------------------------------------------------------------------- the run


def run(context: RunContext) -> TargetResult:
    """Train the GRU and the LSTM (or reuse their runs), then measure them against the
    ideal observer (module docstring)."""
    settings = SETTINGS[context.preset]
    task = make_task(settings)
    observer = task.bayes_machine()
    lapsed = task.bayes_machine(lapse=settings.lapse)
    n_steps = settings.trials_per_episode * observer.trial_steps
    episodes = task.sample(settings.n_eval_episodes, n_steps, seed=_EVAL_SEED)
    inputs = episodes.inputs[:settings.n_simulation_episodes]
    observer_trace = rollout(observer, episodes.inputs)
    result = TargetResult(title="neurogym PerceptualDecisionMaking: GRU and LSTM against the "
                                "ideal observer")
    timings: dict[str, float] = {}
    per_seed: list[dict[str, Any]] = []
    for seed in range(context.seeds):
        networks = {}
        for agent in AGENTS:
            tick = time.perf_counter()
            trained = recipe(agent, context.preset).train(
                context.run_dir(f"neurogym-decision/{agent.lower()}", seed), seed=seed,
                device=context.device, progress=context.progress)
            networks[agent] = trained.model.cpu().eval()
            timings[f"training {agent} seed {seed}"] = time.perf_counter() - tick
        tick = time.perf_counter()
        per_seed.append(_measure(task, observer, lapsed, networks, episodes, inputs,
                                 observer_trace, settings, seed))
        timings[f"measuring seed {seed}"] = time.perf_counter() - tick
    first = per_seed[0]
    result.datasets["psychometric"] = first["psychometric"]
    result.datasets["comparison"] = xr.concat(
        [s["comparison"] for s in per_seed], dim="seed").assign_coords(
            seed=np.arange(context.seeds))
    for agent in AGENTS:
        result.datasets[f"slow_points_{agent}"] = first["points"][agent]
        result.datasets[f"line_{agent}"] = first["line"][agent]
    result.rows = _rows(per_seed, settings)
    result.figures = figures(first, AGENTS, IDEAL)
    result.notes += _notes(settings, observer, timings, context.seeds)
    return result


def _measure(task: Any, observer: Any, lapsed: Any, networks: dict[str, Any], episodes: Any,
             inputs: torch.Tensor, observer_trace: Any, settings: DecisionSettings,
             seed: int) -> dict[str, Any]:
    """Every measurement of one seed's networks (module docstring)."""
    machines = {IDEAL: observer, **networks}
    out: dict[str, Any] = {"psychometric": psychometric(task, machines, episodes, observer),
                           "log_loss": {}, "points": {}, "line": {}, "sims": {}}
    for name, machine in machines.items():
        out["log_loss"][name] = float(measure(machine, task, episodes=episodes,
                                              progress=False)["log_loss"].mean())
    sims = []
    for agent, network in networks.items():
        sim = simulation(lapsed, network, inputs, config=settings.simulation, seed=seed)
        sim = sim[["output_simulation_score", "output_simulation_score_sem",
                   "output_dissimilarity_bits_per_step",
                   "output_dissimilarity_bits_per_step_sem", "state_dissimilarity",
                   "state_dissimilarity_sem", "output_dissimilarity",
                   "output_dissimilarity_constant", "reliable", "reliability_note"]]
        sims.append(sim.sel(direction=list(DIRECTIONS.values())).assign_coords(
            direction=list(DIRECTIONS)))
        trace = rollout(network, episodes.inputs)
        points = slow_points(network, trace, observer, settings, seed)
        out["points"][agent] = points
        out["line"][agent] = line_projection(network, trace, observer, observer_trace, points)
        out.setdefault("vectors", {})[agent] = trace.state_vectors(network)[:, 1:]
    out["comparison"] = xr.concat(sims, dim="agent").assign_coords(agent=list(networks))
    out["episodes"], out["observer_trace"], out["observer"] = episodes, observer_trace, observer
    return out


def _rows(per_seed: list[dict[str, Any]], settings: DecisionSettings) -> list[SummaryRow]:
    """The headline rows, means over seeds (± s.e. with several)."""
    rows: list[SummaryRow] = []

    def add(quantity: str, agent: str, values: list[float], note: str = "") -> None:
        mean, sem = mean_sem(values)  # one seed: s.e. NaN, not shown
        rows.append(SummaryRow(quantity, agent, mean, note=note, sem=sem))

    curve = per_seed[0]["psychometric"]
    for coh in curve.coh.values:
        for agent in (IDEAL, *AGENTS):
            add(f"accuracy at {coh:g} % coherence", agent,
                [float(s["psychometric"].accuracy.sel(agent=agent, coh=coh)) for s in per_seed],
                note=f"{int(curve.n_decisions.sel(agent=agent, coh=coh))} held-out trials")
    for agent in (IDEAL, *AGENTS):
        add("log-loss of the labels (nats per step)", agent,
            [s["log_loss"][agent] for s in per_seed])
    for agent in AGENTS:
        add("mean |accuracy − ideal observer's| over coherences", agent,
            [float(abs(s["psychometric"].accuracy.sel(agent=agent)
                       - s["psychometric"].accuracy.sel(agent=IDEAL)).mean()) for s in per_seed])
    for agent in AGENTS:
        for direction in DIRECTIONS:
            sel = [s["comparison"].sel(agent=agent, direction=direction) for s in per_seed]
            note = f"ideal observer with lapse {settings.lapse:g}"
            reasons = {str(x["reliability_note"].values) for x in sel} - {""}
            if reasons:
                note += "; " + "; ".join(sorted(reasons))
            add(f"output simulation score, {direction}", agent,
                [float(x["output_simulation_score"]) for x in sel], note)
            add(f"D_o, {direction} (bits per step)", agent,
                [float(x["output_dissimilarity_bits_per_step"]) for x in sel])
            add(f"D_s, {direction}", agent, [float(x["state_dissimilarity"]) for x in sel])
    for agent in AGENTS:
        points = [s["points"][agent] for s in per_seed]
        zero = [at_condition(p, "+0 %") for p in points]
        add("slow points under the 0 % stimulus", agent, [z.sizes["point"] for z in zero],
            note=f"q ≤ {settings.max_q:g}, from {settings.fixed_point_states} states")
        fixation = [at_condition(p, "fixation") for p in points]
        add("stable fixed points under the fixation input", agent,
            [int((f.stable & f.converged).sum()) if f.sizes["point"] else 0
             for f in fixation])
        lines = [s["line"][agent] for s in per_seed]
        add("slow points' extent along the choice axis / the states'", agent,
            [float(x["extent"]) for x in lines],
            note="in projection on the axis only: the next rows say whether they are "
            "where the network runs")
        add("gain uᵀJu along the choice axis (median over those slow points)", agent,
            [float(x["gain"]) for x in lines], note="1: a perfect integrator")
        add("0 % slow points' distance to the visited states / between visited states",
            agent, [float(x["remoteness"]) for x in lines],
            note="median to the nearest visited stimulus state; > 1: away from where the "
            "network runs")
        add("median q at the visited stimulus states under the 0 % input", agent,
            [float(x["q_visited"]) for x in lines],
            note=f"a slow point has q ≤ {settings.max_q:g}")
        add("r(state on the choice axis, observer's log-odds)", agent,
            [float(x["r_axis"]) for x in lines], note="Pearson, every stimulus step; the "
            "network's own choice axis (mean difference by its choice)")
        add("Spearman ρ(state on the choice axis, log-odds)", agent,
            [float(x["rho_axis"]) for x in lines])
        slow_pc1 = [float(x["r_slow_pc1"]) for x in lines]
        add("r(state on the slow points' PC1, log-odds)", agent, slow_pc1,
            note="n/a: fewer than 2 slow points" if np.isnan(slow_pc1).any() else "")
        add("r(state on the states' PC1, log-odds)", agent, [float(x["r_pc1"]) for x in lines])
        add("R² of a linear read-out of the log-odds from the state", agent,
            [float(x["decoder_r2"]) for x in lines], note="ridge, fitted on the first half "
            "of the held-out episodes, scored on the second")
    return rows


def _notes(settings: DecisionSettings, observer: Any, timings: dict[str, float],
           seeds: int) -> list[str]:
    t = settings.training
    updates = -(-t.n_episodes // t.batch_size)
    return [
        f"Environment: {ENV_ID} with sigma = {settings.sigma:g} (σ = {observer.sigma:.3g} "
        f"per step), cohs {list(observer.cohs)}, periods {observer.periods}.",
        f"Training: GRU({settings.hidden_size}) and LSTM({settings.hidden_size}), "
        f"{updates} Adam updates (lr {t.optimiser.lr:g}, {t.optimiser.schedule}) of "
        f"{t.batch_size} sequences of {t.n_steps} steps, cross-entropy on the labels; "
        f"{seeds} seed(s).",
        f"Held out: {settings.n_eval_episodes} episodes of {settings.trials_per_episode} "
        f"trials; D_s/D_o on the first {settings.n_simulation_episodes} episodes, against "
        f"the observer with lapse ε = {settings.lapse:g} (its output mixed with the uniform: "
        "a KL into an observer certain of 'fixate' is infinite for any network that is "
        "not). Direction 'network→observer' embeds the network's states into the "
        "observer's (the observer simulates the network).",
        "Slow points: trajprobe.fixed_points (Newton) from stimulus-period states, "
        f"{settings.max_iters} steps at most, q ≤ {settings.max_q:g}. The choice axis is "
        "the network's own: the difference of its mean states at the last stimulus "
        "step between the trials it answered 1 and 2 (a choice coding direction; the states' "
        "mean over trials at each stimulus step removed); log-odds = log P(1 | x) − "
        "log P(2 | x).",
        "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ".",
    ]
