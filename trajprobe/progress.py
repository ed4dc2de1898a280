"""Progress bars that also log: a terminal gets tqdm's bar; a file (a job's log, a pipe)
gets one line every :data:`LOG_INTERVAL` seconds, so a run under SLURM shows it is alive."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["LOG_INTERVAL", "bar_options"]

LOG_INTERVAL = 30.0
"""Seconds between progress lines when standard error is not a terminal."""


class _Lines:
    """A file-like target for tqdm that turns its carriage-return redraws into lines."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def bar_options(progress: bool | None) -> dict[str, Any]:
    """Keyword arguments for ``tqdm``: ``progress`` True shows a bar, False nothing, None a
    bar on a terminal and periodic lines elsewhere.

    The periodic lines start only after :data:`LOG_INTERVAL` seconds (tqdm's ``delay``), so
    a loop that ends sooner prints nothing rather than a "0%" line that never moves; after
    that, one line per interval, and the final line when the bar is kept (``leave``)."""
    if progress is False:
        return {"disable": True}
    stream = sys.stderr
    if progress is None and not (hasattr(stream, "isatty") and stream.isatty()):
        return {"disable": False, "file": _Lines(stream), "delay": LOG_INTERVAL,
                "mininterval": LOG_INTERVAL, "maxinterval": LOG_INTERVAL, "miniters": 1,
                "ncols": 100, "ascii": True}
    return {"disable": False}
