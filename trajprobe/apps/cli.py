"""The ``trajprobe`` command: reproduce the papers, train recipes, measure and compare models."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trajprobe
from trajprobe.apps.cli_help import EPILOGS, HelpFormatter

__all__ = ["build_parser", "main"]

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trajprobe`` command."""
    parser = argparse.ArgumentParser(
        prog="trajprobe", formatter_class=HelpFormatter,
        description="Measure how recurrent learners learn (Rabinowitz 2019; Mikulik et al. 2020).",
    )
    parser.add_argument("--version", action="version", version=f"trajprobe {trajprobe.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_reproduce, _add_sweep, _add_recipes, _add_train, _add_compare, _add_measure):
        add(sub)
    return parser


def _command(sub: Any, name: str, help: str, epilog: str | None = None,
             **kwargs: Any) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, epilog=epilog,
                          formatter_class=HelpFormatter, **kwargs)


def _preset_option(parser: argparse.ArgumentParser) -> None:
    from trajprobe.apps.reproduce import PRESETS

    parser.add_argument("--preset", choices=PRESETS, default="quick",
                        help="smoke (seconds), quick (minutes on a laptop) or paper (the "
                             "papers' sizes; hours to days on a CPU)")


def _device_option(parser: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    parser.add_argument("--device", default=default,
                        help="where torch runs: cpu, cuda, cuda:1, mps" + (
                            "" if default else " (default: the CPU on every worker; a "
                                               "device a worker lacks is an error)"))


def _seed_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--seed", type=_seed, default=0,
                        help=f"random seed of {what}; the same seed gives the same numbers")


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help="hide progress bars (default: a bar on a terminal, a line every "
                             "30 s in a log file)")


def _add_reproduce(sub: Any) -> None:
    from trajprobe.apps.reproduce import TARGETS

    p = _command(sub, "reproduce", "train, probe and report one of the papers' experiments",
                 EPILOGS["reproduce"])
    p.add_argument("target", metavar="TARGET",  # checked by reproduce(), with did-you-mean
                   help="one of: " + ", ".join(TARGETS))
    _preset_option(p)
    p.add_argument("--seeds", type=_positive_int, default=1,
                   help="independently trained Meta-Learners per set-up")
    _device_option(p)
    p.add_argument("--out", type=_out_path, default=None,
                   help="output directory (default: ./trajprobe-runs/TARGET-PRESET)")
    _progress_option(p)
    p.add_argument("--scheduler", default="auto",
                   help="where Meta-Learners train: auto (a LocalCluster when Dask is installed "
                        "and there are several runs: --seeds > 1, or a target that trains a "
                        "ladder of set-ups), local, a scheduler address, or none (one after "
                        "another in this process)")
    _force_option(p)
    _threads_option(p)


def _add_sweep(sub: Any) -> None:
    p = _command(sub, "sweep", "train and measure one recipe over many seeds on Dask",
                 EPILOGS["sweep"])
    p.add_argument("recipe", metavar="RECIPE",
                   help="a Meta-Learner recipe from `trajprobe recipes`")
    _preset_option(p)
    p.add_argument("--seeds", type=_positive_int, default=4, help="train seeds 0..N-1")
    p.add_argument("--scheduler", default="local",
                   help="local (a LocalCluster on this machine), a scheduler address such as "
                        "tcp://HOST:8786, or none (one by one in this process)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="LocalCluster worker processes (default: one per CPU core, at most "
                        "one per seed)")
    p.add_argument("--out", type=_out_path, default=None,
                   help="sweep directory, shared by all workers "
                        "(default: ./trajprobe-sweeps/RECIPE-PRESET, / in RECIPE as -)")
    _device_option(p, default=None)
    p.add_argument("--episodes", type=_positive_int, default=None,
                   help="evaluation episodes per checkpoint (default: 100)")
    p.add_argument("--final-only", action="store_true",
                   help="measure only the trained model (default: every checkpoint)")
    _progress_option(p)
    _force_option(p)
    _threads_option(p)


def _add_recipes(sub: Any) -> None:
    from trajprobe.apps.reproduce import PRESETS

    p = _command(sub, "recipes", "list recipes and presets with their estimated cost")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="list only this preset (default: all three)")


