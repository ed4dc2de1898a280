"""Estimators and front doors: planted machines give back what was planted."""

import math

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import trajprobe
from trajprobe.adapters import wrap
from trajprobe.estimators import (
    correct_action_probability,
    effective_map,
    effective_spectrum,
    expected_context_reward,
    expected_reward,
    fourier_coefficients,
    fourier_grid,
    fourier_projection,
    policy_probabilities,
    spectral_energy_ratio,
    spectrum_ratio,
)
from trajprobe.tasks import ContextualBandit, FourierRegression, LinearRegression, make_generator

F64 = torch.float64


class PlantedLinear:
    """Outputs y = W_c x + b with W_c = U diag(s ⊙ (1 - r^c)) Vᵀ + U M Vᵀ after c observations.

    M has a zero diagonal (residual not aligned with the modes), so q_k(t) = 1 - r_k^(t-1).
    """

    def __init__(self, params, rates, off_diag, bias=0.3):
        self.p, self.rates, self.off, self.bias = params, rates, off_diag, bias
        self.dim = params["W"].shape[-1]

    def initial_state(self, batch_size):
        n = self.p["W"].shape[0]
        idx = torch.arange(batch_size) % n
        return {"count": torch.zeros(batch_size, dtype=F64), "episode": idx.to(F64)}

    def step(self, x, state):
        e = state["episode"].long()
        c = state["count"]
        gain = 1 - self.rates[None] ** c[:, None]  # [B, K]
        u, s, v = self.p["U"][e], self.p["s"][e], self.p["V"][e]
        w = u @ (torch.diag_embed(s * gain) + self.off) @ v.mT
        y = torch.einsum("bij,bj->bi", w, x[:, : self.dim]) + self.bias
        return y, {"count": c + 1, "episode": state["episode"]}


def test_effective_spectra_recovers_planted_modes_exactly():
    task = LinearRegression(3)
    episodes = task.sample(6, 5, seed=0, dtype=F64, spectrum=[2.0, 0.7, 0.04])
    rates = torch.tensor([0.2, 0.5, 0.9], dtype=F64)
    off = torch.tensor([[0.0, 0.3, -0.2], [0.1, 0.0, 0.4], [0.5, -0.6, 0.0]], dtype=F64)
    machine = PlantedLinear(episodes.params, rates, off)
    ds = trajprobe.effective_spectra(machine, task, episodes=episodes, probes=20, seed=1)
    t = np.arange(1, 6)
    expected_q = 1 - rates.numpy()[None, :] ** (t[:, None] - 1)
    assert ds.q.dims == ("episode", "t", "mode")
    np.testing.assert_allclose(ds.q.values, np.broadcast_to(expected_q, (6, 5, 3)), atol=1e-8)
    np.testing.assert_allclose(ds.s_hat.values, ds.q.values * ds.s.values[:, None], atol=1e-8)
    np.testing.assert_allclose(ds.s.values, np.tile([2.0, 0.7, 0.04], (6, 1)))
    assert ds.attrs["trajprobe_version"] == trajprobe.__version__
    assert ds.attrs["n_probes"] == 20 and ds.attrs["task_dim"] == 3
    # the probe loss is the mean squared error of W_c x + b against W x on the probe set
    assert bool((ds.probe_loss > 0).all())


def test_effective_spectra_without_intercept_leaks_the_bias_but_not_with_it():
    task = LinearRegression(2)
    episodes = task.sample(2, 3, seed=0, dtype=F64)
    machine = PlantedLinear(episodes.params, torch.tensor([0.5, 0.5], dtype=F64),
                            torch.zeros(2, 2, dtype=F64), bias=1.0)
    exact = trajprobe.effective_spectra(machine, task, episodes=episodes, probes=10)
    biased = trajprobe.effective_spectra(machine, task, episodes=episodes, probes=10,
                                         fit_intercept=False)
    assert float(abs(exact.q - biased.q).max()) > 1e-3
    machine.bias = 0.0
    unbiased = trajprobe.effective_spectra(machine, task, episodes=episodes, probes=10,
                                           fit_intercept=False)
    np.testing.assert_allclose(unbiased.q.values, exact.q.values, atol=1e-10)


