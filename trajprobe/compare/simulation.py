"""Approximate simulation of one machine by another (Mikulik et al. 2020 §2, §3.4, §4.3).

A machine M *simulates* N (N ⪯ M) if a map φ from N's states to M's states carries every
trace of N onto a trace of M on which the outputs agree. Relaxed to continuous states:

1. Both machines run on the same input histories x_1..x_T (:mod:`.alignment`).
2. Each machine's state vectors are projected onto their first n principal components
   and whitened (scikit-learn PCA, fitted on the training episodes), so every component
   has unit variance: z = W (s − μ).
3. φ, an MLP with three hidden layers (ReLU), is fitted with Adam to map N's whitened
   states onto M's, with early stopping on held-out *validation episodes*; the weights
   of the best validation epoch are restored from a deep copy of the state dict.
4. On held-out *test episodes* (never used for PCA, fitting or stopping):

   * D_s = mean over episodes, steps and components of (φ(z_N) − z_M)², in M's whitened
     units: 0 is a perfect embedding, 1 is no better than predicting M's mean state.
   * D_o = (1/K) Σ_k Σ_t d(y_t^N, f_M(x_t, ŝ_{t−1})), where ŝ = W_M⁻¹ φ(z_N) + μ_M is the
     embedded state mapped back to M's full state space (inverse whitening, inverse
     PCA, then ``state_from_vector``) and f_M is M's output function. d is
     KL(π^N ‖ π^M) — the simulated machine's predictive distribution against the
     simulator's, as in eq. 2 — when both machines have ``distribution(y)``; otherwise
     the squared output difference averaged over output features. Summing over t
     follows eq. 2; ``output_dissimilarity_per_step`` has the per-step terms.

Direction convention: ``"a→b"`` means φ maps **a's states into b's state space**, i.e.
b simulates a (a ⪯ b), D_s is measured in b's whitened units and D_o compares a's
outputs with b's outputs at the embedded states. This is the paper's arrow: "RNN → Opt"
(Fig. 3 top right, Fig. 4) embeds RNN states into the Bayes-optimal agent's states and
is low when the Bayes-optimal agent simulates the RNN.

The states used are s_0..s_{T−1}, the states from which outputs y_1..y_T are emitted
(the output at step t is f(x_t, s_{t−1})), so D_s and D_o cover the same states.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr
from sklearn.decomposition import PCA
from torch import nn

import trajprobe
from trajprobe import machine as sm
from trajprobe.compare.alignment import AlignedTraces, aligned_rollout
from trajprobe.compare.baselines import linear_cka, procrustes_distance
from trajprobe.compare.behaviour import DEFAULT_QUADRATURE_POINTS, step_kl
from trajprobe.rollout import Trace
from trajprobe.tasks.base import Seed, make_generator

__all__ = [
    "DIRECTIONS",
    "FittedMap",
    "SimulationConfig",
    "Whitener",
    "fit_map",
    "simulation",
]

DIRECTIONS = ("a→b", "b→a")
"""Labels of the ``direction`` dimension: ``"a→b"`` embeds a's states into b's (b simulates a)."""


@dataclass(frozen=True)
class SimulationConfig:
    """Hyperparameters of :func:`simulation` (defaults: Mikulik et al. 2020 App. C, prediction).

    Attributes:
        n_components: principal components kept for both machines; None = the smaller of
            the two state dimensions (the Bayes reference's, in the paper's use).
        hidden_width: units in each hidden layer of φ (64 for prediction, 256 for bandits
            in the paper).
        n_hidden_layers: hidden layers of φ (3 in the paper).
        learning_rate: Adam step size.
        batch_size: states per Adam step.
        max_epochs: upper bound on passes over the training states.
        patience: epochs without a better validation loss before stopping.
        test_fraction: share of episodes held out for reporting D_s and D_o.
        validation_fraction: share of episodes held out for early stopping.
        output_measure: ``"kl"`` (needs ``distribution`` on both machines), ``"mse"``, or
            ``"auto"`` (KL when both have ``distribution``, else MSE).
        quadrature_points: nodes for KLs without a registered closed form.
        min_variance_ratio: whitening floor: a component whose variance is below this
            fraction of the largest is scaled as if it had that variance (with a warning),
            so a rank-deficient state set does not divide by zero.
    """

    n_components: int | None = None
    hidden_width: int = 64
    n_hidden_layers: int = 3
    learning_rate: float = 3e-3
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    output_measure: Literal["auto", "kl", "mse"] = "auto"
    quadrature_points: int = DEFAULT_QUADRATURE_POINTS
    min_variance_ratio: float = 1e-10

    def __post_init__(self) -> None:
        ints = {
            "hidden_width": self.hidden_width,
            "n_hidden_layers": self.n_hidden_layers,
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "quadrature_points": self.quadrature_points,
        }
        for name, value in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience: expected a non-negative integer, got {self.patience!r}")
        if self.n_components is not None and (
            not isinstance(self.n_components, int) or self.n_components < 1
        ):
            raise ValueError(
                f"n_components: expected a positive integer or None, got {self.n_components!r}"
            )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(
                f"learning_rate: expected a finite positive number, got {self.learning_rate!r}"
            )
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name}: expected a fraction in (0, 1), got {value!r}")
        if self.test_fraction + self.validation_fraction >= 1:
            raise ValueError(
                "validation_fraction: expected test_fraction + validation_fraction < 1 so "
                f"training episodes remain, got {self.test_fraction} + {self.validation_fraction}"
            )
        if self.output_measure not in ("auto", "kl", "mse"):
            raise ValueError(
                f"output_measure: expected 'auto', 'kl' or 'mse', got {self.output_measure!r}"
            )
        if not 0 <= self.min_variance_ratio < 1:
            raise ValueError(
                f"min_variance_ratio: expected a number in [0, 1), got {self.min_variance_ratio!r}"
            )


@dataclass(frozen=True)
class Whitener:
    """PCA projection plus whitening of state vectors: z = (s − μ) Vᵀ / sqrt(λ).

    Attributes:
        mean: ``[S]`` μ, the training mean.
        components: ``[n, S]`` V, the principal axes (rows, orthonormal).
        variance: ``[n]`` λ, the variances along them (floored, see
            :attr:`SimulationConfig.min_variance_ratio`).
        explained_variance_ratio: ``[n]`` share of the total variance per component.
    """

    mean: np.ndarray
    components: np.ndarray
    variance: np.ndarray
    explained_variance_ratio: np.ndarray

    @classmethod
    def fit(cls, states: np.ndarray, n_components: int, min_variance_ratio: float,
            name: str) -> Whitener:
        """Fit on ``states`` ``[N, S]`` with scikit-learn's exact (full SVD) PCA."""
        pca = PCA(n_components=n_components, svd_solver="full").fit(states)
        variance = pca.explained_variance_.astype(np.float64)
        floor = min_variance_ratio * float(variance.max()) if variance.max() > 0 else 1.0
        if floor == 0.0:
            floor = np.finfo(np.float64).tiny
        small = variance < floor
        if small.any():
            warnings.warn(
                f"{name}: {int(small.sum())} of {n_components} principal components have "
                f"(almost) no variance on the training states; whitening them with the floor "
                f"{floor:.3g}. Consider a smaller n_components.",
                RuntimeWarning,
                stacklevel=3,
            )
        return cls(
            mean=pca.mean_.astype(np.float64),
            components=pca.components_.astype(np.float64),
            variance=np.maximum(variance, floor),
            explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float64),
        )

    def transform(self, states: np.ndarray) -> np.ndarray:
        """State vectors ``[N, S]`` to whitened coordinates ``[N, n]``."""
        return (states - self.mean) @ self.components.T / np.sqrt(self.variance)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``[N, n]`` back to the full state space ``[N, S]``."""
        return (z * np.sqrt(self.variance)) @ self.components + self.mean


@dataclass
class FittedMap:
    """A fitted simulation map φ and its training record.

    Attributes:
        module: the MLP, holding the weights of the best validation epoch.
        best_epoch: that epoch (1-based).
        best_validation_loss: its validation MSE.
        epochs_run: epochs actually run before stopping.
        history: validation MSE after every epoch.
    """

    module: nn.Module
    best_epoch: int
    best_validation_loss: float
    epochs_run: int
    history: list[float] = field(default_factory=list)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """φ(z) for whitened states ``[N, n_in]`` → ``[N, n_out]``."""
        with torch.inference_mode():
            x = torch.as_tensor(z, dtype=torch.float32)
            return self.module(x).double().numpy()


def _mlp(n_in: int, n_out: int, width: int, n_hidden: int, generator: torch.Generator
         ) -> nn.Sequential:
    """MLP with ``n_hidden`` ReLU hidden layers, initialised from ``generator`` only.

    Weights and biases ~ U(−1/√fan_in, 1/√fan_in), PyTorch's default scale, but drawn from
    the given generator so the global RNG is never touched.
    """
    sizes = [n_in] + [width] * n_hidden + [n_out]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(fan_in, fan_out)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            nn.init.uniform_(linear.weight, -bound, bound, generator=generator)
            nn.init.uniform_(linear.bias, -bound, bound, generator=generator)
        layers.append(linear)
        if i < n_hidden:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fit_map(
    z_train: np.ndarray,
    target_train: np.ndarray,
    z_validation: np.ndarray,
    target_validation: np.ndarray,
    config: SimulationConfig,
    generator: torch.Generator,
) -> FittedMap:
    """Fit φ: ``z_train`` ``[N, n_in]`` → ``target_train`` ``[N, n_out]`` by MSE with Adam.

    Early stopping: after each epoch the MSE on the validation set (states of *other
    episodes*) is computed; training stops after ``config.patience`` epochs without
    improvement and the best epoch's weights are restored from a deep copy of the state
    dict (not a reference to the live parameters). Minibatch order and initial weights
    come from ``generator`` only, so a seed fixes the result.
    """
    x_tr = torch.as_tensor(z_train, dtype=torch.float32)
    y_tr = torch.as_tensor(target_train, dtype=torch.float32)
    x_va = torch.as_tensor(z_validation, dtype=torch.float32)
    y_va = torch.as_tensor(target_validation, dtype=torch.float32)
    module = _mlp(x_tr.shape[1], y_tr.shape[1], config.hidden_width, config.n_hidden_layers,
                  generator)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    best_loss = math.inf
    best_state = copy.deepcopy(module.state_dict())
    best_epoch = 0
    history: list[float] = []
    n = x_tr.shape[0]
    epoch = 0
    with torch.enable_grad():
        for epoch in range(1, config.max_epochs + 1):
            module.train()
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, config.batch_size):
                idx = order[start:start + config.batch_size]
                loss = ((module(x_tr[idx]) - y_tr[idx]) ** 2).mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            module.eval()
            with torch.no_grad():
                val = float(((module(x_va) - y_va) ** 2).mean())
            history.append(val)
            if val < best_loss:
                best_loss, best_epoch = val, epoch
                best_state = copy.deepcopy(module.state_dict())
            elif epoch - best_epoch >= config.patience:
                break
    module.load_state_dict(best_state)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return FittedMap(module=module, best_epoch=best_epoch, best_validation_loss=best_loss,
                     epochs_run=epoch, history=history)


def _split(n_episodes: int, n_steps: int, n_components: int, config: SimulationConfig,
           generator: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / validation / test *episode* indices (sorted), drawn from ``generator``."""
    n_test = max(1, round(n_episodes * config.test_fraction))
    n_val = max(1, round(n_episodes * config.validation_fraction))
    n_train = n_episodes - n_test - n_val
    # PCA needs at least n_components training states (and 2 to estimate a variance).
    needed_train = max(1, math.ceil(max(n_components, 2) / n_steps))
    if n_train < needed_train:
        needed = needed_train + n_test + n_val
        raise ValueError(
            f"inputs: expected at least {max(needed, 3)} episodes for a held-out split "
            f"({n_test} test + {n_val} validation + {needed_train} training episodes with "
            f"test_fraction={config.test_fraction}, "
            f"validation_fraction={config.validation_fraction}), got {n_episodes}"
        )
    order = torch.randperm(n_episodes, generator=generator).numpy()
    test = np.sort(order[:n_test])
    val = np.sort(order[n_test:n_test + n_val])
    train = np.sort(order[n_test + n_val:])
    return train, val, test


