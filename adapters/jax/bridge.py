"""Arrays and state pytrees between torch and JAX, without copies where the platform allows.

Tensors cross by DLPack (``jax.dlpack.from_dlpack`` one way, ``torch.from_dlpack`` the
other): on CPU and on a GPU the JAX array and the torch tensor then share one buffer. When
DLPack refuses (a broadcast view with zero strides, a buffer JAX cannot alias), the
tensor is made contiguous or goes through numpy, which copies.

A JAX state is a pytree: tuples, lists, dicts, named tuples, dataclasses and any node
registered with ``jax.tree_util``. torch's pytree knows tuples, lists, dicts and named
tuples, so :class:`StateCodec` keeps those as they are, turns every other node
(dataclasses, ``flax.struct`` classes, ...) into a dict of its fields, and ``None`` into
an empty tuple (no leaves on either side). The batch axis leads on every leaf on both
sides.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.dlpack
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils import _pytree as torch_pytree

__all__ = ["StateCodec", "batch_shape", "jax_device", "to_jax", "to_torch", "torch_dtype"]

_TORCH_OF_JAX = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.bool_): torch.bool,
    np.dtype(jnp.bfloat16): torch.bfloat16,
}


def torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of a JAX/numpy dtype; TypeError if torch has none."""
    try:
        return _TORCH_OF_JAX[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"dtype: JAX dtype {dtype} has no torch equivalent") from None


def jax_device(device: torch.device | str) -> jax.Device:
    """The JAX device that computes for a torch device (``cpu``, ``cuda:i``)."""
    device = torch.device(device)
    platform = "cpu" if device.type == "cpu" else "gpu" if device.type == "cuda" else None
    if platform is None:
        raise ValueError(
            f"device: expected a cpu or cuda device for a JAX machine, got {device}"
        )
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    index = device.index or 0
    if index >= len(devices):
        raise ValueError(
            f"device: torch device {device} needs JAX device {platform}:{index}, but JAX "
            f"sees {len(devices)} {platform} device(s); install a JAX built for it "
            "(e.g. pip install 'jax[cuda12]')"
        )
    return devices[index]


def to_jax(tensor: torch.Tensor, device: jax.Device) -> jax.Array:
    """A torch tensor as a JAX array on ``device``, sharing memory when DLPack allows.

    The caller must not modify ``tensor`` in place while the array is in use.
    """
    tensor = tensor.detach()
    if not tensor.is_contiguous():
        tensor = tensor.contiguous()
    try:
        array = jax.dlpack.from_dlpack(tensor)
    except Exception:
        return jax.device_put(tensor.cpu().numpy(), device)
    return array if device in array.devices() else jax.device_put(array, device)


def to_torch(array: jax.Array, device: torch.device, *, copy: bool = False) -> torch.Tensor:
    """A JAX array as a torch tensor on ``device``, sharing memory unless ``copy``.

    Pass ``copy=True`` when the array stays alive on the JAX side (a cached value), so
    that writing to the tensor can never change it.
    """
    try:
        tensor = torch.from_dlpack(array)
    except Exception:
        tensor = torch.as_tensor(np.array(array))
        copy = False
    tensor = tensor.to(device)
    return tensor.clone() if copy else tensor


def batch_shape(shape: tuple[int, ...]) -> str:
    """``(64,)`` as ``"[B, 64]"``: a per-episode shape with the batch axis in front."""
    return "[" + ", ".join(["B", *map(str, shape)]) + "]"


