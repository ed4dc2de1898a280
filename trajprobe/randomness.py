"""Randomness: seeds, generators and per-step seeds, in one place.

Randomness is an argument (STYLE.md, principle 6): every public function takes
``seed=`` — an int, a ``torch.Generator`` (used as is, so consecutive calls continue its
stream) or None (fresh entropy) — and turns it into a generator with
:func:`make_generator`. No function touches torch's global RNG.
"""

from __future__ import annotations

import numpy as np
import torch

from trajprobe.devices import DeviceLike, resolve_device

__all__ = ["Seed", "make_generator", "step_seed"]

Seed = int | torch.Generator | None
"""A seed: an int, a ``torch.Generator`` (used as is), or None (fresh entropy)."""

_MASK64 = (1 << 64) - 1


def make_generator(seed: Seed, device: DeviceLike = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` from an int seed, a generator, or None.

    A generator is returned as is (whatever its device). An int must lie in
    [-2**63, 2**64); None seeds from fresh entropy. ``device`` goes through
    :func:`trajprobe.devices.resolve_device` (None: the CPU; an unavailable device raises).
    """
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=resolve_device(device))
    if seed is None:
        gen.seed()
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        if not -(2**63) <= int(seed) < 2**64:
            raise ValueError(f"seed: expected an int in [-2**63, 2**64), got {seed!r}")
        gen.manual_seed(int(seed))
    else:
        raise TypeError(f"seed: expected an int, a torch.Generator or None, got {seed!r}")
    return gen


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def step_seed(seed: int, step: int) -> int:
    """The data seed of outer step ``step`` of a run seeded ``seed``: a 63-bit integer.

    SplitMix64 of ``(seed, step)``: consecutive steps and nearby seeds give unrelated
    seeds, and any step's data can be re-drawn without replaying the run.
    """
    if step < 0:
        raise ValueError(f"step: expected a non-negative step, got {step}")
    return _splitmix64(_splitmix64(int(seed) & _MASK64) ^ int(step)) >> 1
