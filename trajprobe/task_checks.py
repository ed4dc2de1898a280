"""Checks on what a user's task or environment returns, where it enters the library.

A task is the extension point (``docs/design.md``, "Tasks own their
measurement"): a researcher writes ``sample``,
``probe_inputs`` and ``summarise``, or an environment's ``sample_params``, ``contexts``,
``reward`` and ``encode``, and the library calls them. Each result is checked once, where
it enters (:func:`trajprobe.measure`, :func:`trajprobe.interact` and the training
player), for its type, shape, dtype and finiteness; a fault is a ``TypeError`` or
``ValueError`` that names the method (``MyEnv.reward``), what was expected, what was
given and how to fix it, instead of a silent ``inf`` in a result or torch's
``shape '[6]' is invalid for input of size 12`` three calls later.

Every function returns the checked value, so a call site reads
``rewards = checks.rewards(task, task.reward(...), rows)``.
"""

from __future__ import annotations

from typing import Any

import torch
import xarray as xr

from trajprobe.task_protocol import Episodes

__all__ = [
    "ENVIRONMENT_METHODS",
    "MEASURED_METHODS",
    "TASK_METHODS",
    "check_methods",
    "contexts",
    "encoded",
    "episodes",
    "params",
    "probe_inputs",
    "rewards",
    "summary",
]

TASK_METHODS = ("sample",)
"""What an open-loop task must define (:class:`~trajprobe.tasks.Task`)."""

MEASURED_METHODS = ("probe_inputs", "summarise")
"""What a task with a measurement must define (:class:`~trajprobe.tasks.Measured`)."""

ENVIRONMENT_METHODS = ("sample_params", "contexts", "reward", "encode")
"""What a closed-loop environment must define for :func:`trajprobe.interact`."""

_SIZES = {"sample": "input_size", "encode": "input_size", "reward": "n_actions"}