def _add_train(sub: Any) -> None:
    p = _command(sub, "train", "train one recipe (resumes if --out holds a partial run)",
                 EPILOGS["train"])
    p.add_argument("recipe", metavar="RECIPE", help="a name from `trajprobe recipes`")
    _preset_option(p)
    _seed_option(p, "the initial weights and the training episodes")
    _device_option(p)
    p.add_argument("--out", type=_out_path, required=True,
                   help="the run directory (required; an interrupted run resumes from it)")
    _progress_option(p)
    _threads_option(p)


def _add_compare(sub: Any) -> None:
    p = _command(sub, "compare", "behavioural dissimilarity and D_s/D_o of two agents",
                 EPILOGS["compare"])
    p.add_argument("a", metavar="A", type=_in_path, help="a training run, a checkpoint, or `bayes`")
    p.add_argument("b", metavar="B", type=_in_path, help="a training run, a checkpoint, or `bayes`")
    p.add_argument("--task", required=True,
                   help="a task of `trajprobe.reference_models.catalogue` (required)")
    p.add_argument("--episodes", type=_positive_int, default=500,
                   help="evaluation episodes (5 folds: each scored by maps fitted on the rest)")
    p.add_argument("--untrained", action="store_true",
                   help="also compare A with B's untrained network (B's recipe and seed)")
    p.add_argument("--direction", choices=("a->b", "b->a", "both"), default="both",
                   type=lambda v: {"a→b": "a->b", "b→a": "b->a"}.get(v, v),
                   help="which simulation direction to compute: a->b asks whether B simulates "
                        "A (φ maps A's states into B's; about half the cost of both), b->a "
                        "whether A simulates B (φ maps B's states into A's), both computes "
                        "the two (SimulationConfig.directions; the arrows a→b, b→a work too)")
    _seed_option(p, "the evaluation episodes and the simulation map")
    _device_option(p)
    p.add_argument("--out", type=_out_path, default=None,
                   help="netCDF file for the results (default: print only)")
    _threads_option(p)


def _add_measure(sub: Any) -> None:
    p = _command(sub, "measure", "the task's measurement of a trained model (spectra, "
                 "Fourier, ...)", EPILOGS["measure"], aliases=["spectra"])
    p.add_argument("model", metavar="MODEL", type=_in_path,
                   help="a training run directory or checkpoint")
    p.add_argument("--episodes", type=_positive_int, default=200, help="episodes measured")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="steps per episode (default: the recipe's training episode length)")
    p.add_argument("--probes", type=_positive_int, default=None,
                   help="probe inputs per step (default: the task's)")
    _seed_option(p, "the episodes and probes")
    _device_option(p)
    p.add_argument("--out", type=_out_path, default=None,
                   help="directory for measure.nc and measure.png (default: MODEL-measure "
                        "beside the run: runs/lr2d -> runs/lr2d-measure; a checkpoint "
                        "runs/lr2d/checkpoint_100.pt -> runs/lr2d-checkpoint_100-measure)")
    _threads_option(p)


def _threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=_positive_int, default=None,
        help="CPU threads for torch (default: torch's choice); 1 is fastest on a busy machine")


def _force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true",
        help="run even when the cost estimate is far beyond the preset or the free disk")


