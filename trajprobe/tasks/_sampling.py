"""Seeded draws on a generator's own device, moved to the requested device and dtype."""

from __future__ import annotations

import torch

from trajprobe.devices import resolve_device

__all__ = ["rand", "randn"]


def _device(device: torch.device | str | None, generator: torch.Generator) -> torch.device:
    return resolve_device(device) if device is not None else generator.device


def randn(
    shape: tuple[int, ...],
    generator: torch.Generator,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal draws ``shape`` from ``generator`` on ``device`` (default: its own)."""
    out = torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)
    return out.to(_device(device, generator))


def rand(
    shape: tuple[int, ...],
    generator: torch.Generator,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform draws on [0, 1) ``shape`` from ``generator``, on ``device``."""
    out = torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
    return out.to(_device(device, generator))
