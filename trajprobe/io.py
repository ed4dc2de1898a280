"""Files: atomic writes, training checkpoints, and netCDF for labelled results.

Nothing half-written is ever left under a final name (DESIGN.md §5, §7): every writer
writes a temporary file in the target's directory, flushes it to disk and renames it
over the target with :func:`os.replace`, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch
import xarray as xr

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_path",
    "atomic_write",
    "load_checkpoint",
    "load_dataset",
    "save_checkpoint",
    "save_dataset",
    "save_datasets",
]

CHECKPOINT_FORMAT = "trajprobe-checkpoint-v1"
"""The ``format`` entry every trajprobe checkpoint carries."""

_JSON_PREFIX = "json:"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it to ``path``.

    The file appears under its final name only complete (flushed and fsynced); if the
    block raises, the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> with atomic_write("out/result.json", "w") as f:
        ...     f.write("{}")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` for writers that want a file name, renamed on success.

    Example:
        >>> with atomic_path("out/metrics.nc") as tmp:
        ...     dataset.to_netcdf(tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a file should respect the umask
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask() -> int:
    """The process's umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint dictionary atomically with ``torch.save``.

    The dictionary gets ``format = CHECKPOINT_FORMAT``; it should hold only tensors,
    numbers, strings, lists, tuples and dicts so that :func:`load_checkpoint` can read it
    with ``weights_only=True`` (no arbitrary code runs when a checkpoint is loaded).
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint: expected a dict, got {type(checkpoint).__name__}")
    payload = {**checkpoint, "format": CHECKPOINT_FORMAT}
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    map_location: torch.device | str = "cpu",
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the file.
        map_location: device for its tensors.
        required: keys the checkpoint must contain.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, corrupt, not a trajprobe checkpoint, or lacks
            a ``required`` key; the message names the file and what was wrong.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(target)!r}")
    size = target.stat().st_size
    try:
        payload = torch.load(target, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types on a damaged zip/pickle
        if isinstance(err, MemoryError | KeyboardInterrupt):
            raise
        reason = (str(err).splitlines() or [""])[0][:200]
        raise ValueError(
            f"path: {str(target)!r} ({size} bytes) is not a readable checkpoint; it is "
            f"truncated or corrupt ({type(err).__name__}: {reason})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"path: expected a trajprobe checkpoint (format {CHECKPOINT_FORMAT!r}) in "
            f"{str(target)!r}, got format {found!r}"
        )
    missing = [key for key in required if key not in payload]
    if missing:
        raise ValueError(
            f"path: checkpoint {str(target)!r} lacks the entries {missing}; "
            f"it has {sorted(payload)}"
        )
    return payload


def _encode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """netCDF attributes hold numbers, strings and 1-D arrays; store anything else as JSON."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bool) or value is None or isinstance(value, dict | list | tuple):
            out[key] = _JSON_PREFIX + json.dumps(value)
        else:
            out[key] = value
    return out


def _decode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith(_JSON_PREFIX):
            out[key] = json.loads(value[len(_JSON_PREFIX):])
        else:
            out[key] = value
    return out


def save_dataset(dataset: xr.Dataset | xr.DataArray, path: str | os.PathLike) -> Path:
    """Write a Dataset (or DataArray) to netCDF-4, atomically.

    The engine is xarray's default for the installed libraries (netCDF4, else h5netcdf).

    Attributes that netCDF cannot hold (dicts, lists, bools, None) are stored as JSON
    strings and restored by :func:`load_dataset`, on the dataset and on every variable.
    """
    if isinstance(dataset, xr.DataArray):
        dataset = dataset.to_dataset(name=dataset.name or "data")
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"dataset: expected an xarray Dataset, got {type(dataset).__name__}")
    with atomic_path(path) as tmp:
        _encoded(dataset).to_netcdf(tmp)
    return Path(path)


def save_datasets(datasets: dict[str, xr.Dataset], path: str | os.PathLike) -> Path:
    """Write several Datasets into one netCDF-4 file, one group per name, atomically.

    Attributes are encoded as in :func:`save_dataset`; read a group back with
    ``xarray.open_dataset(path, group=name)``.
    """
    with atomic_path(path) as tmp:
        for i, (name, dataset) in enumerate(datasets.items()):
            _encoded(dataset).to_netcdf(tmp, group=name, mode="w" if i == 0 else "a",
                                        engine="netcdf4")
    return Path(path)


def _encoded(dataset: xr.Dataset) -> xr.Dataset:
    """A copy whose attributes (dataset and variables) netCDF can hold."""
    encoded = dataset.copy()
    encoded.attrs = _encode_attrs(dataset.attrs)
    for name in encoded.variables:
        encoded[name].attrs = _encode_attrs(dataset[name].attrs)
    return encoded


def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a netCDF file written by :func:`save_dataset` fully into memory."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no netCDF file at {str(target)!r}")
    try:
        dataset = xr.load_dataset(target)
    except Exception as err:  # netCDF4/h5py raise OSError, RuntimeError, KeyError, ...
        if isinstance(err, MemoryError | KeyboardInterrupt):
            raise
        raise ValueError(
            f"path: {str(target)!r} is not a readable netCDF file ({type(err).__name__}: {err})"
        ) from err
    dataset.attrs = _decode_attrs(dataset.attrs)
    for name in dataset.variables:
        dataset[name].attrs = _decode_attrs(dataset[name].attrs)
    return dataset
