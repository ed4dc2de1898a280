"""Moved to :mod:`trajprobe.task_checks` (beside the task protocol in the core); importing
this path warns and gives that module."""

from trajprobe._moved import alias

alias(__name__, "trajprobe.task_checks")
