"""The one command to run when a GPU machine is lent: `make gpu-run` (`python -m essl_core.gpu_run`).

It checks the GPU, checks the CIFAR-10 cache (scripts/gpu-run.sh prepares it from the copy `make gpu-carry`
put in `.gpu/`), runs the benchmark, times the
photonic band solver (cells/s), then trains E-SimCLR and SimCLR at the full recipe for as many epochs as fit the
time left before a deadline
(the epoch count is fixed before training starts, from the benchmark's fast-path throughput, so the lr
schedule is the recipe's cosine over those epochs), with kNN curves and a short linear probe. Every record
goes to `$OUT` (or `book/results/`) as soon as it exists, so a run cut short still returns what it finished.
At `--tier smoke` the same steps run on the CPU in seconds (tested).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from .bench import run_bench
from .data import load_cifar10
from .errors import EsslError, run_command
from .layout import RUNS, bench_record, pretrain_run_dir, record_file
from .photonics.compare import run_compare
from .recipes import get_recipe
from .results import write_record
from .runs import pretrain

RECIPES = ("cifar10-esimclr", "cifar10-simclr")
# Evaluation inside the budget: one short linear probe instead of the paper's 5 x 100 epochs (labelled by
# the record's config), and about ten kNN points per curve.
GPU_RUN_EVAL = dict(probe_runs=1, probe_epochs=5)


def epochs_for_budget(seconds: float, images_per_s: float, train_images: int, overhead: float = 1.25) -> int:
    """Whole epochs that fit `seconds` at `images_per_s`, with `overhead` for kNN and epoch ends (>= 1)."""
    return max(1, int(seconds * images_per_s / (train_images * overhead)))


def gpu_report(out: Path) -> str:
    """nvidia-smi's full query (name, power limit, clocks) into `out`; returns the GPU's name."""
    if not torch.cuda.is_available():
        return "no CUDA device"
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "-q"], capture_output=True, text=True, timeout=60)
        (out / "nvidia-smi.txt").write_text(query.stdout)
    return torch.cuda.get_device_name(0)


def gpu_run(tier: str, out: Path, *, deadline_s: float, data_root: Path | None = None) -> list[Path]:
    """Benchmark, then the two budgeted pretraining runs; returns the records written."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if tier == "full" and not torch.cuda.is_available():
        raise EsslError("the full tier of gpu-run needs a CUDA GPU; use --tier smoke to try it on the CPU")
    print(f"gpu-run: {gpu_report(out)}, torch {torch.__version__}, tier {tier}, deadline {deadline_s:.0f} s")
    load_cifar10(data_root)  # a one-line error now, not after the benchmark, if the cache is missing
    bench = run_bench("cifar10-esimclr", tier, data_root=data_root, record_dir=out)
    written = [out / bench_record("cifar10-esimclr", tier, bench["provenance"]["device"])]
    fast_images_per_s = bench["metrics"]["fast"]["images_per_s"]
    # The photonic band solver's cells/s on this device (MPB is compared on the build machine, not here).
    # Never run on CUDA before this script: a failure is reported and the training runs still happen.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        solver = run_compare(1 if tier == "smoke" else 3, device, frontend=None)
        written.append(write_record(out / record_file("photonics-solver", device.type), solver))
    except Exception as exc:
        print(f"gpu-run: the photonic solver step failed on {device}: {exc!r}", flush=True)
    for i, name in enumerate(RECIPES):
        left = deadline_s - (time.perf_counter() - start)
        recipe = get_recipe(name, tier)
        train_images = recipe.train_subset or 50_000
        # SimCLR has no rotation branch: about 1.5x the E-SimCLR throughput (6.7 vs 10.2 GFLOP per image).
        speed = fast_images_per_s * (1.0 if recipe.e_branch else 1.5)
        # Each run gets an equal share of what is left, less a reserve for its probe and the final kNN.
        share = left / (len(RECIPES) - i) - (20 if tier == "full" else 2)
        epochs = epochs_for_budget(share, speed, train_images)
        budgeted = dict(
            epochs=epochs,
            warmup_epochs=max(1, round(recipe.warmup_epochs * epochs / recipe.epochs)),  # the recipe's fraction
            knn_every=max(1, epochs // 10),
            **GPU_RUN_EVAL,
        )
        recipe = get_recipe(name, tier, budgeted)
        print(f"gpu-run: {name}, {epochs} epochs in a share of {share:.0f} s", flush=True)
        run_dir = pretrain_run_dir(RUNS / "gpu-run", name, tier, recipe.seed)
        record = pretrain(recipe, run_dir, data_root=data_root, restart=True)
        path = write_record(out / record_file(name, tier, f"{epochs}ep"), record)
        written.append(path)
    print(f"gpu-run: done in {time.perf_counter() - start:.0f} s; records: {', '.join(p.name for p in written)}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m essl_core.gpu_run", description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="full", choices=("smoke", "full"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "book/results"))
    parser.add_argument("--deadline-s", type=float, default=540, help="seconds for everything (default 540)")
    parser.add_argument("--data-root", type=Path, help="the prepared CIFAR-10 cache (default: $ESSL_DATA or ./data)")
    args = parser.parse_args(argv)
    return run_command(lambda: gpu_run(args.tier, args.out, deadline_s=args.deadline_s, data_root=args.data_root))


if __name__ == "__main__":
    sys.exit(main())
