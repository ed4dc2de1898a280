"""What the engine does around a user's machine: evaluation mode, and errors that say where.

* :func:`eval_mode` — measurements (:func:`trajprobe.rollout`, :func:`trajprobe.interact`,
  :func:`trajprobe.measure`) run torch modules in evaluation mode, so dropout and
  batch-norm do not make the same seed give different numbers; every module's
  ``training`` flag is restored afterwards. The modules are found on the machine itself
  (when it is an ``nn.Module``) and on its attributes (one level: a plain class holding
  ``self.net = nn.GRU(...)``).
* :func:`checked_step` — ``machine.step`` with a fault inside the user's code re-raised
  (chained, same type where possible) naming the machine's class, the step t, and the
  shapes and dtypes of the input and the state, with a hint for the usual mistakes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from trajprobe import machine as sm
from trajprobe.devices import parameter_dtype

__all__ = ["StepError", "check_outputs", "checked_step", "eval_mode", "modules_of"]


class StepError(RuntimeError):
    """An error inside a machine's ``step`` whose own type could not carry the context."""


def modules_of(machine: Any) -> list[nn.Module]:
    """The torch modules of ``machine``: itself if a module, else its module attributes."""
    if isinstance(machine, nn.Module):
        return [machine]
    return [v for v in getattr(machine, "__dict__", {}).values() if isinstance(v, nn.Module)]


@contextlib.contextmanager
def eval_mode(machine: Any) -> Iterator[None]:
    """Put every torch module of ``machine`` in eval mode; restore each one's mode after."""
    saved = [(m, m.training) for top in modules_of(machine) for m in top.modules()]
    for top in modules_of(machine):
        top.eval()
    try:
        yield
    finally:
        for module, training in saved:
            module.training = training


def _describe(value: Any) -> str:
    leaves = sm.tree_leaves(value) if not isinstance(value, torch.Tensor) else [value]
    parts = [f"{list(leaf.shape)} {str(leaf.dtype).removeprefix('torch.')}"
             if isinstance(leaf, torch.Tensor) else type(leaf).__name__ for leaf in leaves]
    return ", ".join(parts) if parts else type(value).__name__


def _parameter_dtype(machine: Any) -> torch.dtype | None:
    for module in modules_of(machine):
        if (dtype := parameter_dtype(module)) is not None:
            return dtype
    return None


def _hint(machine: Any, x: torch.Tensor, state: Any, message: str) -> str:
    dtype = _parameter_dtype(machine)
    leaves = [leaf for leaf in sm.tree_leaves(state) if isinstance(leaf, torch.Tensor)]
    if isinstance(x, torch.Tensor) and not x.is_floating_point() and dtype is not None:
        return f"the inputs are {x.dtype}; pass floating inputs, e.g. inputs.to({dtype})"
    if dtype is not None:
        for leaf in leaves:
            if leaf.is_floating_point() and leaf.dtype != dtype:
                return (f"a state leaf is {leaf.dtype} but the module's parameters are {dtype}; "
                        f"give initial_state the module's dtype")
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != dtype:
            return f"the inputs are {x.dtype} but the module's parameters are {dtype}"
    batch = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() else None
    for leaf in leaves:
        if leaf.dim() >= 2 and leaf.shape[0] != batch and leaf.shape[1] == batch:
            return ("a state leaf has the batch second, as torch's [layers, batch, hidden]; "
                    "trajprobe states have the batch leading: [batch, layers, hidden]")
    if "mat1 and mat2" in message or "size mismatch" in message:
        return "the input's feature size does not match the module's (input_size)"
    return ""


def checked_step(machine: Any, x: torch.Tensor, state: Any, t: int
                 ) -> tuple[torch.Tensor, Any]:
    """``machine.step(x, state)`` at step ``t`` (1-based), with errors that say where.

    Raises:
        Exception: the error of the user's ``step``, of the same type, re-raised with the
            context (chained).
        TypeError: ``step`` does not return ``(y, state)`` with ``y`` a tensor.
    """
    try:
        result = machine.step(x, state)
    except Exception as err:
        hint = _hint(machine, x, state, str(err))
        first = (str(err).splitlines() or [""])[0][:300]
        message = (f"machine: {type(machine).__name__}.step failed at t={t} with input "
                   f"[{_describe(x)}] and state [{_describe(state)}]: "
                   f"{type(err).__name__}: {first}" + (f" (hint: {hint})" if hint else ""))
        try:
            new = type(err)(message)
        except Exception:
            new = StepError(message)
        if str(new) != message:
            new = StepError(message)
        raise new from err
    if not (isinstance(result, tuple) and len(result) == 2
            and isinstance(result[0], torch.Tensor)):
        got = (f"({', '.join(type(r).__name__ for r in result)})"
               if isinstance(result, tuple) else type(result).__name__)
        raise TypeError(f"machine: {type(machine).__name__}.step must return (y, state) with "
                        f"y a tensor [batch, ...], got {got} at t={t}; if it returns "
                        "(state, y), swap them")
    return result


def check_outputs(y: torch.Tensor, machine: Any, t: int) -> None:
    """Raise ValueError if outputs ``y`` at step ``t`` hold NaN (before torch uses them)."""
    if y.is_floating_point() and bool(torch.isnan(y).any()):
        raise ValueError(f"machine: {type(machine).__name__}.step returned NaN outputs at "
                         f"t={t} (shape {list(y.shape)}); check the module's parameters and "
                         "inputs for NaN or inf")
