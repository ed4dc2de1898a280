"""The 3-bit flip-flop task, its recipes, and the fixed points of its trained networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajprobe import fixed_points, rollout
from trajprobe import machine as sm
from trajprobe.apps import load_run, recipes
from trajprobe.tasks import FlipFlop, Task


def _held(inputs: torch.Tensor) -> torch.Tensor:
    """The targets by the definition: the last non-zero pulse, step by step."""
    out = torch.zeros_like(inputs)
    memory = torch.zeros_like(inputs[:, 0])
    for t in range(inputs.shape[1]):
        memory = torch.where(inputs[:, t] != 0, inputs[:, t], memory)
        out[:, t] = memory
    return out


def test_targets_hold_the_last_pulse_of_each_channel():
    task = FlipFlop(3)
    episodes = task.sample(50, 40, seed=0)
    assert isinstance(task, Task) and episodes.inputs.shape == (50, 40, 3)
    torch.testing.assert_close(episodes.targets, _held(episodes.inputs), rtol=0, atol=0)
    assert set(episodes.inputs.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert bool((episodes.inputs[:, 0] != 0).all())  # every channel pulses at t = 1
    assert set(episodes.targets.unique().tolist()) == {-1.0, 1.0}


def test_pulse_rate_seed_and_corners():
    task = FlipFlop(2, pulse_probability=0.3)
    a = task.sample(400, 51, seed=7)
    b = task.sample(400, 51, seed=7)
    torch.testing.assert_close(a.inputs, b.inputs, rtol=0, atol=0)
    rate = float((a.inputs[:, 1:] != 0).float().mean())
    assert abs(rate - 0.3) < 0.01  # 40,000 draws: s.e. 0.0023
    assert task.corners().tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    with pytest.raises(ValueError, match="pulse_probability"):
        FlipFlop(3, pulse_probability=1.5)


@pytest.mark.parametrize("architecture", ["gru", "lstm"])
def test_smoke_recipes_train_and_their_networks_have_fixed_points(architecture, tmp_path):
    recipe = recipes.get(f"flipflop-3bit/{architecture}", "smoke")
    assert recipe.estimated_seconds() < recipes.get(recipe.name, "quick").estimated_seconds()
    result = recipe.train(tmp_path / "run", seed=0, progress=False)
    trace = rollout(result.model, recipe.task.sample(8, 32, seed=1).inputs)
    ds = fixed_points(result.model, torch.zeros(3), trace, samples=64, max_iters=200)
    assert ds.sizes["unit"] == 16 * (1 if architecture == "gru" else 2)
    assert ds.sizes["point"] >= 1 and int(ds["count"].sum()) <= 64
    loaded_recipe, _, model, _ = load_run(tmp_path / "run")
    assert loaded_recipe.model == recipe.model
    torch.testing.assert_close(rollout(model, trace.inputs).outputs, trace.outputs)


def stable_corners(model: torch.nn.Module, task: FlipFlop, seed: int = 0):
    """Stable fixed points under zero input and the output-cube corner each one reads out."""
    trace = rollout(model, task.sample(64, 64, seed=seed).inputs)
    ds = fixed_points(model, torch.zeros(task.bits), trace, samples=1024, noise=0.1,
                      max_q=1e-8, seed=seed)
    stable = ds.sel(point=ds.stable)
    states = sm.state_from_vector(model, torch.as_tensor(stable.state.values))
    with torch.no_grad():
        outputs = sm.output(model, torch.zeros(stable.sizes["point"], task.bits), states)
    return ds, outputs.numpy()


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["gru", "lstm"])
def test_quick_networks_have_eight_stable_points_one_per_corner(architecture, tmp_path):
    recipe = recipes.get(f"flipflop-3bit/{architecture}", "quick")
    model = recipe.train(tmp_path / "run", seed=0, progress=False).model
    ds, outputs = stable_corners(model, recipe.task)
    assert int(ds.stable.sum()) == 8
    corners = recipe.task.corners().numpy()
    nearest = np.abs(outputs[:, None] - corners[None]).max(-1).argmin(1)
    assert sorted(nearest.tolist()) == list(range(8))
    assert np.abs(outputs - corners[nearest]).max() < 0.2
    assert int((~ds.stable).sum()) >= 1  # saddles between them
