"""A network trained by gradient descent as a state machine (torch.func, vmapped).

A *Learner* (Rabinowitz 2019 §3.1, §4.1, §5.1) is a Mealy machine (``docs/design.md``'s opening):

* state s_t = (parameters θ_t, optimiser state) after t training steps;
* input x_t = one minibatch ``[M, D]`` (per learner; ``[B, M, D]`` for B learners);
* output y_t = f_{θ_{t-1}}(minibatch inputs) ``[B, M, ...]``, the network applied to the
  minibatch *before* the update (y_t = f(x_t, s_{t-1}));
* transition s_t = optimiser step on ∇_θ loss(θ_{t-1}; x_t).

The B learners of a batch are independent (their own initialisation, their own data);
they run as one computation with ``torch.func.vmap`` over ``functional_call`` and
``grad``, so the probe engine probes a Learner at training step t exactly as it probes a
Meta-Learner at episode step t.

Minibatch layout: every row of x_t is ``[network input (input_size), rest]``; the
network sees only the first ``input_size`` features. The rest is read by the loss:

* :class:`MSELoss` (regression): row = ``[x (d_x), y (d_y)]``.
* :class:`ReinforceLoss` (contextual bandit, Rabinowitz eq. 11 and A.5): row =
  ``[one-hot context (K_c), one-hot action taken (K_a), reward (1)]``.

Because the output reads only the network input, probe inputs may carry anything
(e.g. zeros) in the other columns.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from trajprobe.initialisers import torch_default_init, truncated_normal_init
from trajprobe.randomness import make_generator
from trajprobe.validation import check_positive_int

__all__ = [
    "SGD",
    "Adam",
    "DecoupledLinearPolicy",
    "Learner",
    "LearnerLoss",
    "LinearChainLearner",
    "MSELoss",
    "ReinforceLoss",
    "bandit_learner",
    "linear_regression_learner",
    "make_optimiser",
    "mlp_learner",
]

Params = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- optimisers


@dataclass(frozen=True)
class SGD:
    """Plain stochastic gradient descent, θ ← θ - lr · g (``torch.optim.SGD`` defaults)."""

    lr: float = 1e-3

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: expected a finite positive learning rate, got {self.lr!r}")

    def init(self, params: Params) -> dict[str, Any]:
        """Optimiser state for ``params`` (SGD keeps none)."""
        return {}

    def update(
        self, grads: Params, opt_state: dict[str, Any], params: Params
    ) -> tuple[Params, dict[str, Any]]:
        """One step for a single learner (no batch axis): (new params, new state)."""
        return {k: params[k] - self.lr * grads[k] for k in params}, opt_state


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2014) exactly as ``torch.optim.Adam`` with default flags.

    m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², θ ← θ - (lr/(1-β₁ᵗ)) m / (√v/√(1-β₂ᵗ) + ε).
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: expected a finite positive learning rate, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
        if not self.eps > 0:
            raise ValueError(f"eps: expected a positive number, got {self.eps!r}")

    def init(self, params: Params) -> dict[str, Any]:
        """Zero moments and a zero step count (a 0-d tensor per learner)."""
        ref = next(iter(params.values()))
        return {
            "m": {k: torch.zeros_like(p) for k, p in params.items()},
            "v": {k: torch.zeros_like(p) for k, p in params.items()},
            "count": torch.zeros((), dtype=ref.dtype, device=ref.device),
        }

    def update(
        self, grads: Params, opt_state: dict[str, Any], params: Params
    ) -> tuple[Params, dict[str, Any]]:
        """One step for a single learner (no batch axis): (new params, new state)."""
        count = opt_state["count"] + 1
        bc1 = 1 - self.beta1**count
        bc2_sqrt = torch.sqrt(1 - self.beta2**count)
        new_m, new_v, new_p = {}, {}, {}
        for k, p in params.items():
            g = grads[k]
            m = opt_state["m"][k] * self.beta1 + (1 - self.beta1) * g
            v = opt_state["v"][k] * self.beta2 + (1 - self.beta2) * g * g
            denom = v.sqrt() / bc2_sqrt + self.eps
            new_p[k] = p - (self.lr / bc1) * m / denom
            new_m[k], new_v[k] = m, v
        return new_p, {"m": new_m, "v": new_v, "count": count}


Optimiser = SGD | Adam


def make_optimiser(optimiser: str | Optimiser, lr: float | None = None, *,
                   default_lr: float = 1e-3) -> Optimiser:
    """A Learner's optimiser by name, in the library's one vocabulary: ``"sgd"`` or
    ``"adam"`` (as in ``OptimiserConfig`` and ``LearnerConfig``) at ``lr`` (None:
    ``default_lr``). An :class:`SGD` or :class:`Adam` object is returned as is (then
    ``lr`` must be None: its learning rate is its own)."""
    if isinstance(optimiser, SGD | Adam):
        if lr is not None:
            raise ValueError(f"lr: give it with an optimiser's name ('sgd' or 'adam'), not "
                             f"with {optimiser!r}, which has its own")
        return optimiser
    if optimiser not in ("sgd", "adam"):
        raise ValueError(f"optimiser: expected 'sgd' or 'adam', got {optimiser!r}")
    rate = default_lr if lr is None else lr
    return SGD(rate) if optimiser == "sgd" else Adam(rate)


# --------------------------------------------------------------------------- losses


class LearnerLoss(Protocol):
    """The training loss of one learner on one minibatch (no learner-batch axis)."""

    def __call__(self, prediction: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """``prediction`` ``[M, ...]`` = f_θ(batch inputs); ``batch`` ``[M, D]``; a scalar."""
        ...


@dataclass(frozen=True)
class MSELoss:
    """Squared error, mean over every element (``nn.functional.mse_loss``).

    Row layout ``[x (input_size), y (output_size)]``; the l2 objective of Rabinowitz
    §3.1.1 and §4.1.1.
    """

    input_size: int
    output_size: int

    def __call__(self, prediction: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        target = batch[..., self.input_size : self.input_size + self.output_size]
        return torch.nn.functional.mse_loss(prediction, target)


@dataclass(frozen=True)
class ReinforceLoss:
    """REINFORCE (Williams 1992) for a softmax policy: -mean_m r_m log π(a_m | c_m).

    Row layout ``[one-hot context (n_contexts), one-hot action (n_actions), reward]``;
    the prediction is the policy's logits ``[M, n_actions]`` (Rabinowitz eq. 11, A.5).
    ``baseline`` is subtracted from the reward (0: plain REINFORCE).
    """

    n_contexts: int
    n_actions: int
    baseline: float = 0.0

    def __call__(self, prediction: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        k_c, k_a = self.n_contexts, self.n_actions
        action = batch[..., k_c : k_c + k_a]
        reward = batch[..., k_c + k_a]
        log_pi = torch.log_softmax(prediction, dim=-1)
        return -((reward - self.baseline) * (action * log_pi).sum(-1)).mean()


# --------------------------------------------------------------------------- the machine


class Learner:
    """B independent copies of ``module`` trained by ``optimiser`` on ``loss``: a machine.

    State (a dict pytree, learner batch leading on every leaf)::

        {"params": {name: [B, *shape]}, "opt": optimiser state, leaves [B, ...]}

    Args:
        module: the network; called as ``module(x)`` on ``x`` ``[M, input_size]``.
        optimiser: :class:`SGD` or :class:`Adam` (``make_optimiser("adam", lr)`` makes one
            from its name).
        loss: a :class:`LearnerLoss` (e.g. :class:`MSELoss`, :class:`ReinforceLoss`).
        input_size: the network's input features, the leading columns of a minibatch row.
        init: ``init(module, generator)`` re-initialises a module's parameters in place;
            each of the B learners of :meth:`initial_state` gets its own draw from one
            generator seeded with ``seed`` (learner b = the b-th draw, so the first learners
            are the same whatever B). If None, every learner starts from ``module``'s
            current parameters.
        seed: seed of the initialisation draws.

    In an environment (:func:`trajprobe.interact`) a Learner acts on the minibatch of step
    t from its current parameters, then takes its update on it with the rewards received
    (``feedback = "same"``).

    Example:
        >>> learner = linear_regression_learner(n_x=2, n_y=2, seed=0)
        >>> trace = trajprobe.rollout(learner, minibatches)   # [B, T, 100, 4]
    """

    feedback = "same"

    def __init__(
        self,
        module: nn.Module,
        optimiser: Optimiser,
        loss: LearnerLoss,
        *,
        input_size: int,
        init: Callable[[nn.Module, torch.Generator], None] | None = None,
        seed: int = 0,
    ):
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        if not isinstance(optimiser, SGD | Adam):
            raise TypeError(f"optimiser: expected SGD or Adam, got {type(optimiser).__name__}")
        if not callable(loss):
            raise TypeError(
                f"loss: expected a callable (prediction, batch) -> scalar, got {loss!r}"
            )
        check_positive_int(input_size, "input_size")
        if any(True for _ in module.buffers()):
            raise ValueError(
                f"module: {type(module).__name__} has buffers (e.g. batch-norm statistics); "
                "a Learner's state holds parameters only"
            )
        self.module = module
        self.optimiser = optimiser
        self.loss = loss
        self.input_size = input_size
        self.init = init
        self.seed = seed
        self._names = [name for name, _ in module.named_parameters()]
        self._grad = vmap(grad(self._loss_one, has_aux=True), in_dims=(0, 0))
        # SGD is elementwise, so it needs no vmap; Adam's step count is one per learner
        self._update = (self.optimiser.update if isinstance(optimiser, SGD)
                        else vmap(self.optimiser.update, in_dims=(0, 0, 0)))
        self._forward = vmap(self._forward_one, in_dims=(0, 0))

    # -- functional pieces for one learner (vmapped over the learner batch) --------------

    def _forward_one(self, params: Params, inputs: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, params, (inputs,))

    def _loss_one(
        self, params: Params, batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        prediction = self._forward_one(params, batch[..., : self.input_size])
        return self.loss(prediction, batch), prediction.detach()

    def _gradients(self, params: Params, x: torch.Tensor) -> tuple[Params, torch.Tensor]:
        """(∂L/∂θ of every learner, leaves ``[B, ...]``; the prediction ``[B, M, ...]`` it used).

        torch.func.grad differentiates whatever the ambient grad mode (also under
        inference_mode, as in rollout and probe), so no autograd graph leaks out.
        """
        return self._grad(params, x)

    # -- the machine protocol -------------------------------------------------------------

    def initial_state(self, batch_size: int) -> dict[str, Any]:
        """θ_0 for B learners (see ``init``) and fresh optimiser state; leaves ``[B, ...]``."""
        check_positive_int(batch_size, "batch_size")
        if self.init is None:
            draws = [dict(self.module.named_parameters())] * batch_size
        else:
            generator = make_generator(self.seed, self._device())
            draws = []
            for _ in range(batch_size):
                fresh = copy.deepcopy(self.module)
                with torch.no_grad():
                    self.init(fresh, generator)
                draws.append(dict(fresh.named_parameters()))
        params = {n: torch.stack([d[n].detach() for d in draws]).clone() for n in self._names}
        opt = vmap(self.optimiser.init)(params)
        return {"params": params, "opt": opt}

    def step(self, x: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """x ``[B, M, D]`` → (f_{θ_{t-1}}(x[..., :input_size]) ``[B, M, ...]``, s_t)."""
        self._check_input(x, "x")
        params, opt = state["params"], state["opt"]
        grads, y = self._gradients(params, x)  # y: the forward pass the gradient used
        new_params, new_opt = self._update(grads, opt, params)
        return y, {"params": new_params, "opt": new_opt}

    def output(self, x: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        """The output function alone: f_θ(x[..., :input_size]) ``[B, M, ...]``, no update."""
        self._check_input(x, "x")
        return self._forward(state["params"], x[..., : self.input_size])

    def parameters_of(self, state: dict[str, Any], b: int = 0) -> Params:
        """Learner ``b``'s parameters as a ``{name: tensor}`` dict (for ``load_state_dict``)."""
        return {k: v[b] for k, v in state["params"].items()}

    # -- helpers -----------------------------------------------------------------------------

    def _device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")

    def _check_input(self, x: torch.Tensor, name: str) -> None:
        if x.dim() < 3 or x.shape[-1] < self.input_size:
            raise ValueError(
                f"{name}: expected a minibatch per learner [B, M, D] with D >= "
                f"input_size={self.input_size}, got {tuple(x.shape)}"
            )


