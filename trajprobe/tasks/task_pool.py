"""A finite pool of regression tasks: M targets drawn once from the prior (Raventós et al. 2023).

Pretraining on ``TaskPool(task, size=M)`` shows a learner only M distinct targets
W⁽¹⁾ … W⁽ᴹ⁾ ~ the prior of ``task``, drawn once from ``seed``; every episode picks one
uniformly (T_Pretrain = U{W⁽¹⁾, …, W⁽ᴹ⁾}, Raventós §2). ``size=None`` (M = ∞) is the prior
itself: its episodes are exactly ``task``'s. The Bayes predictor for a pool is the
discrete MMSE (:class:`~trajprobe.reference_models.DiscreteMMSE`, the posterior over the
M targets); for the prior it is ridge regression
(:class:`~trajprobe.reference_models.BayesianLinearRegression`).

Episodes carry the measurement of ``task`` unchanged (its probe inputs and effective
spectra), plus ``params["task_index"]`` ``[E]`` (long; -1 for M = ∞), the pool member
each episode used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.tasks._sampling import rand, randn
from trajprobe.tasks.regression import LinearRegression
from trajprobe.validation import check_positive_int

if TYPE_CHECKING:
    import xarray as xr

    from trajprobe.task_protocol import Probed

__all__ = ["TaskPool"]

POOL_CHUNK = 65_536
"""Pool members drawn per chunk: the pool is the same for any size it is cut from
(member m depends on ``seed`` and m only), so a ladder of M shares its first members."""


@dataclass(frozen=True)
class TaskPool:
    """Linear-regression episodes whose target is one of M drawn once (M = None: the prior).

    Args:
        task: the :class:`~trajprobe.tasks.LinearRegression` whose prior the pool samples
            (its dims, noise, input covariance and measurement are used as they are).
        size: M, the number of distinct targets (None: infinitely many, i.e. the prior).
        seed: the int seed of the pool's draw. Member m is the same for every M > m, so
            pools of growing M are nested (Raventós et al. draw each pool afresh; nesting
            only removes one source of noise between the rungs of a ladder).
    """

    task: LinearRegression
    size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.task, LinearRegression):
            raise TypeError(f"task: expected a LinearRegression, got {type(self.task).__name__}")
        if self.size is not None:
            check_positive_int(self.size, "size")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed: expected an int (the pool is drawn once), got {self.seed!r}")

    @property
    def input_size(self) -> int:
        """As ``task``: ``dim + out_dim``."""
        return self.task.input_size

    @property
    def output_size(self) -> int:
        """As ``task``: ``out_dim``."""
        return self.task.output_size

    @property
    def finite(self) -> bool:
        """True for a pool of M < ∞ targets."""
        return self.size is not None

    def targets(self, *, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> torch.Tensor:
        """The pool W⁽¹⁾ … W⁽ᴹ⁾ ``[M, out_dim, dim]`` (raises for M = ∞)."""
        if self.size is None:
            raise ValueError("size: the pool is infinite (size=None, the prior); it has no "
                             "list of targets: give a finite size")
        return _draw_pool(self.task, self.size, self.seed).to(device=device, dtype=dtype)

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        active_dims: int | None = None,
    ) -> Episodes:
        """Episodes as ``task.sample``, each on a pool member chosen uniformly.

        Draw order from one generator: the members' indices, then x, then ε (M = ∞:
        exactly ``task.sample``, W drawn from the prior). ``active_dims`` as in
        :meth:`LinearRegression.sample`.
        """
        check_positive_int(n_episodes, "n_episodes")
        gen = make_generator(seed, device)
        if self.size is None:
            episodes = self.task.sample(n_episodes, n_steps, seed=gen, device=device,
                                        dtype=dtype, active_dims=active_dims)
            index = torch.full((n_episodes,), -1, dtype=torch.long, device=episodes.inputs.device)
            return Episodes(episodes.inputs, episodes.targets,
                            {**episodes.params, "task_index": index})
        index = self.draw_indices(n_episodes, gen, device=device)
        return self.sample_members(index, n_steps, seed=gen, device=device, dtype=dtype,
                                   active_dims=active_dims)

    def draw_indices(self, n_episodes: int, generator: torch.Generator, *,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """Pool members ``[E]`` (long) chosen uniformly and independently."""
        u = rand((n_episodes,), generator, device=device, dtype=torch.float64)
        return (u * self.size).long().clamp(max=self.size - 1)

    def sample_members(
        self,
        index: torch.Tensor,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        active_dims: int | None = None,
    ) -> Episodes:
        """Episodes on given pool members ``index`` ``[E]`` (e.g. every member once)."""
        pool = self.targets(dtype=dtype, device=device)
        index = torch.as_tensor(index, dtype=torch.long, device=pool.device)
        if index.dim() != 1 or bool(((index < 0) | (index >= self.size)).any()):
            raise ValueError(f"index: expected a 1-D tensor of pool members in [0, {self.size}), "
                             f"got {index.tolist()[:8]}")
        params = {**self.task.modes(pool[index]), "task_index": index}
        return self.task.sample(index.shape[0], n_steps, seed=seed, device=device, dtype=dtype,
                                params=params, active_dims=active_dims)

    def probe_inputs(self, inputs, n_probes: int | None = 100, *, seed: Seed = None
                     ) -> torch.Tensor:
        """As ``task.probe_inputs``."""
        return self.task.probe_inputs(inputs, n_probes, seed=seed)

    def permute_history(self, episodes, t: int, *, seed: Seed = None) -> torch.Tensor:
        """As ``task.permute_history``: the completed examples shuffled (the pool's posterior,
        like the prior's, ignores their order)."""
        return self.task.permute_history(episodes, t, seed=seed)

    def summarise(self, probed: Probed) -> xr.Dataset:
        """As ``task.summarise`` (effective spectra against each episode's own target)."""
        ds = self.task.summarise(probed)
        ds.attrs["pool_size"] = -1 if self.size is None else int(self.size)
        return ds


@functools.lru_cache(maxsize=8)
def _draw_pool(task: LinearRegression, size: int, seed: int) -> torch.Tensor:
    """Members 0..size-1 in float64 on the CPU, drawn chunk by chunk (see :data:`POOL_CHUNK`)."""
    chunks, start = [], 0
    while start < size:
        n = min(POOL_CHUNK, size - start)
        gen = make_generator(seed * 1_000_003 + start // POOL_CHUNK)
        w = randn((POOL_CHUNK, task.y_dim, task.dim), gen, dtype=torch.float64)
        chunks.append(task.prior_scale * w[:n])
        start += n
    return torch.cat(chunks)