def test_effective_map_is_batched_least_squares():
    gen = make_generator(0)
    x = torch.randn(4, 5, 30, 3, generator=gen, dtype=F64)
    w = torch.randn(4, 5, 2, 3, generator=gen, dtype=F64)
    noise = 0.1 * torch.randn(4, 5, 30, 2, generator=gen, dtype=F64)
    y = torch.einsum("etij,etnj->etni", w, x) + noise
    w_hat = effective_map(x, y, fit_intercept=False)
    # against the normal equations, per batch
    ref = torch.linalg.solve(x.mT @ x, x.mT @ y).mT
    torch.testing.assert_close(w_hat, ref)


def test_effective_map_errors_for_undetermined_or_mismatched_probe_sets():
    x = torch.randn(2, 3, dtype=F64)
    with pytest.raises(ValueError, match=r"N = 2 points cannot determine a fit with 3"):
        effective_map(x, torch.randn(2, 1, dtype=F64), fit_intercept=False)
    with pytest.raises(ValueError, match=r"N = 3 points cannot determine a fit with 4"):
        effective_map(torch.randn(3, 3, dtype=F64), torch.randn(3, 1, dtype=F64))
    with pytest.raises(ValueError, match="same number of probes"):
        effective_map(torch.randn(5, 2), torch.randn(4, 1))
    dup = torch.ones(6, 2, dtype=F64)
    with pytest.raises(ValueError, match="rank-deficient"):
        effective_map(dup, torch.randn(6, 1, dtype=F64), fit_intercept=False)


def test_effective_spectrum_and_ratio_of_the_target_itself():
    p = LinearRegression(4).sample_params(3, seed=2, dtype=F64)
    s_hat = effective_spectrum(p["W"], p["U"], p["V"])
    torch.testing.assert_close(s_hat, p["s"])
    torch.testing.assert_close(spectrum_ratio(0.5 * s_hat, p["s"]), torch.full((3, 4), 0.5,
                                                                               dtype=F64))
    with pytest.raises(ValueError, match="u, v"):
        effective_spectrum(p["W"], p["U"][..., :3, :], p["V"])


# --- Fourier -------------------------------------------------------------------------------


class PlantedFourier:
    """Outputs Σ_k m_k(c) a_k sin(2πkx + φ_k + δ_k) + 0.7 + 0.4 sin(2π·8x) after c observations.

    Projection q_k = m_k(c) cos δ_k (eq. 10), energy ratio m_k(c)² (footnote 2); the DC
    term and the out-of-band frequency 8 are orthogonal on the grid and must not leak.
    """

    def __init__(self, params, rates, shifts):
        self.p, self.rates, self.shifts = params, rates, shifts

    def initial_state(self, batch_size):
        idx = torch.arange(batch_size) % self.p["phases"].shape[0]
        return {"count": torch.zeros(batch_size, dtype=F64), "episode": idx.to(F64)}

    def step(self, x, state):
        e, c = state["episode"].long(), state["count"]
        m = 1 - self.rates[None] ** c[:, None]
        k = torch.arange(1, len(self.rates) + 1, dtype=F64)
        arg = 2 * math.pi * k * x[:, :1] + self.p["phases"][e] + self.shifts
        y = (m * self.p["amplitudes"][e] * torch.sin(arg)).sum(-1, keepdim=True)
        y = y + 0.7 + 0.4 * torch.sin(2 * math.pi * 8 * x[:, :1])
        return y, {"count": c + 1, "episode": state["episode"]}


def test_fourier_spectra_recovers_planted_projection_exactly():
    task = FourierRegression(n_modes=5, amplitudes="uniform")
    episodes = task.sample(4, 6, seed=0, dtype=F64)
    rates = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=F64)
    shifts = torch.tensor([0.0, 0.5, -1.0, 2.0, 0.25], dtype=F64)
    ds = trajprobe.fourier_spectra(PlantedFourier(episodes.params, rates, shifts), task,
                                   episodes=episodes)
    m = 1 - rates.numpy()[None, :] ** (np.arange(6)[:, None])
    expected_q = m * np.cos(shifts.numpy())[None, :]
    np.testing.assert_allclose(ds.q.values, np.broadcast_to(expected_q, (4, 6, 5)), atol=1e-10)
    np.testing.assert_allclose(ds.energy_ratio.values, np.broadcast_to(m**2, (4, 6, 5)),
                               atol=1e-10)
    np.testing.assert_allclose(ds.amplitude_hat.values, m * ds.amplitudes.values[:, None],
                               atol=1e-10)
    assert list(ds.mode.values) == [1, 2, 3, 4, 5] and ds.sizes["x"] == 40


