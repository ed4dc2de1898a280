"""Module paths that moved: each old path is a small module file that calls :func:`alias`.

Importing an old path (``trajprobe.tasks.base``, ``trajprobe.recipes``) warns with a
``DeprecationWarning`` that names the new place and hands back the new module itself, so
every name (private ones too) and every class identity is the new module's. An old
package path serves its submodules too (``trajprobe.reproduce.base`` is
``trajprobe.apps.reproduce.base``, with its own warning), through a finder that the first
import of an old package path puts on ``sys.meta_path``. Nothing here runs at
``import trajprobe``: only importing an old path loads this module.

The old paths (docs/design.md, "Layers"):

| old path | new path |
|---|---|
| ``trajprobe.cli``, ``.models``, ``.sweep`` | ``trajprobe.apps.cli``, ``.models``, ``.sweep`` |
| ``trajprobe.recipes``, ``.reproduce``, ``.training`` | ``trajprobe.apps.<same>`` (+ submodules) |
| ``trajprobe.closed_loop`` | ``trajprobe.apps.training.closed_loop`` |
| ``trajprobe.tasks.base`` | ``trajprobe.task_protocol`` |
| ``trajprobe.tasks.checks`` | ``trajprobe.task_checks`` |

``trajprobe.measure``, ``trajprobe.probe`` and ``trajprobe.rollout`` (now
``trajprobe.measurement``, ``trajprobe.probing``, ``trajprobe.traces``) have no shim: those
names are the package's functions, which a module of the same name would replace.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

__all__ = ["alias"]

_PACKAGES: dict[str, str] = {}
"""Old package path -> new package path, for the submodules of an aliased package."""


def _warn(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(f"{old} moved to {new}; import it from there (the old path will be removed)",
                  DeprecationWarning, stacklevel=stacklevel)


def alias(old: str, new: str) -> None:
    """Make the module being imported as ``old`` the module ``new``, with a warning.

    Called from the old path's module file (``alias(__name__, "trajprobe.task_protocol")``);
    the warning points at the line that imported the old path. For a package, its
    submodules' old paths resolve too (:class:`_OldSubmodules`).

    Args:
        old: the old dotted path (the calling module's ``__name__``).
        new: the dotted path the module moved to.
    """
    module = importlib.import_module(new)
    # stacklevel 4: past _warn, this function and the old path's module, to its importer
    # (warnings skips the import machinery's frames)
    _warn(old, new, stacklevel=4)
    sys.modules[old] = module
    if hasattr(module, "__path__"):
        _PACKAGES[old] = new
        if not any(isinstance(f, _OldSubmodules) for f in sys.meta_path):
            sys.meta_path.insert(0, _OldSubmodules())


class _OldSubmodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``<old package>.<name>`` as the module ``<new package>.<name>`` (with a warning)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        for old, new in _PACKAGES.items():
            if fullname.startswith(old + "."):
                return importlib.machinery.ModuleSpec(
                    fullname, self, loader_state=new + fullname[len(old):])
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(spec.loader_state)
        _warn(spec.name, spec.loader_state, stacklevel=3)  # past _warn and this method
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The new module ran when it was imported; nothing to do."""
