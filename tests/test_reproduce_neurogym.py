"""`reproduce neurogym-decision` (issue 37): the smoke run end to end, the ideal observer's
known answers on the target's own trials (its psychometric curve against brute force and
the closed form; compared with itself, score 1 and D ≈ 0), and bad inputs. Every test but
the first two needs neurogym (marked; .ci/run runs them in the neurogym venv)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from trajprobe.apps.reproduce import neurogym_decision as nd
from trajprobe.apps.reproduce import read_results, reproduce
from trajprobe.compare import simulation
from trajprobe.traces import rollout

NEUROGYM = [pytest.mark.neurogym,
            pytest.mark.filterwarnings("ignore:.*render_modes:UserWarning"),
            pytest.mark.filterwarnings("ignore:.*from other wrappers:UserWarning")]


def _needs_neurogym(test):
    for mark in NEUROGYM:
        test = mark(test)
    return test


def test_the_target_imports_without_neurogym():
    code = ("import sys, trajprobe.apps.reproduce.neurogym_decision as nd;"
            "assert 'neurogym' not in sys.modules; print(nd.SETTINGS.quick.hidden_size)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "64"


def test_a_missing_extra_is_named_with_its_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(nd, "REQUIRES", ("neurogym", "trajprobe_no_such_module"))
    with pytest.raises(ModuleNotFoundError, match=r'pip install "trajprobe\[neurogym\]"'):
        reproduce("neurogym-decision", preset="smoke", out_dir=tmp_path, progress=False)
    assert not (tmp_path / "runs").exists()  # refused before training


# ------------------------------------------------------------------ known answers


@pytest.fixture(scope="module")
def trials():
    pytest.importorskip("neurogym")
    settings = nd.SETTINGS["quick"]
    task = nd.make_task(settings)
    observer = task.bayes_machine()
    return task, observer, task.sample(240, 5 * observer.trial_steps, seed=nd._EVAL_SEED)


@_needs_neurogym
def test_the_observers_curve_is_brute_force_and_the_closed_form(trials):
    """Two choices: the observer chooses 1 iff the summed evidence Σ_t (x_t1 − x_t2) over
    the stimulus is positive (uniform priors over coherence and choice; its likelihood
    ratio is monotone in that sum for every coherence). Brute force counts that per signed
    coherence on the same trials; the closed form is Φ(c √n / (100 σ √2))."""
    task, observer, episodes = trials
    curve = nd.choice_curves({"ideal": observer}, episodes, observer).sel(agent="ideal")
    x = episodes.inputs.double().numpy()
    stim = nd._stimulus_steps(observer, x.shape[1])
    trial = observer.trial_steps
    evidence = (x[..., 1] - x[..., 2]) * stim
    summed = evidence.reshape(x.shape[0], -1, trial).sum(-1)  # [E, trials]
    label = episodes.targets.numpy().reshape(x.shape[0], -1, trial)[..., -1]
    coh = episodes.params["coh"].double().numpy().reshape(x.shape[0], -1, trial)[..., -1]
    signed = np.round(np.where(label == 1, coh, -coh), 6).ravel()
    chose_1 = (summed > 0).ravel()
    for level in curve.signed_coh.values:
        assert float(curve.p_choice_1.sel(signed_coh=level)) == chose_1[signed == level].mean()
        assert int(curve.n_signed.sel(signed_coh=level)) == (signed == level).sum()
    exact = ndtr(curve.signed_coh.values * np.sqrt(observer.periods["stimulus"])
                 / (100 * observer.sigma * np.sqrt(2)))
    np.testing.assert_array_equal(curve.closed_form.values, exact)
    z = (curve.p_choice_1.values - exact) / np.maximum(curve.p_choice_1_sem.values, 0.02)
    assert np.all(np.abs(z) < 4), (curve.p_choice_1.values, exact)
    accuracy = nd.psychometric(task, {"ideal": observer}, episodes, observer).sel(agent="ideal")
    correct = np.where(label == 1, summed > 0, summed < 0).ravel()
    for level in accuracy.coh.values:
        picked = np.round(coh.ravel(), 6) == level
        assert float(accuracy.accuracy.sel(coh=level)) == correct[picked].mean()


@_needs_neurogym
def test_the_observer_simulates_itself_exactly(trials):
    task, _, episodes = trials
    lapsed = task.bayes_machine(lapse=nd.SETTINGS["smoke"].lapse)
    sim = simulation(lapsed, lapsed, episodes.inputs[:40].double(),
                        config=nd.SETTINGS["smoke"].simulation, seed=0)
    np.testing.assert_allclose(sim.output_simulation_score.values, 1.0, atol=1e-9)
    assert float(sim.output_dissimilarity_bits_per_step.max()) < 1e-9
    assert float(sim.state_dissimilarity.max()) < 1e-9
    assert bool(sim.reliable.all())


@_needs_neurogym
def test_the_lapse_mixes_with_the_uniform_and_the_step_rounds(trials):
    task, observer, episodes = trials
    lapsed = task.bayes_machine(lapse=0.01)
    exact = rollout(observer, episodes.inputs[:4]).outputs
    mixed = rollout(lapsed, episodes.inputs[:4]).outputs
    torch.testing.assert_close(mixed, 0.99 * exact + 0.01 / 3, rtol=0, atol=1e-15)
    assert "lapse=0.01" in repr(lapsed) and "lapse" not in repr(observer)
    state = rollout(observer, episodes.inputs[:4]).state_at(7)
    vector = torch.cat([state.loglik.flatten(1), state.phase[:, None].double() + 0.4], 1)
    back = observer.state_from_vector(vector)
    assert torch.equal(back.phase, state.phase) and torch.equal(back.loglik, state.loglik)
    with pytest.raises(ValueError, match=r"lapse: expected a probability in \[0, 1\)"):
        task.bayes_machine(lapse=1.0)


class Accumulator(torch.nn.Module):
    """A perfect integrator: s₀ ← s₀ + x₁ − x₂ (reset by the fixation input), s₁ ← s₁ / 2,
    logits [0, s₀, −s₀]. With one coherence level the observer's log-odds is
    (c / 100σ²) Σ_t (x_t1 − x_t2): s₀ exactly, scaled."""

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, 2)

    def step(self, x: torch.Tensor, state: torch.Tensor):
        keep = (x[:, :1] < 0.5).to(x.dtype)
        s0 = keep * (state[:, :1] + x[:, 1:2] - x[:, 2:3])
        new = torch.cat([s0, state[:, 1:] / 2], dim=1)
        return torch.cat([torch.zeros_like(s0), s0, -s0], dim=1), new


@_needs_neurogym
def test_a_perfect_integrator_holds_its_decision_on_a_line_along_the_log_odds():
    from trajprobe.tasks.neurogym_trials import NeurogymTask

    task = NeurogymTask(nd.ENV_ID, sigma=3.0, cohs=[25.6])
    observer = task.bayes_machine()
    episodes = task.sample(60, 3 * observer.trial_steps, seed=1)
    machine = Accumulator()
    trace = rollout(machine, episodes.inputs)
    settings = nd.SETTINGS["smoke"]
    points = nd.slow_points(machine, trace, observer, settings, seed=0)
    zero = nd.at_condition(points, "+0 %")
    assert zero.sizes["point"] == settings.fixed_point_states  # a continuum: every start
    np.testing.assert_allclose(zero.state.values[:, 1], 0, atol=1e-5)  # q < 1e-12 there
    line = nd.line_projection(machine, trace, observer, rollout(observer, episodes.inputs),
                              points)
    np.testing.assert_allclose(np.abs(line.axis.values), [1, 0], atol=1e-6)
    assert float(line.gain) == pytest.approx(1.0, abs=1e-6)  # J = diag(1, 1/2)
    assert float(line.r_axis) > 0.99 and float(line.rho_axis) > 0.99
    assert float(line.decoder_r2) > 0.999
    assert 0.3 < float(line.extent) <= 1.0 + 1e-9  # slow points drawn from the states


def test_conditions_are_fixation_and_each_signed_coherence():
    inputs = nd.conditions((0.0, 6.4, 51.2))
    assert list(inputs) == ["fixation", "-51.2 %", "-6.4 %", "+0 %", "+6.4 %", "+51.2 %"]
    np.testing.assert_array_equal(inputs["fixation"], [1, 0, 0])
    np.testing.assert_allclose(inputs["+6.4 %"], [0, 0.532, 0.468])
    np.testing.assert_allclose(inputs["-51.2 %"], [0, 0.244, 0.756])


# --------------------------------------------------------------------- bad inputs


def test_bad_inputs_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="agent: expected one of GRU, LSTM, got 'RNN'"):
        nd.recipe("RNN", "smoke")
    with pytest.raises(ValueError, match="preset: expected one of smoke, quick, paper"):
        nd.SETTINGS["fast"]
    with pytest.raises(ValueError, match="did you mean 'neurogym-decision'"):
        reproduce("neurogym-decison", preset="smoke")


@_needs_neurogym
def test_a_three_choice_observer_has_no_p_choice_1(trials):
    from trajprobe.reference_models import PerceptualDecisionObserver

    _, observer, episodes = trials
    three = PerceptualDecisionObserver(observer.cohs, observer.sigma, observer.periods,
                                       dim_ring=3)
    with pytest.raises(ValueError, match="defined for two choices, got 3"):
        nd.choice_curves({"ideal": three}, episodes, three)


# ----------------------------------------------------------------------- the smoke run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    pytest.importorskip("neurogym")
    out = tmp_path_factory.mktemp("neurogym")
    torch.set_num_threads(1)  # as the pins are recorded
    reproduce("neurogym-decision", preset="smoke", out_dir=out, progress=False)
    return out


@_needs_neurogym
def test_smoke_run_writes_labelled_results_rows_and_figures(run_dir):
    results = read_results(run_dir / "results.nc")
    assert {"psychometric", "comparison", "slow_points_GRU", "slow_points_LSTM", "line_GRU",
            "line_LSTM"} <= set(results)
    curve = results["psychometric"]
    assert list(curve.agent.values) == ["ideal observer", "GRU", "LSTM"]
    np.testing.assert_allclose(curve.coh.values, [0, 6.4, 12.8, 25.6, 51.2], atol=1e-5)
    assert (curve.n_decisions == curve.n_decisions.sel(agent="ideal observer")).all()
    assert int(curve.n_decisions.sum("coh")[0]) == 40 * 2  # 40 episodes of 2 trials
    comparison = results["comparison"]
    assert set(comparison.direction.values) == set(nd.DIRECTIONS)
    assert np.isfinite(comparison.output_dissimilarity_bits_per_step.values).all()
    points = results["slow_points_GRU"]
    assert (points.speed <= nd.SETTINGS["smoke"].max_q).all()
    assert set(points.condition.values) <= set(nd.conditions((0, 6.4, 12.8, 25.6, 51.2)))
    line = results["line_GRU"]
    assert line.sizes["sample"] == 40 * 2 * 20  # every stimulus step of every trial
    assert -1 <= float(line.r_axis) <= 1 and float(line.decoder_r2) <= 1
    assert int(line.n_slow) == int((points.condition == "+0 %").sum())
    np.testing.assert_allclose(float(np.linalg.norm(line.axis)), 1.0)
    rows = json.loads((run_dir / "summary.json").read_text())
    quantities = {r["quantity"] for r in rows}
    assert "output simulation score, network→observer" in quantities
    assert "r(state on the choice axis, observer's log-odds)" in quantities
    ideal = [r for r in rows if r["agent"] == "ideal observer"
             and r["quantity"].startswith("accuracy at")]
    assert len(ideal) == 5
    for stem in ("psychometric", "comparison", "slow_points", "line_vs_log_odds"):
        assert (run_dir / "figures" / f"{stem}.png").stat().st_size > 5_000
    assert "lapse" in (run_dir / "report.md").read_text()


@_needs_neurogym
def test_rerun_reuses_the_trained_networks(run_dir):
    runs = sorted((run_dir / "runs").rglob("latest.pt"))
    assert len(runs) == 2
    before = [p.stat().st_mtime_ns for p in runs]
    first = json.loads((run_dir / "summary.json").read_text())
    reproduce("neurogym-decision", preset="smoke", out_dir=run_dir, progress=False)
    assert [p.stat().st_mtime_ns for p in runs] == before
    assert json.loads((run_dir / "summary.json").read_text()) == first
