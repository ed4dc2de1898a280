"""A pure JAX step function as a torch-facing :class:`~trajprobe.StateMachine`."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from trajprobe import machine as sm
from trajprobe.adapters.jax.bridge import (
    StateCodec,
    batch_shape,
    jax_device,
    to_jax,
    to_torch,
    torch_dtype,
)
from trajprobe.validation import check_positive_int

__all__ = ["JaxMachine", "as_input_shape", "check_params", "not_jittable"]

JaxState = Any
"""A JAX pytree of arrays (tuples, lists, dicts, named tuples, dataclasses, ...)."""

_CACHED_INITIAL_STATES = 8
"""How many batch sizes of initial states a machine keeps (the engine asks for a few)."""


class JaxMachine:
    """A JAX recurrent model as a machine: torch tensors in, torch tensors out.

    Wraps a pure, batched step function ``step(params, x, state) -> (y, state)``. Each
    call converts the torch input and state to JAX arrays (DLPack, no copy where the
    platform allows), runs ``jax.jit(step)`` (compiled once per input shape and batch
    size, then cached), and converts the output and the new state back. The state is
    any JAX pytree whose leaves have the batch leading; on the torch side it is the same
    tree (named tuples, tuples, lists and dicts as they are; dataclasses and other JAX
    nodes as dicts of their fields), so the probe engine can fork and stack it.

    Gradients do not flow back to torch: a JAX machine is measured, not trained, here.

    Args:
        step: ``step(params, x [B, ...], state) -> (y [B, ...], state)``, pure and batched
            (``jax.vmap`` an unbatched cell first). ``y`` is one array.
        params: the model's parameters, a JAX pytree (``None`` if it has none); passed to
            ``step`` as an argument, never baked into the compiled code.
        initial_state: ``initial_state(params, batch_size)`` returning s_0 with the batch
            leading on every leaf, or a JAX pytree for *one* episode (no batch axis),
            repeated ``B`` times.
        output: optional ``output(params, x, state) -> y``, the output function alone
            (default: ``step(...)[0]``; XLA then drops the work only the state needs).
        input_shape: the per-episode input shape (an int for vectors); when given, ``x``
            is checked against ``[B, *input_shape]`` before it reaches JAX.
        distribution: optional ``distribution(y: torch.Tensor)`` returning a
            ``torch.distributions.Distribution``, for KL-based comparisons.
        device: torch device of the tensors given and returned (``"cpu"``, ``"cuda:0"``);
            the JAX computation runs on the matching JAX device.
        pad_batches: keep the set of compiled shapes small and fixed: a batch runs in
            pieces of at most 8192 rows (views of the batch, no copy), and a piece of
            another size is padded to the next size of a ladder (8, 16, 32, 64, then 8
            sizes per octave: 72, 80, ..., 7168, 8192; at most 1/8 padding), its padding
            rows repeating the first episode and dropped from the results. Rollouts, the
            engine's chunks and their remainders, for any numbers of episodes, steps and
            probes, then reuse a few compiled steps. False compiles every batch size
            exactly, in one piece. Also an attribute, which may be switched later.

    Attributes:
        params: the parameters (on the JAX device); see :meth:`with_params`.
        dtype: the torch floating dtype inputs must have (the state's).
        device: the torch device.

    Example:
        >>> def step(params, x, h):
        ...     h = jnp.tanh(x @ params["w"] + h @ params["u"])
        ...     return h @ params["v"], h
        >>> machine = JaxMachine(step, params, lambda params, b: jnp.zeros((b, 64)))
    """

    def __init__(
        self,
        step: Callable[[Any, jax.Array, JaxState], tuple[jax.Array, JaxState]],
        params: Any,
        initial_state: Callable[[Any, int], JaxState] | JaxState,
        *,
        output: Callable[[Any, jax.Array, JaxState], jax.Array] | None = None,
        input_shape: int | tuple[int, ...] | None = None,
        distribution: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
        device: torch.device | str = "cpu",
        pad_batches: bool = True,
    ):
        for name, fn in (("step", step), ("output", output), ("distribution", distribution)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
        if not callable(step):
            raise TypeError("step: expected a callable step(params, x, state), got None")
        self.device = torch.device(device)
        self._jax_device = jax_device(self.device)
        self.params = _put_params(params, self._jax_device)
        self.input_shape = as_input_shape(input_shape)
        self._step_fn = step
        self._output_fn = output
        self._initial_state = initial_state
        self.pad_batches = bool(pad_batches)
        self._initial_cache: OrderedDict[int, Any] = OrderedDict()
        template = self._build_initial_state(1)
        self._codec = StateCodec(template, "initial_state")
        self._template = self._codec.to_torch(jax.tree_util.tree_leaves(template), self.device,
                                              copy=True)
        self._shared_initial_state = self._check_batch_leading(template)
        self.dtype = _floating_dtype(self.params, template)
        self._step_jit = jax.jit(self._traced_step)
        self._output_jit = jax.jit(self._traced_output)
        if distribution is not None:
            self.distribution = distribution

    # --- the protocol -------------------------------------------------------------------

    def initial_state(self, batch_size: int) -> Any:
        """s_0 for ``batch_size`` episodes as a torch pytree, every leaf ``[B, ...]``."""
        check_positive_int(batch_size, "batch_size")
        if self._shared_initial_state:  # every episode starts alike: repeat s_0 of one
            return sm.tree_map(lambda leaf: leaf.expand(batch_size, *leaf.shape[1:]).clone(),
                              self._template)
        leaves = self._initial_cache.get(batch_size)
        if leaves is None:
            leaves = jax.tree_util.tree_leaves(self._build_initial_state(batch_size))
            self._initial_cache[batch_size] = leaves
            if len(self._initial_cache) > _CACHED_INITIAL_STATES:
                self._initial_cache.popitem(last=False)
        return self._codec.to_torch(leaves, self.device, copy=True)

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One step: x ``[B, ...]`` and s_{t-1} to (y_t ``[B, ...]``, s_t), all torch."""
        x, leaves = self._checked(x, state)
        y, new_leaves = self._run(self._step_jit, x, leaves, with_state=True)
        return y, self._codec.unflatten(new_leaves)

    def output(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        """The output function alone: y_t = f(x_t, s_{t-1}) ``[B, ...]``."""
        x, leaves = self._checked(x, state)
        return self._run(self._output_jit, x, leaves, with_state=False)[0]

    # --- JAX-side helpers ---------------------------------------------------------------

    def with_params(self, params: Any) -> JaxMachine:
        """The same machine with other parameters of the same shapes (e.g. a checkpoint).

        Shares the compiled step, so a sweep over checkpoints compiles once.
        """
        new_params = _put_params(params, self._jax_device)
        old = jax.tree_util.tree_map(lambda a: (a.shape, np.dtype(a.dtype)), self.params)
        new = jax.tree_util.tree_map(lambda a: (a.shape, np.dtype(a.dtype)), new_params)
        if jax.tree_util.tree_structure(old) != jax.tree_util.tree_structure(new) or (
            jax.tree_util.tree_leaves(old) != jax.tree_util.tree_leaves(new)
        ):
            raise ValueError(
                "params: expected the structure, shapes and dtypes of this machine's params, "
                "got different ones; build a new machine for another architecture"
            )
        clone = copy.copy(self)
        clone.params = new_params
        clone._initial_cache = OrderedDict()
        template = clone._build_initial_state(1)
        if jax.tree_util.tree_structure(template) != self._codec.treedef:
            raise ValueError("params: the initial state's structure changed with the params")
        clone._template = self._codec.to_torch(jax.tree_util.tree_leaves(template), self.device,
                                               copy=True)
        clone._shared_initial_state = clone._check_batch_leading(template)
        return clone

    def __repr__(self) -> str:
        name = getattr(self._step_fn, "__qualname__", type(self._step_fn).__name__)
        return (
            f"{type(self).__name__}(step={name}, state=({self._codec.describe()}), "
            f"device={self.device})"
        )

    def _build_initial_state(self, batch_size: int) -> JaxState:
        if callable(self._initial_state):
            state = self._initial_state(self.params, batch_size)
        else:
            state = jax.tree_util.tree_map(
                lambda leaf: jnp.broadcast_to(jnp.asarray(leaf), (batch_size, *jnp.shape(leaf))),
                self._initial_state,
            )
        state = jax.device_put(state, self._jax_device)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
            if not hasattr(leaf, "shape") or not leaf.shape or leaf.shape[0] != batch_size:
                raise ValueError(
                    f"initial_state: expected the batch ({batch_size}) leading on every leaf, "
                    f"got shape {getattr(leaf, 'shape', type(leaf).__name__)} at "
                    f"{jax.tree_util.keystr(path) or '<root>'} for batch_size={batch_size}; "
                    "give every leaf a batch axis, or pass one episode's state unbatched"
                )
        return state

    def _check_batch_leading(self, template: JaxState) -> bool:
        """Every leaf must grow with the batch: compare the states for B=1 and B=2.

        Returns whether both episodes of B=2 start from B=1's state, so that s_0 for any
        batch size is that state repeated (no JAX call, no compilation per batch size).
        """
        one = jax.tree_util.tree_leaves(template)
        two = jax.tree_util.tree_leaves(self._build_initial_state(2))
        for path, a, b in zip(self._codec.paths, one, two, strict=True):
            if a.shape[1:] != b.shape[1:]:
                raise ValueError(
                    f"initial_state: leaf {path} has shape {a.shape} for batch_size=1 and "
                    f"{b.shape} for batch_size=2; expected [B, ...] with the batch leading"
                )
        return all(
            np.array_equal(np.asarray(b), np.broadcast_to(np.asarray(a), b.shape))
            for a, b in zip(one, two, strict=True)
        )

    def _checked(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x and the state's leaves (in JAX's order), checked, on the machine's device."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor [batch, ...], got {type(x).__name__}")
        if x.dim() == 0:
            raise ValueError("x: expected shape [batch, ...], got a scalar")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"x: expected shape {batch_shape(self.input_shape)}, got {tuple(x.shape)}"
            )
        if x.is_floating_point() and x.dtype != self.dtype:
            raise TypeError(
                f"x: expected {self.dtype} (the machine's dtype), got {x.dtype}; cast the "
                "inputs" + (
                    ", or enable float64 in JAX (jax.config.update('jax_enable_x64', True)) "
                    "and build the model in float64"
                    if x.dtype == torch.float64 and not jax.config.jax_enable_x64 else ""
                )
            )
        leaves = self._codec.torch_leaves(state, "state")
        if leaves[0].shape[0] != x.shape[0]:
            raise ValueError(
                f"x: expected the state's batch size {leaves[0].shape[0]} leading, "
                f"got shape {tuple(x.shape)}"
            )
        return x.to(self.device), [leaf.to(self.device) for leaf in leaves]

    def _run(self, fn, x: torch.Tensor, leaves: list[torch.Tensor], *, with_state: bool
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``fn(params, x, leaves)`` on JAX, in pieces of padded sizes; torch results."""
        n = x.shape[0]
        piece = _MAX_PIECE if self.pad_batches else n
        dev = self._jax_device
        ys, states = [], []
        for start in range(0, n, piece):
            stop = min(start + piece, n)
            xs, ls = x[start:stop], [leaf[start:stop] for leaf in leaves]
            rows = stop - start
            size = _padded(rows) if self.pad_batches else rows
            if size != rows:
                xs, ls = _pad(xs, size), [_pad(leaf, size) for leaf in ls]
            try:
                result = fn(self.params, to_jax(xs, dev), [to_jax(leaf, dev) for leaf in ls])
            except _TRACER_ERRORS as err:
                raise not_jittable(err, self._step_fn) from err
            y, new = result if with_state else (result, [])
            ys.append(_rows(to_torch(y, self.device), rows))
            states.append([_rows(to_torch(leaf, self.device), rows) for leaf in new])
        if len(ys) == 1:
            return ys[0], states[0]
        return torch.cat(ys), [torch.cat(group) for group in zip(*states, strict=True)]

    def _state_of(self, leaves: list[jax.Array]) -> JaxState:
        return jax.tree_util.tree_unflatten(self._codec.treedef, leaves)

    def _traced_step(self, params: Any, x: jax.Array, leaves: list[jax.Array]
                     ) -> tuple[jax.Array, list[jax.Array]]:
        result = self._step_fn(params, x, self._state_of(leaves))
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"step: expected step(params, x, state) to return a pair (y, state), got "
                f"{type(result).__name__}"
            )
        y, state = result
        self._check_output(y, x)
        new_leaves, treedef = jax.tree_util.tree_flatten(state)
        if treedef != self._codec.treedef:
            raise ValueError(
                f"step: returned a state with structure {treedef}, expected the structure "
                f"of initial_state {self._codec.treedef}"
            )
        for path, old, new in zip(self._codec.paths, leaves, new_leaves, strict=True):
            if jnp.shape(new) != old.shape or jnp.result_type(new) != old.dtype:
                raise ValueError(
                    f"step: state leaf {path} came in as {old.shape} {old.dtype} and went out "
                    f"as {jnp.shape(new)} {jnp.result_type(new)}; a step must keep each "
                    "leaf's shape and dtype"
                )
        return y, new_leaves

    def _traced_output(self, params: Any, x: jax.Array, leaves: list[jax.Array]) -> jax.Array:
        if self._output_fn is None:
            return self._traced_step(params, x, leaves)[0]
        y = self._output_fn(params, x, self._state_of(leaves))
        self._check_output(y, x)
        return y

    @staticmethod
    def _check_output(y: Any, x: jax.Array) -> None:
        if not hasattr(y, "shape") or not hasattr(y, "dtype"):
            raise TypeError(
                f"step: expected the output y to be one array [B, ...], got {type(y).__name__}; "
                "combine several outputs into one array (or pick one with a readout)"
            )
        if not y.shape or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"step: expected the output y with the batch leading, [B, ...] for x of shape "
                f"[B, {', '.join(map(str, x.shape[1:]))}], got shape {y.shape}"
            )


_HINTS = {
    "TracerBoolConversionError": "a Python if/while/and/or/bool() on an array; use "
                                 "jnp.where(cond, a, b), jax.lax.cond or jax.lax.while_loop",
    "TracerIntegerConversionError": "int() of an array, or a Python list indexed by one; use "
                                    "jnp.take or a static size",
    "TracerArrayConversionError": "np.asarray, .item() or float() of an array; use jnp "
                                  "functions throughout",
    "NonConcreteBooleanIndexError": "x[mask] with a mask from the data (a data-dependent "
                                    "shape); use jnp.where(mask, x, 0)",
    "UnexpectedTracerError": "the step keeps traced values outside its result (on self or a "
                             "global, e.g. a cache or a counter); return all it changes in "
                             "its state",
}

_TRACER_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.NonConcreteBooleanIndexError,
                  jax.errors.TracerArrayConversionError, jax.errors.TracerIntegerConversionError,
                  jax.errors.UnexpectedTracerError)


def not_jittable(err: Exception, step: Any) -> TypeError:
    """A TypeError saying that ``step`` must be jittable and pure, with the fix for ``err``
    (a JAX tracer error raised while ``jax.jit`` traced it)."""
    kind = type(err).__name__
    hint = _HINTS.get(kind, "int() of an array, or a shape or loop length from the data; "
                            "make it static or use jnp/jax.lax functions")
    name = getattr(step, "__name__", type(step).__name__)
    return TypeError(f"step: {name} is not jittable ({kind}): {hint}; JaxMachine runs it under "
                     "jax.jit, so it must be a pure function of (params, x, state)")


_MAX_PIECE = 8192
"""With ``pad_batches``, larger batches run in pieces of this many rows (views, no copy)."""


def _padded(n: int) -> int:
    """The bucket of a batch of ``n`` rows (``n <= _MAX_PIECE``): 8, 16, 32, 64, then 8
    sizes per octave, so at most 1/8 of a bucket is padding."""
    if n <= 64:
        return max(8, 1 << (n - 1).bit_length())
    octave = 1 << (n.bit_length() - 4)  # sizes m * octave for m = 8..16 cover [8o, 16o]
    return -(-n // octave) * octave


def _rows(tensor: torch.Tensor, n: int) -> torch.Tensor:
    return tensor if tensor.shape[0] == n else tensor[:n]


def _pad(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Rows appended up to ``size``, each a copy of row 0 (a valid input or state)."""
    extra = tensor[:1].expand(size - tensor.shape[0], *tensor.shape[1:])
    return torch.cat([tensor, extra], dim=0)


def as_input_shape(shape: int | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``input_shape`` as a tuple of positive sizes (an int is one axis); None stays None."""
    if shape is None:
        return None
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"input_shape: expected an int or a tuple of ints, got {shape!r}") from None
    if any(s < 1 for s in shape):
        raise ValueError(f"input_shape: expected positive sizes, got {shape}")
    return shape


def check_params(expected: Any, given: Any, name: str = "params") -> None:
    """Raise ValueError unless ``given`` has ``expected``'s parameter names and shapes.

    ``expected`` is a pytree of arrays or ``jax.ShapeDtypeStruct`` (``jax.eval_shape`` of
    the model's init); the message lists what is missing, unexpected or misshapen.
    """
    def table(tree):
        return {jax.tree_util.keystr(p): tuple(jnp.shape(leaf))
                for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}

    want, got = table(expected), table(given)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = [f"{k} {got[k]} (expected {want[k]})" for k in sorted(set(want) & set(got))
             if want[k] != got[k]]
    if missing or extra or wrong:
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"unexpected {', '.join(extra)}" if extra else "",
                 f"misshapen {', '.join(wrong)}" if wrong else ""]
        raise ValueError(
            f"{name}: do not match the model: {'; '.join(p for p in parts if p)}. Were they "
            "made for another architecture, input size or module name?"
        )


def _put_params(params: Any, device: jax.Device) -> Any:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not isinstance(leaf, jax.Array | np.ndarray | np.generic | float | int):
            raise TypeError(
                f"params: expected JAX arrays at every leaf, got {type(leaf).__name__} at "
                f"{jax.tree_util.keystr(path) or '<root>'}"
            )
    return jax.device_put(params, device)


def _floating_dtype(params: Any, state: JaxState) -> torch.dtype:
    """The machine's floating dtype: of its first floating state leaf, else of its params."""
    for leaf in (*jax.tree_util.tree_leaves(state), *jax.tree_util.tree_leaves(params)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            return torch_dtype(leaf.dtype)
    return torch.get_default_dtype()
