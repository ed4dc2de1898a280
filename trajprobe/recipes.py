"""Moved to :mod:`trajprobe.apps.recipes` (the applications live in trajprobe/apps/); importing
this path (and its submodules) warns and gives that module."""

from trajprobe._moved import alias

alias(__name__, "trajprobe.apps.recipes")
