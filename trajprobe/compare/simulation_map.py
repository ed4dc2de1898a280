"""The simulation map φ as a fitted estimator: whitening, affine least squares, MLP residual.

Mikulik et al. 2020 §3.4 learn φ from N's states to M's states along shared input
histories. Here φ is built so that identity and any invertible affine change of
coordinates are represented *exactly*, and only what is nonlinear is learned:

1. :class:`Whitening` of each machine's state vectors s ``[S]`` (fitted on the training
   episodes): principal components of the centred states, every component whose variance
   is above ``rank_tolerance`` × the largest kept (the numerical rank r; the others are
   null directions), each scaled to unit variance, z = (s − μ) Vᵀ / √λ ``[r]``. The first
   k ≤ r components, the fewest that explain ``explained_variance`` of the variance, are
   the *reported* coordinates on which D_s is measured (the embedding dimension).
2. An affine map z_M ≈ z_N A + c fitted by least squares onto **all** r_M whitened target
   components. The source is whitened on the same training states, so the normal
   equations are (N − 1) I: the solve is perfectly conditioned by construction (null
   directions were dropped by the rank tolerance). An invertible affine copy of the
   source is recovered to round-off.
3. An MLP (ReLU) on z_N that predicts the affine part's residual on the k_M reported
   target components, with its last layer initialised to zero and early stopping on
   validation *episodes* that counts the affine map alone as epoch 0, so the MLP is kept
   only if it beats the affine map on episodes it never saw.

φ(s_N) is then a full target state: ``transform`` maps the whitened prediction back
through the target's whitening (the r_M − k_M unreported directions by the affine part,
the null directions at their training mean), so the target's output function can be
evaluated on it even when it depends on directions the reported embedding drops.

Score (D_s): mean over states and the k_M reported components of (φ(z_N) − z_M)², in the
target's whitened units: 0 = exact, 1 = no better than predicting the target's mean state.

Invariances (of D_s, for a fixed seed): any invertible affine change of the *source's*
coordinates (absorbed by the whitening and the affine part; the MLP sees whitened inputs);
rotations, reflections, isotropic scaling and translation of the *target's* coordinates
(PCA and whitening are equivariant to them). A general invertible linear change of the
target changes which k components are reported and so D_s, except when k = r (e.g.
``explained_variance=1``). Not symmetric (φ has a direction), not a metric.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from trajprobe.initialisers import torch_default_init
from trajprobe.tasks.base import Seed, make_generator

__all__ = ["SimulationMap", "Whitening"]


def _check_fraction(value: float, name: str, *, closed_right: bool = False) -> float:
    ok = 0 < value <= 1 if closed_right else 0 < value < 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
        bounds = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(f"{name}: expected a number in {bounds}, got {value!r}")
    return float(value)


def _check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def _as_states(states, name: str) -> np.ndarray:
    """``[E, T, S]`` (or ``[N, S]``) float64 array, finite."""
    if isinstance(states, torch.Tensor):
        states = states.detach().to("cpu", torch.float64).numpy()
    out = np.asarray(states, dtype=np.float64)
    if out.ndim not in (2, 3):
        raise ValueError(f"{name}: expected shape [episode, t, S] or [N, S], got {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: state vectors contain NaN or inf")
    return out


class Whitening:
    """PCA to the numerical rank, then unit variance per component (module docstring, 1).

    Args:
        explained_variance: the reported components are the fewest k whose variances sum
            to at least this share of the total (1 = all r).
        rank_tolerance: components with variance ≤ this × the largest are null directions
            (dropped; mapped back at their mean).

    Fitted attributes:
        mean_ ``[S]``, components_ ``[r, S]`` (orthonormal rows), variance_ ``[r]``,
        explained_variance_ratio_ ``[r]``, rank_ (r), n_components_ (k),
        condition_number_ (√(λ_1/λ_r); inf when r = 0), total_variance_.
    """

    def __init__(self, *, explained_variance: float = 0.99, rank_tolerance: float = 1e-8):
        self.explained_variance = _check_fraction(explained_variance, "explained_variance",
                                                  closed_right=True)
        self.rank_tolerance = _check_fraction(rank_tolerance, "rank_tolerance")

    def fit(self, states) -> Whitening:
        """Fit on ``states`` ``[N, S]`` (or ``[E, T, S]``, flattened)."""
        x = _as_states(states, "states")
        x = x.reshape(-1, x.shape[-1])
        if x.shape[0] < 2:
            raise ValueError(f"states: expected at least 2 states to whiten, got {x.shape[0]}")
        self.mean_ = x.mean(0)
        # Eigenvectors of the S × S covariance (torch: its thread setting is respected, and
        # an S × S problem is far cheaper than the SVD of the N × S data).
        xc = torch.as_tensor(x - self.mean_)
        evals, evecs = torch.linalg.eigh(xc.T @ xc / (x.shape[0] - 1))
        variance = evals.flip(0).clamp_min(0.0).numpy()
        vt = evecs.flip(1).T.numpy()
        self.total_variance_ = float(variance.sum())
        top = float(variance[0]) if variance.size else 0.0
        keep = variance > self.rank_tolerance * top if top > 0 else np.zeros_like(variance, bool)
        self.rank_ = int(keep.sum())
        self.components_ = vt[: self.rank_]
        self.variance_ = variance[: self.rank_]
        ratio = self.variance_ / self.total_variance_ if self.rank_ else self.variance_
        self.explained_variance_ratio_ = ratio
        cumulative = np.cumsum(ratio)
        k = int(np.searchsorted(cumulative, self.explained_variance * (1 - 1e-12)) + 1)
        self.n_components_ = min(k, self.rank_)
        self.condition_number_ = (math.sqrt(self.variance_[0] / self.variance_[-1])
                                  if self.rank_ else math.inf)
        return self

    def transform(self, states) -> np.ndarray:
        """States ``[..., S]`` → whitened coordinates ``[..., r]``."""
        x = torch.as_tensor(_as_states(states, "states") - self.mean_)
        return (x @ torch.as_tensor(self.components_.T / np.sqrt(self.variance_))).numpy()

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``[..., r]`` → states ``[..., S]`` (null directions at the mean)."""
        back = torch.as_tensor(np.sqrt(self.variance_)[:, None] * self.components_)
        return (torch.as_tensor(np.asarray(z, dtype=np.float64)) @ back).numpy() + self.mean_


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
    """φ: source states → target states, identity- and affine-exact (module docstring).

    Hyper-parameters (constructor), work in :meth:`fit`, fitted attributes end in ``_``.

    Args:
        explained_variance: share of the target's variance its reported components explain
            (the embedding dimension k; D_s is measured on them). 1 = all of the rank.
        rank_tolerance: relative variance below which a direction is null (both machines).
        ridge: added as ``ridge`` × N to the diagonal of the normal equations. Not needed
            for conditioning (the whitened training inputs have covariance exactly I), and
            any ridge > 0 shrinks the map, so identity is no longer exact; 0 by default.
        hidden_width, n_hidden_layers: the residual MLP (0 hidden layers: affine map only).
        learning_rate, batch_size, max_epochs, patience: Adam on the residual; early
            stopping on the validation episodes, best epoch's weights restored (a copy).
        validation_fraction: share of the training episodes held out for early stopping.
        seed: fixes the validation split, the MLP's initial weights and minibatch order.
    """

    def __init__(
        self,
        *,
        explained_variance: float = 0.99,
        rank_tolerance: float = 1e-8,
        ridge: float = 0.0,
        hidden_width: int = 64,
        n_hidden_layers: int = 2,
        learning_rate: float = 1e-2,
        batch_size: int = 1024,
        max_epochs: int = 40,
        patience: int = 3,
        validation_fraction: float = 0.2,
        seed: Seed = 0,
    ):
        self.explained_variance = _check_fraction(explained_variance, "explained_variance",
                                                  closed_right=True)
        self.rank_tolerance = _check_fraction(rank_tolerance, "rank_tolerance")
        if not (isinstance(ridge, (int, float)) and ridge >= 0 and math.isfinite(ridge)):
            raise ValueError(f"ridge: expected a finite number >= 0, got {ridge!r}")
        self.ridge = float(ridge)
        self.hidden_width = _check_positive_int(hidden_width, "hidden_width")
        self.n_hidden_layers = _check_positive_int(n_hidden_layers, "n_hidden_layers", 0)
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0
                and math.isfinite(learning_rate)):
            raise ValueError(f"learning_rate: expected a finite number > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.max_epochs = _check_positive_int(max_epochs, "max_epochs", 0)
        self.patience = _check_positive_int(patience, "patience")
        self.validation_fraction = _check_fraction(validation_fraction, "validation_fraction")
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------
    def fit(self, source, target) -> SimulationMap:
        """Fit φ on paired states: ``source`` ``[E, T, S_N]``, ``target`` ``[E, T, S_M]``.

        Episodes (not steps) are split into training and validation sets, so the early
        stopping never sees a step of a validation episode during training.
        """
        src, tgt = self._check_pair(source, target)
        generator = make_generator(self.seed)
        train, val = self._split(src.shape[0], generator)
        self.source_whitening_ = Whitening(
            explained_variance=1.0, rank_tolerance=self.rank_tolerance).fit(src[train])
        self.target_whitening_ = Whitening(
            explained_variance=self.explained_variance,
            rank_tolerance=self.rank_tolerance).fit(tgt[train])
        if self.target_whitening_.rank_ == 0:
            raise ValueError("target: the target's states have no variance on the training "
                             "episodes; there is nothing to map onto")
        n_t = src.shape[1]
        zs = {k: self.source_whitening_.transform(src[idx]).reshape(len(idx) * n_t,
                                                                     self.n_source_)
              for k, idx in (("train", train), ("val", val))}
        zt = {k: self.target_whitening_.transform(tgt[idx]).reshape(-1, self.n_target_)
              for k, idx in (("train", train), ("val", val))}
        self.coef_, self.intercept_ = self._fit_affine(zs["train"], zt["train"])
        k = self.n_components_
        res = {key: (zt[key] - self._affine(zs[key]))[:, :k] for key in zs}
        self.mlp_, self.best_epoch_, self.n_epochs_, self.history_ = self._fit_mlp(
            zs["train"], res["train"], zs["val"], res["val"], generator)
        self.validation_score_ = self.history_[self.best_epoch_]
        self.n_train_states_ = int(zs["train"].shape[0])
        return self

    @property
    def n_source_(self) -> int:
        """r_N, the source's numerical rank (inputs of φ)."""
        return self.source_whitening_.rank_

    @property
    def n_target_(self) -> int:
        """r_M, the target's numerical rank (outputs of φ)."""
        return self.target_whitening_.rank_

    @property
    def n_components_(self) -> int:
        """k_M, the reported target components (D_s is measured on them)."""
        return self.target_whitening_.n_components_

    def _check_pair(self, source, target) -> tuple[np.ndarray, np.ndarray]:
        src, tgt = _as_states(source, "source"), _as_states(target, "target")
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

    def _fit_affine(self, zs: np.ndarray, zt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least squares zt ≈ zs A + c (centred normal equations, ridge-guarded)."""
        mu_s, mu_t = zs.mean(0), zt.mean(0)
        xs = torch.as_tensor(zs - mu_s)
        if xs.shape[1] == 0:
            return np.zeros((0, zt.shape[1])), mu_t
        gram = xs.T @ xs
        gram.diagonal().add_(self.ridge * zs.shape[0])
        coef = torch.linalg.solve(gram, xs.T @ torch.as_tensor(zt - mu_t)).numpy()
        return coef, mu_t - mu_s @ coef

    def _affine(self, zs: np.ndarray) -> np.ndarray:
        if zs.shape[1] == 0:  # a source without variance: the map is the target's mean
            return np.broadcast_to(self.intercept_, (zs.shape[0], self.n_target_)).copy()
        return (torch.as_tensor(zs) @ torch.as_tensor(self.coef_)).numpy() + self.intercept_

    def _fit_mlp(self, x_tr, y_tr, x_va, y_va, generator):
        """Adam on the residual; returns (module or None, best epoch, epochs run, history)."""
        x_tr, y_tr, x_va, y_va = (torch.as_tensor(v, dtype=torch.float32)
                                  for v in (x_tr, y_tr, x_va, y_va))
        history = [float((y_va**2).mean())]  # epoch 0: the affine map alone
        if self.max_epochs == 0 or self.n_hidden_layers == 0 or x_tr.shape[1] == 0:
            return None, 0, 0, history
        module = _mlp(x_tr.shape[1], y_tr.shape[1], self.hidden_width, self.n_hidden_layers,
                      generator)
        optimiser = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        best_state, best_epoch, epoch = copy.deepcopy(module.state_dict()), 0, 0
        n = x_tr.shape[0]
        with torch.enable_grad():
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

    # -- using the fitted map --------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("SimulationMap: call fit(source, target) first")

    def predict_whitened(self, source) -> np.ndarray:
        """φ in whitened coordinates: source states ``[..., S_N]`` → ``[..., r_M]``."""
        self._check_fitted()
        zs = self.source_whitening_.transform(source)
        shape = zs.shape[:-1]
        zs = zs.reshape(math.prod(shape), self.n_source_)
        out = self._affine(zs)
        if self.mlp_ is not None:
            with torch.no_grad():
                res = self.mlp_(torch.as_tensor(zs, dtype=torch.float32)).double().numpy()
            out[:, : self.n_components_] += res
        return out.reshape(*shape, self.n_target_)

    def transform(self, source) -> np.ndarray:
        """φ(s_N): source states ``[..., S_N]`` → full target states ``[..., S_M]``."""
        predicted = self.predict_whitened(source)
        return self.target_whitening_.inverse_transform(predicted)

    def squared_error(self, source, target) -> np.ndarray:
        """(φ(z_N) − z_M)² on the k_M reported components, ``[..., k_M]``."""
        predicted = self.predict_whitened(source)[..., : self.n_components_]
        truth = self.target_whitening_.transform(target)[..., : self.n_components_]
        return (predicted - truth) ** 2

    def score(self, source, target) -> float:
        """D_s on held-out states: mean of :meth:`squared_error` (0 exact, 1 = the mean)."""
        return float(self.squared_error(source, target).mean())