def _name(task: Any, method: str) -> str:
    return f"{type(task).__name__}.{method}"


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor {list(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    return f"a {type(value).__name__}"


def check_methods(task: Any, methods: tuple[str, ...], expected: str) -> None:
    """Raise TypeError naming every method of ``methods`` that ``task`` lacks.

    Args:
        task: the user's task or environment.
        methods: the protocol methods needed here (e.g. :data:`ENVIRONMENT_METHODS`).
        expected: what the caller needs, for the message (e.g. ``"a task with a
            measurement"``).
    """
    missing = [m for m in methods if not callable(getattr(task, m, None))]
    if missing:
        raise TypeError(
            f"task: expected {expected} ({', '.join(methods)}); {type(task).__name__} lacks "
            f"{' and '.join(missing)}: define {' and '.join(f'{m}(...)' for m in missing)} "
            "(the protocol: trajprobe.task_protocol; docs/tutorials/measure-your-own-task.md)"
        )


def _tensor(task: Any, method: str, value: Any, expected: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"task: {_name(task, method)} returned {_describe(value)}, expected a "
                        f"torch.Tensor {expected}; convert it with torch.as_tensor")
    return value


def _finite(task: Any, method: str, value: torch.Tensor, what: str, fix: str) -> None:
    if value.is_floating_point() or value.is_complex():
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            kinds = [k for k, m in (("NaN", torch.isnan(value)),
                                    ("inf", torch.isinf(value))) if bool(m.any())]
            raise ValueError(
                f"task: {_name(task, method)} returned non-finite {what} ({' and '.join(kinds)} "
                f"in {int(bad.sum())} of {value.numel()} values, shape {list(value.shape)}); "
                f"expected finite numbers: {fix}"
            )


def _shape(task: Any, method: str, value: torch.Tensor, want: tuple[int | None, ...],
           axes: str, fix: str) -> None:
    ok = value.dim() == len(want) and all(w is None or w == g
                                          for w, g in zip(want, value.shape, strict=True))
    if not ok:
        raise ValueError(f"task: {_name(task, method)} returned shape {list(value.shape)}, "
                         f"expected {axes}; {fix}")


def episodes(task: Any, value: Any, n_episodes: int, n_steps: int) -> Any:
    """Check what ``task.sample(n_episodes, n_steps, ...)`` returned (an ``Episodes``)."""
    if not isinstance(value, Episodes):
        raise TypeError(f"task: {_name(task, 'sample')} returned {_describe(value)}, expected "
                        "trajprobe.tasks.Episodes(inputs [E, T, input_size], targets, params)")
    size = getattr(task, "input_size", None)
    inputs = _tensor(task, "sample", value.inputs, "inputs [E, T, input_size]")
    _shape(task, "sample", inputs, (n_episodes, n_steps, size),
           f"inputs [{n_episodes}, {n_steps}, {size}] (episodes, steps, input_size)",
           "sample must draw exactly the episodes and steps asked for")
    if not inputs.is_floating_point():
        raise TypeError(f"task: {_name(task, 'sample')} returned inputs of dtype {inputs.dtype}, "
                        "expected a floating dtype; honour the dtype argument")
    _finite(task, "sample", inputs, "inputs", "check the sampling of the episodes")
    if value.targets is not None:
        targets = _tensor(task, "sample", value.targets, "targets [E, T, ...]")
        if tuple(targets.shape[:2]) != (n_episodes, n_steps):
            raise ValueError(f"task: {_name(task, 'sample')} returned targets of shape "
                             f"{list(targets.shape)}, expected [{n_episodes}, {n_steps}, ...]")
        _finite(task, "sample", targets, "targets", "check the sampling of the targets")
    params(task, value.params, n_episodes, "sample")
    return value


def params(task: Any, value: Any, n_episodes: int, method: str = "sample_params"
           ) -> dict[str, torch.Tensor]:
    """Check episode parameters: a dict of tensors, each with ``E`` leading."""
    if not isinstance(value, dict):
        raise TypeError(f"task: {_name(task, method)} returned parameters as "
                        f"{_describe(value)}, expected a dict of tensors with the episodes "
                        f"({n_episodes}) leading")
    for key, leaf in value.items():
        leaf = _tensor(task, method, leaf, f"for params[{key!r}] [{n_episodes}, ...]")
        if leaf.dim() == 0 or leaf.shape[0] != n_episodes:
            raise ValueError(f"task: {_name(task, method)} returned params[{key!r}] of shape "
                             f"{list(leaf.shape)}, expected [{n_episodes}, ...] (one row per "
                             "episode)")
    return value


def probe_inputs(task: Any, value: Any, n_episodes: int, n_steps: int,
                 probes: int | None) -> torch.Tensor | None:
    """Check ``task.probe_inputs``: None, or floating finite ``[E, T, N, input_size]``."""
    if value is None:
        return None
    size = getattr(task, "input_size", None)
    expected = (f"[{n_episodes}, {n_steps}, {probes or 'N'}, {size}] (episodes, steps, "
                "probes, input_size)")
    value = _tensor(task, "probe_inputs", value, expected)
    _shape(task, "probe_inputs", value, (n_episodes, n_steps, probes, size), expected,
           "build one probe set per (episode, step) in the machine's input encoding"
           + (f" with N = {probes} as asked" if probes is not None else ""))
    if not value.is_floating_point():
        raise TypeError(f"task: {_name(task, 'probe_inputs')} returned dtype {value.dtype}, "
                        "expected the episodes' floating dtype; build probes like the inputs")
    _finite(task, "probe_inputs", value, "probe inputs", "probes must be valid machine inputs")
    return value


def summary(task: Any, value: Any, n_episodes: int, n_steps: int) -> xr.Dataset:
    """Check ``task.summarise``: an ``xarray.Dataset`` with dims ``episode`` (E), ``t`` (T)."""
    if isinstance(value, xr.DataArray):
        raise TypeError(f"task: {_name(task, 'summarise')} returned an xarray.DataArray, "
                        "expected an xarray.Dataset; return da.to_dataset(name='...')")
    if not isinstance(value, xr.Dataset):
        raise TypeError(f"task: {_name(task, 'summarise')} returned {_describe(value)}, "
                        f"expected an xarray.Dataset with dims episode ({n_episodes}) and "
                        f"t ({n_steps})")
    want = {"episode": n_episodes, "t": n_steps}
    wrong = {d: value.sizes.get(d) for d, n in want.items() if value.sizes.get(d) != n}
    if wrong:
        got = ", ".join(f"{d}: {'missing' if n is None else n}" for d, n in wrong.items())
        raise ValueError(f"task: {_name(task, 'summarise')} must return dims episode and t "
                         f"(episode = {n_episodes}, t = {n_steps}), got a Dataset with dims "
                         f"{dict(value.sizes)} ({got}); keep one entry per episode and step")
    return value


def contexts(task: Any, value: Any, rows: int, n_steps: int) -> torch.Tensor | None:
    """Check ``task.contexts``: None, or integer ``[rows, n_steps]`` indices >= 0."""
    if value is None:
        return None
    expected = f"[{rows}, {n_steps}] (episodes, steps) of context indices (long)"
    value = _tensor(task, "contexts", value, expected)
    _shape(task, "contexts", value, (rows, n_steps), expected,
           "draw one context per episode and step")
    if value.is_floating_point() or value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"task: {_name(task, 'contexts')} returned dtype {value.dtype}, "
                        "expected integer context indices; return .long()")
    n_contexts = getattr(task, "n_contexts", None)
    if bool((value < 0).any()) or (isinstance(n_contexts, int) and
                                   bool((value >= n_contexts).any())):
        top = f"0..{n_contexts - 1}" if isinstance(n_contexts, int) else ">= 0"
        raise ValueError(f"task: {_name(task, 'contexts')} returned indices from "
                         f"{int(value.min())} to {int(value.max())}, expected {top}")
    return value


def rewards(task: Any, value: Any, rows: int) -> torch.Tensor:
    """Check ``task.reward``: finite real rewards ``[rows]``, one per action given."""
    expected = f"[{rows}] (one reward per action given)"
    value = _tensor(task, "reward", value, expected)
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"task: {_name(task, 'reward')} returned dtype {value.dtype}, "
                        "expected real rewards; return a float tensor")
    _shape(task, "reward", value, (rows,), expected,
           "return one reward per row of `action` (not per action of the bandit)"
           if value.numel() != rows else "return a flat tensor, e.g. reward.reshape(-1)")
    _finite(task, "reward", value, "rewards",
            "reward must return finite numbers for every context and action "
            "(clip it, or handle the edge case that gives inf or NaN)")
    return value


def encoded(task: Any, value: Any, rows: int) -> torch.Tensor:
    """Check ``task.encode``: finite floating machine inputs ``[rows, input_size]``."""
    size = getattr(task, "input_size", None)
    expected = f"[{rows}, {size}] (rows, input_size)"
    value = _tensor(task, "encode", value, expected)
    _shape(task, "encode", value, (rows, size), expected,
           "encode one input row per episode, of the task's input_size")
    if not value.is_floating_point():
        raise TypeError(f"task: {_name(task, 'encode')} returned dtype {value.dtype}, "
                        "expected a floating dtype; honour its dtype argument")
    _finite(task, "encode", value, "inputs",
            "encode must map every context, action and reward to finite inputs")
    return value
