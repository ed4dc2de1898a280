"""Tests of ``trajprobe reproduce contextual-bandits`` and the decoupled Meta-Learner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajprobe import rollout
from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.apps.reproduce.decoupled import DecoupledMachine
from trajprobe.reference_models import ContextualBanditPosterior
from trajprobe.tasks import ContextualBandit


def _random_stream(n_episodes: int, n_steps: int, c: int, a: int, seed: int):
    """A bandit input stream [E, T, C + A + 1] with random contexts, actions and rewards."""
    gen = torch.Generator().manual_seed(seed)
    contexts = torch.randint(c, (n_episodes, n_steps), generator=gen)
    actions = torch.randint(a, (n_episodes, n_steps), generator=gen)
    rewards = torch.randint(2, (n_episodes, n_steps), generator=gen).double()
    task = ContextualBandit(c, a)
    xs = [task.encode(contexts[:, 0], None, None, dtype=torch.float64)]
    for t in range(1, n_steps):
        xs.append(task.encode(contexts[:, t], actions[:, t - 1], rewards[:, t - 1],
                              dtype=torch.float64))
    return torch.stack(xs, 1), contexts, actions, rewards


def _sub_sequences(contexts, actions, rewards, e: int, c: int, a: int):
    """Context c's own 1-context input stream in episode e, and the steps it occupies."""
    steps = (contexts[e] == c).nonzero()[:, 0].tolist()
    rows, prev = [], None
    for t in steps:
        hist = torch.zeros(a + 1, dtype=torch.float64)
        if prev is not None:
            hist[actions[e, prev]] = 1.0
            hist[a] = rewards[e, prev]
        rows.append(torch.cat([torch.ones(1, dtype=torch.float64), hist]))
        prev = t
    return steps, (torch.stack(rows) if rows else None)


@pytest.mark.parametrize("kind", ["lstm", "bayes"])
def test_decoupled_equals_separate_copies(kind):
    """Copy c of the decoupled machine = a separate machine run on context c's sub-sequence."""
    c, a, n_ep, n_t = 3, 4, 2, 20
    core = (RabinowitzLSTM(1 + a + 1, a, 8, seed=0).double() if kind == "lstm"
            else ContextualBanditPosterior(1, a, policy="thompson"))
    machine = DecoupledMachine(core, c, a)
    inputs, contexts, actions, rewards = _random_stream(n_ep, n_t, c, a, seed=1)
    trace = rollout(machine, inputs)
    checked = 0
    for e in range(n_ep):
        for ctx in range(c):
            steps, sub = _sub_sequences(contexts, actions, rewards, e, ctx, a)
            if sub is None:
                continue
            alone = rollout(core, sub[None])
            torch.testing.assert_close(trace.outputs[e, steps], alone.outputs[0],
                                       atol=1e-10, rtol=1e-10)
            checked += len(steps)
    assert checked == n_ep * n_t


def test_decoupled_bayes_equals_coupled_bayes():
    """Bayes factorises over independent contexts: C one-context posteriors = the C-context one."""
    c, a = 4, 5
    inputs, *_ = _random_stream(3, 40, c, a, seed=2)
    coupled = rollout(ContextualBanditPosterior(c, a, policy="thompson"), inputs)
    decoupled = rollout(DecoupledMachine(ContextualBanditPosterior(1, a, policy="thompson"), c, a),
                        inputs)
    torch.testing.assert_close(decoupled.outputs, coupled.outputs, atol=1e-12, rtol=1e-12)


def test_decoupled_rejects_bad_input():
    machine = DecoupledMachine(ContextualBanditPosterior(1, 3), 2, 3)
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, 6\]"):
        machine.step(torch.zeros(2, 5), machine.initial_state(2))
    with pytest.raises(ValueError, match="n_contexts"):
        DecoupledMachine(ContextualBanditPosterior(1, 3), 0, 3)


# ----------------------------------------------------------------------- the target, smoke preset

_GROUPS = {
    "learner_coupled": ("episode", "t", "rank"),
    "learner_decoupled": ("episode", "t", "rank"),
    "meta_learner_coupled": ("seed", "episode", "t", "rank"),
    "meta_learner_decoupled": ("seed", "episode", "t", "rank"),
    "bayes_coupled": ("episode", "t", "rank"),
    "bayes_decoupled": ("episode", "t", "rank"),
}
_AGENTS = ("Learner (coupled)", "Learner (decoupled)", "Meta-Learner (coupled)",
           "Meta-Learner (decoupled)", "Bayes (coupled)", "Bayes (decoupled)")
