"""Measure your own task: Poisson-rate prediction, its Bayes reference, an LSTM over seeds.

    python examples/measure_your_own_task.py    # about half a minute on a laptop CPU

The code of docs/tutorials/measure-your-own-task.md, block after block (tests/test_docs.py
keeps the two equal). Counts n_t ~ Poisson(λ) arrive one per step, with a new rate
λ ~ Gamma(a, b) every episode; after each count the learner predicts λ. At step t a
learner's state (t-1 counts seen) is shown counterfactual counts k = 0..K-1 and the slope
of its prediction against k is its effective gain g(t); the Bayes-optimal learner's gain
is exactly 1/(b + t), and q(t) = g(t) · (b + t) is the fraction of it a learner has.
Everything task-specific is in the class `PoissonRate`, written against the public task
protocol only (`sample`, `probe_inputs`, `summarise`).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import trajprobe
from trajprobe.apps.recipes import MetaLearnerRecipe, ModelConfig
from trajprobe.apps.sweep import sweep
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.plots import plot_measurement
from trajprobe.tasks import Episodes, make_generator


@dataclass(frozen=True)
class PoissonRate:
    """Counts n_t ~ Poisson(λ), λ ~ Gamma(shape a, rate b); input n_t, output λ̂_t."""

    a: float = 2.0
    b: float = 1.0
    n_counts: int = 8  # probe counts k = 0..n_counts-1
    input_size = 1
    output_size = 1

    def sample(self, n_episodes, n_steps, *, seed=None, device=None, dtype=torch.float32):
        """Episodes: inputs n_t ``[E, T, 1]``, targets λ ``[E, T, 1]``, params ``"rate"``."""
        gen = make_generator(seed)
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen)))
        rate = rng.gamma(self.a, 1 / self.b, n_episodes)
        counts = rng.poisson(rate[:, None], (n_episodes, n_steps))
        as_tensor = lambda v: torch.as_tensor(v, dtype=dtype, device=device)  # noqa: E731
        return Episodes(inputs=as_tensor(counts)[..., None],
                        targets=as_tensor(rate)[:, None, None].expand(-1, n_steps, 1),
                        params={"rate": as_tensor(rate)})

    def probe_inputs(self, episodes, n_probes=None, *, seed=None):
        """Counterfactual counts k = 0..K-1 at every step: ``[E, T, K, 1]``."""
        n_episodes, n_steps = episodes.inputs.shape[:2]
        k = torch.arange(self.n_counts, dtype=episodes.inputs.dtype,
                         device=episodes.inputs.device)
        return k[:, None].expand(n_episodes, n_steps, -1, 1)

    def summarise(self, probed) -> xr.Dataset:
        """Effective gain g(t) (least-squares slope over k) and q(t) = g(t) (b + t)."""
        k = probed.probe_inputs[0, 0, :, 0]
        y = probed.outputs[..., 0]  # [E, T, K]
        centred = k - k.mean()
        gain = ((y - y.mean(-1, keepdim=True)) * centred).sum(-1) / centred.square().sum()
        t = torch.arange(1, y.shape[1] + 1, dtype=y.dtype, device=y.device)
        error = probed.trace.outputs[..., 0] - probed.params["rate"][:, None]
        return xr.Dataset({
            "gain": (("episode", "t"), gain.cpu().numpy()),
            "q": (("episode", "t"), (gain * (self.b + t)).cpu().numpy()),
            "squared_error": (("episode", "t"), error.square().cpu().numpy()),
        }, attrs={"measure": "effective gain"})

class GammaPoissonBayes:
    """The Bayes-optimal learner as a machine: state (α, β) ``[B, 2]``, output α/β."""

    def __init__(self, task: PoissonRate):
        self.task = task

    def initial_state(self, batch_size):
        prior = torch.tensor([self.task.a, self.task.b], dtype=torch.float64)
        return prior.expand(batch_size, 2).clone()

    def step(self, x, state):
        posterior = state + torch.cat([x, torch.ones_like(x)], dim=-1)
        return posterior[:, :1] / posterior[:, 1:], posterior


task = PoissonRate()
bayes = trajprobe.measure(GammaPoissonBayes(task), task, episodes=200, steps=20)
print(f"Bayes: q = {float(bayes['q'].mean()):.3f} at every step (exactly 1)")

recipe = MetaLearnerRecipe(
    name="poisson-rate/meta-learner", preset="quick", paper="tutorial", task=task,
    model=ModelConfig(size=16),
    training=SupervisedConfig(4_000, n_steps=20, batch_size=100,
                              optimiser=OptimiserConfig("adam", 1e-2)))
out = Path("poisson-sweep")
ds = sweep(recipe, seeds=2, out_dir=out, scheduler=None, checkpoints=False, progress=False)
last = ds.isel(checkpoint=-1)
q = last["q"].mean("episode")
print("LSTM q(t) at t = 1, 5, 9, 13, 17, mean over seeds:", np.round(q.mean("seed").values[::4], 2))
print(f"squared error of λ̂: LSTM {float(last['squared_error'].mean()):.3f}, "
      f"Bayes {float(bayes['squared_error'].mean()):.3f}")

fig = plot_measurement(last.isel(seed=0))
fig.savefig(out / "gain.png", dpi=120, bbox_inches="tight")
print(f"wrote {out / 'gain.png'} and {out / 'sweep.nc'}")
