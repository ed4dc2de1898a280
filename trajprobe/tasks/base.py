"""Moved to :mod:`trajprobe.task_protocol` (the task protocol is part of the core); importing
this path warns and gives that module. Users can also import its names from
:mod:`trajprobe.tasks`."""

from trajprobe._moved import alias

alias(__name__, "trajprobe.task_protocol")