def _out_path(text: str) -> Path:
    """An output path: not empty (an unset shell variable), no NUL, not / or ~ (paths)."""
    from trajprobe.paths import check_path

    try:
        return check_path(text, "out")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _in_path(text: str) -> str:
    """A path to read (or a name such as ``bayes``): not empty, no NUL."""
    from trajprobe.paths import check_path

    try:
        check_path(text, "path", output=False)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _int(text: str, what: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def _positive_int(text: str) -> int:
    return _int(text, "a positive integer", 1)


def _non_negative_int(text: str) -> int:
    return _int(text, "a non-negative integer", 0)


_MAX_SEED = 2**63 - 1


def _seed(text: str) -> int:
    value = _int(text, "a non-negative integer", 0)
    if value > _MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed below 2**63, got {text}")
    return value


def _check_device(device: str | None) -> None:
    """A clear error for a device this machine does not have (before any work)."""
    from trajprobe.devices import resolve_device

    resolve_device(device)


def _check_writable(path: Path | None, *, directory: bool) -> None:
    """Refuse, before the work, an output path that cannot be written.

    ``directory``: the path is a directory to create or reuse (else a file to create).
    """
    if path is None:
        return
    if directory and path.exists() and not path.is_dir():
        raise ValueError(f"out: {str(path)!r} is a file; give a directory")
    if not directory and path.is_dir():
        raise ValueError(f"out: {str(path)!r} is a directory; give a file name")
    existing = path if directory and path.exists() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"out: {str(existing)!r} is a file, so {str(path)!r} cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"out: cannot write in {str(existing)!r} (permission denied); "
                         "give another --out")


PASSIVE_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Set for the console script's process: OpenMP threads that wait for work sleep instead of
spinning. With the default (spinning) policy, two threads on a 2-core machine with one
other busy process made an LSTM(64) training update 15-50x slower (220-1,320 ms against
11-27 ms with one thread); passive waiting keeps two threads as fast as one there and
leaves a quiet machine's two threads at work. It must be set before torch loads OpenMP."""


_TRAINING_COMMANDS = ("reproduce", "train", "sweep", "measure", "spectra", "compare")
"""The commands that run torch long enough for the re-run (~1 s of imports) to pay."""


def _rerun_with_passive_openmp() -> None:
    """Replace this process by the same command with :data:`PASSIVE_OPENMP` in its
    environment, unless the user set ``OMP_WAIT_POLICY`` (or this is the re-run)."""
    heavy = len(sys.argv) > 1 and sys.argv[1] in _TRAINING_COMMANDS
    if os.name != "posix" or "OMP_WAIT_POLICY" in os.environ or not heavy:
        return
    env = {**os.environ, **PASSIVE_OPENMP}
    os.execve(sys.executable, _same_command(), env)


def _same_command() -> list[str]:
    """This process's command line, to run again with the same imports.

    ``python -m trajprobe.apps.cli`` runs again as a module. The console script runs again as
    that script, not as ``-m``: ``-m`` puts the working directory first on ``sys.path``,
    and in a source checkout installed without ``-e`` that directory's ``trajprobe/``
    (where ``adapters/`` is not) would shadow the installed package.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:
        return [sys.executable, "-m", spec.name, *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trajprobe`` console script; returns the exit code.

    Run as the console script (``argv`` None), the process first re-runs itself with
    passive OpenMP waiting (:data:`PASSIVE_OPENMP`).
    """
    if argv is None:
        _rerun_with_passive_openmp()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        _check_device(getattr(args, "device", None))
        out = getattr(args, "out", None)
        _check_writable(out, directory=args.command != "compare")
        _check_cost(args)
        return {"reproduce": _reproduce, "recipes": _recipes, "train": _train,
                "compare": _compare, "measure": _measure, "spectra": _measure,
                "sweep": _sweep}[args.command](args)
    except BrokenPipeError:  # e.g. `trajprobe recipes | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, OSError, ModuleNotFoundError) as err:
        parser.exit(2, f"trajprobe {args.command}: error: {_one_line(err)}\n")
    except MemoryError:
        parser.exit(2, f"trajprobe {args.command}: error: out of memory; use fewer --episodes "
                       "or --seeds\n")
    except KeyboardInterrupt:
        parser.exit(130, f"trajprobe {args.command}: interrupted; run the same command "
                         "again to resume\n")


