"""neurogym tasks as they are (issue 37): supervised trials as an open-loop task (equal to
``neurogym.Dataset``'s), the ideal observer of PerceptualDecisionMaking against a
brute-force posterior, and a neurogym environment closed loop through ``interact``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

ngym = pytest.importorskip("neurogym")

import trajprobe  # noqa: E402
from trajprobe.adapters import wrap  # noqa: E402
from trajprobe.reference_models import (  # noqa: E402
    ContextDecisionObserver,
    PerceptualDecisionObserver,
)
from trajprobe.tasks.gym_env import GymEnvironment  # noqa: E402
from trajprobe.tasks.neurogym_trials import NeurogymTask  # noqa: E402

# gymnasium warns that neurogym's metadata lacks render_modes, on every make
pytestmark = [pytest.mark.neurogym,
              pytest.mark.filterwarnings("ignore:.*render_modes:UserWarning"),
              pytest.mark.filterwarnings("ignore:.*from other wrappers:UserWarning")]

PDM = "PerceptualDecisionMaking-v0"
SETTINGS = [
    {},  # the defaults: dt 100, cohs 0..51.2, sigma 1, 1 + 20 + 0 + 1 steps
    {"dt": 50, "sigma": 0.5, "cohs": [10.0, 40.0], "dim_ring": 3,
     "timing": {"fixation": 100, "stimulus": 500, "delay": 200, "decision": 100}},
]


def _brute_force(env, ob: np.ndarray) -> np.ndarray:
    """P(choice k | stimulus) by enumerating every (coherence, choice) and summing the
    Gaussian log-density of every stimulus observation (uniform priors)."""
    stim = ob[env.start_ind["stimulus"]:env.end_ind["stimulus"], 1:].astype(np.float64)
    logp = np.array([[norm.logpdf(stim, np.cos(env.theta - env.theta[k]) * c / 200 + 0.5,
                                  env.sigma).sum() + np.log(1 / len(env.cohs) / env.dim_ring)
                      for k in range(env.dim_ring)] for c in env.cohs])
    joint = np.exp(logp - logp.max())
    return joint.sum(0) / joint.sum()


@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "dt50-delay-3choices"])
def test_ideal_observer_equals_the_brute_force_posterior(settings):
    env = ngym.make(PDM, **settings).unwrapped
    env.seed(5)
    observer = PerceptualDecisionObserver.from_env(env)
    worst = 0.0
    for _ in range(12):
        trial = env.new_trial()
        y = trajprobe.rollout(observer, torch.as_tensor(env.ob)[None].double()).outputs[0]
        decision = slice(env.start_ind["decision"], env.end_ind["decision"])
        posterior = _brute_force(env, env.ob)
        worst = max(worst, float(np.abs(y[decision, 1:].numpy() - posterior).max()))
        assert float(y[decision, 0].abs().max()) == 0.0
        before = y[:env.start_ind["decision"]]  # fixation, stimulus, delay: the label is 0
        assert torch.equal(before, nn.functional.one_hot(torch.zeros(len(before)).long(),
                                                         env.dim_ring + 1).double())
        assert trial["ground_truth"] in range(env.dim_ring)
    assert worst < 1e-10


def _brute_force_context(env, ob: np.ndarray) -> np.ndarray:
    """P(label = choice k) by enumerating (context, choice and coherence of each modality):
    the Gaussian log-density of every stimulus observation of both modalities, and the
    context inputs (noiseless: a context they contradict has probability 0)."""
    k_ring, stim = env.dim_ring, ob[env.start_ind["stimulus"]:env.end_ind["stimulus"]]
    cue = ob[0, 1 + 2 * k_ring:] if env.use_expl_context else None
    labels, logps = [], []
    grid = itertools.product(env.contexts, range(k_ring), range(k_ring), env.cohs, env.cohs)
    for context, k1, k2, c1, c2 in grid:
        if cue is not None and not np.array_equal(cue, np.eye(2)[context]):
            continue
        labels.append((k1, k2)[context])
        logps.append(sum(
            norm.logpdf(stim[:, 1 + m * k_ring:1 + (m + 1) * k_ring].astype(np.float64),
                        np.cos(env.theta - env.theta[k]) * c / 200 + 0.5, env.sigma).sum()
            for m, (k, c) in enumerate([(k1, c1), (k2, c2)])))
    weights = np.exp(np.array(logps) - max(logps))
    posterior = np.bincount(labels, weights=weights, minlength=k_ring)
    return posterior / posterior.sum()


@pytest.mark.parametrize("explicit", [True, False])
def test_context_observer_equals_the_brute_force_posterior(explicit):
    env = ngym.make("ContextDecisionMaking-v0", use_expl_context=explicit, dim_ring=2,
                    impl_context_modality=1, sigma=0.7,
                    timing={"fixation": 200, "stimulus": 600, "delay": 200}).unwrapped
    env.seed(3)
    observer = ContextDecisionObserver.from_env(env)
    worst = 0.0
    for _ in range(8):
        env.new_trial()
        y = trajprobe.rollout(observer, torch.as_tensor(env.ob)[None].double()).outputs[0]
        decision = slice(env.start_ind["decision"], env.end_ind["decision"])
        worst = max(worst, float(np.abs(y[decision, 1:].numpy()
                                        - _brute_force_context(env, env.ob)).max()))
        assert bool((y[:env.start_ind["decision"], 0] == 1).all())
    assert worst < 1e-10


def test_ideal_observer_over_a_stream_of_trials_is_the_tasks_bayes_machine():
    task = NeurogymTask(PDM)
    episodes = task.sample(4, 70, seed=2)  # three 22-step trials and a part of a fourth
    observer = task.bayes_machine()
    y = trajprobe.rollout(observer, episodes.inputs.double()).outputs
    labels = episodes.targets
    outside = labels == 0
    assert bool((y[outside][:, 0] == 1).all())  # certain of "fixate" outside decisions
    decided = (~outside).nonzero()
    assert len(decided) == 4 * 3  # one decision step per complete trial
    assert trajprobe.posterior_error(observer, task, episodes=episodes)["average_kl"] == 0.0


def test_observer_is_certain_at_high_coherence_and_refuses_random_timing():
    task = NeurogymTask(PDM, cohs=[51.2], sigma=0.1)
    episodes = task.sample(20, 22, seed=0)
    y = trajprobe.rollout(task.bayes_machine(), episodes.inputs.double()).outputs
    assert torch.equal(y[:, -1].argmax(-1), episodes.targets[:, -1])
    assert float(y[:, -1].max(-1).values.min()) > 1 - 1e-12
    with pytest.raises(ValueError, match="fixed period durations"):
        NeurogymTask(PDM, timing={"stimulus": ("choice", [100, 200])}).bayes_machine()
    cdm = NeurogymTask("ContextDecisionMaking-v0", timing={"delay": 200})
    assert isinstance(cdm.bayes_machine(), ContextDecisionObserver)
    with pytest.raises(ValueError, match="fixed period durations"):  # its default delay
        NeurogymTask("ContextDecisionMaking-v0").bayes_machine()
    with pytest.raises(ValueError, match="no ideal observer models GoNogo"):
        NeurogymTask("GoNogo-v0").bayes_machine()


def test_the_observers_psychometric_curve_is_the_closed_form():
    """Two choices: the MAP choice is the sign of the summed evidence difference, so
    accuracy(c) = Φ(c √n / (100 σ √2)) after n stimulus steps of noise σ."""
    task = NeurogymTask(PDM, sigma=3.0)  # σ = 0.3 per step: a curve, not a step
    observer = task.bayes_machine()
    curve = task.psychometric(observer, task.sample(300, 110, seed=4))  # 1,500 trials
    n, sigma = observer.periods["stimulus"], observer.sigma
    exact = norm.cdf(curve.coh.values * np.sqrt(n) / (100 * sigma * np.sqrt(2)))
    np.testing.assert_allclose(curve.coh.values, [0, 6.4, 12.8, 25.6, 51.2], atol=1e-5)
    assert int(curve.n_decisions.sum()) == 1500
    z = (curve.accuracy.values - exact) / np.maximum(curve.accuracy_sem.values, 1e-3)
    assert np.all(np.abs(z) < 4), (curve.accuracy.values, exact)
    assert float(curve.accuracy.sel(coh=51.2, method="nearest")) == 1.0
    with pytest.raises(ValueError, match="trial parameter"):
        task.psychometric(observer, task.sample(2, 22, seed=0), by="coherence")


def test_sample_is_what_a_seeded_dataset_gives():
    task = NeurogymTask(PDM, dt=50)
    episodes = task.sample(3, 90, seed=11)
    dataset = ngym.Dataset(PDM, env_kwargs={"dt": 50}, batch_size=3, seq_len=90)
    dataset.seed(11)
    dataset._cache()  # refill with the seeded environments (the constructor's fill is unseeded)
    inputs, labels = dataset()
    np.testing.assert_array_equal(inputs.transpose(1, 0, 2), episodes.inputs.numpy())
    np.testing.assert_array_equal(labels.T, episodes.targets.numpy())
    again = task.episodes(inputs, labels)  # a Dataset batch, no glue
    assert torch.equal(again.inputs, episodes.inputs) and torch.equal(again.targets,
                                                                      episodes.targets)
    assert set(episodes.params) == {"coh", "ground_truth", "trial"}
    last = episodes.targets[:, 42 - 1]  # dt 50: trials of 2 + 40 + 2 steps, decision at 43, 44
    assert bool((episodes.targets[:, 42] == 1 + episodes.params["ground_truth"][:, 42]).all())
    assert bool((last == 0).all())


def test_a_network_trained_on_the_labels_is_measured_and_compared():
    task = NeurogymTask(PDM)
    torch.manual_seed(0)
    net = wrap(nn.GRU(task.input_size, 16, batch_first=True), readout=nn.Linear(16, 3),
               distribution="categorical")
    measured = trajprobe.measure(net, task, episodes=6, steps=44)
    assert set(measured.data_vars) >= {"log_loss", "correct"}
    assert measured["log_loss"].dims == ("episode", "t")
    error = trajprobe.posterior_error(net, task, episodes=6, steps=44)
    assert 0 < float(error["average_kl"]) < np.inf


def test_a_neurogym_environment_round_trips_through_interact():
    env = GymEnvironment(lambda: ngym.make(PDM))
    torch.manual_seed(0)
    net = wrap(nn.GRU(env.input_size, 8, batch_first=True), readout=nn.Linear(8, 3),
               distribution="categorical")
    trace = trajprobe.interact(net, env, 3, 50, seed=1)
    for e in range(3):
        own = ngym.make(PDM)
        seed = int(trace.params["seed"][e])
        own.unwrapped.seed(seed)  # neurogym's trials come from its own RandomState
        obs, _ = own.reset(seed=seed)
        for t in range(50):
            np.testing.assert_array_equal(trace.inputs[e, t].numpy(), obs)
            obs, reward, *_ = own.step(int(trace.actions[e, t]))
            assert reward == float(trace.rewards[e, t])
