"""The simulation map φ as a fitted estimator, bounded by construction.

Mikulik et al. 2020 §3.4 learn φ from N's states to M's states along shared input
histories. φ must represent identity and any invertible affine change of coordinates
*exactly*, and it must never do worse on held-out episodes than a map that ignores the
source, which sends every state to one fixed target state: an affine map with zero
slope, inside the family. Fitting on training episodes (an inner split of them held out
as validation *episodes*):

1. **Coordinates** (:class:`~.coordinates.Coordinates`): each machine's states in raw
   coordinates and, where the machine declares positive parameters or they are detected
   (positive, spanning decades), in log coordinates; each option whitened
   (:class:`~.whitening.Whitening`) on the training states.
2. **A ridge path** for every pair of coordinate options: z_M ≈ z_N A_λ + c with the
   penalty λ‖β‖² on the coefficients of the source's *unwhitened* principal components
   (so a direction with little training variance, where held-out states extrapolate, is
   shrunk first), at relative strengths λ / λ_1 in :data:`RIDGE_PATH`, from 0 (least
   squares: exact for affine copies) to ∞ (the constant map c = the target's mean state
   in those coordinates: the geometric mean in log coordinates).
3. **Constant maps**: those means and, when candidates are scored by their outputs, the
   best constant target state found by ``constant_search``
   (:func:`~.simulation_constant.search_constant`: every training state of the target, or
   :data:`N_CONSTANT_STATES` of them plus each coordinate's extremes, scored through the
   target's output function on the validation items, then refined by gradient steps
   where the target is differentiable), each sent to from every source state.
4. **Selection on validation episodes**: every candidate's predicted target states on the
   validation episodes are scored by D_s and by ``validation_loss`` (in
   :func:`~.simulation`: the output dissimilarity D_o). φ, the state map
   (:meth:`~SimulationMap.transform`, reported by D_s), is the candidate with the lowest
   validation D_s; φ_o (:meth:`~SimulationMap.transform_for_outputs`, reported by D_o)
   is chosen by the one-standard-error rule: the most regularised candidate (a constant
   first, then larger ridge strengths) whose validation loss is within one standard
   error, over validation episodes, of the lowest — heavy-tailed losses are noisy, and
   noise must not pick an extrapolating map. Both come from the same family, and the
   constant maps are in it: on validation, D_s is never worse than the target's mean
   state and D_o never worse than the best constant map (:meth:`transform_constant`).
   φ_o differs from φ only where φ's outputs do worse than another candidate's (e.g. the
   target cannot reproduce the source's outputs at the corresponding states, and a
   shrunk or constant map agrees better); without ``validation_loss``, φ_o = φ.
5. **An MLP residual** (ReLU, last layer initialised at zero) on φ's whitened target
   components, early-stopped on the validation episodes' squared error, kept only when
   it lowers the validation D_s (and used for φ_o too when it beats φ_o's validation
   loss by more than one standard error). It is not tried when the closed form is exact (validation
   D_s ≤ :data:`EXACT`).

φ(s_N) is then a full target state (inverse whitening, null directions at their mean,
inverse coordinates), so the target's output function can be evaluated on it.

Score (D_s): mean over states and the k reported components of (φ(z_N) − z_M)², in the
target's whitened units in its *natural* coordinates (log where logged): 0 = exact,
1 = no better than the target's mean state.

Invariances (of D_s, for a fixed seed): any invertible affine change of the source's
coordinates whose raw candidate wins (the raw path is affine-equivariant); rotations,
reflections, isotropic scaling and translation of the target's raw coordinates. Not
symmetric, not a metric.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trajprobe.compare.coordinates import Coordinates
from trajprobe.compare.simulation_candidates import (
    EXACT,
    Candidate,
    one_standard_error,
    per_episode,
    ridge_path,
    ridge_source,
    selection_margin,
)
from trajprobe.compare.simulation_constant import constant_candidates
from trajprobe.compare.whitening import Whitening, as_states, check_fraction
from trajprobe.devices import one_thread
from trajprobe.initialisers import torch_default_init
from trajprobe.randomness import Seed, make_generator
from trajprobe.validation import check_positive_int

__all__ = ["N_CONSTANT_STATES", "RIDGE_PATH", "SimulationMap", "Whitening"]

RIDGE_PATH = (0.0, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, math.inf)
"""Ridge strengths relative to the source's largest principal variance; ∞ = constant map."""