def _state_vectors(machine: sm.StateMachine, trace: Trace, name: str) -> np.ndarray:
    """States s_0..s_{T−1} as vectors ``[E, T, S]`` (float64 numpy)."""
    vectors = trace.state_vectors(machine)[:, :-1]
    out = vectors.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: state vectors contain NaN or inf")
    return out


def _resolve_measure(a: sm.StateMachine, b: sm.StateMachine, measure: str) -> str:
    has = [callable(getattr(m, "distribution", None)) for m in (a, b)]
    if measure == "auto":
        return "kl" if all(has) else "mse"
    if measure == "kl" and not all(has):
        missing = [n for n, h in zip("ab", has, strict=True) if not h]
        raise ValueError(
            f"config: output_measure='kl' needs distribution(y) on both machines, "
            f"got none on machine {', '.join(missing)}"
        )
    return measure


def _outputs_at(machine: sm.StateMachine, vectors: np.ndarray, inputs: torch.Tensor
                ) -> torch.Tensor:
    """f(x, s) at the states with vectors ``[N, S]`` and inputs ``[N, ...]``: ``[N, ...]``."""
    dtype = sm.machine_dtype(machine)
    device = sm.machine_device(machine)
    with torch.inference_mode():
        vec = torch.as_tensor(vectors, dtype=dtype, device=device)
        state = sm.state_from_vector(machine, vec)
        return sm.output(machine, inputs.to(device), state)


