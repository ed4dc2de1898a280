"""Files: atomic writes, training checkpoints, and netCDF for labelled results.

Nothing half-written is ever left under a final name (``docs/design.md``, "Labelled
results"; ``docs/errors.md``, "Run directories you can trust"): every writer
writes a temporary file in the target's directory, flushes it to disk and renames it
over the target with :func:`os.replace`, which is atomic on POSIX and Windows. A write
that fails for want of space raises :class:`DiskFullError` (an ``OSError``, errno
``ENOSPC``) naming the file and the space needed; the temporary file is removed.

Checkpoints carry a SHA-256 checksum of their content (every tensor's bytes, dtype and
shape, and every other entry), verified on load: torch does not check its archive's
CRCs, so without it a few flipped bytes inside a tensor load silently as other weights.
A damaged checkpoint is refused by name, and the newest intact checkpoint beside it is
offered. Checkpoints written before checksums existed load unverified.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import xarray as xr

__all__ = [
    "CHECKPOINT_FORMAT",
    "DiskFullError",
    "atomic_path",
    "atomic_write",
    "check_recorded",
    "checkpoint_digest",
    "decoded",
    "format_bytes",
    "load_checkpoint",
    "load_dataset",
    "load_json",
    "save_checkpoint",
    "save_dataset",
    "save_datasets",
]

CHECKPOINT_FORMAT = "trajprobe-checkpoint-v1"
"""The ``format`` entry every trajprobe checkpoint carries."""

_JSON_PREFIX = "json:"
_CHECKSUM = "checksum"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LOW_SPACE = 1 << 20
"""Free bytes under which a failed write is taken for a full disk (torch and netCDF do not
always pass ``ENOSPC`` on: ``enforce fail at inline_container.cc``, ``NetCDF: HDF error``)."""


class DiskFullError(OSError):
    """A write that failed for want of disk space (errno ``ENOSPC``); nothing was left."""

    def __init__(self, path: str | os.PathLike, needed: int | None, free: int):
        self.path, self.needed, self.free = Path(path), needed, free
        need = f"about {format_bytes(needed)}" if needed else "more space"
        message = (f"no space left on the device to write {str(self.path)!r}: it needs {need}, "
                   f"{format_bytes(free)} is free in {str(self.path.parent)!r}; nothing was "
                   "half-written: free some space (or give another --out) and run the same "
                   "command again to resume")
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def format_bytes(n: int | float) -> str:
    """A human size: ``"512 B"``, ``"3.1 MB"``, ``"2.0 GB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, size_hint: int | None = None
                 ) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it to ``path``.

    The file appears under its final name only complete (flushed and fsynced); if the
    block raises, the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> with atomic_write("out/result.json", "w") as f:
        ...     f.write("{}")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    with atomic_path(path, size_hint=size_hint) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, size_hint: int | None = None) -> Iterator[Path]:
    """A temporary path next to ``path`` for writers that want a file name, renamed on success.

    Args:
        path: the final file.
        size_hint: the expected size in bytes, for the message if the disk fills up.

    Raises:
        DiskFullError: the write failed and the disk is (nearly) full; the temporary file
            is removed and ``path`` is left as it was.

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
    except BaseException as err:
        full = isinstance(err, Exception) and _disk_full(err, target.parent)
        written = _size(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if full:
            free = shutil.disk_usage(target.parent).free
            needed = max(size_hint or 0, written) or None
            raise DiskFullError(target, needed, free) from err
        raise


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _disk_full(err: BaseException, directory: Path) -> bool:
    """Whether a failed write failed for want of space (``ENOSPC`` in the chain, or the
    device nearly full while the temporary file still holds what was written)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(directory).free < _LOW_SPACE
    except OSError:
        return False


def _umask() -> int:
    """The process's umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint dictionary atomically with ``torch.save``, with its checksum.

    The dictionary gets ``format = CHECKPOINT_FORMAT`` and ``checksum`` =
    :func:`checkpoint_digest` of its content; it should hold only tensors, numbers,
    strings, lists, tuples and dicts so that :func:`load_checkpoint` can read it with
    ``weights_only=True`` (no arbitrary code runs when a checkpoint is loaded).

    Raises:
        DiskFullError: the disk filled up; nothing was written under ``path``.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint: expected a dict, got {type(checkpoint).__name__}")
    payload = {k: v for k, v in checkpoint.items() if k != _CHECKSUM}
    payload["format"] = CHECKPOINT_FORMAT
    payload[_CHECKSUM] = checkpoint_digest(payload)
    with atomic_write(path, "wb", size_hint=_nbytes(payload)) as handle:
        torch.save(payload, handle)
    return Path(path)


def checkpoint_digest(checkpoint: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` of a checkpoint's content, its ``checksum`` entry left out.

    Every tensor contributes its path in the dictionary, dtype, shape and raw bytes (on
    the CPU, so the device it was saved or loaded on does not matter); every other entry
    its path, type and ``repr``. Dictionaries are read in sorted key order.
    """
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in checkpoint.items() if k != _CHECKSUM}, "")
    return "sha256:" + digest.hexdigest()


