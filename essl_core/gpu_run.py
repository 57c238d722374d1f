"""The one command to run when a GPU machine is lent: `bash scripts/gpu-run.sh` (`python -m essl_core.gpu_run`).

Steps, each in its own guard so that a failure is recorded and the next step still runs: the machine's facts
(/dev/shm, CPUs, GPU and its power limit), the benchmark (its reference half, the FLOP count and kornia each
guarded inside it), the photonic band solver's cells/s, then E-SimCLR and SimCLR at the full recipe for as many
epochs as fit before the deadline (fixed before each run from the measured fast-path throughput, so the lr
schedule is the recipe's cosine over those epochs), and last, when time is left, the pair that tests our
deviations: E-SimCLR with the reference pipeline and fp16, same seed and epochs as our default run. The
deadline counts from the start of the process. Every record goes to `$OUT` (or `book/results/`) as soon as it
exists, with `gpu-run-steps-<experiment>.json` saying what each step did; a run cut short still returns what it
finished. At `--tier smoke` the same steps run on the CPU in seconds (tested).

`--experiment imagenet` is the second prepared command (`bash scripts/gpu-run.sh --experiment imagenet`): the
benchmark of the ImageNet E-SimCLR recipe (ResNet-50, 224-px views, batch 256 on the one device; the views are
cut from the 64-px Imagenette cache that travels to the machine, so the images/s and MFU are the recipe's, the
pixels are not ImageNet's), then the Imagenette replica (the cpu tier's SimCLR and E-SimCLR, batched views on
the GPU) with as many seeds as fit before the deadline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import torch

from .bench import fast_throughput, run_bench
from .data import load_cifar10
from .device import resolve_device
from .errors import EsslError, attempt, run_command
from .imagenet_data import load_imagenet
from .layout import RUNS, bench_record, pretrain_run_dir, record_file
from .photonics.compare import run_compare
from .recipes import get_recipe
from .results import make_record, provenance, write_record
from .runs import pretrain
from .tiers import get_tier

PROCESS_START = time.monotonic()  # importing this module is the start of `python -m essl_core.gpu_run`
RECIPES = ("cifar10-esimclr", "cifar10-simclr")
# Evaluation inside the budget: one short linear probe instead of the paper's 5 x 100 epochs (labelled by
# the record's config), and about ten kNN points per curve.
GPU_RUN_EVAL = dict(probe_runs=1, probe_epochs=5)
EXPERIMENTS = ("cifar10", "imagenet")
# The ImageNet benchmark on one device: the full recipe at the per-GPU batch of the paper's 32-GPU runs (4096 / 16
# would be its SimCLR per-GPU batch; 256 is the and common practice), fed from the Imagenette cache.
IMAGENET_BENCH = dict(dataset="imagenette", cache_side=64, batch_size=256)
REPLICA = ("imagenet-simclr", "imagenet-esimclr")
REPLICA_SEEDS = (42, 43, 44)
# Seconds of one replica run, by gpu-run tier, before any has run: at full (cpu-tier recipe, batched views, kNN and
# probe included, on an H200) imagenet-simclr seed 43 took 203 s on 2026-11-30 (imagenet-simclr-cpu-s43-batched-cuda).
REPLICA_RUN_S = {"full": 203.0}


def epochs_for_budget(seconds: float, images_per_s: float, train_images: int, overhead: float = 1.25) -> int:
    """Whole epochs that fit `seconds` at `images_per_s`, with `overhead` for kNN and epoch ends (>= 1)."""
    return max(1, int(seconds * images_per_s / (train_images * overhead)))


def environment(out: Path, device: torch.device) -> dict:
    """What limits this machine, printed and recorded first: /dev/shm, CPUs, the GPU and its power limit."""
    facts = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "device": str(device)}
    if Path("/dev/shm").exists():
        facts["dev_shm_bytes"] = shutil.disk_usage("/dev/shm").total
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["gpu_memory_bytes"] = torch.cuda.get_device_properties(device).total_memory
    if device.type == "cuda" and shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=power.limit,power.max_limit,clocks.max.sm", "--format=csv,noheader"]
        facts["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True, timeout=60).stdout.strip()
        full = subprocess.run(["nvidia-smi", "-q"], capture_output=True, text=True, timeout=60)
        (out / "nvidia-smi.txt").write_text(full.stdout)
    print("gpu-run: " + ", ".join(f"{k} {v}" for k, v in facts.items()), flush=True)
    return facts


class Steps:
    """The runner's steps: each runs in its own guard; `gpu-run-steps-<experiment>.json` is rewritten after every
    one (named by experiment, so the two commands' logs of one lease sit side by side in book/results/)."""

    def __init__(self, out: Path, tier: str, deadline_s: float, device: torch.device, experiment: str) -> None:
        self.path, self.device, self.written = out / f"gpu-run-steps-{experiment}.json", device, []
        self.record = make_record(
            "gpu-run", tier=tier, deadline_s=deadline_s, experiment=experiment, steps={}, provenance=provenance(device)
        )

    def run(self, name: str, action):
        """Run `action()`; record its status, error text and seconds; return its value (None if it failed)."""
        t0, failures = time.monotonic(), {}
        value = attempt(name, action, failures)
        self.record["steps"][name] = {
            "status": "failed" if failures else "ok",
            "error": failures.get(name),
            "seconds": time.monotonic() - t0,
        }
        write_record(self.path, self.record)
        return value

    def skip(self, name: str, why: str) -> None:
        self.record["steps"][name] = {"status": "skipped", "error": why, "seconds": 0.0}
        print(f"gpu-run: {name} skipped: {why}", flush=True)
        write_record(self.path, self.record)


def train_budgeted(name: str, tier: str, epochs: int, steps_name: str, data_root, device: str, out: Path, **changes):
    """One pretraining run of `epochs` epochs (the recipe's warm-up fraction, a complete cosine, ~10 kNN points,
    one short probe); its record goes to `out` at once."""
    recipe = get_recipe(name, tier)
    budgeted = dict(
        epochs=epochs,
        warmup_epochs=max(1, round(recipe.warmup_epochs * epochs / recipe.epochs)),
        knn_every=max(1, epochs // 10),
        **GPU_RUN_EVAL,
        **changes,
    )
    recipe = get_recipe(name, tier, budgeted)
    run_dir = pretrain_run_dir(RUNS / "gpu-run" / steps_name, name, tier, recipe.seed)
    record = pretrain(recipe, run_dir, data_root=data_root, device=device, restart=True, progress=False)
    suffix = [f"{epochs}ep"] + [f"{k}-{v}" for k, v in sorted(changes.items())]
    return write_record(out / record_file(name, tier, *suffix), record), record


def gpu_run(
    tier: str,
    out: Path,
    *,
    deadline_s: float | None = None,
    data_root: Path | None = None,
    device: str = "auto",
    started: float | None = None,
    experiment: str = "cifar10",
) -> list[Path]:
    """Every step of the lease (see the module's docstring); returns the records written. The deadline counts
    from `started` (time.monotonic(); the command passes its process start), else from this call."""
    if experiment not in EXPERIMENTS:
        raise EsslError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    deadline_s = deadline_s or get_tier(tier).gpu_deadline_s
    started = time.monotonic() if started is None else started

    def seconds_left() -> float:
        return deadline_s - (time.monotonic() - started)

    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    if tier == "full" and dev.type != "cuda":
        raise EsslError("the full tier of gpu-run needs a CUDA GPU; use --tier smoke to try it on the CPU")
    # A one-line error now, not after the benchmark, if the cache is missing.
    load_imagenet("imagenette", 64, data_root) if experiment == "imagenet" else load_cifar10(data_root)
    steps = Steps(out, tier, deadline_s, dev, experiment)
    steps.record["environment"] = steps.run("environment", lambda: environment(out, dev))
    print(f"gpu-run: {experiment}, tier {tier}, deadline {deadline_s:.0f} s, {seconds_left():.0f} s left", flush=True)
    if experiment == "imagenet":
        imagenet_steps(steps, tier, dev, device, data_root, out, seconds_left)
    else:
        cifar_steps(steps, tier, dev, device, data_root, out, seconds_left)
    took = time.monotonic() - started
    written = sorted({*steps.written, steps.path})
    print(f"gpu-run: done {took:.0f} s after the start; records: {', '.join(p.name for p in written)}")
    return written


def imagenet_steps(steps: Steps, tier: str, dev, device: str, data_root, out: Path, seconds_left) -> None:
    """The ImageNet benchmark, then the Imagenette replica's pairs, seed after seed, while they fit."""
    overrides = IMAGENET_BENCH if tier == "full" else {}
    name = "imagenet-esimclr"
    bench = steps.run(
        "bench", lambda: run_bench(name, tier, device=device, data_root=data_root, overrides=overrides, record_dir=out)
    )
    if bench:
        steps.written.append(out / bench_record(name, tier, dev.type))
    replica_tier = "cpu" if tier == "full" else "smoke"
    # The longest replica run so far: the next one is started only if that much time is left. The first is judged
    # by a measured run instead of nothing (a first run started with 118 s left was killed by its command's limit).
    longest = REPLICA_RUN_S.get(tier, 0.0)
    for seed in REPLICA_SEEDS:
        for recipe_name in REPLICA:
            step = f"train {recipe_name} s{seed}"
            if seconds_left() < 1.2 * longest + 5:
                steps.skip(step, f"the longest run took {longest:.0f} s, {seconds_left():.0f} s left")
                continue
            t0 = time.monotonic()
            run = partial(replica_run, recipe_name, replica_tier, seed, data_root, device, dev.type, out)
            result = steps.run(step, run)
            longest = max(longest, time.monotonic() - t0)
            if result:
                steps.written.append(result)


def replica_run(name: str, tier: str, seed: int, data_root, device: str, device_type: str, out: Path) -> Path:
    """One run of the Imagenette replica as its tier has it (epochs, probe), on this device with batched views;
    the record's name says so, so it never stands in for a run of the reference pipeline."""
    recipe = get_recipe(name, tier, dict(seed=seed, augment="batched"))
    run_dir = pretrain_run_dir(RUNS / "gpu-run" / "replica", name, tier, seed)
    record = pretrain(recipe, run_dir, data_root=data_root, device=device, restart=True, progress=False)
    return write_record(out / record_file(name, tier, f"s{seed}", "batched", device_type), record)


def cifar_steps(steps: Steps, tier: str, dev, device: str, data_root, out: Path, seconds_left) -> None:
    """The CIFAR-10 benchmark, the solver, the budgeted E-SimCLR and SimCLR runs and the deviations pair."""
    bench = steps.run(
        "bench", lambda: run_bench("cifar10-esimclr", tier, device=device, data_root=data_root, record_dir=out)
    )
    if bench:
        steps.written.append(out / bench_record("cifar10-esimclr", tier, dev.type))
        speed = bench["metrics"]["fast"]["images_per_s"]
    else:  # training still needs a throughput for its budget: measure the fast path alone
        speed = steps.run("fast throughput", lambda: fast_throughput("cifar10-esimclr", tier, dev, data_root))
    # The photonic band solver's cells/s on this device, and the data script's on every CPU core of this machine:
    # which labels faster (MPB is compared on the build machine, not here).
    all_cores = 4 if tier == "smoke" else 32 * (os.cpu_count() or 1)
    solver = steps.run(
        "photonic solver",
        lambda: run_compare(1 if tier == "smoke" else 3, dev, frontend=None, all_cores_cells=all_cores),
    )
    if solver:
        steps.written.append(write_record(out / record_file("photonics-solver", dev.type), solver))

    # Time for training: E-SimCLR and SimCLR get equal shares; when the benchmark measured how much slower the
    # reference path is (`ratio`), the deviations pair (E-SimCLR again, reference views and fp16, same epochs)
    # gets ratio shares more, so that it fits: left = shares x (2 + ratio) + a reserve per run.
    reserve = 20 if tier == "full" else 2  # per run: its probe and final kNN
    ratio = bench["metrics"]["ratio"] if bench else None
    runs_planned = 3 if ratio else 2
    share = (seconds_left() - reserve * runs_planned) / (2 + (ratio or 0))
    runs = {}
    for name in RECIPES:
        recipe = get_recipe(name, tier)
        if share <= 0 or seconds_left() < 2 * reserve:
            steps.skip(f"train {name}", f"no time left ({seconds_left():.0f} s)")
            continue
        # SimCLR has no rotation branch: about 1.5x the E-SimCLR throughput (6.7 vs 10.2 GFLOP per image).
        run_speed = speed * (1.0 if recipe.e_branch else 1.5) if speed else None
        budget = epochs_for_budget(share, run_speed, recipe.train_subset or 50_000) if run_speed else 1
        epochs = min(budget, recipe.epochs)  # never more than the tier's recipe (800 at full, 2 at smoke)
        print(f"gpu-run: {name}, {epochs} epochs in a share of {share:.0f} s", flush=True)
        result = steps.run(
            f"train {name}", lambda n=name, e=epochs: train_budgeted(n, tier, e, "main", data_root, device, out)
        )
        if result:
            steps.written.append(result[0])
            runs[name] = result[1]

    # Our deviations (batched views, bf16) against the official pipeline and precision, same seed and epochs.
    main = runs.get("cifar10-esimclr")
    need = main and ratio and main["timing"]["train_wall_time_s"] * ratio + reserve
    if not need:
        steps.skip("deviations pair", "no E-SimCLR run or no measured reference speed to plan it with")
    elif need > seconds_left():
        steps.skip("deviations pair", f"needs about {need:.0f} s, {seconds_left():.0f} s left")
    else:
        amp = "fp16" if dev.type == "cuda" else "off"
        epochs = main["config"]["epochs"]
        pair = dict(augment="reference", amp=amp)
        result = steps.run(
            "deviations pair",
            lambda: train_budgeted("cifar10-esimclr", tier, epochs, "pair", data_root, device, out, **pair),
        )
        if result:
            steps.written.append(result[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m essl_core.gpu_run", description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="full", help="full (default) on a GPU; smoke rehearses it on the CPU")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "book/results"))
    parser.add_argument(
        "--deadline-s", type=float, help="seconds from process start for everything (default: the tier's, 500 s full)"
    )
    parser.add_argument("--data-root", type=Path, help="the prepared CIFAR-10 cache (default: $ESSL_DATA or ./data)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--experiment", default="cifar10", help="cifar10 (default, the first command) or imagenet")
    args = parser.parse_args(argv)
    return run_command(
        lambda: gpu_run(
            args.tier,
            args.out,
            deadline_s=args.deadline_s,
            data_root=args.data_root,
            device=args.device,
            started=PROCESS_START,
            experiment=args.experiment,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
