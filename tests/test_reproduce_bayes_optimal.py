"""`trajprobe reproduce bayes-optimal` (Mikulik et al. 2020): the smoke run's files and pieces."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from trajprobe.apps import recipes
from trajprobe.apps.reproduce import bayes_optimal as bo
from trajprobe.apps.reproduce import bayes_sufficiency, read_results, reproduce
from trajprobe.compare import SimulationConfig
from trajprobe.reference_models import catalogue
from trajprobe.traces import Trace, histories, interact

TINY = bo.EvalSettings(
    n_episodes=30, n_convergence_episodes=10, n_convergence_runs=2, max_checkpoints=3,
    prediction=SimulationConfig(max_epochs=2, patience=1),
    bandit=SimulationConfig(max_epochs=2, patience=1, output_measure="error"),
)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a loaded 2-core machine, more threads only thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------- pieces


def test_regret_of_planted_actions():
    task = catalogue.get("bandit_bernoulli_beta_1_1").task
    means = torch.tensor([[0.2, 0.7], [0.9, 0.4]], dtype=torch.float64)
    actions = torch.tensor([[1, 1, 0], [1, 0, 0]])
    trace = Trace(inputs=torch.zeros(2, 3, 3), outputs=torch.zeros(2, 3, 2),
                  states=torch.zeros(2, 4, 1), actions=actions, params={"means": means})
    regret = bo._regret(trace, task)
    np.testing.assert_allclose(regret, [[0.0, 0.0, 0.5], [0.5, 0.0, 0.0]], atol=1e-12)


def test_select_checkpoints_keeps_first_and_last():
    items = list(range(21))
    chosen = bo._select(items, 5)
    assert chosen[0] == 0 and chosen[-1] == 20
    assert len(chosen) <= 5 and chosen == sorted(set(chosen))
    assert bo._select(items[:3], 5) == items[:3]
    assert bo._select(items, None) == items


def test_policy_machine_outputs_softmax_probabilities(one_thread):
    recipe = recipes.get("bayes-optimal/bandit_bernoulli_beta_1_1", "smoke")
    net = recipe.build_model(0)
    machine = bo.PolicyMachine(net)
    x = torch.randn(4, recipe.task.input_size)
    probs, _ = machine.step(x, machine.initial_state(4))
    logits, _ = net.step(x, net.initial_state(4))
    torch.testing.assert_close(probs, torch.softmax(logits, -1))
    trace = interact(machine, recipe.task, 5, 6, seed=0)
    assert trace.actions.shape == (5, 6)


def test_compare_task_bayes_against_itself_is_zero(one_thread):
    """The Bayes machine in the Meta-Learner's seat: eq. 2 is exactly 0, same log-loss."""
    entry = catalogue.get("bernoulli_beta_1_1")
    untrained = recipes.get("bayes-optimal/bernoulli_beta_1_1", "smoke").build_model(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scalars, sims = bo.compare_task(entry.name, {"untrained": untrained,
                                                     "trained": entry.bayes()}, TINY, seed=0)
    assert scalars["trained"]["behaviour"] == 0.0
    assert math.isclose(scalars["trained"]["log_loss"], scalars["bayes"]["log_loss"],
                        rel_tol=1e-12)
    assert scalars["untrained"]["behaviour"] > 0.01
    # log-loss of Beta(1,1)-Bernoulli Bayes is below log 2 (an uninformed coin)
    assert scalars["bayes"]["log_loss"] < math.log(2)
    assert set(sims) == {"untrained", "trained"}
    for agent in ("untrained", "trained"):
        for d in bo.DIRECTIONS:
            assert np.isfinite(scalars[agent][f"D_s {d}"])
            assert np.isfinite(scalars[agent][f"D_o {d}"])


def test_compare_task_bandit_regrets(one_thread):
    """Gittins' regret is far below a uniform policy's: T · E|p1 − p2| / 2 = 20/6. Two
    different networks in the two seats: each seat's regret and eq. 3 gap are its own
    network's, derived here from the played arms' means and rewards (numpy)."""
    name = "bandit_bernoulli_beta_1_1"
    recipe = recipes.get(f"bayes-optimal/{name}", "smoke")
    nets = {"untrained": recipe.build_model(0), "trained": recipe.build_model(1)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scalars, _ = bo.compare_task(name, nets, TINY, seed=0)
    assert 0 <= scalars["bayes"]["regret"] < 20 / 6
    entry = catalogue.get(name)

    def played(machine):
        trace = histories(machine, entry.task, episodes=TINY.n_episodes, steps=entry.n_steps,
                          seed=bo._EVAL_SEED)[1]
        means = trace.params["means"].double().numpy()  # [E, arms]
        chosen = np.take_along_axis(means, trace.actions.numpy(), axis=1)  # [E, T]
        regret = (means.max(1, keepdims=True) - chosen).sum(1).mean()
        return regret, trace.rewards.double().numpy().sum(1)  # [E]

    bayes_regret, bayes_rewards = played(entry.bayes(entry.task))
    assert scalars["bayes"]["regret"] == pytest.approx(bayes_regret, rel=1e-12)
    for seat, net in nets.items():
        regret, rewards = played(bo.PolicyMachine(net))
        assert scalars[seat]["regret"] == pytest.approx(regret, rel=1e-12), seat
        # eq. 3: |(1/K) Σ_k Σ_t (r^RNN − r^Bayes)|
        gap = abs((rewards - bayes_rewards).mean())
        assert scalars[seat]["behaviour"] == pytest.approx(gap, rel=1e-12, abs=1e-12), seat
    assert scalars["untrained"]["regret"] != scalars["trained"]["regret"]


# ------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_smoke_run_writes_every_result(tmp_path: Path, one_thread, assert_pinned):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = reproduce("bayes-optimal", preset="smoke", out_dir=tmp_path, progress=False)
    results = read_results(tmp_path / "results.nc")
    expected = {"comparison"} | {f"convergence_{t}" for t in bo.CONVERGENCE_TASKS} \
        | {f"simulation_{t}" for t in bo.FIG3_TASKS} | {"sufficiency"}
    assert set(results) == expected
    # issue 36: the Bayes agent's state is sufficient (exactly 0); the other agents' are not
    suff = results["sufficiency"]
    assert list(suff["agent"].values) == list(bayes_sufficiency.AGENTS)
    assert float(suff["ratio_overall"].sel(agent="Bayes").max()) == 0.0
    assert (suff["ratio_overall"].drop_sel(agent="Bayes") > 0).all()

    comp = results["comparison"]
    names = list(catalogue.names())
    assert list(comp["task"].values) == names
    assert list(comp["agent"].values) == list(bo.AGENTS)
    assert list(comp["direction"].values) == list(bo.DIRECTIONS)
    assert comp["state_dissimilarity"].dims == ("task", "agent", "seed", "direction")
    for var in ("behavioural_dissimilarity", "state_dissimilarity", "performance",
                "bayes_performance"):
        assert np.isfinite(comp[var].values).all(), var
        assert (comp[var].values >= 0).all(), var
    # D_o is NaN only where every embedded state gave an invalid distribution
    d_o = comp["output_dissimilarity"].values
    assert np.isfinite(d_o).mean() > 0.9 and (d_o[np.isfinite(d_o)] >= 0).all()
    # untrained Meta-Learners are far from Bayes on the prediction tasks
    pred = comp.sel(task=comp["kind"] == "prediction")
    assert (pred["behavioural_dissimilarity"].sel(agent="untrained") > 0).all()

    for task in bo.CONVERGENCE_TASKS:
        conv = results[f"convergence_{task}"]
        assert conv.sizes["seed"] == 2 and conv.sizes["mds_axis"] == 2
        assert conv["embedding"].dims == ("seed", "checkpoint", "mds_axis")
        assert conv["within_episode"].dims == ("seed", "checkpoint", "t")
        assert conv.sizes["t"] == 20 and conv["checkpoint"].values[0] == 0
        for var in ("distance", "embedding", "within_episode", "training_curve"):
            assert np.isfinite(conv[var].values).all(), (task, var)
        # d is symmetric by definition (JS, |R_i - R_j|); what can fail is its value
        d = conv["distance"]
        if task.startswith("bandit"):
            # a second path: the within-episode regret excess summed over t is R − R^Bayes
            excess = conv["within_episode"].sum("t")
            np.testing.assert_allclose(conv["distance_to_reference"], abs(excess),
                                       rtol=1e-9, atol=1e-12)
            pairs = abs(excess - excess.rename(seed="other_seed",
                                               checkpoint="other_checkpoint"))
            np.testing.assert_allclose(d.transpose(*pairs.dims), pairs, rtol=1e-9, atol=1e-12)
        else:  # a JS divergence per step is at most log 2
            assert float(d.max()) <= conv.sizes["t"] * math.log(2)
            assert float(d.max()) > 0

    for task in bo.FIG3_TASKS:
        sim = results[f"simulation_{task}"]
        assert list(sim["direction"].values) == list(bo.DIRECTIONS)
        assert np.isfinite(sim["state_dissimilarity"].values).all()

    text = report.read_text()
    for task in names:
        assert f"| {task}: behavioural dissimilarity" in text
    assert text.count("| Meta-Learner trained |") >= len(names)
    assert text.count("| Meta-Learner untrained |") == len(names) + 1  # + sufficiency
    assert "Beta(1, 1)-Bernoulli log-loss excess over Bayes (%)" in text
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 6
    figures = {p.stem for p in (tmp_path / "figures").glob("*.png")}
    assert figures == {"fig4_summary"} | {f"fig2_convergence_{t}" for t in bo.CONVERGENCE_TASKS} \
        | {f"fig3_simulation_{t}" for t in bo.FIG3_TASKS} | {"sufficiency"}
    assert all((tmp_path / "figures" / f"{f}.png").stat().st_size > 10_000 for f in figures)
    assert_pinned(tmp_path, "bayes-optimal")  # last: a moved number must not hide the above