def _output_dissimilarity(
    measure: str,
    src: sm.StateMachine,
    y_src: torch.Tensor,
    dst: sm.StateMachine,
    y_dst: torch.Tensor,
    config: SimulationConfig,
    name: str,
) -> np.ndarray:
    """Per-item d(y_src, y_dst) ``[N]``; NaN where the embedded output is invalid."""
    if measure == "mse":
        ys = y_src.detach().to("cpu", torch.float64).reshape(y_src.shape[0], -1)
        yd = y_dst.detach().to("cpu", torch.float64).reshape(y_dst.shape[0], -1)
        if ys.shape != yd.shape:
            raise ValueError(
                f"{name}: output_measure='mse' needs outputs of the same size, got "
                f"{tuple(y_src.shape[1:])} and {tuple(y_dst.shape[1:])}; give both machines "
                "distribution(y) to compare by KL"
            )
        return ((ys - yd) ** 2).mean(1).numpy()
    try:
        values = step_kl(src, y_src, dst, y_dst, n_points=config.quadrature_points)
    except ValueError:
        # The embedded state gave parameters outside the distribution's support (e.g. a
        # negative pseudo-count); score those items as invalid instead of failing.
        previous = torch.distributions.Distribution._validate_args
        torch.distributions.Distribution.set_default_validate_args(False)
        try:
            values = step_kl(src, y_src, dst, y_dst, n_points=config.quadrature_points)
        finally:
            torch.distributions.Distribution.set_default_validate_args(previous)
    out = values.detach().to("cpu", torch.float64).numpy().copy()
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, 0.0, None)