def test_fourier_projection_known_values():
    grid = fourier_grid(40, dtype=F64)
    target = fourier_coefficients(torch.sin(2 * math.pi * 2 * grid + 0.3), 3)
    half_shifted = fourier_coefficients(0.5 * torch.sin(2 * math.pi * 2 * grid + 0.3 + math.pi),
                                        3)
    torch.testing.assert_close(fourier_projection(half_shifted, target)[1],
                               torch.tensor(-0.5, dtype=F64))
    torch.testing.assert_close(spectral_energy_ratio(half_shifted, target)[1],
                               torch.tensor(0.25, dtype=F64))
    assert torch.isnan(fourier_projection(torch.zeros(1, dtype=torch.complex128),
                                          torch.zeros(1, dtype=torch.complex128))[0])
    with pytest.raises(ValueError, match="n_modes"):
        fourier_coefficients(torch.zeros(40), 20)


# --- policies ------------------------------------------------------------------------------


class PlantedBandit:
    """π_c(t): probability of the correct action 1 - (1 - 1/A) r_c^(c_obs), rest uniform.

    Outputs probabilities; ``distribution`` turns them into a Categorical.
    """

    def __init__(self, correct, rates, n_actions):
        self.correct, self.rates, self.n_actions = correct, rates, n_actions
        self.n_contexts = correct.shape[1]

    def distribution(self, y):
        return torch.distributions.Categorical(probs=y)

    def initial_state(self, batch_size):
        idx = torch.arange(batch_size) % self.correct.shape[0]
        return {"count": torch.zeros(batch_size, dtype=F64), "episode": idx.to(F64)}

    def step(self, x, state):
        e, c = state["episode"].long(), state["count"]
        ctx = x[:, : self.n_contexts].argmax(-1)
        a = self.n_actions
        q = 1 - (1 - 1 / a) * self.rates[ctx] ** c
        probs = ((1 - q) / (a - 1))[:, None].expand(-1, a).clone()
        best = self.correct[e, ctx]
        probs[torch.arange(len(e)), best] = q
        return probs, {"count": c + 1, "episode": state["episode"]}


def test_context_dynamics_recovers_planted_policy_and_ordering():
    task = ContextualBandit(4, 3, p_correct=0.9, p_incorrect=0.1)
    n_ep, n_t, seed = 5, 8, 11
    # interact draws the parameters first from make_generator(seed): same correct actions
    correct = task.sample_params(n_ep, generator=make_generator(seed))["correct"]
    rates = torch.tensor([0.8, 0.2, 0.95, 0.5], dtype=F64)  # learned order: 1, 3, 0, 2
    machine = PlantedBandit(correct, rates, 3)
    ds = trajprobe.context_dynamics(machine, task, n_ep, n_t, seed=seed)
    np.testing.assert_array_equal(ds.correct.values, correct.numpy())
    expected_q = 1 - (2 / 3) * rates.numpy()[None, :] ** np.arange(n_t)[:, None]
    np.testing.assert_allclose(ds.q.values, np.broadcast_to(expected_q, (n_ep, n_t, 4)),
                               atol=1e-12)
    np.testing.assert_allclose(ds.expected_reward_context.values,
                               0.9 * ds.q.values + 0.1 * (1 - ds.q.values), atol=1e-12)
    np.testing.assert_allclose(ds.expected_reward.values,
                               ds.expected_reward_context.mean("context").values)
    np.testing.assert_array_equal(ds.context_order.values, np.tile([1, 3, 0, 2], (n_ep, 1)))
    np.testing.assert_allclose(ds.q_ordered.values, ds.q.values[..., [1, 3, 0, 2]])
    np.testing.assert_allclose(ds.policy.sum("action").values, 1.0)


def test_policy_helpers():
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=F64)
    torch.testing.assert_close(policy_probabilities(logits),
                               torch.tensor([[0.25, 0.75]], dtype=F64))
    probs = torch.tensor([[[[0.1, 0.9], [0.6, 0.4]]]], dtype=F64)  # [E=1, T=1, C=2, A=2]
    q = correct_action_probability(probs, torch.tensor([[1, 0]]))
    torch.testing.assert_close(q, torch.tensor([[[0.9, 0.6]]], dtype=F64))
    torch.testing.assert_close(expected_context_reward(q, 0.8, 0.2),
                               torch.tensor([[[0.74, 0.56]]], dtype=F64))
    torch.testing.assert_close(expected_reward(q, 0.8, 0.2), torch.tensor([[0.65]], dtype=F64))
    with pytest.raises(ValueError, match="correct: expected shape"):
        correct_action_probability(probs, torch.tensor([1, 0]))
    with pytest.raises(TypeError, match="distribution"):
        policy_probabilities(logits, lambda y: torch.distributions.Normal(y, 1.0))


