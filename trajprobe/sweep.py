"""Moved to :mod:`trajprobe.apps.sweep` (the applications live in trajprobe/apps/); importing
this path warns and gives that module."""

from trajprobe._moved import alias

alias(__name__, "trajprobe.apps.sweep")
