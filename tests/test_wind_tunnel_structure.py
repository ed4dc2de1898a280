"""Structure of the wind-tunnel learners (issue 35): D_s/D_o against the exact Bayes machine
and the HMM filters' fixed points, on known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import trajprobe
from trajprobe.apps.models import GPT, RabinowitzLSTM
from trajprobe.apps.reproduce.base import SummaryRow
from trajprobe.apps.reproduce.wind_tunnel_comparison import readout_probes
from trajprobe.apps.reproduce.wind_tunnel_structure import (
    DIRECTIONS,
    CappedRuns,
    belief_fixed_points,
    filter_fixed_points,
    no_fixed_point_reason,
    structure_against_bayes,
)
from trajprobe.tasks import BijectionElimination, HMMFiltering, RegimeSwitchingCoin
from trajprobe.tasks.wind_tunnel_posteriors import ChangePointState

HMM = HMMFiltering()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class AffineBayes:
    """The exact HMM filter with its belief stored as s = b A + c (A invertible)."""

    def __init__(self, bayes, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        k = bayes.n_states
        self.bayes = bayes
        self.a = torch.randn(k, k, generator=gen, dtype=torch.float64) + 3 * torch.eye(
            k, dtype=torch.float64)
        self.c = torch.randn(k, generator=gen, dtype=torch.float64)

    def initial_state(self, batch_size):
        return self.bayes.initial_state(batch_size) @ self.a + self.c

    def step(self, x, state):
        belief = torch.linalg.solve(self.a.T, (state - self.c).T).T
        y, belief = self.bayes.step(x, belief)
        return y, belief @ self.a + self.c

    def distribution(self, y):
        return self.bayes.distribution(y)


class Window(nn.Module):
    """An MLP over the last two inputs; state: the previous input (a buffer, not learnt)."""

    def __init__(self, input_size: int, output_size: int):
        super().__init__()
        self.input_size = input_size
        self.net = nn.Linear(2 * input_size, output_size)

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, self.input_size)

    def step(self, x, state):
        return self.net(torch.cat([state, x], dim=1)), x

    def distribution(self, y):
        return torch.distributions.Categorical(logits=y)


def _trained_lstm(task, updates: int, seed: int = 0) -> RabinowitzLSTM:
    model = RabinowitzLSTM(task.input_size, task.output_size, 16, distribution="categorical",
                           seed=seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(updates):
        episodes = task.sample(32, 12, seed=gen)
        logits, _ = model.unroll(episodes.inputs)
        loss = -model.distribution(logits).log_prob(episodes.targets).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


# ------------------------------------------------------------ D_s and D_o against Bayes


def test_the_bayes_machine_and_an_affine_copy_simulate_it_exactly():
    bayes = HMM.bayes_machine()
    learners = {"Bayes": HMM.bayes_machine(), "affine": AffineBayes(bayes)}
    ds, rows, figures, notes = structure_against_bayes(learners, HMM, bayes, preset="smoke",
                                                       seed=0, steps=8)
    assert list(ds["direction"].values) == list(DIRECTIONS)
    assert list(ds["learner"].values) == ["Bayes", "affine"]
    np.testing.assert_allclose(ds["state_dissimilarity"], 0.0, atol=1e-8)
    np.testing.assert_allclose(ds["output_simulation_score"], 1.0, atol=1e-6)
    np.testing.assert_allclose(ds["output_dissimilarity_bits"], 0.0, atol=1e-8)
    assert ds["reliable"].all()
    assert all(isinstance(r, SummaryRow) for r in rows) and len(rows) == 8
    assert list(figures) == ["wind_tunnel_structure_hmmfiltering"]
    assert any("affine: its state holds the Bayes statistic" in n for n in notes)


def test_an_untrained_network_scores_below_a_trained_one():
    """Trained 150 updates, an LSTM's predictive is far closer to what the Bayes machine
    produces from the mapped belief than an untrained one's; the Bayes copy scores 1."""
    bayes = HMM.bayes_machine()
    learners = {"trained": _trained_lstm(HMM, 150),
                "untrained": RabinowitzLSTM(HMM.input_size, HMM.output_size, 16,
                                            distribution="categorical", seed=1)}
    ds, *_ = structure_against_bayes(learners, HMM, bayes, preset="smoke", seed=0, steps=8)
    score = ds["output_simulation_score"].sel(direction="Bayes→learner")
    assert float(score.sel(learner="trained")) > 0.5
    assert float(score.sel(learner="untrained")) < float(score.sel(learner="trained")) - 0.3


def test_a_transformer_is_read_through_its_attention_and_has_no_inverse():
    task = BijectionElimination(4)
    gpt = GPT(task.input_size, task.output_size, 16, 1, 2, max_len=6,
              distribution="categorical", seed=0)
    ds, *_ = structure_against_bayes({"gpt": gpt}, task, task.bayes_machine(),
                                     preset="smoke", seed=0)
    assert ds.sizes["t"] == 6  # T from the transformer's max_len
    row = ds.sel(learner="gpt")
    assert np.isfinite(float(row["state_dissimilarity"].sel(direction="learner→Bayes")))
    assert np.isnan(float(row["output_simulation_score"].sel(direction="Bayes→learner")))