# --- front-door errors and a real LSTM ----------------------------------------------------


def test_front_doors_reject_mismatched_machines_and_tasks():
    lstm = wrap(nn.LSTM(4, 8), readout=nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"does not accept LinearRegression inputs .*\[batch, 6\]"):
        trajprobe.effective_spectra(lstm, LinearRegression(3), 2, 2)
    wrong_out = wrap(nn.LSTM(4, 8), readout=nn.Linear(8, 3))
    with pytest.raises(ValueError, match=r"expected outputs of shape \[batch, 2\]"):
        trajprobe.effective_spectra(wrong_out, LinearRegression(2), 2, 2)
    with pytest.raises(TypeError, match="task: expected a LinearRegression"):
        trajprobe.effective_spectra(lstm, FourierRegression(), 2, 2)
    with pytest.raises(ValueError, match="cannot determine a fit"):
        trajprobe.effective_spectra(lstm, LinearRegression(2), 2, 2, probes=2)
    with pytest.raises(TypeError, match="machine: expected a StateMachine"):
        trajprobe.fourier_spectra(nn.Linear(2, 1), FourierRegression(), 2, 2)
    with pytest.raises(ValueError, match=r"a Trace to replay must come from trajprobe\.interact"):
        bandit = wrap(nn.LSTM(11, 8), readout=nn.Linear(8, 5))
        trajprobe.context_dynamics(bandit, ContextualBandit(),
                                   episodes=trajprobe.rollout(bandit, torch.zeros(2, 3, 11)))


def test_lstm_front_doors_are_seeded_and_well_formed(tmp_path):
    torch.manual_seed(0)
    lstm = wrap(nn.LSTM(4, 16, batch_first=True), readout=nn.Linear(16, 2))
    a = trajprobe.effective_spectra(lstm, LinearRegression(2), 3, 4, probes=8, seed=5)
    b = trajprobe.effective_spectra(lstm, LinearRegression(2), 3, 4, probes=8, seed=5)
    xr.testing.assert_identical(a, b)
    assert set(a.dims) == {"episode", "t", "mode", "row", "col"}
    path = tmp_path / "spectra.nc"
    a.to_netcdf(path)  # the attrs (config, version) must be netCDF-storable
    xr.testing.assert_identical(xr.load_dataset(path), a)


def test_fourier_stop_band_targets_are_exactly_zero():
    task = FourierRegression(amplitudes=(0.0, 1.0, 0.0, 1.0, 1.0))
    p = task.sample_params(3, seed=0, dtype=F64)
    coef = task.target_coefficients(p)
    assert bool((coef[:, [0, 2]] == 0).all())
    grid = task.grid(dtype=F64)
    fft = fourier_coefficients(task.function(p, grid.expand(3, -1)), 5)
    torch.testing.assert_close(coef, fft)


def test_context_dynamics_replays_another_machines_history():
    task = ContextualBandit(4, 3)
    torch.manual_seed(0)
    lstm = wrap(nn.LSTM(task.input_size, 8), readout=nn.Linear(8, 3))
    closed = trajprobe.interact(lstm, task, 3, 7, seed=4)
    rates = torch.tensor([0.8, 0.2, 0.95, 0.5], dtype=F64)
    planted = PlantedBandit(closed.params["correct"], rates, 3)
    ds = trajprobe.context_dynamics(planted, task, episodes=closed)
    # the planted policy depends only on the step count, so q is known on any history
    expected_q = 1 - (2 / 3) * rates.numpy()[None, :] ** np.arange(7)[:, None]
    np.testing.assert_allclose(ds.q.values, np.broadcast_to(expected_q, (3, 7, 4)), atol=1e-12)
    np.testing.assert_array_equal(ds.action_taken.values, closed.actions.numpy())
    np.testing.assert_array_equal(ds.context_shown.values, closed.contexts.numpy())
    assert ds.attrs["replayed"] == 1
