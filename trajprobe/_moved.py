"""Module paths that moved: each old path is a small module file that calls :func:`alias`.

Importing an old path (``trajprobe.tasks.base``) warns once with a ``DeprecationWarning``
that names the new place and hands back the new module itself, so every name (private ones
too) and every class identity is the new module's. Nothing here runs at ``import trajprobe``:
only importing an old path loads this module.
"""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["alias"]


def alias(old: str, new: str) -> None:
    """Make the module being imported as ``old`` the module ``new``, with a warning.

    Called from the old path's module file (``alias(__name__, "trajprobe.task_protocol")``);
    the warning points at the line that imported the old path.

    Args:
        old: the old dotted path (the calling module's ``__name__``).
        new: the dotted path the module moved to.
    """
    module = importlib.import_module(new)
    # stacklevel 3: past this function and the old path's module, to its importer (the
    # import machinery's frames are skipped by warnings)
    warnings.warn(f"{old} moved to {new}; import it from there (the old path will be removed)",
                  DeprecationWarning, stacklevel=3)
    sys.modules[old] = module