def test_a_posterior_that_rules_symbols_out_is_compared_with_epsilon_of_uniform():
    """Bijection elimination's exact predictive has zeros: KL(learner ‖ Bayes) would be
    infinite for any learner that hedges, so it is mixed with ε of uniform; the Bayes
    machine against itself stays exact, and a uniform learner's D_o is finite."""
    task = BijectionElimination(4)
    bayes = task.bayes_machine()
    gpt = GPT(task.input_size, task.output_size, 8, 1, 2, max_len=6,
              distribution="categorical", seed=0)
    ds, *_ = structure_against_bayes({"Bayes": task.bayes_machine(), "gpt": gpt}, task, bayes,
                                     preset="smoke", seed=0)
    assert "ε = 0.001" in ds.attrs["bayes_smoothing"]
    # φ (D_s) is exact; φ_o (D_o) may be the most regularised map within one s.e. of the
    # best, which on smoke's 24 episodes of this sparse state leaves a few per cent
    np.testing.assert_allclose(ds["state_dissimilarity"].sel(learner="Bayes"), 0.0, atol=1e-9)
    assert float(ds["output_simulation_score"].sel(learner="Bayes").min()) > 0.95
    assert np.isfinite(float(ds["output_dissimilarity_bits_per_step"].sel(
        learner="gpt", direction="learner→Bayes")))
    hmm, *_ = structure_against_bayes({"Bayes": HMM.bayes_machine()}, HMM, HMM.bayes_machine(),
                                      preset="smoke", seed=0, steps=6)
    assert hmm.attrs["bayes_smoothing"] == "none"  # no zeros: compared as it is


def test_the_change_point_machine_takes_mapped_states_and_stays_exact_on_episodes():
    """A map in log coordinates gives every run length some mass, which the change-point
    machine refuses; compared through CappedRuns it simulates itself exactly."""
    task = RegimeSwitchingCoin(1.0, 1.0, 0.1, horizon=8)
    bayes = task.bayes_machine()
    episodes = task.sample(6, 8, seed=0)
    exact = trajprobe.rollout(bayes, episodes.inputs)
    capped = trajprobe.rollout(CappedRuns(bayes), episodes.inputs)
    np.testing.assert_array_equal(capped.outputs.numpy(), exact.outputs.numpy())
    spread = ChangePointState(torch.full((1, 8), 1 / 8, dtype=torch.float64),
                              torch.zeros(1, 8, dtype=torch.float64))
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="horizon = 8"):
        bayes.step(x, spread)
    assert torch.isfinite(CappedRuns(bayes).output(x, spread)).all()
    ds, *_ = structure_against_bayes({"Bayes": task.bayes_machine()}, task, bayes,
                                     preset="smoke", seed=0)
    np.testing.assert_allclose(ds["output_simulation_score"], 1.0, atol=1e-6)


def test_readout_probes_cover_every_input_feature():
    inputs = BijectionElimination(5).sample(20, 10, seed=0).inputs
    probes = readout_probes(inputs, torch.Generator().manual_seed(0))
    assert bool((probes != 0).any(0).all())  # every query and every image probed
    assert len(torch.unique(probes, dim=0)) == len(probes) <= 10


def test_bad_inputs_are_refused_with_the_reason():
    bayes = HMM.bayes_machine()
    with pytest.raises(ValueError, match="at least one machine"):
        structure_against_bayes({}, HMM, bayes, preset="smoke", seed=0)
    plain = RabinowitzLSTM(HMM.input_size, HMM.output_size, 8, seed=0)  # no distribution
    with pytest.raises(ValueError, match=r"learners\['plain'\].*distribution='categorical'"):
        structure_against_bayes({"plain": plain}, HMM, bayes, preset="smoke", seed=0)
    with pytest.raises(ValueError, match=r"learners\['plain'\].*lacks distribution"):
        filter_fixed_points({"plain": plain}, HMM, preset="smoke", seed=0)
    with pytest.raises(ValueError, match="preset: expected one of smoke, quick, paper"):
        structure_against_bayes({"Bayes": bayes}, HMM, bayes, preset="fast", seed=0)
    with pytest.raises(ValueError, match="bayes: expected the task's exact Bayes machine"):
        structure_against_bayes({"Bayes": bayes}, HMM, object(), preset="smoke", seed=0)
    with pytest.raises(ValueError, match="task: expected HMM filtering"):
        filter_fixed_points({"Bayes": bayes}, BijectionElimination(4), preset="smoke", seed=0)
    with pytest.raises(TypeError, match="learners: expected a dict"):
        structure_against_bayes([bayes], HMM, bayes, preset="smoke", seed=0)


