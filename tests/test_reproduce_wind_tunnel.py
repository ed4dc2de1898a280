"""`reproduce wind-tunnel`: its learners, recipes and known answers, and the smoke run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajprobe.apps import recipes
from trajprobe.apps.recipes.wind_tunnel import (
    PARAMETER_BUDGET,
    WIND_TUNNEL_ARCHITECTURES,
    WIND_TUNNEL_TASKS,
    WindowMLP,
    WindTunnelModel,
    wind_tunnel_name,
    wind_tunnel_task,
)
from trajprobe.apps.reproduce import RunContext, read_results, reproduce
from trajprobe.apps.reproduce.wind_tunnel import (
    ARCHITECTURES,
    BAYES,
    SETTINGS,
    TASKS,
    UNIFORM,
    UniformPredictor,
    training_runs,
)
from trajprobe.apps.training.losses import log_loss
from trajprobe.posterior import posterior_error
from trajprobe.tasks import AssociativeRecall, BijectionElimination, RegimeSwitchingCoin
from trajprobe.traces import rollout

# ------------------------------------------------------------------ the window MLP


def test_window_mlp_unrolls_as_it_steps_and_forgets_beyond_its_window():
    mlp = WindowMLP(3, 5, 16, window=3, distribution="categorical", seed=1)
    x = torch.randn(4, 9, 3)
    with torch.no_grad():
        stepped = rollout(mlp, x).outputs
        unrolled, final = mlp.unroll(x)
        moved = x.clone()
        moved[:, 2] += 1.0  # x_3 is seen by the outputs of t = 3, 4, 5 only
        changed = (mlp.unroll(moved)[0] - unrolled).abs().amax((0, 2))
    torch.testing.assert_close(unrolled, stepped)
    torch.testing.assert_close(final, x[:, -2:])  # the W - 1 last inputs
    assert (changed[2:5] > 1e-6).all()
    assert float(changed[:2].max()) == 0.0 and float(changed[5:].max()) == 0.0


def test_a_window_of_one_is_a_feed_forward_map():
    mlp = WindowMLP(3, 2, 8, window=1, seed=0)
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(mlp.unroll(x)[0], mlp.net(x))
    assert mlp.initial_state(2).shape == (2, 0, 3)


@pytest.mark.parametrize("bad, match", [
    ({"window": 0}, "window"), ({"hidden_size": 0}, "hidden_size"),
    ({"n_layers": -1}, "n_layers"), ({"input_size": 0}, "input_size")])
def test_window_mlp_refuses_bad_sizes(bad, match):
    kwargs = {"input_size": 3, "output_size": 2, "hidden_size": 8, "window": 2, **bad}
    with pytest.raises(ValueError, match=match):
        WindowMLP(**kwargs)


def test_window_mlp_refuses_a_wrong_input_shape_and_a_missing_head():
    mlp = WindowMLP(3, 2, 8, window=2)
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, 3\], got \(2, 4\)"):
        mlp.step(torch.zeros(2, 4), mlp.initial_state(2))
    with pytest.raises(ValueError, match=r"inputs: expected shape \[episode, t, 3\]"):
        mlp.unroll(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="distribution='categorical'"):
        mlp.distribution(torch.zeros(2, 2))


# ------------------------------------------------------------------ recipes


@pytest.mark.parametrize("preset", ["smoke", "quick"])
def test_every_architecture_is_capacity_matched_and_counted_in_closed_form(preset):
    budget = PARAMETER_BUDGET[preset]
    for task in WIND_TUNNEL_TASKS:
        for arch in WIND_TUNNEL_ARCHITECTURES:
            recipe = recipes.get(wind_tunnel_name(task, arch), preset)
            model = recipe.build_model(0)
            counted = sum(p.numel() for p in model.parameters())
            assert counted == recipe.model.n_parameters(recipe.task.input_size,
                                                        recipe.output_size)
            assert 0.7 * budget <= counted <= budget, (task, arch, counted)  # width steps
            assert callable(getattr(model, "distribution", None))
            assert recipe.training.loss == "log_loss"
            assert recipe.training.n_steps == wind_tunnel_task(task, preset)[1]


def test_paper_sizes_are_counted_without_building():
    recipe = recipes.get("wind-tunnel/bijection/transformer", "paper")
    assert recipe.task.n_symbols == 20
    assert 0.75 * PARAMETER_BUDGET.paper <= recipe.model.n_parameters(
        recipe.task.input_size, recipe.output_size) <= PARAMETER_BUDGET.paper


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="task: expected one of bijection, recall, hmm, coin"):
        wind_tunnel_task("bijections", "quick")
    with pytest.raises(ValueError, match="did you mean 'wind-tunnel/hmm/lstm'"):
        recipes.get("wind-tunnel/hmm/lstn", "quick")
    with pytest.raises(ValueError, match="architecture: expected one of"):
        WindTunnelModel("rnn").build(3, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="preset: expected one of smoke, quick, paper"):
        reproduce("wind-tunnel", preset="fast")


def test_training_runs_cover_every_task_architecture_and_seed(tmp_path):
    context = RunContext(preset="smoke", seeds=2, device=torch.device("cpu"), out_dir=tmp_path)
    runs = training_runs(context)
    assert len(runs) == len(SETTINGS.smoke.tasks) * len(WIND_TUNNEL_ARCHITECTURES) * 2
    assert ("wind-tunnel/hmm/mlp", 1) in runs
    assert set(SETTINGS.paper.tasks) == set(WIND_TUNNEL_TASKS)
    assert set(SETTINGS.quick.tasks) >= {"bijection", "recall", "hmm"}


# ------------------------------------------------------------------ known answers


@pytest.mark.parametrize("task", [BijectionElimination(5), AssociativeRecall(6, 4, 3),
                                  RegimeSwitchingCoin(2.0, 1.0, 0.2, horizon=12)])
def test_the_uniform_row_is_log2_v_minus_the_bayes_entropy(task):
    ds = posterior_error(UniformPredictor(task), task, episodes=40, steps=12, seed=3)
    log_v = math.log2(max(task.output_size, 2))  # the coin: one logit, two outcomes
    np.testing.assert_allclose(ds["kl"], log_v - ds["bayes_entropy"], atol=1e-10)
    np.testing.assert_allclose(ds["entropy"], log_v, atol=1e-12)
    np.testing.assert_allclose(ds["entropy_error"], ds["kl"], atol=1e-10)


def _train_window(window: int, task, steps: int, updates: int = 300) -> WindowMLP:
    torch.manual_seed(0)
    mlp = WindowMLP(task.input_size, task.output_size, 32, window=window,
                    distribution="categorical", seed=0)
    optimiser = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for k in range(updates):
        episodes = task.sample(128, steps, seed=k)
        loss = log_loss(mlp, mlp.unroll(episodes.inputs)[0], episodes.targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return mlp.eval()


def test_a_window_mlp_reaches_bayes_only_when_its_window_covers_the_stored_pairs():
    """Associative recall with K = 2 keys, one stored (step 1), then queries. A machine that
    sees only its last W inputs cannot see the stored pair at t ≥ 1 + W: its best predictive
    there is uniform, and its KL at least P(the key is stored) · log₂ V = ½ bit. With W ≥ T
    nothing is out of reach and the trained MLP comes close to Bayes."""
    task, steps = AssociativeRecall(n_keys=2, n_values=2, n_pairs=1), 3
    short, long = _train_window(1, task, steps), _train_window(steps, task, steps)
    with torch.no_grad():
        blind = posterior_error(short, task, episodes=2_000, steps=steps, seed=9)
        seeing = posterior_error(long, task, episodes=2_000, steps=steps, seed=9)
    bound = 0.5 * math.log2(2)
    for t in (2, 3):
        one = blind.sel(t=t)
        assert float(one["kl_mean"]) >= bound - 4 * float(one["kl_sem"])
        assert float(one["kl_mean"]) == pytest.approx(bound, abs=0.05)  # it reaches the bound
        assert float(seeing["kl_mean"].sel(t=t)) < 0.05
    assert float(seeing["average_kl"]) < float(blind["average_kl"]) / 5


# ------------------------------------------------------------------ the smoke run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("wind") / "wind-tunnel-smoke"
    reproduce("wind-tunnel", preset="smoke", out_dir=out, progress=False)
    return out


@pytest.mark.slow
def test_the_smoke_run_end_to_end(run_dir):
    results = read_results(run_dir / "results.nc")
    table = results["table"]
    assert set(results) == {"table", "fixed_points_hmm",
                            *(f"structure_{task}" for task in SETTINGS.smoke.tasks)}
    labels = [BAYES, *(ARCHITECTURES[a] for a in WIND_TUNNEL_ARCHITECTURES), UNIFORM]
    assert list(table["architecture"].values) == labels
    assert list(table["task"].values) == [TASKS[t] for t in SETTINGS.smoke.tasks]
    assert table["kl_mean"].dims == ("task", "seed", "architecture", "t")
    assert table["average_kl"].dims == ("task", "seed", "architecture")
    # Bayes against itself: 0 bits, exactly
    bayes = table.sel(architecture=BAYES)
    assert float(abs(bayes["average_kl"]).max()) == 0.0
    assert float(abs(bayes["average_entropy_error"]).max()) == 0.0
    # the uniform ceiling: log2 V − H(Bayes) at every position (V = 4 symbols for bijection
    # and recall, whose store steps are copies with H(Bayes) = 0; 5 for the HMM); NaN
    # beyond a task's T
    for slug, v in zip(SETTINGS.smoke.tasks, (4, 4, 5), strict=True):
        one = table.sel(task=TASKS[slug])
        assert wind_tunnel_task(slug, "smoke")[0].output_size == v
        expected = math.log2(v) - one["bayes_entropy_mean"].sel(architecture=BAYES)
        np.testing.assert_allclose(one["kl_mean"].sel(architecture=UNIFORM), expected,
                                   atol=1e-10)
    # every learner has finite bits where its task has positions, and its parameter count
    learners = table.sel(architecture=labels[1:-1])
    assert np.isfinite(learners["average_kl"]).all()
    assert (learners["n_parameters"] <= PARAMETER_BUDGET.smoke).all()
    # the MLP sees W = 2 inputs: at recall's queries from t = P + W = 4 it cannot beat the
    # uniform predictor in expectation (P/K log2 V = 1 bit)
    mlp = table.sel(architecture="MLP", task="associative recall").isel(seed=0)
    late = mlp.sel(t=[4, 5, 6])
    assert (late["kl_mean"] >= 1.0 - 4 * late["kl_sem"] - 0.3).all()
    for stem in ("entropy_vs_position", "kl_vs_position", "entropy_example_episode"):
        assert (run_dir / "figures" / f"{stem}.png").stat().st_size > 10_000
    report = (run_dir / "report.md").read_text()
    assert "| bijection: KL(Bayes ‖ learner), bits per position | Transformer |" in report
    for task in SETTINGS.smoke.tasks:
        for arch in WIND_TUNNEL_ARCHITECTURES:
            name = wind_tunnel_name(task, arch)
            assert (run_dir / "runs" / name.replace("/", "-") / "seed0" / "recipe.json"
                    ).is_file()


@pytest.mark.slow
def test_headline_numbers_are_the_pinned_ones(run_dir, assert_pinned):
    assert_pinned(run_dir, "wind-tunnel")
