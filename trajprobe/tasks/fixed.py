"""One task drawn once and held fixed: the single-task control of Rabinowitz Figs. A4/A6."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from trajprobe.tasks._sampling import rand, randn
from trajprobe.tasks.base import Episodes, Seed, make_generator
from trajprobe.tasks.fourier import FourierRegression
from trajprobe.tasks.regression import LinearRegression

__all__ = ["FixedTask"]


@dataclass(frozen=True)
class FixedTask:
    """Every episode uses the same task parameters, drawn once from ``task``'s prior.

    An LSTM trained on a ``FixedTask`` is a *Learner* with the Meta-Learner's
    parameterisation ("solving a single regression problem only, i.e. one where the
    target matrix is always the same across episodes", Rabinowitz §3.2.5, Figs. A4, A6).
    Inputs are still drawn afresh every episode.

    Args:
        task: a :class:`~trajprobe.tasks.LinearRegression` or
            :class:`~trajprobe.tasks.FourierRegression`.
        seed: seed of the one draw of the task parameters.
    """

    task: LinearRegression | FourierRegression
    seed: int = 0
    _params: dict[str, torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.task, LinearRegression | FourierRegression):
            raise TypeError(
                "task: FixedTask supports LinearRegression and FourierRegression, got "
                f"{type(self.task).__name__}"
            )
        if isinstance(self.task, LinearRegression):
            params = self.task.sample_weights(1, seed=self.seed, dtype=torch.float64)
        else:
            params = self.task.sample_params(1, seed=self.seed, dtype=torch.float64)
        object.__setattr__(self, "_params", params)

    @property
    def input_size(self) -> int:
        """As the wrapped task's."""
        return self.task.input_size

    @property
    def output_size(self) -> int:
        """As the wrapped task's."""
        return self.task.output_size

    def params(self, n_episodes: int = 1, *, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The fixed parameters repeated for ``n_episodes`` (``E`` leading)."""
        return {k: v.to(device=device, dtype=dtype).expand(n_episodes, *v.shape[1:]).clone()
                for k, v in self._params.items()}

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Episodes:
        """Episodes of the fixed task: fresh inputs and noise, the same parameters."""
        gen = make_generator(seed, device)
        params = self.params(n_episodes, device=device, dtype=dtype)
        task = self.task
        if isinstance(task, LinearRegression):
            x = randn((n_episodes, n_steps, task.dim), gen, device=device, dtype=dtype)
            noise = randn((n_episodes, n_steps, task.dim), gen, device=device, dtype=dtype)
            y = torch.einsum("eij,etj->eti", params["W"], x) + task.noise_std * noise
            return Episodes(inputs=task.encode(x, y), targets=y, params=params)
        x = rand((n_episodes, n_steps), gen, device=device, dtype=dtype) - 0.5
        noise = randn((n_episodes, n_steps), gen, device=device, dtype=dtype)
        y = task.function(params, x) + task.noise_std * noise
        return Episodes(inputs=task.encode(x, y), targets=y.unsqueeze(-1), params=params)