# ---------------------------------------------------------------- HMM fixed points


def _filter_forever(transition, emission, j: int, steps: int = 3000) -> np.ndarray:
    """The forward filter under symbol j held constant, iterated from the uniform belief."""
    b = np.full(len(transition), 1.0 / len(transition))
    for _ in range(steps):
        b = b * emission[:, j]
        b = (b / b.sum()) @ transition
    return b


def test_belief_fixed_points_are_where_the_filter_converges():
    rng = np.random.default_rng(0)
    transition = rng.dirichlet(np.ones(3), size=3)
    emission = rng.dirichlet(np.ones(4), size=3)
    beliefs = belief_fixed_points(transition, emission)
    expected = np.stack([_filter_forever(transition, emission, j) for j in range(4)])
    np.testing.assert_allclose(beliefs, expected, atol=1e-12)
    np.testing.assert_allclose(beliefs.sum(1), 1.0, atol=1e-12)


def test_the_exact_filter_has_one_stable_fixed_point_per_symbol_at_the_closed_form():
    bayes = HMM.bayes_machine()
    ds, _, figures, notes = filter_fixed_points({"Bayes": bayes}, HMM, preset="smoke",
                                                   seed=0)
    closed = belief_fixed_points(HMM.transition, HMM.emission)
    np.testing.assert_allclose(ds["belief_fixed_point"], closed, atol=1e-12)
    assert (ds["n_stable"].sel(learner="Bayes") == 1).all()
    np.testing.assert_allclose(ds["attractor_kl_bits"].sel(learner="Bayes"), 0.0, atol=1e-10)
    np.testing.assert_allclose(ds["learner_predictive"].sel(learner="Bayes"),
                               closed @ np.asarray(HMM.emission), atol=1e-8)
    np.testing.assert_allclose(ds["attractor_magnitude"].sel(learner="Bayes"),
                               ds["bayes_magnitude"], atol=1e-6)
    assert list(figures) == ["wind_tunnel_fixed_points"]
    assert any("Bayes: one stable fixed point per symbol" in n for n in notes)
    # the library's own search, from noisy beliefs, lands on b*_j
    for j, b in enumerate(closed):
        x = torch.cat([torch.eye(5)[j], torch.ones(1)]).double()
        found = trajprobe.fixed_points(bayes, x, torch.full((16, 5), 0.2, dtype=torch.float64),
                                       noise=0.05, max_q=1e-12, seed=j)
        np.testing.assert_allclose(found["state"].values[0], b, atol=1e-7)


def test_a_trained_lstm_is_closer_to_the_belief_fixed_points_than_an_untrained_one():
    learners = {"trained": _trained_lstm(HMM, 150),
                "untrained": RabinowitzLSTM(HMM.input_size, HMM.output_size, 16,
                                            distribution="categorical", seed=1)}
    ds, rows, _, _ = filter_fixed_points(learners, HMM, preset="smoke", seed=0)
    kl = ds["attractor_kl_bits"].mean("symbol")
    assert float(kl.sel(learner="trained")) < 0.5 * float(kl.sel(learner="untrained"))
    assert len(rows) == 6


def test_machines_without_learned_dynamics_are_skipped_with_the_reason():
    gpt = GPT(HMM.input_size, HMM.output_size, 8, 1, 2, max_len=8, distribution="categorical",
              seed=0)
    window = Window(HMM.input_size, HMM.output_size)
    assert "integer leaf" in no_fixed_point_reason(gpt, HMM.input_size)
    assert "does not depend on its parameters" in no_fixed_point_reason(window, HMM.input_size)
    assert no_fixed_point_reason(HMM.bayes_machine(), HMM.input_size) == ""
    ds, _, _, notes = filter_fixed_points(
        {"gpt": gpt, "window": window, "Bayes": HMM.bayes_machine()}, HMM, preset="smoke",
        seed=0)
    assert list(ds["learner"].values) == ["Bayes"]
    assert any(n.startswith("gpt: no fixed points searched") for n in notes)
    assert any(n.startswith("window: no fixed points searched") for n in notes)


def test_the_bayes_output_stays_a_distribution_at_states_no_history_produces():
    """A simulation map can embed a bijection state with every image revealed but the
    query not: the posterior must still be a distribution (uniform), never all zeros."""
    task = BijectionElimination(3)
    bayes = task.bayes_machine()
    revealed = torch.zeros(1, 3, 3, dtype=torch.float64)
    revealed[0, 0, :] = 1.0  # row 0 holds every image, rows 1 and 2 none
    state = (revealed, torch.zeros(1, 3, dtype=torch.float64))
    x = torch.cat([torch.eye(3)[1], torch.zeros(3)])[None].double()  # query 1
    y, _ = bayes.step(x, state)
    np.testing.assert_allclose(y.numpy(), np.full((1, 3), 1 / 3), atol=1e-12)
