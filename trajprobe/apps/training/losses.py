"""The training losses and the differentiable unroll they share.

* :func:`mse` — Rabinowitz eq. 4, (1/T) Σ_t ||ŷ_t - y_t||², mean over episodes;
* :func:`log_loss` — -(1/T) Σ_t log p(y_t | ŷ_t) under ``model.distribution`` (Mikulik §3.1);
* :func:`discounted_returns` — G_t = Σ_{k≥t} γ^{k-t} r_k of the actor-critic loss.
"""

from __future__ import annotations

import torch
from torch import nn

from trajprobe.traces import step_through

__all__ = ["discounted_returns", "log_loss", "mse", "unroll"]


def discounted_returns(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """G_t = Σ_{k=t}^{T} γ^{k-t} r_k for rewards ``[E, T]``; returns ``[E, T]``.

    One matrix product, G = r Γ with Γ_{kt} = γ^{k-t} for k ≥ t and 0 otherwise.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards: expected shape [episode, t], got {tuple(rewards.shape)}")
    n_steps = rewards.shape[1]
    k = torch.arange(n_steps, device=rewards.device)
    lag = (k[:, None] - k[None, :]).to(rewards.dtype)  # k - t
    weights = torch.where(lag >= 0, torch.tensor(float(discount), dtype=rewards.dtype,
                                                 device=rewards.device).pow(lag.clamp_min(0)), 0)
    return rewards @ weights


def unroll(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Outputs ``[E, T, ...]`` of ``model`` on ``inputs`` ``[E, T, ...]``, differentiable in
    its parameters: ``model.unroll`` when it has one, else step by step."""
    fused = getattr(model, "unroll", None)
    if callable(fused):
        return fused(inputs)[0]
    return step_through(model, inputs, model.initial_state(inputs.shape[0]), checked=False,
                        keep_states=False)[0]


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rabinowitz eq. 4: (1/T) Σ_t ||ŷ_t - y_t||², averaged over episodes."""
    if targets.dim() == 2:
        targets = targets.unsqueeze(-1)
    if outputs.shape != targets.shape:
        raise ValueError(f"targets: expected the model's output shape {tuple(outputs.shape)}, "
                         f"got {tuple(targets.shape)}")
    return (outputs - targets).pow(2).flatten(2).sum(-1).mean()


def log_loss(model: nn.Module, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-(1/T) Σ_t log p(y_t | ŷ_t), averaged over episodes."""
    dist_fn = getattr(model, "distribution", None)
    if not callable(dist_fn):
        raise TypeError(f"model: loss='log_loss' needs model.distribution(y); "
                        f"{type(model).__name__} has none")
    dist = dist_fn(outputs)
    expected = tuple(dist.batch_shape + dist.event_shape)
    if tuple(targets.shape) != expected and tuple(targets.shape[:-1]) == expected \
            and targets.shape[-1] == 1:
        targets = targets[..., 0]
    if tuple(targets.shape) != expected:
        raise ValueError(f"targets: expected shape {expected} for {type(dist).__name__}, "
                         f"got {tuple(targets.shape)}")
    log_prob = dist.log_prob(targets)
    return -log_prob.flatten(2).sum(-1).mean() if log_prob.dim() > 2 else -log_prob.mean()