def simulation(
    a: sm.StateMachine,
    b: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray | Trace | AlignedTraces,
    *,
    config: SimulationConfig | None = None,
    seed: Seed = 0,
) -> xr.Dataset:
    """How well each machine simulates the other: D_s and D_o in both directions (§3.4).

    See the module docstring for the maths and the direction convention (``"a→b"``: φ
    maps a's states into b's, b simulates a).

    Args:
        a, b: the machines; their state vectors come from
            :func:`trajprobe.machine.state_vector`, and b's (a's) output function is
            evaluated at embedded states via :func:`trajprobe.machine.state_from_vector`.
        inputs: ``[E, T, ...]`` shared inputs (both machines are rolled out on them), a
            recorded (e.g. closed-loop) trace of ``a`` replayed through ``b``, or
            :class:`~trajprobe.compare.AlignedTraces`.
        config: hyperparameters (:class:`SimulationConfig` defaults if None).
        seed: int or ``torch.Generator``; fixes the episode split, φ's initial weights and
            minibatch order. Same seed, same numbers.

    Returns:
        ``xarray.Dataset`` with

        - ``state_dissimilarity (direction)`` D_s, ``output_dissimilarity (direction)`` D_o;
        - ``state_dissimilarity_per_step (direction, t)`` (mean over test episodes and
            components) and ``output_dissimilarity_per_step (direction, t)`` (mean over test
            episodes; these sum over t to D_o);
        - ``invalid_output_fraction (direction)``: share of test items whose embedded
            state gave an invalid distribution (left out of the means, with a warning);
        - ``best_epoch``, ``best_validation_loss``, ``epochs_run`` ``(direction)``;
        - ``linear_cka ()``, ``procrustes_distance ()`` between the raw state vectors of
            the test episodes (:mod:`.baselines`);
        - for figures (test episodes only): ``whitened_a``/``whitened_b`` ``(episode, t,
            component)``, ``embedded (direction, episode, t, component)`` = φ of the source's
            whitened states, in the target's whitened coordinates; outputs ``output_a``,
            ``output_b`` and the outputs at embedded states ``output_b_from_a`` (b's output
            function at φ(s_a)), ``output_a_from_b``, each ``(episode, t, output_*)``;
        - ``explained_variance_ratio_a``/``_b (component)``.

        ``t`` runs 1..T: the state used at t is s_{t−1}, the one that emits y_t.
        ``attrs`` hold the configuration, the output measure, the direction convention,
        the split sizes, the seed (if an int) and the trajprobe version.

    Raises:
        ValueError: misaligned traces; too few episodes for the held-out split;
            ``n_components`` larger than a machine's state dimension.
    """
    config = SimulationConfig() if config is None else config
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config: expected a SimulationConfig or None, got {type(config).__name__}")
    measure = _resolve_measure(a, b, config.output_measure)
    traces = aligned_rollout(a, b, inputs)
    n_ep, n_t = traces.n_episodes, traces.n_steps
    vec = {"a": _state_vectors(a, traces.a, "a"), "b": _state_vectors(b, traces.b, "b")}
    dims = {k: v.shape[-1] for k, v in vec.items()}
    n_comp = config.n_components if config.n_components is not None else min(dims.values())
    for k, d in dims.items():
        if n_comp > d:
            raise ValueError(
                f"n_components: expected at most the state dimension of machine {k} ({d}), "
                f"got {n_comp}"
            )
    generator = make_generator(seed)
    train, val, test = _split(n_ep, n_t, n_comp, config, generator)
    map_seeds = [int(s) for s in torch.randint(0, 2**62, (2,), generator=generator)]

    whiteners = {
        k: Whitener.fit(v[train].reshape(-1, dims[k]), n_comp, config.min_variance_ratio, k)
        for k, v in vec.items()
    }
    z = {k: whiteners[k].transform(v.reshape(-1, dims[k])).reshape(n_ep, n_t, n_comp)
         for k, v in vec.items()}
    machines = {"a": a, "b": b}
    trace_of = {"a": traces.a, "b": traces.b}
    outputs = {
        k: trace_of[k].outputs[test].reshape(len(test), n_t, -1).detach().cpu()
        for k in ("a", "b")
    }

    d_s, d_s_step, d_o, d_o_step, invalid = [], [], [], [], []
    best_epoch, best_loss, epochs_run, embedded = [], [], [], []
    embedded_outputs = {}
    for direction, (src, dst), map_seed in zip(DIRECTIONS, (("a", "b"), ("b", "a")), map_seeds,
                                               strict=True):
        fitted = fit_map(
            z[src][train].reshape(-1, n_comp), z[dst][train].reshape(-1, n_comp),
            z[src][val].reshape(-1, n_comp), z[dst][val].reshape(-1, n_comp),
            config, make_generator(map_seed),
        )
        phi = fitted(z[src][test].reshape(-1, n_comp))  # [K*T, n]
        sq = ((phi - z[dst][test].reshape(-1, n_comp)) ** 2).reshape(len(test), n_t, n_comp)
        d_s.append(float(sq.mean()))
        d_s_step.append(sq.mean(axis=(0, 2)))
        # Back to dst's full state space and through dst's output function.
        full = whiteners[dst].inverse_transform(phi)
        x = trace_of[dst].inputs[test].flatten(0, 1)
        y_emb = _outputs_at(machines[dst], full, x)
        y_src = trace_of[src].outputs[test].flatten(0, 1)
        per = _output_dissimilarity(measure, machines[src], y_src, machines[dst], y_emb,
                                    config, "b" if dst == "b" else "a").reshape(len(test), n_t)
        bad = float(np.isnan(per).mean())
        if bad > 0:
            warnings.warn(
                f"simulation {direction}: {bad:.1%} of the embedded states gave invalid "
                f"outputs for machine {dst}; they are left out of output_dissimilarity",
                RuntimeWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            step = np.nanmean(per, axis=0) if bad < 1 else np.full(n_t, np.nan)
        d_o_step.append(step)
        d_o.append(float(step.sum()))
        invalid.append(bad)
        best_epoch.append(fitted.best_epoch)
        best_loss.append(fitted.best_validation_loss)
        epochs_run.append(fitted.epochs_run)
        embedded.append(phi.reshape(len(test), n_t, n_comp))
        embedded_outputs[f"output_{dst}_from_{src}"] = (
            y_emb.detach().to("cpu").reshape(len(test), n_t, -1).numpy()
        )

    raw_a = vec["a"][test].reshape(-1, dims["a"])
    raw_b = vec["b"][test].reshape(-1, dims["b"])
    data_vars = {
        "state_dissimilarity": (("direction",), np.array(d_s)),
        "output_dissimilarity": (("direction",), np.array(d_o)),
        "state_dissimilarity_per_step": (("direction", "t"), np.stack(d_s_step)),
        "output_dissimilarity_per_step": (("direction", "t"), np.stack(d_o_step)),
        "invalid_output_fraction": (("direction",), np.array(invalid)),
        "best_epoch": (("direction",), np.array(best_epoch)),
        "best_validation_loss": (("direction",), np.array(best_loss)),
        "epochs_run": (("direction",), np.array(epochs_run)),
        "linear_cka": ((), linear_cka(raw_a, raw_b)),
        "procrustes_distance": ((), procrustes_distance(raw_a, raw_b)),
        "whitened_a": (("episode", "t", "component"), z["a"][test]),
        "whitened_b": (("episode", "t", "component"), z["b"][test]),
        "embedded": (("direction", "episode", "t", "component"), np.stack(embedded)),
        "output_a": (("episode", "t", "output_a"), outputs["a"].numpy()),
        "output_b": (("episode", "t", "output_b"), outputs["b"].numpy()),
        "output_b_from_a": (("episode", "t", "output_b"), embedded_outputs["output_b_from_a"]),
        "output_a_from_b": (("episode", "t", "output_a"), embedded_outputs["output_a_from_b"]),
        "explained_variance_ratio_a": (("component",),
                                       whiteners["a"].explained_variance_ratio),
        "explained_variance_ratio_b": (("component",),
                                       whiteners["b"].explained_variance_ratio),
    }
    attrs = {
        "output_measure": "KL(pi^source || pi^target at embedded state)" if measure == "kl"
        else "mean squared output difference",
        "direction_convention": "a→b: phi maps a's states into b's state space (b simulates a)",
        "n_components": n_comp,
        "n_train_episodes": len(train),
        "n_validation_episodes": len(val),
        "n_test_episodes": len(test),
        "trajprobe_version": trajprobe.__version__,
        **{f"config_{k}": (str(v) if v is None else v) for k, v in asdict(config).items()},
    }
    if isinstance(seed, int):
        attrs["seed"] = seed
    return xr.Dataset(
        data_vars,
        coords={
            "direction": list(DIRECTIONS),
            "episode": test,
            "t": np.arange(1, n_t + 1),
            "component": np.arange(n_comp),
        },
        attrs=attrs,
    )
