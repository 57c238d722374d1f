"""Command line: `python -m essl_core train|eval|bench|study|photonics|export-encoder ...`.
User errors: one line, status 2."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .errors import EsslError, run_command
from .layout import EVAL, RESULT, RUNS, pretrain_run_dir
from .overrides import settable_fields
from .photonics.config import PhotonicsRecipe
from .recipes import Recipe, recipe_names, recipe_overrides
from .runs import EVAL_FIELDS
from .tiers import ENV, TIERS, default_tier, get_tier


def _train(args: argparse.Namespace) -> None:
    from .recipes import get_recipe
    from .runs import pretrain

    recipe = get_recipe(args.recipe, args.tier, recipe_overrides(args.set))
    run_dir = args.run_dir or pretrain_run_dir(RUNS, recipe.name, recipe.tier, recipe.seed)
    record = pretrain(
        recipe,
        run_dir,
        data_root=args.data_root,
        device=args.device,
        restart=args.restart,
        progress=not args.quiet,
        record_dir=args.record_dir,
    )
    if record is not None:  # None: a torchrun process other than rank 0
        _summary(record, Path(run_dir) / RESULT)


def _eval(args: argparse.Namespace) -> None:
    from .runs import evaluate_checkpoint

    record = evaluate_checkpoint(
        args.checkpoint,
        data_root=args.data_root,
        device=args.device,
        overrides=recipe_overrides(args.set),
        out=args.out,
        progress=not args.quiet,
    )
    _summary(record, args.out or Path(args.checkpoint).with_name(EVAL))


def _bench(args: argparse.Namespace) -> None:
    from .bench import run_bench

    run_bench(
        args.recipe,
        args.tier,
        device=args.device,
        data_root=args.data_root,
        overrides=recipe_overrides(args.set),
        warmup=args.warmup,
        steps=args.steps,
        record_dir=args.record_dir,
    )


def _study(args: argparse.Namespace) -> None:
    from .errors import EsslError
    from .study import run_study

    if args.set:
        raise EsslError("study takes no --set: its runs are the tier's recipes (see essl_core.tiers)")
    records = run_study(
        args.tier,
        seeds=args.seeds,
        data_root=args.data_root,
        device=args.device,
        record_dir=args.record_dir,
        progress=not args.quiet,
    )
    for r in records:
        s = r["study"]
        name = s["variant"] + (f" {s['transformation']}" if s["transformation"] else "")
        print(f"{name:>20} seed {s['seed']}: kNN {r['metrics']['knn_top1']:.2f}%")


def photonics_helper_argv(args: argparse.Namespace) -> list[str]:
    """The arguments of one more process of this photonics command (`--processes`): the same runs, no output."""
    argv = ["photonics", "--tier", args.tier, "--device", args.device, "--workers", str(args.workers), "--quiet"]
    argv += ["--datasets", *args.datasets, "--modes", *args.modes] + [a for s in args.set for a in ("--set", s)]
    argv += ["--data-root", str(args.data_root)] if args.data_root else []
    return argv + (["--record-dir", str(args.record_dir)] if args.record_dir else [])


def _photonics(args: argparse.Namespace) -> None:
    import torch

    from .photonics.config import get_photonics_recipe, photonics_overrides
    from .photonics.experiment import run_photonics

    if args.processes < 1:
        raise EsslError(f"--processes must be at least 1, not {args.processes}")
    recipe = get_photonics_recipe(args.tier, photonics_overrides(args.set))  # bad settings fail before any helper
    helpers = []
    if args.processes > 1:  # the same command N times, one thread each: the run locks share out the runs
        torch.set_num_threads(1)
        env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "essl_core", *photonics_helper_argv(args)]
        helpers = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(args.processes - 1)]
    try:
        records = run_photonics(
            recipe,
            tuple(args.datasets),
            tuple(args.modes),
            device=args.device,
            data_dir=args.data_root,
            record_dir=args.record_dir,
            workers=args.workers,
            progress=not args.quiet,
        )
    except BaseException:
        for helper in helpers:
            helper.terminate()  # their runs resume from their checkpoints next time
        raise
    finally:
        for helper in helpers:
            helper.wait()
    # A helper that failed left its run unlocked, and this process then ran it: every record is here.
    for r in records:
        c = r["config"]
        cells = ", ".join(f"{n} labels {v['validation']['mean']:.4f}" for n, v in r["summary"].items())
        print(f"{c['family']:>5} {c['label']:>24}: test error (validation-selected) {cells}")


def _export(args: argparse.Namespace) -> None:
    from .published import MANIFEST, export_encoder

    entry = export_encoder(args.run_dir, args.record, args.out)
    print(
        f"wrote {args.out / entry['file']} ({entry['bytes'] / 2**20:.1f} MiB, sha256 {entry['sha256'][:12]}...), "
        f"listed in {args.out / MANIFEST}"
    )


def _summary(record: dict, path: Path) -> None:
    m = record["metrics"]
    probe = m["linear_probe_top1"]
    probe_text = (
        f"linear probe {probe['mean']:.2f} ± {probe['std']:.2f}% over {len(probe['runs'])} runs"
        if probe
        else "no linear probe"
    )
    print(
        f"{record['recipe']} ({record['tier']}, {record['dataset']['name']}, {record['provenance']['device_name']}): "
        f"kNN {m['knn_top1']:.2f}%, {probe_text}; record: {path}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m essl_core", description="E-SSL: train, evaluate and benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", type=Path, help="data root (default: $ESSL_DATA or ./data)")
    common.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    common.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    settable = argparse.ArgumentParser(add_help=False)
    settable.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    tiered = argparse.ArgumentParser(add_help=False)
    tiered.add_argument("--tier", help=f"one of: {', '.join(TIERS)} (default: ${ENV}, else smoke)")

    train = sub.add_parser(
        "train",
        parents=[common, settable, tiered],
        help="pretrain a recipe, then evaluate it",
        epilog=f"--set keys: {', '.join(settable_fields(Recipe))}",
    )
    train.add_argument("--recipe", required=True, help=f"one of: {', '.join(recipe_names())}")
    train.add_argument("--run-dir", type=Path, help="checkpoints, log and record (default runs/RECIPE-TIER-sSEED)")
    train.add_argument("--restart", action="store_true", help="discard the run directory's checkpoint")
    train.add_argument("--record-dir", type=Path, help="also write the result record here (e.g. book/results)")
    train.set_defaults(func=_train)

    ev = sub.add_parser(
        "eval",
        parents=[common, settable],
        help="kNN and linear probe of a checkpoint",
        epilog=f"--set keys: {', '.join(sorted(EVAL_FIELDS))} (what the network was trained with cannot change)",
    )
    ev.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint.pt written by train")
    ev.add_argument("--out", type=Path, help="where to write the record (default: eval.json beside the checkpoint)")
    ev.set_defaults(func=_eval)
    bench = sub.add_parser(
        "bench",
        parents=[common, settable, tiered],
        help="time the reference pipeline and the fast path",
        epilog=f"--set keys: {', '.join(settable_fields(Recipe))}",
    )
    bench.add_argument("--recipe", default="cifar10-esimclr", help="default: cifar10-esimclr")
    bench.add_argument("--steps", type=int, help="timed steps per path (default: 5 smoke, 10 cpu, 50 full)")
    bench.add_argument("--warmup", type=int, help="untimed steps first (default: 2, or 10 at the full tier)")
    bench.add_argument("--record-dir", type=Path, help="where the bench record goes (default: runs/)")
    bench.set_defaults(func=_bench)

    study = sub.add_parser("study", parents=[common, tiered], help="the transformation study: baseline, I-SSL, E-SSL")
    study.add_argument("--seeds", type=int, nargs="+", help="default: 42 (smoke, cpu), 42 43 44 (full)")
    study.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="not taken: the runs are fixed")
    study.add_argument("--record-dir", type=Path, help="also write each run's record here (e.g. book/results/study)")
    study.set_defaults(func=_study)

    phc = sub.add_parser(
        "photonics",
        parents=[common, settable, tiered],
        help="the photonics experiment: data, pretraining, fine-tuning",
        epilog=f"--set keys: {', '.join(settable_fields(PhotonicsRecipe))}",
    )
    phc.add_argument("--datasets", nargs="+", default=["blob", "gpm"], help="blob, gpm or both (default)")
    modes = ["none", "simclr", "simclr_trans", "simclr_ee"]
    phc.add_argument("--modes", nargs="+", default=modes, help=f"any of {', '.join(modes)} (default: all)")
    phc.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes generating data")
    phc.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the experiment in this many processes of one thread each, sharing its runs (default 1)",
    )
    phc.add_argument("--record-dir", type=Path, help="also write each record here (e.g. book/results/photonics)")
    phc.set_defaults(func=_photonics)
    export = sub.add_parser(
        "export-encoder", help="commit a finished run's trained model for the published book (safetensors + manifest)"
    )
    export.add_argument("--run-dir", type=Path, required=True, help="a finished run directory (its checkpoint.pt)")
    export.add_argument("--record", type=Path, required=True, help="that run's result record, e.g. in book/results")
    export.add_argument("--out", type=Path, default=Path("book/encoders"), help="default: book/encoders")
    export.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> None:
        if "tier" in args:  # validated once, here: every command below gets a known tier's name
            args.tier = get_tier(args.tier).name if args.tier else default_tier()
        args.func(args)

    return run_command(command)
