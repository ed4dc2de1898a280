"""Small helpers for labelled results: tensors to numpy, variable descriptions."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

__all__ = ["describe", "feature_dims", "to_numpy"]


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A detached CPU numpy copy of ``x`` (same dtype)."""
    return x.detach().cpu().numpy()


def describe(ds: xr.Dataset, descriptions: dict[str, str]) -> xr.Dataset:
    """Set ``attrs["description"]`` of each named variable of ``ds``; returns ``ds``."""
    for name, text in descriptions.items():
        ds[name].attrs["description"] = text
    return ds


def feature_dims(prefix: str, n: int) -> tuple[str, ...]:
    """Names for ``n`` trailing feature axes: ``(prefix,)`` or ``(prefix_0, prefix_1, ...)``."""
    if n == 1:
        return (prefix,)
    return tuple(f"{prefix}_{i}" for i in range(n))
