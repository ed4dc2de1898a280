"""Fourier grid posterior: brute-force Bayes on enumerable grids, blocking invariance."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from trajprobe import probe, rollout
from trajprobe.reference_models.grid_posterior import FourierGridPosterior, FourierGridState
from trajprobe.tasks.fourier import FourierRegression


def g(x, phases, amps):
    """Σ a_k sin(2πkx + φ_k): x [...], phases [..., K] broadcast against x[..., None]."""
    k = torch.arange(1, len(amps) + 1, dtype=torch.float64)
    return (torch.tensor(amps, dtype=torch.float64)
            * torch.sin(2 * math.pi * k * x[..., None] + phases)).sum(-1)


def episodes(amps, sigma, n_episodes=3, n_steps=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_episodes, n_steps, generator=gen, dtype=torch.float64) - 0.5
    phases = 2 * math.pi * torch.rand(n_episodes, 1, len(amps), generator=gen,
                                      dtype=torch.float64)
    y = g(x, phases, amps) + sigma * torch.randn(n_episodes, n_steps, generator=gen,
                                                 dtype=torch.float64)
    y_prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)
    return x, y, torch.stack([x, y_prev], dim=-1)


def brute_force(x, y, amps, sigma, n_bins, t, x_query):
    """Posterior mean of g(x_query) after pairs 1..t-1, by enumerating the grid."""
    grid = torch.tensor(list(itertools.product(range(n_bins), repeat=len(amps))),
                        dtype=torch.float64)
    phases = 2 * math.pi * (grid + 0.5) / n_bins                  # [G, K]
    loglik = torch.zeros(len(grid), dtype=torch.float64)
    for n in range(t - 1):
        loglik += -((y[n] - g(x[n], phases, amps)) ** 2) / (2 * sigma**2)
    post = torch.softmax(loglik, 0)
    return (post * g(x_query, phases, amps)).sum(), torch.log(post)


@pytest.mark.parametrize(("amps", "n_bins"), [((1.0,), 6), ((1.0, 0.5), 5),
                                              ((0.8, 1.0, 0.6), 4)])
def test_equals_brute_force_bayes(amps, n_bins):
    sigma = 0.4
    x, y, inputs = episodes(amps, sigma)
    machine = FourierGridPosterior(amps, noise_std=sigma, n_bins=n_bins)
    trace = rollout(machine, inputs)
    for e in range(x.shape[0]):
        for t in range(1, x.shape[1] + 1):
            expected, _ = brute_force(x[e], y[e], amps, sigma, n_bins, t, x[e, t - 1])
            assert trace.outputs[e, t - 1, 0].item() == pytest.approx(expected.item(),
                                                                      abs=1e-10)
    # the whole posterior table at the last step
    last = FourierGridState(*(leaf[:, -1] for leaf in trace.states))
    _, log_post = brute_force(x[0], y[0], amps, sigma, n_bins, x.shape[1], x[0, 0])
    torch.testing.assert_close(machine.log_posterior(last)[0], log_post, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("budget", [1, 3000, 50_000, 2**30])
def test_blocking_does_not_change_the_answer(budget):
    """Streaming softmax over any block size (down to one row) equals one big block."""
    amps = (1.0, 0.5, 0.7, 0.3)
    _, _, inputs = episodes(amps, 0.1, n_episodes=4, n_steps=9, seed=5)
    ref = rollout(FourierGridPosterior(amps, noise_std=0.1, n_bins=5, memory_budget=2**30),
                  inputs)
    out = rollout(FourierGridPosterior(amps, noise_std=0.1, n_bins=5, memory_budget=budget),
                  inputs)
    torch.testing.assert_close(out.outputs, ref.outputs, rtol=1e-12, atol=1e-12)


def test_prior_mean_is_zero_and_first_pair_is_pending():
    machine = FourierGridPosterior((1.0, 1.0, 1.0), noise_std=0.1, n_bins=4)
    y, state = machine.step(torch.tensor([[0.2, 5.0]]), machine.initial_state(1))
    assert abs(y.item()) < 1e-12                       # bin-centre phases average to zero
    assert state.S.abs().sum() == 0 and state.pending.item() == pytest.approx(0.2)


def test_recovers_a_planted_on_grid_function():
    """Phases on bin centres, small noise: the posterior mean converges to g."""
    amps, n_bins = (1.0, 1.0), 8
    true = 2 * math.pi * (torch.tensor([[3.0, 6.0]], dtype=torch.float64) + 0.5) / n_bins
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 30, generator=gen, dtype=torch.float64) - 0.5
    y = g(x, true[:, None], amps) + 0.05 * torch.randn(1, 30, generator=gen,
                                                       dtype=torch.float64)
    y_prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)
    machine = FourierGridPosterior(amps, noise_std=0.05, n_bins=n_bins)
    trace = rollout(machine, torch.stack([x, y_prev], dim=-1))
    last = FourierGridState(*(leaf[:, -1] for leaf in trace.states))
    xs = torch.linspace(-0.5, 0.5, 41, dtype=torch.float64)
    torch.testing.assert_close(machine.mean_function(last, xs)[0], g(xs, true, amps),
                               rtol=0, atol=1e-6)


def test_from_task_and_probes_dedupe_forks():
    task = FourierRegression(n_modes=3, noise_std=0.2, amplitudes=(1.0, 0.5, 0.25), n_points=8)
    machine = FourierGridPosterior.from_task(task, n_bins=4)
    assert machine.amplitudes == (1.0, 0.5, 0.25) and machine.noise_std == 0.2
    eps = task.sample(2, 5, seed=0, dtype=torch.float64)
    trace = rollout(machine, eps.inputs)
    ys = probe(machine, trace, task.probe_inputs(eps.inputs))          # [E, T, N, 1]
    # probe at t = the posterior-mean function after t-1 pairs, evaluated on the grid
    t = 4
    state = FourierGridState(*(leaf[:, t] for leaf in trace.states))  # s_t holds t-1 pairs
    expected = machine.mean_function(state, task.grid(dtype=torch.float64))
    torch.testing.assert_close(ys[:, t - 1, :, 0], expected)
    with pytest.raises(ValueError, match="amplitudes"):
        FourierGridPosterior.from_task(FourierRegression(n_modes=2, amplitudes="uniform"))


def test_state_vector_round_trip():
    machine = FourierGridPosterior((1.0, 1.0), noise_std=0.3, n_bins=3)
    _, _, inputs = episodes((1.0, 1.0), 0.3, n_steps=4)
    trace = rollout(machine, inputs)
    vecs = trace.state_vectors(machine)[:, -1]
    state = machine.state_from_vector(vecs)
    torch.testing.assert_close(machine.state_vector(state), vecs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"noise_std": 0.0}, "noise_std"), ({"noise_std": 1.0, "n_bins": 0}, "n_bins"),
     ({"amplitudes": (), "noise_std": 1.0}, "amplitudes"),
     ({"noise_std": 1.0, "memory_budget": 0}, "memory_budget")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FourierGridPosterior(**kwargs)


def test_bad_input_shape():
    machine = FourierGridPosterior((1.0,), noise_std=1.0, n_bins=4)
    with pytest.raises(ValueError, match=r"x: expected shape \[2, 2\]"):
        machine.step(torch.zeros(2, 3), machine.initial_state(2))


def test_float32_agrees_with_float64():
    """Single precision (1.5x faster) stays close: logits are max-shifted per block."""
    amps = (1.0, 0.5, 0.7)
    _, _, inputs = episodes(amps, 0.2, n_episodes=3, n_steps=12, seed=2)
    m64 = FourierGridPosterior(amps, noise_std=0.2, n_bins=6)
    m32 = FourierGridPosterior(amps, noise_std=0.2, n_bins=6, dtype=torch.float32)
    out64 = rollout(m64, inputs).outputs
    out32 = rollout(m32, inputs.float()).outputs
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=0, atol=1e-4)