N_CONSTANT_STATES = 512
"""Training states of the target tried as constant maps (beside the mean states and each
coordinate's extremes): all of them when there are at most this many, else this many
evenly spaced in lexicographic order (:func:`~.simulation_constant.constant_candidates`)."""

ValidationLoss = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(validation episodes ``[V]``, candidate target states ``[C, V, T, S_M]``) → per-episode
losses ``[C, V]`` (or ``[C]``, then without the one-standard-error rule)."""

ConstantSearch = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(validation episodes ``[V]``, candidate target states ``[C, S_M]``, the training states'
spread per coordinate ``[S_M]``) → the best constant states found ``[K, S_M]`` (K ≥ 1;
:func:`~.simulation_constant.search_constant`)."""

CONSTANT_CHUNK = 32
"""Candidate constant states per call of ``validation_loss`` when no ``constant_search``
is given (each is broadcast to every validation item)."""


@dataclass
class _Side:
    """One coordinate option of one machine, fitted on the training states."""

    coords: Coordinates
    whitening: Whitening

    def whiten(self, states: np.ndarray) -> np.ndarray:
        return self.whitening.transform(self.coords.forward(states))

    def unwhiten(self, z: np.ndarray) -> np.ndarray:
        return self.coords.inverse(self.whitening.inverse_transform(z))


def _mlp(n_in: int, n_out: int, width: int, n_hidden: int, generator: torch.Generator
         ) -> nn.Sequential:
    """ReLU MLP, PyTorch-default weights from ``generator``; the last layer starts at zero."""
    sizes = [n_in] + [width] * n_hidden + [n_out]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float32))
        if i < n_hidden:
            layers.append(nn.ReLU())
    module = nn.Sequential(*layers)
    torch_default_init(module, generator)
    with torch.no_grad():
        layers[-1].weight.zero_()
        layers[-1].bias.zero_()
    return module


