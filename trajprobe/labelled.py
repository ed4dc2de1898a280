"""Small helpers for labelled results: tensors to numpy, variable names, units and descriptions.

Every variable the library writes carries xarray's (and CF's) ``long_name`` and ``units``
attrs, so ``da.plot()`` labels its own axes and :mod:`trajprobe.plots` reads them;
dimensionless quantities (proportions, probabilities, ratios) have ``units = "1"``, the
CF convention. :func:`axis_label` turns the pair into an axis label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import xarray as xr

__all__ = ["STEP_LABEL", "Label", "axis_label", "describe", "feature_dims", "label_steps",
           "to_numpy"]

Labelled = TypeVar("Labelled", xr.Dataset, xr.DataArray)

STEP_LABEL = "step t (prediction after t − 1 observations)"
"""The ``long_name`` of the time coordinate ``t`` = 1..T: the probe of step t reads the
state after t − 1 observations (Rabinowitz 2019 eq. 5's convention)."""

DIMENSIONLESS = ("1", "")


class Label(NamedTuple):
    """A variable's ``long_name`` (what an axis shows), ``units`` (``"1"`` when
    dimensionless) and an optional one-line ``description`` (maths, equation number)."""

    long_name: str
    units: str
    description: str = ""


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A detached CPU numpy copy of ``x`` (same dtype)."""
    return x.detach().cpu().numpy()


def describe(ds: xr.Dataset, descriptions: Mapping[str, str | Label]) -> xr.Dataset:
    """Label the named variables (or coordinates) of ``ds``; returns ``ds``.

    A :class:`Label` sets ``attrs["long_name"]``, ``attrs["units"]`` and (when given)
    ``attrs["description"]``; a plain string sets ``attrs["description"]`` only.
    """
    for name, text in descriptions.items():
        attrs = ds[name].attrs
        if isinstance(text, Label):
            attrs.update(long_name=text.long_name, units=text.units)
            if text.description:
                attrs["description"] = text.description
        else:
            attrs["description"] = text
    return ds


def label_steps(ds: Labelled) -> Labelled:
    """Give the ``t`` coordinate (steps 1..T) of ``ds`` its ``long_name``
    (:data:`STEP_LABEL`); returns ``ds``."""
    if "t" in ds.coords:
        ds["t"].attrs["long_name"] = STEP_LABEL
    return ds


def axis_label(da: xr.DataArray, default: str | None = None) -> str:
    """``"long_name [units]"`` of ``da`` (``[units]`` left out when dimensionless); falls
    back to ``default``, then to the variable's name."""
    name = da.attrs.get("long_name") or default or str(da.name)
    units = da.attrs.get("units")
    if units is None or str(units) in DIMENSIONLESS:
        return name
    return f"{name} [{units}]"


def feature_dims(prefix: str, n: int) -> tuple[str, ...]:
    """Names for ``n`` trailing feature axes: ``(prefix,)`` or ``(prefix_0, prefix_1, ...)``."""
    if n == 1:
        return (prefix,)
    return tuple(f"{prefix}_{i}" for i in range(n))