def _children(node: Any) -> list[tuple[Any, Any]] | None:
    """One level of a JAX pytree: ``[(key, child), ...]``, or None if ``node`` is a leaf."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda n: n is not node)
    if treedef.num_nodes == 1 and treedef.num_leaves == 1:
        return None
    return [(path[0], child) for path, child in pairs]


def _key_name(key: Any) -> Any:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return getattr(key, attr)
    return str(key)


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(type(node), "_fields")


def torch_skeleton(tree: Any, leaf_fn) -> Any:
    """``tree``'s structure in containers torch's pytree knows; leaves mapped by ``leaf_fn``.

    Tuples, lists and named tuples keep their type, dicts their keys (in JAX's sorted
    order), ``None`` becomes ``()``, and every other JAX node (dataclasses, registered
    classes) becomes a dict of its fields.
    """
    if tree is None:
        return ()
    pairs = _children(tree)
    if pairs is None:
        return leaf_fn(tree)
    kids = [torch_skeleton(child, leaf_fn) for _, child in pairs]
    if _is_namedtuple(tree):
        return type(tree)(*kids)
    if isinstance(tree, tuple):
        return tuple(kids)
    if isinstance(tree, list):
        return list(kids)
    return {_key_name(key): kid for (key, _), kid in zip(pairs, kids, strict=True)}


class StateCodec:
    """Converts states of one machine between their JAX and torch pytrees.

    Built from a JAX template state (``initial_state(1)``). The JAX side is flattened
    with JAX's treedef; the torch side is :func:`torch_skeleton` of the template, whose
    leaves are in the same order.

    Args:
        template: a JAX state pytree whose leaves are arrays with the batch leading.
        name: the argument to name in errors.
    """

    def __init__(self, template: Any, name: str = "initial_state"):
        paths_leaves, self.treedef = jax.tree_util.tree_flatten_with_path(template)
        if not paths_leaves:
            raise ValueError(
                f"{name}: expected a state with at least one array, got {template!r}; "
                "a machine needs a state that carries information between steps"
            )
        self.paths = [jax.tree_util.keystr(p) or "<root>" for p, _ in paths_leaves]
        leaves = [leaf for _, leaf in paths_leaves]
        for path, leaf in zip(self.paths, leaves, strict=True):
            if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
                raise TypeError(
                    f"{name}: expected an array at every state leaf, got "
                    f"{type(leaf).__name__} at {path}"
                )
        self.shapes = [tuple(leaf.shape[1:]) for leaf in leaves]
        self.jax_dtypes = [np.dtype(leaf.dtype) for leaf in leaves]
        self.torch_dtypes = [torch_dtype(d) for d in self.jax_dtypes]
        counter = iter(range(len(leaves)))
        indices = torch_skeleton(template, lambda _: next(counter))
        order, self.spec = torch_pytree.tree_flatten(indices)
        if order != list(range(len(leaves))):  # the skeleton keeps JAX's leaf order
            raise AssertionError(f"state leaf order differs between JAX and torch: {order}")
        self.torch_paths = [p for p, _ in torch_pytree.tree_flatten_with_path(indices)[0]]

    def describe(self) -> str:
        """The expected leaves, ``path [B, ...] dtype``, for error messages."""
        return ", ".join(
            f"{p} {batch_shape(s)} {d}"
            for p, s, d in zip(self.paths, self.shapes, self.jax_dtypes, strict=True)
        )

    def to_torch(self, leaves: list[jax.Array], device: torch.device, *, copy: bool = False
                 ) -> Any:
        """JAX leaves (in treedef order) to the torch state pytree."""
        return self.unflatten([to_torch(leaf, device, copy=copy) for leaf in leaves])

    def unflatten(self, tensors: list[torch.Tensor]) -> Any:
        """Torch leaves (in JAX's order) to the torch state pytree."""
        return torch_pytree.tree_unflatten(tensors, self.spec)

    def torch_leaves(self, state: Any, name: str = "state") -> list[torch.Tensor]:
        """The leaves of a torch state, in JAX's order, checked against the template.

        Raises:
            ValueError: a structure, shape or batch-size mismatch.
            TypeError: a leaf that is not a tensor, or of another dtype than the template's.
        """
        leaves, spec = torch_pytree.tree_flatten(state)
        if spec != self.spec:
            leaves = self._leaves_by_path(state, name)
        batch = None
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, torch.Tensor):
                raise TypeError(
                    f"{name}: expected a torch.Tensor at {self.paths[i]}, got "
                    f"{type(leaf).__name__}"
                )
            if leaf.dim() == 0 or tuple(leaf.shape[1:]) != self.shapes[i]:
                raise ValueError(
                    f"{name}: expected {self.paths[i]} of shape {batch_shape(self.shapes[i])}, "
                    f"got {tuple(leaf.shape)}"
                )
            if leaf.dtype != self.torch_dtypes[i]:
                raise TypeError(
                    f"{name}: expected {self.paths[i]} of dtype {self.torch_dtypes[i]}, "
                    f"got {leaf.dtype}"
                )
            if batch is None:
                batch = leaf.shape[0]
            elif leaf.shape[0] != batch:
                raise ValueError(
                    f"{name}: leaves disagree on the batch size: {self.paths[0]} has "
                    f"{batch}, {self.paths[i]} has {leaf.shape[0]}"
                )
        return leaves

    def _leaves_by_path(self, state: Any, name: str) -> list[Any]:
        """Leaves looked up by key path, for a state whose dicts list keys in another order."""
        given = dict(torch_pytree.tree_flatten_with_path(state)[0])
        if set(given) != set(self.torch_paths):
            raise ValueError(
                f"{name}: expected a state with the structure of initial_state "
                f"({self.describe()}), got {torch_pytree.tree_structure(state)}"
            )
        return [given[p] for p in self.torch_paths]
