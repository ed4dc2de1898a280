"""Pilot of issue 35's wind tunnel: an LSTM and a small transformer on bijection elimination,
scored against the exact posterior in bits (``trajprobe.posterior_error``).

Run:  python benchmarks/wind_tunnel_pilot.py                       (≈ 2 × 150 s of training)
      python benchmarks/wind_tunnel_pilot.py --seconds 600 --symbols 8 --steps 24
      python benchmarks/wind_tunnel_pilot.py --task recall         (associative recall)

Each model is meta-trained by teacher-forced cross-entropy on fresh episodes (Adam, one
thread) for a wall-clock budget, then both are scored on the same held-out episodes:
per position t, KL(Bayes ‖ model) and |H(model) − H(Bayes)| in bits, mean ± s.e. over
episodes, and their average over positions. A uniform predictor is printed as the
ceiling (its KL is log₂ V − H(Bayes)). This is a pilot: one seed, a wall-clock budget,
unequal sizes, no MLP/GRU/SSM. The reproduce target ``trajprobe reproduce wind-tunnel``
(:mod:`trajprobe.apps.reproduce.wind_tunnel`) trains all five architectures,
capacity-matched, for a fixed number of updates per preset, as resumable recipes.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import distributions as D

import trajprobe
from trajprobe.apps.models import GPT, RabinowitzLSTM
from trajprobe.tasks import AssociativeRecall, BijectionElimination


class Uniform:
    """Always uniform over V classes: the ceiling of the table."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, 1)

    def step(self, x: torch.Tensor, state: torch.Tensor):
        return torch.zeros(x.shape[0], self.n_classes), state

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        return D.Categorical(logits=y)


def train(model: torch.nn.Module, task, *, steps: int, seconds: float, batch: int, lr: float,
          seed: int) -> tuple[int, float]:
    """Teacher-forced cross-entropy on fresh episodes until ``seconds`` have passed.

    Returns:
        ``(updates, final loss in bits)`` (the loss: mean over the last 50 updates).
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start, updates, recent = time.monotonic(), 0, []
    while time.monotonic() - start < seconds:
        episodes = task.sample(batch, steps, seed=gen)
        logits, _ = model.unroll(episodes.inputs)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1),
                                                 episodes.targets.flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        updates += 1
        recent = [*recent[-49:], float(loss.detach()) / 0.6931471805599453]
    return updates, sum(recent) / max(len(recent), 1)


def _row(name: str, ds, extra: str = "") -> str:
    kl, kl_se = float(ds.average_kl), float(ds.average_kl_sem)
    dh, dh_se = float(ds.average_entropy_error), float(ds.average_entropy_error_sem)
    return f"{name:<12} KL {kl:.4f} ± {kl_se:.4f} bits   |ΔH| {dh:.4f} ± {dh_se:.4f} bits  {extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("bijection", "recall"), default="bijection")
    parser.add_argument("--symbols", type=int, default=8, help="V (values for recall)")
    parser.add_argument("--steps", type=int, default=24, help="T, positions per episode")
    parser.add_argument("--seconds", type=float, default=150.0, help="training budget per model")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=64, help="LSTM units / d_model")
    parser.add_argument("--eval-episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = (BijectionElimination(args.symbols) if args.task == "bijection"
            else AssociativeRecall(n_keys=args.symbols, n_values=args.symbols,
                                   n_pairs=args.symbols // 2))
    models = {
        "LSTM": RabinowitzLSTM(task.input_size, task.output_size, args.width,
                               distribution="categorical", seed=args.seed),
        "transformer": GPT(task.input_size, task.output_size, d_model=args.width, n_layers=2,
                           n_heads=4, max_len=args.steps, distribution="categorical",
                           seed=args.seed),
    }
    held_out = task.sample(args.eval_episodes, args.steps, seed=10_000 + args.seed)
    print(f"task {task!r}, T = {args.steps}, {args.seconds:.0f} s per model, "
          f"{args.eval_episodes} held-out episodes")
    results = {"uniform": trajprobe.posterior_error(Uniform(task.output_size), task,
                                                    episodes=held_out)}
    notes = {"uniform": ""}
    for name, model in models.items():
        n_params = sum(p.numel() for p in model.parameters())
        updates, loss = train(model, task, steps=args.steps, seconds=args.seconds,
                              batch=args.batch, lr=args.lr, seed=args.seed)
        model.eval()
        results[name] = trajprobe.posterior_error(model, task, episodes=held_out)
        notes[name] = f"({n_params} params, {updates} updates, train loss {loss:.3f} bits)"
    bayes = results["uniform"]
    print(f"Bayes entropy per position, averaged: {float(bayes.bayes_entropy_mean.mean()):.4f}"
          " bits")
    for name, ds in results.items():
        print(_row(name, ds, notes[name]))
    print("\nper position t: Bayes entropy | KL (bits) of", ", ".join(models))
    for t in bayes.t.values:
        kls = "  ".join(f"{float(results[n].kl_mean.sel(t=t)):.4f} ± "
                        f"{float(results[n].kl_sem.sel(t=t)):.4f}" for n in models)
        print(f"t = {t:>2}  {float(bayes.bayes_entropy_mean.sel(t=t)):.3f} | {kls}")


if __name__ == "__main__":
    main()
