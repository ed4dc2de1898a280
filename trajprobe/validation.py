"""Argument validation in one place: messages name the argument, the expected and the given."""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import xarray as xr

__all__ = [
    "as_tensor",
    "check_finite_tensor",
    "check_ndim_at_least",
    "check_positive",
    "check_positive_int",
    "did_you_mean",
    "renamed_arguments",
]

F = TypeVar("F", bound=Callable[..., Any])


def as_tensor(
    value: Any,
    name: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    dims: Sequence[str] | None = None,
) -> torch.Tensor:
    """Convert a tensor, numpy array or xarray object to a tensor on ``device``.

    Args:
        value: the array.
        name: the argument's name, for error messages.
        device, dtype: target device and dtype (unchanged if None; numpy floats become
            the torch default dtype only when ``dtype`` is given).
        dims: for an ``xarray.DataArray``, the leading dimension names expected; the array
            is transposed so these come first in this order (other dims keep their order).
    """
    if isinstance(value, xr.DataArray):
        if dims is not None:
            missing = [d for d in dims if d not in value.dims]
            if missing:
                raise ValueError(
                    f"{name}: expected a DataArray with dims {tuple(dims)} leading, "
                    f"got dims {value.dims}"
                )
            value = value.transpose(*dims, ...)
        value = value.values
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor, numpy array or xarray.DataArray, "
            f"got {type(value).__name__}"
        )
    if device is not None or dtype is not None:
        value = value.to(device=device, dtype=dtype)
    return value


def check_ndim_at_least(value: torch.Tensor, ndim: int, name: str, axes: str) -> None:
    """Raise ValueError unless ``value`` has at least ``ndim`` axes (described by ``axes``)."""
    if value.dim() < ndim:
        raise ValueError(f"{name}: expected shape {axes}, got {tuple(value.shape)}")


def check_finite_tensor(value: torch.Tensor, name: str) -> None:
    """Raise ValueError if a floating tensor holds NaN or infinity."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_positive(value: float, name: str, *, strict: bool = True) -> None:
    """Raise ValueError unless ``value`` is positive (or non-negative with strict=False).

    Python and numpy real scalars are accepted; anything else (a bool included) raises
    TypeError.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    ok = value > 0 if strict else value >= 0
    if not ok or not np.isfinite(value):
        kind = "positive" if strict else "non-negative"
        raise ValueError(f"{name}: expected a finite {kind} number, got {value!r}")


def check_positive_int(value: Any, name: str) -> int:
    """Check that ``value`` is an integer >= 1 and return it as a Python int.

    Python ints and numpy integer scalars are accepted (any :class:`numbers.Integral` but
    a bool).

    Raises:
        TypeError: ``value`` is not an integer (a float, a bool, a string, ...).
        ValueError: ``value`` is < 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def did_you_mean(given: Any, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``given``, or ``""``.

    Append it to an error message about an unknown name (:func:`difflib.get_close_matches`).
    """
    import difflib

    close = difflib.get_close_matches(str(given), list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def renamed_arguments(**renames: str) -> Callable[[F], F]:
    """Keep old keyword names working for one release: ``@renamed_arguments(n_steps="steps")``.

    A call with an old name (``f(n_steps=20)``) runs as ``f(steps=20)`` and warns with a
    ``DeprecationWarning`` that names the new one; giving both is a ``TypeError``. Only
    keywords are renamed (positional calls are unaffected), and unknown keywords still
    fail as usual.
    """

    def decorate(fn: F) -> F:
        name = fn.__qualname__.removesuffix(".__init__")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{name}: got both {old}= (deprecated) and {new}=; "
                                    f"pass {new}= only")
                warnings.warn(f"{name}: {old}= is deprecated and will be removed in the next "
                              f"release; use {new}= instead", DeprecationWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
