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
           "summary_table", "to_numpy"]

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


def summary_table(ds: xr.Dataset, *, max_entries: int = 10) -> str:
    """A short text table of a measurement: every ``(episode, t)`` variable (and every
    entry of one extra dim such as ``mode``, for up to ``max_entries`` entries) at the
    first, middle and last step, as mean ± s.e. over episodes; rows named by ``long_name``.
    Larger variables (a policy's contexts × actions, probed functions) are left out."""
    n = ds.sizes["t"]
    steps = sorted({1, (n + 1) // 2, n})
    rows = []
    for name in ds.data_vars:
        da = ds[name]
        extra = [d for d in da.dims if d not in ("episode", "t")]
        if ({"episode", "t"} - set(da.dims) or len(extra) > 1
                or (extra and da.sizes[extra[0]] > max_entries)):
            continue
        label = str(da.attrs.get("long_name", name))
        entries = [(label, da)] if not extra else [
            (f"{label}, {extra[0]} {value}", da.isel({extra[0]: i}))
            for i, value in enumerate(ds[extra[0]].values)]
        rows += [(text, *(_mean_sem_text(one.isel(t=t - 1).values) for t in steps))
                 for text, one in entries]
    header = ("quantity", *(f"t = {t}" for t in steps))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in [header, *rows])


def _mean_sem_text(values: np.ndarray) -> str:
    from trajprobe.dynamics import mean_sem

    mean, sem = mean_sem(np.asarray(values, dtype=float), skipna=True)
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g} ± {sem:.2g}" if np.isfinite(sem) else f"{mean:.3g}"
