"""Devices and dtypes: one policy for the whole library.

A device is an argument (STYLE.md, principle 6), never a module-level global and never
guessed: :func:`resolve_device` turns what a caller gave (None, ``"cpu"``, ``"cuda"``,
``"cuda:N"``, ``"mps"`` or a ``torch.device``) into a ``torch.device``. None means the CPU
(no automatic CUDA), and a device this machine does not have is a ``ValueError`` that names
it and what is available (no silent fallback to the CPU).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import nn

__all__ = ["available_devices", "one_thread", "parameter_dtype", "resolve_device"]

DeviceLike = torch.device | str | None
"""A device as callers give it: a ``torch.device``, its string, or None (the CPU)."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices this process can use: ``"cpu"``, every ``"cuda:N"``, and ``"mps"``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def _unavailable(dev: torch.device, why: str) -> ValueError:
    return ValueError(f"device: {str(dev)!r} was asked for but {why}; available here: "
                      f"{', '.join(available_devices())}")


def resolve_device(device: DeviceLike = None) -> torch.device:
    """``device`` as a ``torch.device`` this process can use.

    Args:
        device: None (the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a
            ``torch.device`` of these types.

    Returns:
        The ``torch.device`` (``"cuda"`` stays index-less, i.e. the current CUDA device).

    Raises:
        ValueError: ``device`` does not parse, is of another type, or is not available
            here (CUDA or MPS missing, or a CUDA index beyond the devices present); the
            message names the device and the available ones.
        TypeError: ``device`` is neither None, a string nor a ``torch.device``.
    """
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, torch.device | str):
        raise TypeError(f"device: expected None, a string or a torch.device, got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"device: expected cpu, cuda, cuda:N or mps, got {device!r}") from err
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise _unavailable(dev, "CUDA is not available (torch.cuda.is_available() is False)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise _unavailable(dev, f"only {torch.cuda.device_count()} CUDA device(s) exist")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise _unavailable(dev, "MPS is not available "
                               "(torch.backends.mps.is_available() is False)")
        return dev
    raise ValueError(f"device: expected cpu, cuda, cuda:N or mps, got {device!r}")


def parameter_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of a module's first floating parameter, or None if it has none."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op CPU thread inside the block, the caller's count restored after.

    For loops of many small operations (a learner's ``[B, C, A]`` tables, a 64-unit MLP on
    batches of 1,024), where waking threads costs more than they save: on a 2-core machine
    two threads made a bandit learner's step 9× slower (21 vs 2.4 ms) and the simulation
    map's MLP residual 2× slower (``benchmarks/simulation_vs_dsa.py --threads 1`` against
    ``--threads 2``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
