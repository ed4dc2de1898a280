"""The built-in state-space machine (GatedSSM): probes equal re-running the prefix."""

from __future__ import annotations

import pytest
import torch

import trajprobe
from trajprobe.apps.models import GatedSSM

E, T, N, D_IN, D_OUT = 3, 6, 4, 4, 2
TOL = 1e-5


def _probed(n_layers: int, seed: int):
    """A GatedSSM, episode inputs [E, T, D], probes [E, T, N, D], its trace and probe outputs."""
    model = GatedSSM(D_IN, D_OUT, hidden_size=16, n_layers=n_layers, seed=0)
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(E, T, D_IN, generator=gen)
    probes = torch.randn(E, T, N, D_IN, generator=gen)
    trace = trajprobe.rollout(model, inputs)
    return model, inputs, probes, trace, trajprobe.probe(model, trace, probes)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_probes_equal_rerunning_the_prefix(n_layers):
    model, inputs, probes, trace, ys = _probed(n_layers, seed=1)
    with torch.no_grad():
        assert float((trace.outputs - model.unroll(inputs)[0]).abs().max()) < TOL
        for t in range(T):  # t = 0 is the paper's t = 1: from s_0
            history = inputs[:, None, :t].expand(E, N, t, D_IN)
            seq = torch.cat([history, probes[:, t, :, None]], dim=2).flatten(0, 1)
            ref = model.unroll(seq)[0][:, -1].reshape(E, N, D_OUT)
            assert float((ys[:, t] - ref).abs().max()) < TOL


def test_state_and_unroll_final_state():
    model = GatedSSM(D_IN, D_OUT, hidden_size=8, n_layers=2, seed=0)
    inputs = torch.randn(2, T, D_IN)
    trace = trajprobe.rollout(model, inputs)
    assert trace.states.shape == (2, T + 1, 2, 8)
    with torch.no_grad():
        _, final = model.unroll(inputs)
    assert torch.allclose(final, trace.states[:, -1], atol=TOL)


def test_recurrence_is_a_stable_convex_decay():
    # a ∈ (0, 1): with a constant input the state moves monotonically towards v.
    model = GatedSSM(1, 1, hidden_size=4, seed=0)
    trace = trajprobe.rollout(model, torch.ones(1, 50, 1))
    h = trace.states[0, :, 0]  # [T+1, H]
    v = model.mix[0](torch.ones(1, 1))[0, :4].detach()
    gaps = (h - v).abs()
    assert bool((gaps[1:] <= gaps[:-1] + 1e-6).all())


def test_same_seed_same_weights_and_bad_input():
    a, b = GatedSSM(D_IN, D_OUT, seed=3), GatedSSM(D_IN, D_OUT, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, 4\]"):
        a.step(torch.zeros(2, 3), a.initial_state(2))


@pytest.mark.parametrize("n_layers", [1, 2])
def test_output_many_equals_the_default_engine(n_layers):
    model, _, probes, trace, shared = _probed(n_layers, seed=2)

    class Forked:  # the same machine without output_many: the engine forks each state
        initial_state, step = model.initial_state, model.step

    forked = trajprobe.probe(Forked(), trace, probes)
    assert float((shared - forked).abs().max()) < TOL
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, N, 4\]"):
        model.output_many(torch.zeros(2, 4), model.initial_state(2))