def _one_line(err: BaseException) -> str:
    """An error as one line; an OSError says what it is and which file."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return str(err)  # io.DiskFullError: the file and the space needed
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.strerror}: {str(err.filename)!r}"
    text = str(err) or type(err).__name__
    return text if isinstance(err, ValueError | TypeError) else f"{type(err).__name__}: {text}"


def _check_cost(args: argparse.Namespace) -> None:
    """Refuse, before any work, a reproduce or sweep whose estimated time is far beyond its
    preset's (one seed) or whose checkpoints exceed the free disk; ``--force`` runs it."""
    if args.command not in ("reproduce", "sweep") or args.force:
        return
    from trajprobe.apps.recipes import default_out_dir
    from trajprobe.resources import Estimate, check_estimate

    name = args.target if args.command == "reproduce" else args.recipe
    costs = _seed_costs(args)
    if costs is None:  # an unknown name: the command itself says so, with did-you-mean
        return
    (fixed, per_seed, disk) = costs
    out = args.out if args.out is not None else default_out_dir(name, args.preset)
    check_estimate(Estimate(f"{args.command} {name} --preset {args.preset} --seeds "
                            f"{args.seeds:,}", seconds=fixed + per_seed * args.seeds,
                            disk=int(disk * args.seeds), reference_seconds=fixed + per_seed),
                   out=out, override="--force", fix="use fewer --seeds (or another --preset)")


def _seed_costs(args: argparse.Namespace) -> tuple[float, float, float] | None:
    """(seconds not per seed, seconds per seed, checkpoint bytes per seed) of the command:
    the recipes' own estimates over its training runs, linear in the seeds beyond 500."""
    import importlib

    from trajprobe.apps import recipes
    from trajprobe.apps.reproduce import TARGETS
    from trajprobe.apps.reproduce.base import RunContext

    def cost(names: list[str]) -> tuple[float, float]:
        seconds = disk = 0.0
        for name in set(names):
            recipe = recipes.get(name, args.preset)
            seconds += names.count(name) * recipe.estimated_seconds()
            disk += names.count(name) * _checkpoint_bytes(recipe)
        return seconds, disk

    try:
        if args.command == "sweep":
            return (0.0, *cost([args.recipe]))
        if args.target not in TARGETS:
            return None
        module = importlib.import_module(TARGETS[args.target])
        few = min(args.seeds, 500)
        (t1, _), (t2, d2) = (cost([name for name, _ in module.training_runs(
            RunContext(args.preset, n, None, Path(".")))]) for n in (few, 2 * few))
    except (ValueError, KeyError):
        return None
    per_seed = (t2 - t1) / few
    return max(t1 - per_seed * few, 0.0), per_seed, d2 / (2 * few)


def _checkpoint_bytes(recipe) -> float:
    """A run's checkpoints on disk: (model + optimiser moments) per kept checkpoint."""
    config = getattr(recipe, "training", None)
    if config is None:
        return 0.0
    n_params = sum(p.numel() for p in recipe.build_model(0).parameters())
    return (config.n_checkpoints + 2) * (3 * 4 * n_params + 20_000)


def _reproduce(args: argparse.Namespace) -> int:
    from trajprobe.apps.reproduce import reproduce

    report = reproduce(args.target, preset=args.preset, seeds=args.seeds, device=args.device,
                       out_dir=args.out, progress=False if args.no_progress else None,
                       scheduler=_scheduler(args.scheduler))
    print(report.read_text().split("## Notes")[0].split("## Figures")[0].rstrip())
    print(f"\nwrote {report.parent}/: results.nc, figures/, report.md, report.html")
    return 0


def _scheduler(text: str) -> str | None:
    return None if text.lower() == "none" else text