class LinearChainLearner(Learner):
    """A :class:`Learner` of a bias-free linear chain ŷ = W_L ⋯ W₁x under :class:`MSELoss`,
    its gradients in closed form (Rabinowitz eq. 1; A.1's 2-layer network).

    The same machine, state and optimiser update as :class:`Learner` on the same module;
    the backward pass is written out instead of ``vmap(grad(functional_call))``, whose
    per-step overhead dominates a network this small. With h_0 = x ``[B, M, n_x]``,
    h_l = h_{l-1} W_lᵀ and δ_L = 2 (ŷ - y) / (M n_y) (the gradient of the mean squared
    error), ∂L/∂W_l = δ_lᵀ h_{l-1} ``[B, out_l, in_l]`` and δ_{l-1} = δ_l W_l.
    """

    def __init__(self, module: nn.Module, optimiser: Optimiser, loss: MSELoss, *,
                 input_size: int, init: Callable[[nn.Module, torch.Generator], None] | None = None,
                 seed: int = 0):
        layers = list(module.children()) if isinstance(module, nn.Sequential) else []
        if not layers or not all(isinstance(m, nn.Linear) and m.bias is None for m in layers):
            raise ValueError(f"module: expected an nn.Sequential of nn.Linear layers without "
                             f"bias, got {type(module).__name__}")
        if not isinstance(loss, MSELoss):
            raise TypeError(f"loss: expected an MSELoss, got {type(loss).__name__}")
        super().__init__(module, optimiser, loss, input_size=input_size, init=init, seed=seed)

    def _activations(self, params: Params, x: torch.Tensor) -> list[torch.Tensor]:
        hidden = [x[..., : self.input_size]]
        for name in self._names:
            hidden.append(hidden[-1] @ params[name].transpose(-1, -2))
        return hidden

    def _gradients(self, params: Params, x: torch.Tensor) -> tuple[Params, torch.Tensor]:
        """(∂L/∂W_l ``[B, out_l, in_l]`` for every layer, ŷ ``[B, M, n_y]``), in closed form."""
        hidden = self._activations(params, x)
        y = hidden[-1]
        target = x[..., self.input_size : self.input_size + self.loss.output_size]
        delta = (y - target) * (2 / (y.shape[-2] * y.shape[-1]))
        grads = {}
        for name, h in zip(reversed(self._names), reversed(hidden[:-1]), strict=True):
            grads[name] = delta.transpose(-1, -2) @ h
            delta = delta @ params[name]
        return grads, y

    def output(self, x: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        """f_θ(x[..., :input_size]) ``[B, M, n_y]``, no update."""
        self._check_input(x, "x")
        return self._activations(state["params"], x)[-1]


# --------------------------------------------------------------------------- the papers' learners


def linear_regression_learner(
    n_x: int = 2,
    n_y: int = 2,
    *,
    hidden: int = 10,
    optimiser: str | Optimiser = "sgd",
    lr: float | None = None,
    init_std: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> LinearChainLearner:
    """Rabinowitz A.1: 2-layer linear MLP ŷ = W₂W₁x (no biases, eq. 1), SGD lr 1e-3.

    Minibatch row ``[x (n_x), y (n_y)]``; truncated-normal initialisation (σ = 0.1).
    Pass ``optimiser="adam"`` for the Adam Learner of §3.3 (lr None: 1e-3; see
    :func:`make_optimiser`). Gradients in closed form (:class:`LinearChainLearner`).
    """
    net = nn.Sequential(nn.Linear(n_x, hidden, bias=False), nn.Linear(hidden, n_y, bias=False))
    net = net.to(device=device, dtype=dtype)
    return LinearChainLearner(net, make_optimiser(optimiser or "sgd", lr), MSELoss(n_x, n_y),
                              input_size=n_x,
                              init=partial(truncated_normal_init, std=init_std), seed=seed)


def mlp_learner(
    *,
    n_layers: int = 6,
    hidden: int = 256,
    optimiser: str | Optimiser = "adam",
    lr: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Learner:
    """Rabinowitz A.3: MLP of ``n_layers`` linear layers with ReLUs between, Adam lr 1e-4.

    Maps x ∈ R to y ∈ R (eq. 9 targets); minibatch row ``[x, y]``. "6-layer" is read as six
    linear layers (five hidden ReLU layers of ``hidden`` units); the paper does not give
    the initialisation, so ``nn.Linear``'s default is used (drawn from ``seed``).
    """
    check_positive_int(n_layers, "n_layers")
    sizes = [1] + [hidden] * (n_layers - 1) + [1]
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < n_layers - 1:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers).to(device=device, dtype=dtype)
    return Learner(net, make_optimiser(optimiser or "adam", lr, default_lr=1e-4), MSELoss(1, 1),
                   input_size=1,
                   init=torch_default_init, seed=seed)


class DecoupledLinearPolicy(nn.Module):
    """K_c independent linear–softmax networks, one per context (Rabinowitz §5.1.1).

    Network c has its own ``weight[c]`` ``[K_a, K_c]`` and ``bias[c]`` ``[K_a]``; a row
    with context c is routed to network c only, so no parameter is shared between
    contexts and the overall policy is tabular.
    """

    def __init__(self, n_contexts: int, n_actions: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_contexts, n_actions, n_contexts))
        self.bias = nn.Parameter(torch.zeros(n_contexts, n_actions))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """One-hot contexts ``[M, K_c]`` → logits ``[M, K_a]``."""
        per_network = torch.einsum("cak,mk->mca", self.weight, context) + self.bias
        return torch.einsum("mca,mc->ma", per_network, context)


def bandit_learner(
    n_contexts: int = 5,
    n_actions: int = 5,
    *,
    coupled: bool = True,
    optimiser: str | Optimiser = "adam",
    lr: float | None = None,
    init_std: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Learner:
    """Rabinowitz A.5: linear–softmax policy π(a|c) = softmax(Wc + b) (eq. 11), REINFORCE.

    ``coupled=True``: one network whose bias b is shared by every context (interference,
    Schaul et al. 2019); ``coupled=False``: :class:`DecoupledLinearPolicy`, one network
    per context. Adam lr 1e-4, truncated-normal init with σ = 1/√K_c (1/√5 in the paper).
    Minibatch row ``[one-hot context, one-hot action, reward]`` (a
    :class:`~trajprobe.tasks.ContextualBandit`'s encoding); run it in the bandit with
    ``trajprobe.interact(learner, task, B, T, n_samples=M)``.
    """
    net: nn.Module = (nn.Linear(n_contexts, n_actions) if coupled
                      else DecoupledLinearPolicy(n_contexts, n_actions))
    net = net.to(device=device, dtype=dtype)
    std = init_std if init_std is not None else 1 / math.sqrt(n_contexts)
    return Learner(net, make_optimiser(optimiser or "adam", lr, default_lr=1e-4),
                   ReinforceLoss(n_contexts, n_actions),
                   input_size=n_contexts, init=partial(truncated_normal_init, std=std), seed=seed)
