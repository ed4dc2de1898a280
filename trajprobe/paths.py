"""Path arguments checked before any work: empty, unusable or dangerous paths are refused.

An unset shell variable (``--out "$RUN"``) gives an empty path, which :class:`pathlib.Path`
reads as the working directory: a whole run would be written there. A NUL byte cannot be
a file name; the file system's root, the home directory and system directories are never
a sensible place to write a run into (a later clean-up of "the run directory" would
remove them).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PROTECTED", "check_path"]

PROTECTED = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr",
             "/var")
"""Directories never written into as an output (plus the home directory)."""


def check_path(value: str | os.PathLike, name: str = "out", *, output: bool = True) -> Path:
    """``value`` as a Path, or a ValueError naming ``name`` if it is unusable.

    Args:
        value: the path as given (a string from the command line, or a path).
        name: the argument's name, for the message (``"out"``, ``"model"``).
        output: the path is written into (then the file system's root, the home
            directory and :data:`PROTECTED` system directories are refused too).

    Raises:
        ValueError: the path is empty or blank (e.g. an unset shell variable), holds a NUL
            byte, or, for an output, is a protected directory or leads into a loop of
            symbolic links.
        TypeError: ``value`` is not a string or path.
    """
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name}: expected a path, got {type(value).__name__}")
    text = os.fspath(value)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise ValueError(f"{name}: got an empty path {text!r} (an unset shell variable?); "
                         "give a directory, e.g. runs/my-run, or '.' for this one")
    if "\0" in text:
        raise ValueError(f"{name}: the path {text!r} holds a NUL byte; no file can have it")
    path = Path(text).expanduser()
    if output:
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError) as err:  # a symlink loop (RuntimeError before 3.13)
            raise ValueError(f"{name}: {text!r} leads into a loop of symbolic links ({err}); "
                             "remove the link or give another path") from None
        protected = {Path(p) for p in PROTECTED} | {Path.home().resolve()}
        if resolved in protected:
            raise ValueError(f"{name}: refusing to write into {str(resolved)!r} (the file "
                             "system's root, a system directory or your home directory); "
                             "give a directory of its own, e.g. ~/runs/my-run")
    return path