class SimulationMap:
    """φ: source states → target states, affine-exact and bounded (module docstring).

    Hyper-parameters (constructor), work in :meth:`fit`, fitted attributes end in ``_``.

    Args:
        explained_variance: share of the target's variance its reported components explain
            (the embedding dimension k; D_s is measured on them). 1 = all of the rank.
        rank_tolerance: relative variance below which a direction is null (both machines).
        ridge_path: relative ridge strengths tried (module docstring, 2); include 0 to keep
            affine copies exact and ``math.inf`` to reach the constant map.
        log_coordinates: also try log coordinates for positive parameters (declared in
            :meth:`fit` or detected); False: raw coordinates only.
        n_constant_states: training states of the target tried as constant maps (beside
            each coordinate's extremes; 0: the mean states only).
        hidden_width, n_hidden_layers: the residual MLP (0 hidden layers: closed form only).
        learning_rate, batch_size, max_epochs, patience: Adam on the residual; early
            stopping on the validation episodes, best epoch's weights restored (a copy).
        validation_fraction: share of the training episodes held out for the selection.
        seed: fixes the validation split, the constant states, the MLP's initial weights
            and minibatch order.
    """

    def __init__(
        self,
        *,
        explained_variance: float = 0.99,
        rank_tolerance: float = 1e-8,
        ridge_path: tuple[float, ...] = RIDGE_PATH,
        log_coordinates: bool = True,
        n_constant_states: int = N_CONSTANT_STATES,
        hidden_width: int = 64,
        n_hidden_layers: int = 2,
        learning_rate: float = 1e-2,
        batch_size: int = 1024,
        max_epochs: int = 40,
        patience: int = 3,
        validation_fraction: float = 0.2,
        seed: Seed = 0,
    ):
        self.explained_variance = check_fraction(explained_variance, "explained_variance",
                                                 closed_right=True)
        self.rank_tolerance = check_fraction(rank_tolerance, "rank_tolerance")
        path = tuple(float(s) for s in ridge_path)
        if not path or any(not s >= 0 for s in path):
            raise ValueError(
                f"ridge_path: expected strengths >= 0 (inf allowed), got {ridge_path!r}")
        self.ridge_path = path
        if not isinstance(log_coordinates, bool):
            raise TypeError(f"log_coordinates: expected a bool, got {log_coordinates!r}")
        self.log_coordinates = log_coordinates
        self.n_constant_states = _check_int(n_constant_states, "n_constant_states", 0)
        self.hidden_width = check_positive_int(hidden_width, "hidden_width")
        self.n_hidden_layers = _check_int(n_hidden_layers, "n_hidden_layers", 0)
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0
                and math.isfinite(learning_rate)):
            raise ValueError(f"learning_rate: expected a finite number > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.max_epochs = _check_int(max_epochs, "max_epochs", 0)
        self.patience = check_positive_int(patience, "patience")
        self.validation_fraction = check_fraction(validation_fraction, "validation_fraction")
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------
    def fit(self, source, target, *, source_positive: np.ndarray | None = None,
            target_positive: np.ndarray | None = None,
            validation_loss: ValidationLoss | None = None,
            constant_search: ConstantSearch | None = None,
            sides_from: SimulationMap | None = None) -> SimulationMap:
        """Fit φ on paired states: ``source`` ``[E, T, S_N]``, ``target`` ``[E, T, S_M]``.

        Args:
            source_positive, target_positive: bool masks ``[S]`` of positive parameters
                (log coordinates are tried for them); None: detected.
            validation_loss: scores candidate maps' outputs on the validation episodes
                (:data:`ValidationLoss`; lower is better; NaN/inf = invalid): selects φ_o
                (module docstring, 4); None: D_s (φ_o = φ).
            constant_search: finds the best constant target states on the validation
                episodes (:data:`ConstantSearch`); None: with ``validation_loss``, every
                candidate scored by it (:data:`CONSTANT_CHUNK` at a time); without it, the
                mean states only (the best constants for D_s).
            sides_from: a map fitted with the same seed on the same states, the target's
                possibly permuted within episodes (the time-shuffled null): its fitted
                coordinates and whitenings are reused instead of fitted again (the same
                sets of states give them, up to round-off), and so are the source's half
                of the ridge path (the same source states) and the constant candidates
                (the same set of target states).

        Fitted attributes: ``candidate_losses_``/``candidate_state_losses_`` ``[C]``
        (``candidate_constant_`` ``[C]`` marks the constant maps),
        ``validation_state_loss_`` of φ, ``validation_loss_`` of φ_o,
        ``constant_validation_loss_``, ``constant_state_`` ``[S_M]``, ``strength_``,
        ``coordinates_``, ``mlp_`` (None if not kept), ``best_epoch_``, ``history_``
        (the MLP's validation squared error by epoch; epoch 0 = closed form).
        """
        src, tgt = self._check_pair(source, target)
        generator = make_generator(self.seed)
        train, val = self._split(src.shape[0], generator)
        self._shared = dict(getattr(sides_from, "_shared", {}))
        if sides_from is not None:
            self.source_options_ = sides_from.source_options_
            self.target_options_ = sides_from.target_options_
        else:
            self.source_options_ = self._sides(src[train], source_positive, 1.0)
            self.target_options_ = self._sides(tgt[train], target_positive,
                                               self.explained_variance)
        self.report_ = self.target_options_[-1]
        if self.report_.whitening.rank_ == 0:
            raise ValueError("target: the target's states have no variance on the training "
                             "episodes; there is nothing to map onto")
        zt_val = self.report_.whiten(tgt[val])  # [V, T, r]; reused by the residual
        z_true = zt_val[..., :self.report_.whitening.n_components_]
        state_loss = self._state_loss(z_true)
        candidates = self._candidates(src[train], tgt[train], generator)
        if validation_loss is not None:
            candidates += self._searched_constants(tgt, val, validation_loss,
                                                   constant_search)
        if "zs_val" not in self._shared:  # the same validation sources for the null
            self._shared["zs_val"] = [side.whiten(src[val]) for side in self.source_options_]
        zs_val = self._shared["zs_val"]
        z_val = [self._affine(c, zs_val[c.source]) for c in candidates]
        per_s = self._report_losses(candidates, z_val, z_true)
        constant = [i for i, c in enumerate(candidates) if not math.isfinite(c.strength)]
        per_o = per_s if validation_loss is None else self._output_losses(
            candidates, z_val, val, validation_loss, per_s, constant)
        d_s, d_o = per_s.mean(1), per_o.mean(1)
        best_constant = constant[int(np.argmin(d_o[constant]))]
        self.constant_validation_loss_ = float(d_o[best_constant])
        self.constant_state_ = self._constant_state(candidates[best_constant])
        self.candidate_losses_, self.candidate_state_losses_ = d_o, d_s
        self.candidate_constant_ = np.isin(np.arange(len(candidates)), constant)
        best, best_out = int(np.argmin(d_s)), one_standard_error(per_o, candidates)
        self.candidate_, self.output_candidate_ = candidates[best], candidates[best_out]
        self.validation_state_loss_ = float(d_s[best])
        self.validation_loss_, self._output_per_episode = float(d_o[best_out]), per_o[best_out]
        self.n_train_states_ = int(len(train) * src.shape[1])
        self._fit_residual(src, tgt, train, val, state_loss, validation_loss, generator,
                           (zs_val, zt_val))
        return self

    def _sides(self, states: np.ndarray, positive, explained: float) -> list[_Side]:
        """Raw coordinates, then the natural (log where apt) ones if they differ."""
        raw = Coordinates(enabled=False).fit(states)
        options = [raw]
        if self.log_coordinates:
            natural = Coordinates(positive).fit(states)
            if not natural.is_identity:
                options.append(natural)
        return [_Side(c, Whitening(explained_variance=explained,
                                   rank_tolerance=self.rank_tolerance).fit(c.forward(states)))
                for c in options]

    def _candidates(self, src: np.ndarray, tgt: np.ndarray, generator: torch.Generator
                    ) -> list[Candidate]:
        """The ridge paths of every coordinate pair and the constant training states."""
        out, n = [], src.shape[0] * src.shape[1]
        zt = [t.whiten(tgt).reshape(n, t.whitening.rank_) for t in self.target_options_]
        if "ridge" not in self._shared:  # the source's half, shared with the shuffled null
            self._shared["ridge"] = [
                ridge_source(side.whiten(src).reshape(n, side.whitening.rank_),
                             side.whitening.variance_, self.ridge_path)
                for side in self.source_options_]
        for i, source in enumerate(self._shared["ridge"]):
            for j in range(len(self.target_options_)):
                coef, intercept = ridge_path(source, zt[j])
                out += [Candidate(i, j, coef[k], intercept[k], s)
                        for k, s in enumerate(self.ridge_path)]
        r_s = self.source_options_[0].whitening.rank_
        if not any(math.isinf(s) for s in self.ridge_path):  # the means are always tried
            out += [Candidate(0, j, np.zeros((r_s, t.whitening.rank_)), zt[j].mean(0),
                              math.inf) for j, t in enumerate(self.target_options_)]
        return out

    def _searched_constants(self, tgt: np.ndarray, val: np.ndarray, loss: ValidationLoss,
                            search: ConstantSearch | None) -> list[Candidate]:
        """The best constant target states on the validation episodes (module docstring,
        3) as candidates carrying their full state; candidates from every training episode
        ``tgt`` ``[E, T, S_M]`` (the validation ones too: a state is one point, chosen by
        its loss on the validation items)."""
        flat = tgt.reshape(-1, tgt.shape[-1])
        if "constants" not in self._shared:  # the same set of states for the null
            self._shared["constants"] = (constant_candidates(flat, self.n_constant_states),
                                         flat.std(0))
        states, spread = self._shared["constants"]
        if states.shape[0] == 0:
            return []
        if search is not None:
            found = np.atleast_2d(search(val, states, spread))
        else:
            per = np.concatenate([
                per_episode(loss(val, np.broadcast_to(
                    chunk[:, None, None], (chunk.shape[0], len(val), *tgt.shape[1:]))),
                    chunk.shape[0]).mean(1)
                for chunk in np.array_split(states, -(-states.shape[0] // CONSTANT_CHUNK))])
            found = states[[int(np.argmin(per))]]
        last, r_s = len(self.target_options_) - 1, self.source_options_[0].whitening.rank_
        report = self.target_options_[last]
        return [Candidate(0, last, np.zeros((r_s, report.whitening.rank_)),
                          report.whiten(state[None])[0], math.inf, state=state)
                for state in found]

    def _states(self, c: Candidate, z: np.ndarray) -> np.ndarray:
        """Full target states ``[..., S_M]`` from candidate ``c``'s whitened predictions."""
        if c.state is not None:
            return np.broadcast_to(c.state, (*z.shape[:-1], c.state.size)).copy()
        return self.target_options_[c.target].unwhiten(z)

    def _unwhiten(self, c: Candidate, zs: np.ndarray, residual=None) -> np.ndarray:
        """Target states ``[..., S_M]`` of candidate ``c`` at whitened sources ``zs``."""
        z = (torch.as_tensor(zs) @ torch.as_tensor(c.coef)).numpy() + c.intercept
        if residual is not None:
            k = residual.shape[-1]
            z[..., :k] += residual
        return self._states(c, z)

    def _constant_state(self, c: Candidate) -> np.ndarray:
        if c.state is not None:
            return c.state.copy()
        return self.target_options_[c.target].unwhiten(c.intercept[None])[0]

    def _state_loss(self, z_true: np.ndarray) -> ValidationLoss:
        """Default selection: D_s from the validation whitened components ``z_true`` [V, T, k]."""
        k = self.report_.whitening.n_components_

        def loss(_val: np.ndarray, states: np.ndarray) -> np.ndarray:
            z = self.report_.whiten(states)[..., :k]
            return ((z - z_true) ** 2).mean(axis=(2, 3))
        return loss

    def _output_losses(self, candidates, z_val, val, loss, per_s, constant) -> np.ndarray:
        """Validation loss ``[C, V]`` of the candidates' outputs. When the best state map is
        exact (validation D_s ≤ :data:`EXACT`), only it and the constants are scored (an
        exact state gives the target's own outputs; the rest are inf)."""
        best = int(np.argmin(per_s.mean(1)))
        scored = (sorted({best, *constant}) if per_s[best].mean() <= EXACT
                  else list(range(len(candidates))))
        states = np.stack([self._states(candidates[i], z_val[i]) for i in scored])
        out = np.full((len(candidates), per_s.shape[1]), np.inf)
        out[scored] = per_episode(loss(val, states), len(scored))
        return out

    def _report_losses(self, candidates: list[Candidate], z_val: list[np.ndarray],
                       z_true: np.ndarray) -> np.ndarray:
        """Validation D_s per candidate and episode ``[C, V]``, from each candidate's
        whitened predictions ``[V, T, r]`` (no round trip when they are in the report's
        coordinates) and the truth's reported components ``z_true`` ``[V, T, k]``."""
        k = self.report_.whitening.n_components_
        report = len(self.target_options_) - 1
        out = np.empty((len(candidates), z_true.shape[0]))
        for i, (c, z) in enumerate(zip(candidates, z_val, strict=True)):
            if c.target != report or c.state is not None:
                z = self.report_.whiten(self._states(c, z))
            out[i] = ((z[..., :k] - z_true) ** 2).mean(axis=(1, 2))
        return np.where(np.isfinite(out), out, np.inf)

    def _fit_residual(self, src, tgt, train, val, state_loss, loss, generator,
                      whitened) -> None:
        """The MLP on the chosen map's residual, kept only if it lowers the validation D_s
        and keeps the validation loss within the constant map's. ``whitened``: the
        validation sources in every source option and targets in the report's."""
        c = self.candidate_
        s_side, t_side = self.source_options_[c.source], self.target_options_[c.target]
        k = t_side.whitening.n_components_
        fitted = self.n_hidden_layers > 0 and self.max_epochs > 0 \
            and self.validation_state_loss_ > EXACT and s_side.whitening.rank_ > 0
        # the training residual only when an MLP is fitted on it (epoch 0 needs validation)
        parts = (("train", train), ("val", val)) if fitted else (("val", val),)
        zs_val, zt_val = whitened
        zs = {key: zs_val[c.source] if key == "val" else s_side.whiten(src[idx])
              for key, idx in parts}
        zt = {key: zt_val if key == "val" and t_side is self.report_ else t_side.whiten(tgt[idx])
              for key, idx in parts}
        n = {"train": len(train) * src.shape[1], "val": len(val) * src.shape[1]}
        res = {key: (zt[key] - self._affine(c, zs[key]))[..., :k].reshape(n[key], k)
               for key, _ in parts}
        flat = {key: zs[key].reshape(n[key], zs[key].shape[-1]) for key, _ in parts}
        if not fitted:
            flat["train"], res["train"] = flat["val"][:0], res["val"][:0]
        self.mlp_, self.best_epoch_, self.n_epochs_, self.history_ = self._fit_mlp(
            flat["train"], res["train"], flat["val"], res["val"], generator, not fitted)
        if self.mlp_ is None:
            return
        states = self._unwhiten(c, zs["val"], self._mlp_residual(zs["val"]))[None]
        per_s = per_episode(state_loss(val, states), 1)[0]
        if per_s.mean() >= self.validation_state_loss_:
            self.mlp_, self.best_epoch_ = None, 0
            return
        self.validation_state_loss_ = float(per_s.mean())
        per_o = per_s if loss is None else per_episode(loss(val, states), 1)[0]
        # The MLP map serves the outputs too only if it beats φ_o by more than 1 s.e.; an
        # invalid (inf) loss on either side makes the margin NaN: φ_o stays
        with np.errstate(invalid="ignore"):
            margin = selection_margin(per_o - self._output_per_episode)
        if per_o.mean() + margin < self.validation_loss_:
            self.output_candidate_, self.validation_loss_ = None, float(per_o.mean())

    @staticmethod
    def _affine(c: Candidate, zs: np.ndarray) -> np.ndarray:
        if not math.isfinite(c.strength) and not c.coef.any():  # a constant: zs @ 0 + c
            return np.broadcast_to(c.intercept, (*zs.shape[:-1], c.intercept.size)).copy()
        return (torch.as_tensor(zs) @ torch.as_tensor(c.coef)).numpy() + c.intercept

    def _mlp_residual(self, zs: np.ndarray) -> np.ndarray:
        shape = zs.shape[:-1]
        with torch.no_grad():
            out = self.mlp_(torch.as_tensor(zs.reshape(-1, zs.shape[-1]), dtype=torch.float32))
        return out.double().numpy().reshape(*shape, -1)

    def _fit_mlp(self, x_tr, y_tr, x_va, y_va, generator, skip: bool):
        """Adam on the residual; returns (module or None, best epoch, epochs run, history)."""
        x_tr, y_tr, x_va, y_va = (torch.as_tensor(v, dtype=torch.float32)
                                  for v in (x_tr, y_tr, x_va, y_va))
        history = [float((y_va**2).mean())]  # epoch 0: the closed-form map alone
        if skip or self.max_epochs == 0 or self.n_hidden_layers == 0:
            return None, 0, 0, history
        module = _mlp(x_tr.shape[1], y_tr.shape[1], self.hidden_width, self.n_hidden_layers,
                      generator)
        optimiser = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        best_state, best_epoch, epoch = copy.deepcopy(module.state_dict()), 0, 0
        n = x_tr.shape[0]
        with torch.enable_grad(), one_thread():  # small batches: threads cost more than they save
            for epoch in range(1, self.max_epochs + 1):
                order = torch.randperm(n, generator=generator)
                for start in range(0, n, self.batch_size):
                    idx = order[start:start + self.batch_size]
                    loss = ((module(x_tr[idx]) - y_tr[idx]) ** 2).mean()
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                with torch.no_grad():
                    history.append(float(((module(x_va) - y_va) ** 2).mean()))
                if history[-1] < history[best_epoch]:
                    best_epoch, best_state = epoch, copy.deepcopy(module.state_dict())
                elif epoch - best_epoch >= self.patience:
                    break
        if best_epoch == 0:
            return None, 0, epoch, history
        module.load_state_dict(best_state)
        module.requires_grad_(False)
        return module.eval(), best_epoch, epoch, history

    # -- fitted attributes -----------------------------------------------------------
    @property
    def n_source_(self) -> int:
        """r_N, the source's numerical rank in the chosen coordinates (inputs of φ)."""
        return self.source_options_[self.candidate_.source].whitening.rank_

    @property
    def n_target_(self) -> int:
        """r_M, the target's numerical rank in the chosen coordinates (outputs of φ)."""
        return self.target_options_[self.candidate_.target].whitening.rank_

    @property
    def n_components_(self) -> int:
        """k_M, the reported target components (D_s is measured on them)."""
        return self.report_.whitening.n_components_

    @property
    def strength_(self) -> float:
        """The chosen relative ridge strength (inf: a constant map)."""
        return self.candidate_.strength

    @property
    def output_strength_(self) -> float:
        """φ_o's relative ridge strength (inf: a constant map; φ's when φ_o is φ + MLP)."""
        c = self.output_candidate_
        return self.candidate_.strength if c is None else c.strength

    @property
    def coordinates_(self) -> tuple[str, str]:
        """The chosen (source, target) coordinates, e.g. ('raw', 'log on entries 0,1')."""
        c = self.candidate_
        return (self.source_options_[c.source].coords.describe(),
                self.target_options_[c.target].coords.describe())

    def _check_pair(self, source, target) -> tuple[np.ndarray, np.ndarray]:
        src, tgt = as_states(source, "source"), as_states(target, "target")
        if src.ndim != 3 or tgt.ndim != 3 or src.shape[:2] != tgt.shape[:2]:
            raise ValueError(
                f"target: expected [episode, t, S] arrays with the same episodes and steps as "
                f"source, got {src.shape} and {tgt.shape}")
        return src, tgt

    def _split(self, n_episodes: int, generator: torch.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        n_val = max(1, round(n_episodes * self.validation_fraction))
        if n_episodes - n_val < 1:
            raise ValueError(f"source: expected at least 2 episodes to fit a map (training and "
                             f"validation episodes), got {n_episodes}")
        order = torch.randperm(n_episodes, generator=generator).numpy()
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    # -- using the fitted map --------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "candidate_"):
            raise RuntimeError("SimulationMap: call fit(source, target) first")

    def transform(self, source) -> np.ndarray:
        """φ(s_N): source states ``[..., S_N]`` → full target states ``[..., S_M]``."""
        self._check_fitted()
        c = self.candidate_
        zs = self.source_options_[c.source].whiten(as_states(source, "source"))
        residual = self._mlp_residual(zs) if self.mlp_ is not None else None
        return self._unwhiten(c, zs, residual)

    def transform_for_outputs(self, source) -> np.ndarray:
        """φ_o, the map with the best validation outputs (module docstring, 4):
        ``[..., S_N]`` → ``[..., S_M]``; :meth:`transform` when that map is φ itself."""
        self._check_fitted()
        c = self.output_candidate_
        if c is None:
            return self.transform(source)
        zs = self.source_options_[c.source].whiten(as_states(source, "source"))
        return self._unwhiten(c, zs)

    def transform_pair(self, source) -> tuple[np.ndarray, np.ndarray]:
        """(:meth:`transform`, :meth:`transform_for_outputs`) of ``source`` ``[..., S_N]``,
        computed once when φ_o is φ."""
        embedded = self.transform(source)
        c = self.output_candidate_
        if c is None or (c is self.candidate_ and self.mlp_ is None):
            return embedded, embedded
        return embedded, self.transform_for_outputs(source)

    def transform_constant(self, source) -> np.ndarray:
        """The best constant map (on validation): ``[..., S_N]`` → ``[..., S_M]``."""
        self._check_fitted()
        shape = np.shape(source)[:-1]
        return np.broadcast_to(self.constant_state_, (*shape, self.constant_state_.size)).copy()

    def squared_error(self, source, target) -> np.ndarray:
        """(φ(z_N) − z_M)² on the k_M reported components, ``[..., k_M]``."""
        return self.squared_error_of(self.transform(source), target)

    def squared_error_of(self, predicted: np.ndarray, target) -> np.ndarray:
        """(z(predicted) − z_M)² on the k_M reported components (report coordinates)."""
        return (self.reported(predicted) - self.reported(as_states(target, "target"))) ** 2

    def reported(self, states: np.ndarray) -> np.ndarray:
        """Target states ``[..., S_M]`` → their k_M reported whitened components
        ``[..., k_M]`` (report coordinates), on which D_s is measured."""
        self._check_fitted()
        return self.report_.whiten(states)[..., :self.n_components_]

    def score(self, source, target) -> float:
        """D_s on held-out states: mean of :meth:`squared_error` (0 exact, 1 = the mean)."""
        return float(self.squared_error(source, target).mean())


def _check_int(value: int, name: str, minimum: int) -> int:
    """An int ≥ ``minimum`` (0 allowed); TypeError for a non-int, ValueError below."""
    if minimum >= 1:
        return check_positive_int(value, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)
