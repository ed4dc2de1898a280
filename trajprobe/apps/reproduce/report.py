"""Write a target's results: ``results.nc``, ``figures/*.png``, ``report.md``, ``report.html``."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import xarray as xr

import trajprobe
from trajprobe.apps.reproduce.base import RunContext, TargetResult
from trajprobe.io import _umask, atomic_write, decoded, save_datasets

__all__ = ["read_results", "write_report"]

_HEADER = ("quantity", "agent", "ours", "paper", "note")


def write_report(result: TargetResult, context: RunContext, target: str) -> Path:
    """Write every output of ``result`` into ``context.out_dir``, each file atomically.

    ``results.nc`` holds every Dataset as a netCDF group of its name; the figures go to
    ``figures/<name>.png`` (150 dpi); ``report.md`` and ``report.html`` (figures embedded)
    put the headline table first; ``summary.json`` holds the same rows as data
    (quantity, agent, ours, sem, paper, note). Returns the path of ``report.md``.
    """
    out = context.out_dir
    out.mkdir(parents=True, exist_ok=True)
    save_datasets({name: ds.assign_attrs(target=target, preset=context.preset)
                   for name, ds in result.datasets.items()}, out / "results.nc")
    images: dict[str, bytes] = {}
    for name, fig in result.figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        images[name] = buffer.getvalue()
    _replace_figures(out / "figures", images)
    rows = [row.formatted() for row in result.rows]
    meta = (f"trajprobe {trajprobe.__version__} · target `{target}` · preset `{context.preset}`"
            f" · seeds {context.seeds} · device `{context.device}`")
    with atomic_write(out / "summary.json", "w") as handle:
        json.dump([dataclasses.asdict(row) for row in result.rows], handle, indent=1)
    with atomic_write(out / "report.md", "w") as handle:
        handle.write(_markdown(result, meta, rows,
                               {name: f"figures/{name}.png" for name in images}))
    with atomic_write(out / "report.html", "w") as handle:
        handle.write(_html(result, meta, rows, images))
    return out / "report.md"


def _replace_figures(figures: Path, images: dict[str, bytes]) -> None:
    """Replace the directory ``figures`` by ``images`` as a set.

    The new figures are written to a temporary directory beside it, which is then swapped
    in by two renames; an interrupted run leaves either the old set or the new one, never
    a report linking deleted figures (the old set goes only once the new one is in place).
    """
    for stale in figures.parent.glob(".figures-*"):  # left by an interrupted earlier run
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=figures.parent, prefix=".figures-new-"))
    os.chmod(staging, 0o777 & ~_umask())
    for name, data in images.items():
        with atomic_write(staging / f"{name}.png") as handle:
            handle.write(data)
    retired = figures.parent / f".figures-old-{staging.name.rsplit('-', 1)[-1]}"
    if figures.exists():
        os.replace(figures, retired)
    os.replace(staging, figures)
    shutil.rmtree(retired, ignore_errors=True)


def _markdown(result: TargetResult, meta: str, rows: list[tuple[str, ...]],
              figures: dict[str, str]) -> str:
    """The report as Markdown; ``figures`` maps each figure's name to its image address."""
    lines = [f"# {result.title}", "", meta, "", "## Headline numbers", "",
             "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"{note}\n" for note in result.notes]
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({src})\n\n*{name}*\n" for name, src in figures.items()]
    lines += ["", "All labelled results are in `results.nc` (one netCDF group per Dataset: "
              "`xarray.open_dataset('results.nc', group=NAME)`)."]
    return "\n".join(lines) + "\n"


def _html(result: TargetResult, meta: str, rows: list[tuple[str, ...]],
          images: dict[str, bytes]) -> str:
    """The same Markdown rendered by markdown-it-py (CommonMark and tables; raw HTML in
    notes is escaped), with the figures embedded as data URIs."""
    from markdown_it import MarkdownIt

    embedded = {name: f"data:image/png;base64,{base64.b64encode(data).decode()}"
                for name, data in images.items()}
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(
        _markdown(result, meta, rows, embedded))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(result.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
code {{ background: #f3f3f3; padding: 0 0.2em; }} img {{ max-width: 100%; }}
</style></head><body>
{body}</body></html>
"""


def read_results(path: str | Path) -> dict[str, xr.Dataset]:
    """Every Dataset of a ``results.nc``, by group name."""
    import netCDF4

    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no results file at {str(target)!r}")
    try:
        with netCDF4.Dataset(target, "r") as handle:
            groups = list(handle.groups)
        return {name: decoded(xr.load_dataset(target, group=name, engine="netcdf4"))
                for name in groups}
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise ValueError(
            f"path: {str(target)!r} ({target.stat().st_size} bytes) is not a readable "
            f"results file; it is truncated or corrupt ({type(err).__name__}: {err})"
        ) from err
