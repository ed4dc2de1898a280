"""A run trained on a user's task reloads from another script; every refusal of a run
directory names the setting that differs, with both values (issue 26)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from trajprobe import io
from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.apps.training import (
    OptimiserConfig,
    PolicyGradientConfig,
    SupervisedConfig,
    check_run_dir,
    describe_task,
    load_model,
    train_supervised,
)
from trajprobe.apps.training.run_dirs import check_run_info
from trajprobe.tasks import LinearRegression

# A user's task, defined in the script that trains on it (so in __main__ there); the script
# stops after STOP_AFTER outer steps when that variable is set, as a killed run would.
TRAIN_B = textwrap.dedent('''
    import os
    import sys
    from dataclasses import dataclass

    import torch

    from trajprobe.task_protocol import Episodes, make_generator


    @dataclass(frozen=True)
    class Drift:
        """x_t = m + noise; predict x_t from x_{t-1}."""

        scale: float = 1.0
        input_size = 1
        output_size = 1
        calls = [0]

        def sample(self, n_episodes, n_steps, *, seed=None, device=None, dtype=torch.float32):
            stop = os.environ.get("STOP_AFTER")
            if stop is not None and self.calls[0] >= int(stop):
                raise SystemExit(3)
            self.calls[0] += 1
            g = make_generator(seed)
            m = self.scale * torch.randn(n_episodes, 1, 1, generator=g, dtype=dtype)
            x = m + 0.1 * torch.randn(n_episodes, n_steps, 1, generator=g, dtype=dtype)
            prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
            return Episodes(prev, x, {"m": m})


    CONFIG = dict(n_episodes=8 * 4, n_steps=3, batch_size=8, n_checkpoints=1, save_every=1,
                  log_every=1)

    if __name__ == "__main__":
        from trajprobe.apps.models import RabinowitzLSTM
        from trajprobe.apps.training import SupervisedConfig, train_supervised

        train_supervised(RabinowitzLSTM(1, 1, 4, seed=0), Drift(), SupervisedConfig(**CONFIG),
                         sys.argv[1], progress=False)
''')

USE_B = textwrap.dedent('''
    import sys

    from train_b import CONFIG, Drift

    from trajprobe.apps.models import RabinowitzLSTM
    from trajprobe.apps.training import SupervisedConfig, load_model, train_supervised

    result = train_supervised(RabinowitzLSTM(1, 1, 4, seed=7), Drift(),
                              SupervisedConfig(**CONFIG), sys.argv[1], progress=False)
    print("steps", result.metrics.step.values.tolist())
    load_model(sys.argv[1] + "/latest.pt", RabinowitzLSTM(1, 1, 4))
''')


def _python(args: list[str], cwd: Path, stdin: str | None = None,
            **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, input=stdin, text=True,
                          capture_output=True, timeout=120, env={**os.environ, **env})


def test_a_script_s_own_task_resumes_from_another_script_that_imports_it(tmp_path):
    (tmp_path / "train_b.py").write_text(TRAIN_B)
    (tmp_path / "use_b.py").write_text(USE_B)
    out = tmp_path / "run"
    first = _python(["train_b.py", str(out)], tmp_path, STOP_AFTER="2")  # dies after 2 steps
    assert first.returncode == 3, first.stderr
    saved = io.load_checkpoint(out / "latest.pt")
    assert saved["step"] == 2
    assert saved["task"] == {"class": "train_b.Drift", "scale": 1.0}  # not __main__.Drift
    second = _python(["use_b.py", str(out)], tmp_path)
    assert second.returncode == 0, second.stderr
    assert "steps [1, 2, 3, 4]" in second.stdout  # resumed: the first two steps kept
    assert io.load_checkpoint(out / "latest.pt")["step"] == 4


def test_a_task_defined_in_a_notebook_s_main_says_how_to_make_it_loadable(tmp_path,
                                                                          monkeypatch):
    notebook = types.ModuleType("__main__")  # no __file__ and no __spec__: like a notebook
    monkeypatch.setitem(sys.modules, "__main__", notebook)

    @dataclasses.dataclass(frozen=True)
    class Drift(LinearRegression):
        pass

    Drift.__module__, Drift.__qualname__ = "__main__", "Drift"
    assert describe_task(Drift(2))["class"] == "__main__.Drift"
    with pytest.warns(UserWarning, match=r"task: Drift is defined in __main__ .* move the "
                                         r"class Drift into a module"):
        train_supervised(RabinowitzLSTM(4, 2, 4), Drift(2), _config(), tmp_path,
                         progress=False)
    # once the class is moved into a module, its runs are recognised (a __main__ record
    # names no module, so the class's name is compared) ...
    Drift.__module__ = "my_tasks"
    check_run_dir(tmp_path, "supervised", _config(), Drift(2))
    # ... and another class, or other fields, are refused naming both
    with pytest.raises(ValueError, match=r"class: run '__main__.Drift', given '.*LinearRegression"
                                         r"'.*move it into an importable module"):
        check_run_dir(tmp_path, "supervised", _config(), LinearRegression(2))


# --------------------------------------------------------------------------- refusals


def _config(**kw) -> SupervisedConfig:
    base = dict(n_episodes=8 * 2, n_steps=3, batch_size=8, n_checkpoints=1,
                optimiser=OptimiserConfig("adam", 1e-2))
    return SupervisedConfig(**{**base, **kw})


@pytest.fixture
def run_dir(tmp_path) -> Path:
    train_supervised(RabinowitzLSTM(4, 2, 4), LinearRegression(2, noise_std=0.1), _config(),
                     tmp_path, progress=False)
    return tmp_path


def test_check_run_dir_names_a_nested_config_field_with_both_values(run_dir):
    other = _config(optimiser=OptimiserConfig("adam", 2e-2))
    with pytest.raises(ValueError, match=r"optimiser\.lr: checkpoint 0\.01, given 0\.02"):
        check_run_dir(run_dir, "supervised", other, LinearRegression(2, noise_std=0.1))
    with pytest.raises(ValueError, match=r"n_steps: checkpoint 3, given 4"):
        check_run_dir(run_dir, "supervised", _config(n_steps=4),
                      LinearRegression(2, noise_std=0.1))


def test_check_run_dir_names_the_loop_with_both_values(run_dir):
    with pytest.raises(ValueError, match=r"kind: run 'supervised', given 'policy_gradient'"):
        check_run_dir(run_dir, "policy_gradient", PolicyGradientConfig(16),
                      LinearRegression(2, noise_std=0.1))


def test_check_run_dir_names_the_task_field_with_both_values(run_dir):
    with pytest.raises(ValueError, match=r"task: differs .*noise_std: run 0\.1, given 0\.2"):
        check_run_dir(run_dir, "supervised", _config(), LinearRegression(2, noise_std=0.2))


def test_resume_refuses_another_task_class_naming_both(run_dir):
    @dataclasses.dataclass(frozen=True)
    class LinearRegression2(LinearRegression):
        pass

    with pytest.raises(ValueError, match=r"class: run 'trajprobe\.tasks\.regression\."
                                         r"LinearRegression', given '.*LinearRegression2'"):
        train_supervised(RabinowitzLSTM(4, 2, 4), LinearRegression2(2, noise_std=0.1),
                         _config(), run_dir, progress=False)
    load_model(run_dir / "latest.pt", RabinowitzLSTM(4, 2, 4))  # the run is untouched


def test_check_run_info_names_the_seed_and_the_task_field_with_both_values(tmp_path):
    info = {"name": "r", "preset": "smoke", "seed": 0,
            "task": describe_task(LinearRegression(2, noise_std=0.1))}
    (tmp_path / "recipe.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"holds another training run \(seed: run 0, given 1\)"):
        check_run_info(tmp_path, {**info, "seed": 1})
    other = {**info, "task": describe_task(LinearRegression(2, noise_std=0.2))}
    with pytest.raises(ValueError, match=r"task\.noise_std: run 0\.1, given 0\.2"):
        check_run_info(tmp_path, other)
    check_run_info(tmp_path, info)  # the same run: no refusal


def test_check_run_info_reads_the_record_with_io_load_json_naming_out_dir(tmp_path):
    record = tmp_path / "recipe.json"
    record.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"^out_dir: .*recipe.json' holds a JSON list, "
                                         r"expected an object; use another directory$"):
        check_run_info(tmp_path, {"name": "r"})
    record.write_text("{not json")
    with pytest.raises(ValueError, match=r"^out_dir: .*recipe.json' is not readable JSON"):
        check_run_info(tmp_path, {"name": "r"})


def test_describe_task_records_a_library_class_by_its_module():
    path = "trajprobe.tasks.regression.LinearRegression"
    assert describe_task(LinearRegression(2))["class"] == path
    assert describe_task(torch.nn.Identity()) is None  # not a dataclass: unknown identity


def test_a_sweep_directory_names_the_other_setting_with_both_values(tmp_path):
    from dataclasses import replace

    from trajprobe.apps import recipes, sweep

    recipe = recipes.get("linear-regression-2d/meta-learner", "smoke")
    sweep._claim(tmp_path, recipe)
    sweep._claim(tmp_path, recipe)  # the same sweep: no refusal
    other = replace(recipe, training=replace(recipe.training, batch_size=25))
    with pytest.raises(ValueError, match=r"with other settings \(training\.batch_size: run 50, "
                                         r"given 25\)"):
        sweep._claim(tmp_path, other)