_FIGURES = ("fig12_learner", "fig13_meta_learner", "bayes", "fig16_outer_loop", "confusion")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from trajprobe.apps.reproduce import reproduce

    out = tmp_path_factory.mktemp("cb-smoke")
    report = reproduce("contextual-bandits", preset="smoke", out_dir=out, progress=False)
    return out, report


@pytest.mark.slow
def test_smoke_writes_every_file(smoke_run):
    from trajprobe.apps.reproduce import read_results

    out, report = smoke_run
    results = read_results(out / "results.nc")
    assert set(_GROUPS) | {"outer_loop"} <= set(results)
    for name, dims in _GROUPS.items():
        ds = results[name]
        assert ds["q_ordered"].dims == dims, name
        assert ds.sizes["rank"] == 5
        q = ds["q_ordered"].values
        assert np.isfinite(q).all() and (q >= 0).all() and (q <= 1).all(), name
        # rank 1 is the context with the highest time-averaged return R_c (eq. 14)
        np.testing.assert_array_equal(ds["context_order"].isel(rank=0).values,
                                      ds["return_score"].values.argmax(-1))
        er = ds["expected_reward"].values
        assert np.isfinite(er).all() and (er >= 0.2 - 1e-9).all() and (er <= 0.8 + 1e-9).all()
    outer = results["outer_loop"]
    assert outer["steps_to_threshold"].dims == ("seed", "checkpoint", "rank")
    assert outer.sizes["checkpoint"] >= 2
    assert np.isfinite(outer["final"].values).all()
    confusion = results["confusion"]
    assert confusion["meta_learner_coupled"].dims == ("seed", "context", "other_context")
    m = confusion["bayes_coupled"].isel(seed=0).values
    assert np.isnan(np.diag(m)).all() and ((m >= 0) & (m <= 1) | np.isnan(m)).all()
    text = report.read_text()
    for agent in _AGENTS:
        assert f"| time to q > 0.5: 5th vs 1st learned context | {agent} |" in text
    for stem in _FIGURES:
        assert (out / "figures" / f"{stem}.png").stat().st_size > 10_000
        assert f"figures/{stem}.png" in text
    assert (out / "report.html").read_text().count("data:image/png;base64") == len(_FIGURES)


def test_headline_ratio_planted_crossings():
    """Rank k jumps from 0.05 to 0.95 at t = 2^k: the integer rule reads 2^5 / 2^1 = 16; the
    interpolated crossing is halfway through the jump's step, (2^5 - ½) / (2^1 - ½) = 21."""
    import xarray as xr

    from trajprobe.apps.reproduce.contextual_bandits import headline_ratio

    t = np.arange(1, 101)
    crossing = 2.0 ** np.arange(1, 6)
    q = (t[:, None] >= crossing[None, :]).astype(float) * 0.9 + 0.05
    da = xr.DataArray(np.stack([q, q]), dims=("episode", "t", "rank"),
                      coords={"t": t, "rank": np.arange(1, 6)})
    assert headline_ratio(da, 0.5, interpolate=False) == pytest.approx(16.0)
    assert headline_ratio(da, 0.5) == pytest.approx(21.0)
    assert headline_ratio(da.where(da["rank"] < 5, 0.1), 0.5) == np.inf
    assert headline_ratio(da.where(da["rank"] < 5, 0.1), 0.5, interpolate=False) == np.inf


def test_learner_dynamics_smoke(tmp_path):
    """The on-the-fly Learner measurement: shapes, probabilities, and the eq. 14 ranking."""
    from trajprobe.apps.reproduce.base import RunContext
    from trajprobe.apps.reproduce.contextual_bandits import learner_dynamics

    context = RunContext("smoke", 1, torch.device("cpu"), tmp_path, progress=False)
    ds = learner_dynamics(context, "coupled")
    assert ds["q"].dims == ("episode", "t", "context")
    assert ds.sizes["context"] == 5 and int(ds["t"][-1]) == 100
    q = ds["q"].values
    assert np.isfinite(q).all() and (q > 0).all() and (q < 1).all()
    # eq. 12 with p_correct = 0.8, p_incorrect = 0.2
    np.testing.assert_allclose(ds["expected_reward_context"], 0.2 + 0.6 * q)
    # rank 1 is the context of largest R_c, and correct actions are a permutation (conflicting)
    best = ds["return_score"].values.argmax(-1)
    np.testing.assert_array_equal(ds["context_order"].isel(rank=0).values, best)
    assert all(len(set(row)) == 5 for row in ds["correct"].values.tolist())
    assert not (tmp_path / "runs").exists()  # Learners are measured on the fly, never saved


def test_headline_numbers_are_the_pinned_ones(smoke_run, assert_pinned):
    assert_pinned(smoke_run[0], "contextual-bandits")