def _feed(digest: Any, value: Any, path: str) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"{path}:tensor:{t.dtype}:{tuple(t.shape)}\n".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"{path}:dict:{len(value)}\n".encode())
        for key in sorted(value, key=repr):
            _feed(digest, value[key], f"{path}/{key!r}")
    elif isinstance(value, list | tuple):
        digest.update(f"{path}:{type(value).__name__}:{len(value)}\n".encode())
        for i, item in enumerate(value):
            _feed(digest, item, f"{path}/{i}")
    else:
        digest.update(f"{path}:{type(value).__name__}:{value!r}\n".encode())


def _nbytes(value: Any) -> int:
    """Bytes of the tensors in a nested checkpoint (its size on disk, near enough)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    return 0


def load_checkpoint(
    path: str | os.PathLike,
    *,
    map_location: torch.device | str = "cpu",
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and verify its checksum.

    Args:
        path: the file.
        map_location: device for its tensors.
        required: keys the checkpoint must contain.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, damaged (its content does not match its
            checksum), holds objects a checkpoint may not (e.g. code), is not a trajprobe
            checkpoint, or lacks a ``required`` key; the message names the file, what was
            wrong and, when one verifies, the newest intact checkpoint beside it.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(target)!r}")
    payload = _read_checkpoint(target, map_location)
    missing = [key for key in required if key not in payload]
    if missing:
        raise ValueError(
            f"path: checkpoint {str(target)!r} lacks the entries {missing}; "
            f"it has {sorted(payload)}"
        )
    return payload


def _read_checkpoint(target: Path, map_location: torch.device | str) -> dict[str, Any]:
    """The verified payload of ``target``, or a ValueError that offers an intact sibling."""
    problem = _problem(target, map_location)
    if isinstance(problem, dict):
        return problem
    raise ValueError(f"path: {str(target)!r} ({target.stat().st_size} bytes) {problem}; it is "
                     f"refused{_offer(target, map_location)}")


def _problem(target: Path, map_location: torch.device | str) -> dict[str, Any] | str:
    """The payload if ``target`` is an intact trajprobe checkpoint, else what is wrong."""
    try:
        payload = torch.load(target, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types on a damaged zip/pickle
        if isinstance(err, MemoryError):
            raise
        lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
        if "Weights only load failed" in str(err):
            detail = next((ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln),
                          lines[-1] if lines else "")
            # torch < 2.4 puts it all on one line, the object's name at its end
            if "GLOBAL" not in detail and "Unsupported" in detail:
                detail = detail[detail.index("Unsupported"):]
            return ("holds objects a checkpoint may not (it was not written by trajprobe, "
                    f"and is not unpickled: {detail[:200]})")
        reason = (lines or [type(err).__name__])[0][:200]
        return (f"is not a readable checkpoint: truncated or corrupt "
                f"({type(err).__name__}: {reason})")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        return (f"is not one: expected a trajprobe checkpoint (format "
                f"{CHECKPOINT_FORMAT!r}), got format {found!r}")
    saved = payload.get(_CHECKSUM)
    if saved is not None and saved != checkpoint_digest(payload):
        return ("is damaged: its content does not match the checksum it was written with "
                "(bytes changed on disk or in transfer)")
    return payload


def _offer(target: Path, map_location: torch.device | str) -> str:
    """``"; the newest intact checkpoint beside it is ..."`` or ``""``."""
    siblings = sorted((p for p in target.parent.glob("*.pt") if p != target and p.is_file()),
                      key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for candidate in siblings[:4]:
        if isinstance(_problem(candidate, map_location), dict):
            return (f"; the newest intact checkpoint beside it is {str(candidate)!r}: load "
                    f"that one, or copy it over {target.name!r} to go on from it")
    return ""


def load_json(path: str | os.PathLike, fields: dict[str, type | tuple[type, ...]], *,
              argument: str = "path",
              remedy: str = "restore it or use another run directory") -> dict[str, Any]:
    """Read a JSON object from ``path`` and check that it has ``fields`` of their types.

    Args:
        path: the file (e.g. a run directory's ``recipe.json``).
        fields: every required key and its type(s) (``bool`` is not an ``int`` here).
        argument: the caller's argument the messages name (e.g. ``"out_dir"`` when
            ``path`` is the record inside a run directory given as ``out_dir``).
        remedy: what the messages advise when the file is unreadable or not an object.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is unreadable, not JSON, not an object, or a field is missing
            or of another type; the message names ``argument``, the file and the field.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"{argument}: no file at {str(target)!r}")
    try:
        record = json.loads(target.read_text())
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{argument}: {str(target)!r} is not readable JSON ({err}); "
                         f"{remedy}") from err
    if not isinstance(record, dict):
        raise ValueError(f"{argument}: {str(target)!r} holds a JSON {type(record).__name__}, "
                         f"expected an object; {remedy}")
    for key, kind in fields.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if key not in record:
            raise ValueError(f"{argument}: {str(target)!r} lacks the field {key!r} (it has "
                             f"{sorted(record)}); {remedy}")
        value = record[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ValueError(f"{argument}: {str(target)!r} field {key!r} is {value!r}, "
                             f"expected a {names}")
    return record


def check_recorded(path: str | os.PathLike, field: str, recorded: Any, expected: Any,
                   source: str) -> None:
    """Raise ValueError unless ``recorded`` (``path``'s ``field``) equals ``expected``.

    Values are compared as JSON (tuples are lists); a ``recorded`` None (written before
    the field existed) passes. ``source`` says where ``expected`` comes from, for the
    message (e.g. ``"the checkpoint 'latest.pt'"``).
    """
    if recorded is None or expected is None:
        return
    if json.loads(json.dumps(recorded)) == json.loads(json.dumps(expected)):
        return
    detail = repr(recorded)
    if isinstance(recorded, dict) and isinstance(expected, dict):
        keys = sorted(k for k in set(recorded) | set(expected)
                      if recorded.get(k) != expected.get(k))
        detail = ", ".join(f"{k}: {recorded.get(k)!r} here, {expected.get(k)!r} there"
                           for k in keys)
    raise ValueError(f"path: {str(path)!r} field {field!r} disagrees with {source} ({detail}); "
                     "the run directory was edited or mixed up: restore the file")


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
    A complex variable (eigenvalues, Fourier coefficients) is stored as its real part plus
    a ``<name>__imag`` variable, and put back together by :func:`load_dataset`.
    """
    if isinstance(dataset, xr.DataArray):
        dataset = dataset.to_dataset(name=dataset.name or "data")
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"dataset: expected an xarray Dataset, got {type(dataset).__name__}")
    with atomic_path(path, size_hint=int(dataset.nbytes)) as tmp:
        _encoded(dataset).to_netcdf(tmp)
    return Path(path)


def save_datasets(datasets: dict[str, xr.Dataset], path: str | os.PathLike) -> Path:
    """Write several Datasets into one netCDF-4 file, one group per name, atomically.

    Attributes are encoded as in :func:`save_dataset`; read a group back with
    ``xarray.open_dataset(path, group=name)``.
    """
    size = sum(int(d.nbytes) for d in datasets.values())
    with atomic_path(path, size_hint=size) as tmp:
        for i, (name, dataset) in enumerate(datasets.items()):
            _encoded(dataset).to_netcdf(tmp, group=name, mode="w" if i == 0 else "a",
                                        engine="netcdf4")
    return Path(path)


_IMAG = "trajprobe_imaginary_part"
"""Attribute of a complex variable's stored real part: the variable holding its imaginary part."""


def _encoded(dataset: xr.Dataset) -> xr.Dataset:
    """A copy netCDF can hold: attributes JSON-encoded (dataset and variables), complex
    variables split into real and imaginary parts."""
    encoded = dataset.copy()
    encoded.attrs = _encode_attrs(dataset.attrs)
    for name in list(encoded.variables):
        encoded[name].attrs = _encode_attrs(dataset[name].attrs)
        if np.iscomplexobj(encoded[name].values) and name not in encoded.dims:
            imag = f"{name}__imag"
            encoded[imag] = np.imag(encoded[name])
            encoded[name] = np.real(encoded[name]).assign_attrs(encoded[name].attrs)
            encoded[name].attrs[_IMAG] = imag
    return encoded


def decoded(dataset: xr.Dataset) -> xr.Dataset:
    """Undo :func:`save_dataset`'s encoding on a Dataset read with xarray (for example
    one group of a :func:`save_datasets` file): JSON attributes, complex variables."""
    dataset.attrs = _decode_attrs(dataset.attrs)
    for name in list(dataset.variables):
        if name not in dataset.variables:
            continue  # an imaginary part already joined to its real part
        attrs = _decode_attrs(dataset[name].attrs)
        imag = attrs.pop(_IMAG, None)
        if imag is not None and imag in dataset.variables:
            dataset[name] = dataset[name] + 1j * dataset[imag]
            dataset = dataset.drop_vars(imag)
        dataset[name].attrs = attrs
    return dataset


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
    return decoded(dataset)
