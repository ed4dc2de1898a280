"""Every reproduce target carries one typed, frozen settings object per preset (issue 34)."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from trajprobe.apps.reproduce import PRESETS, TARGETS
from trajprobe.apps.reproduce.base import Presets

# the values the targets' preset dicts and branches held before they became data
KNOWN = {
    "linear-regression": {"smoke": {"n_eval": 8}, "quick": {"n_eval": 200},
                          "paper": {"n_eval": 400}},
    "nonlinear-regression": {
        "smoke": {"n_eval": 8, "n_outer_eval": 4, "bayes_bins": 3, "n_bayes_eval": 4},
        "quick": {"n_eval": 400, "n_outer_eval": 100, "bayes_bins": 10, "n_bayes_eval": 200},
        "paper": {"n_eval": 2000, "n_outer_eval": 500, "bayes_bins": 16, "n_bayes_eval": 2000},
    },
    "contextual-bandits": {"smoke": {"n_eval": 8, "n_outer": 4},
                           "quick": {"n_eval": 500, "n_outer": 100},
                           "paper": {"n_eval": 2000, "n_outer": 200}},
    "bayes-optimal": {
        "smoke": {"n_episodes": 30, "n_convergence_episodes": 20, "n_convergence_runs": 2,
                  "max_checkpoints": 4},
        "quick": {"n_episodes": 300, "n_convergence_episodes": 200, "n_convergence_runs": 2,
                  "max_checkpoints": 8},
        "paper": {"n_episodes": 500, "n_convergence_episodes": 500, "n_convergence_runs": 10,
                  "max_checkpoints": None},
    },
    "in-context-regression": {"smoke": {"n_eval": 12}, "quick": {"n_eval": 200},
                              "paper": {"n_eval": 400}},
    "task-diversity": {
        "smoke": {"ladder": (1, 16, None), "n_eval": 16, "n_spectra": 6, "n_simulation": 12},
        "quick": {"ladder": (1, 4, 16, 64, 256, None), "n_eval": 1_000, "n_spectra": 200,
                  "n_simulation": 200},
        "paper": {"ladder": (*(2**k for k in range(1, 21)), None), "n_eval": 4_096,
                  "n_spectra": 400, "n_simulation": 400},
    },
    "wind-tunnel": {"smoke": {"n_eval": 16}, "quick": {"n_eval": 1_000},
                    "paper": {"n_eval": 4_096}},
    "neurogym-decision": {"smoke": {"hidden_size": 8, "n_eval_episodes": 40},
                          "quick": {"hidden_size": 64, "n_eval_episodes": 400},
                          "paper": {"hidden_size": 128, "n_eval_episodes": 2_000}},
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_has_one_frozen_settings_object_per_preset(target):
    settings = importlib.import_module(TARGETS[target]).SETTINGS
    assert isinstance(settings, Presets)
    kinds = {type(settings[preset]) for preset in PRESETS}
    assert len(kinds) == 1  # one dataclass per target
    for preset in PRESETS:
        entry = settings[preset]
        assert dataclasses.is_dataclass(entry) and entry.__dataclass_params__.frozen
        for name, value in KNOWN[target][preset].items():
            assert getattr(entry, name) == value, (target, preset, name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.__setattr__(dataclasses.fields(entry)[0].name, None)


def test_simulation_maps_per_preset():
    """In-context regression (and task diversity, which shares its maps): 2 folds and the
    affine map only at smoke, 5 folds and the default MLP otherwise; bayes-optimal's
    short fits at smoke and quick, App. C's width 256 for paper's bandits."""
    icl = importlib.import_module(TARGETS["in-context-regression"]).SETTINGS
    diversity = importlib.import_module(TARGETS["task-diversity"]).SETTINGS
    assert (icl.smoke.simulation.n_folds, icl.smoke.simulation.n_hidden_layers) == (2, 0)
    assert icl.quick.simulation.n_folds == icl.paper.simulation.n_folds == 5
    assert icl.quick.simulation.n_hidden_layers == icl.paper.simulation.n_hidden_layers > 0
    for preset in PRESETS:
        assert diversity[preset].simulation == icl[preset].simulation
    bayes = importlib.import_module(TARGETS["bayes-optimal"]).SETTINGS
    assert (bayes.smoke.prediction.max_epochs, bayes.smoke.prediction.patience) == (3, 1)
    assert bayes.quick.bandit.max_epochs == 100
    assert bayes.paper.bandit.hidden_width == 256
    assert {bayes[p].bandit.output_measure for p in PRESETS} == {"error"}


def test_an_unknown_preset_is_refused_with_the_presets_named():
    settings = importlib.import_module(TARGETS["linear-regression"]).SETTINGS
    with pytest.raises(ValueError, match=r"preset: expected one of smoke, quick, paper, "
                                         r"got 'fast'"):
        settings["fast"]


@pytest.mark.parametrize("target", list(TARGETS))
def test_no_target_branches_on_the_preset_name(target):
    """Presets are data: no ``preset ==`` branch and no dict keyed by preset names in a
    target's module, nor in the recipes it trains."""
    apps = Path(importlib.import_module("trajprobe.apps").__file__).parent
    paths = [Path(importlib.import_module(TARGETS[target]).__file__),
             *sorted((apps / "recipes").glob("*.py"))]
    for path in paths:
        text = path.read_text()
        assert not re.search(r"preset\s*[!=]=", text), path.name
        assert not re.search(r"""["']smoke["']\s*:""", text), path.name  # {"smoke": ...}