def _sweep(args: argparse.Namespace) -> int:
    from trajprobe.apps.recipes import default_out_dir
    from trajprobe.apps.sweep import (
        MERGED_FILE,
        SWEEPS_ROOT,
        SweepError,
        plot_sweep,
        summary,
        sweep,
    )

    out = args.out if args.out is not None else default_out_dir(args.recipe, args.preset,
                                                                 SWEEPS_ROOT)
    try:
        ds = sweep(args.recipe, preset=args.preset, seeds=args.seeds, out_dir=out,
                   scheduler=_scheduler(args.scheduler), n_workers=args.workers,
                   device=args.device, threads=args.threads, episodes=args.episodes,
                   checkpoints=not args.final_only,
                   progress=False if args.no_progress else None)
    except SweepError as err:
        print(f"trajprobe sweep: {err}", file=sys.stderr)
        return 1
    print(f"{args.recipe} ({args.preset}), {ds.sizes['seed']} seeds, mean ± s.e. over seeds "
          f"at the last checkpoint:")
    for label, mean, sem in summary(ds):
        print(f"  {label:<44} {mean:10.4g} ± {sem:.2g}")
    plot_sweep(ds).savefig(out / "sweep.png", dpi=150, bbox_inches="tight")
    print(f"wrote {out / MERGED_FILE} (dims {dict(ds.sizes)}), {out / 'sweep.png'} and "
          f"per-seed results in {out / 'results'}")
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from trajprobe.apps import recipes

    rows = recipes.table(args.preset)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'recipe':<{widths[0]}}  {'preset':<{widths[1]}}  {'est. time':>9}  description")
    for name, preset, cost, description in rows:
        print(f"{name:<{widths[0]}}  {preset:<{widths[1]}}  {cost:>9}  {description}")
    print(f"\nestimated for this project's 2-core CPU when it is otherwise idle "
          f"({recipes.CPU_FLOPS / 1e9:.0f} GFLOP/s sustained; benchmarks/cost_model.py sets "
          "them beside measured runs); a busy machine takes longer, a GPU is typically "
          "10-100x faster for the paper presets.")
    return 0


def _train(args: argparse.Namespace) -> int:
    from trajprobe.apps import recipes

    recipe = recipes.get(args.recipe, args.preset)
    if not isinstance(recipe, recipes.MetaLearnerRecipe):
        raise ValueError(f"recipe: {args.recipe!r} is a Learner set-up, run inside "
                         "`trajprobe reproduce`; train takes Meta-Learner recipes")
    result = recipe.train(args.out, seed=args.seed, device=args.device,
                          progress=False if args.no_progress else None)
    last = result.metrics.isel(step=-1)
    print(f"{recipe.name} ({args.preset}, seed {args.seed}): loss {float(last['loss']):.4g} "
          f"after {int(last['episodes']):,} episodes; run in {args.out}")
    return 0


def _load_agent(spec: str, task_name: str, device: str):
    """``(run, machine)`` for A or B: the task's Bayes-optimal machine for ``bayes`` (run
    None), else the run loaded by :func:`~trajprobe.apps.load_run` (bundled or one's own
    recipe), refused unless it was trained on ``task_name``'s task."""
    from trajprobe.apps import load_run
    from trajprobe.apps.training.run_dirs import describe_task
    from trajprobe.reference_models import catalogue

    entry = catalogue.get(task_name)
    if spec == "bayes":
        return None, entry.bayes()
    run = load_run(spec, device=device)
    if describe_task(run.task) != describe_task(entry.task):
        raise ValueError(f"task: {spec!r} was trained on recipe {run.recipe.name!r}, whose task "
                         f"is not {task_name!r}; give --task the run's own task")
    return run, run.machine


