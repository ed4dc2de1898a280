"""A plain-text report of a :func:`~.simulation` result, for a terminal or a notebook.

Each direction is spelled out ("A → B: does B simulate A? φ maps A's states into B's",
then its label in the Dataset, "a→b"), with, first, the unit-free output simulation score
(1 = exact, 0 = no better than the best constant map), then D_s and D_o ± their standard
errors (under KL also in bits per step), the best constant map's D_o (the bound), the
time-shuffled null and, when present, the untrained baseline, and the reliability note
in words, and what the numbers say about the pair (``finding``), when anything.
"""

from __future__ import annotations

import math

import xarray as xr

__all__ = ["simulation_summary"]


def _value(row: xr.Dataset, name: str) -> str:
    if name not in row:
        return "—"
    value = float(row[name])
    sem = float(row[f"{name}_sem"]) if f"{name}_sem" in row else math.nan
    text = f"{value:.4g}"
    return text + (f" ± {sem:.2g}" if math.isfinite(sem) else "")


def simulation_summary(result: xr.Dataset, names: tuple[str, str] = ("A", "B")) -> str:
    """The result of :func:`~.simulation` as lines of text, one block per direction
    computed (both, or the one of ``SimulationConfig.directions``, then said so).

    Args:
        result: from :func:`~trajprobe.compare.simulation` (machine a is ``names[0]``).
        names: display names of machines a and b.
    """
    scores = []
    for direction in result["direction"].values:
        src, dst = (names["ab".index(k)] for k in str(direction).split("→"))
        row = result.sel(direction=direction)
        scores.append(f"{src} → {dst} {_value(row, 'output_simulation_score')}")
    lines = [f"output simulation score: {', '.join(scores)}   (1 - D_o / D_o(best constant "
             "map): 1 = exact, 0 = no better than the best constant map)",
             f"D_o: {result.attrs.get('output_measure', '?')}",
             "D_s: 0 = exact embedding, 1 = no better than the target's mean state"]
    if result.sizes["direction"] == 1:
        lines.append("one direction only (SimulationConfig.directions): the other was not "
                     "computed")
    hint = str(result.attrs.get("output_measure_note", ""))
    if "distribution=" in hint:
        lines.append(f"note: {hint}")
    for direction in result["direction"].values:
        src, dst = (names["ab".index(k)] for k in str(direction).split("→"))
        row = result.sel(direction=direction)
        lines.append(f"{src} → {dst}: does {dst} simulate {src}? "
                     f"(φ maps {src}'s states into {dst}'s)")
        lines.append(f"  score {_value(row, 'output_simulation_score')}   "
                     f"shuffled null {_value(row, 'output_simulation_score_shuffled')}   "
                     f"untrained {_value(row, 'output_simulation_score_untrained')}")
        lines.append(f"  {direction}: D_s {_value(row, 'state_dissimilarity')}   "
                     f"shuffled null {_value(row, 'state_dissimilarity_shuffled')}   "
                     f"untrained {_value(row, 'state_dissimilarity_untrained')}")
        lines.append(f"        D_o {_value(row, 'output_dissimilarity')}   "
                     f"constant-map bound {_value(row, 'output_dissimilarity_constant')}   "
                     f"shuffled null {_value(row, 'output_dissimilarity_shuffled')}   "
                     f"untrained {_value(row, 'output_dissimilarity_untrained')}")
        if "output_dissimilarity_bits_per_step" in row:
            lines.append(f"        D_o {_value(row, 'output_dissimilarity_bits_per_step')} "
                         "bits per step   constant-map bound "
                         f"{_value(row, 'output_dissimilarity_constant_bits_per_step')}")
        finding = str(row["finding"].item()) if "finding" in row else ""
        if finding:
            lines.append(f"        finding: {finding}")
        note = str(row["reliability_note"].item()) if "reliability_note" in row else ""
        lines.append("        reliable" if bool(row["reliable"]) else f"        UNRELIABLE: {note}")
    return "\n".join(lines)