def _compare(args: argparse.Namespace) -> int:
    import torch

    from trajprobe import compare
    from trajprobe.io import save_dataset
    from trajprobe.reference_models import catalogue
    from trajprobe.task_protocol import is_environment
    from trajprobe.traces import histories

    entry = catalogue.get(args.task)
    if args.untrained and args.b == "bayes":
        raise ValueError("--untrained: B is the Bayes agent, which has no untrained network; "
                         "put the trained agent as B")
    run_a, a = _load_agent(args.a, args.task, args.device)
    run_b, b = _load_agent(args.b, args.task, args.device)
    # B's network before training: its recipe's model for its seed (checkpoint 0)
    untrained = (run_b.recipe.build_model(seed=run_b.seed).to(args.device)
                 if args.untrained else None)
    task = entry.task
    sizes = {"episodes": args.episodes, "steps": entry.n_steps, "seed": args.seed}
    run, trace = histories(a, task, **sizes, device=args.device, dtype=torch.float32)
    if is_environment(task):  # each agent acts in its own closed loop, same seed
        inputs = trace
        gap = compare.reward_gap(trace, histories(b, task, **sizes)[1])
        behaviour, label = float(gap["dissimilarity"]), "|reward difference| (eq. 3)"
    else:
        inputs = run.inputs
        kl = compare.behavioural_dissimilarity(a, b, inputs)
        behaviour, label = float(kl["dissimilarity"]), "sum_t KL(A || B) (eq. 2)"
    # Bandit policies can be deterministic (Gittins), where KL is infinite: compare them
    # by the normalised error of the action probabilities.
    config = compare.SimulationConfig(
        output_measure="error" if is_environment(task) else "auto",
        directions=compare.DIRECTIONS if args.direction == "both" else (args.direction,))
    with torch.no_grad():
        sim = compare.simulation(a, b, inputs, config=config, untrained=untrained,
                                 seed=args.seed)
    print(f"task {args.task}: {label} = {behaviour:.4g}   (A = {args.a}, B = {args.b})")
    print(compare.simulation_summary(sim, names=("A", "B")))
    if args.out is not None:
        sim.attrs.update({"behavioural_dissimilarity": behaviour, "task": args.task,
                          "a_path": str(args.a), "b_path": str(args.b),
                          "a_recipe": _recipe_of(run_a), "b_recipe": _recipe_of(run_b)})
        save_dataset(sim.drop_vars([v for v in sim.data_vars if sim[v].ndim > 2]), args.out)
        print(f"wrote {args.out}")
    return 0


def _recipe_of(run) -> str:
    """'name (preset, seed N)' of a loaded run, or the Bayes agent (None)."""
    return "Bayes-optimal agent of the task" if run is None else run.label


def _measure(args: argparse.Namespace) -> int:
    from trajprobe import plots
    from trajprobe.apps import load_run
    from trajprobe.io import save_dataset
    from trajprobe.labelled import summary_table
    from trajprobe.measurement import measure

    recipe, _, model, _ = load_run(args.model, device=args.device)
    steps = args.steps if args.steps is not None else recipe.training.n_steps
    ds = measure(model, recipe.task, episodes=args.episodes, steps=steps, probes=args.probes,
                 seed=args.seed)
    out = args.out if args.out is not None else measure_dir(args.model)
    save_dataset(ds, out / "measure.nc")
    plots.plot_measurement(ds).savefig(out / "measure.png", dpi=150, bbox_inches="tight")
    print(f"{recipe.name} ({args.model}): {ds.attrs['measure']} on {ds.sizes['episode']} "
          f"episodes × {ds.sizes['t']} steps, mean ± s.e. over episodes")
    print(summary_table(ds))
    print(f"wrote {out}/measure.nc and {out}/measure.png")
    return 0


def measure_dir(model: str | Path) -> Path:
    """Where ``trajprobe measure MODEL`` writes by default: beside the run, never the working
    directory. A run directory ``runs/lr2d`` gives ``runs/lr2d-measure``; a checkpoint
    ``runs/lr2d/checkpoint_100.pt`` gives ``runs/lr2d-checkpoint_100-measure``."""
    path = Path(model).absolute()
    if path.is_file():
        return path.parent.parent / f"{path.parent.name}-{path.stem}-measure"
    return path.parent / f"{path.name}-measure"


if __name__ == "__main__":
    sys.exit(main())
