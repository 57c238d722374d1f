"""A pretraining run around the training loop: its directory (reused when finished, resumed when not), the
linear probe and the result record; and `eval` of a saved checkpoint."""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .augment import NORMALIZATION
from .checkpoint import load_checkpoint, recipe_dict, recipe_from_checkpoint
from .datasets import recipe_data
from .device import resolve_device
from .distributed import (
    barrier,
    check_same_config,
    finish_distributed,
    init_distributed,
    launched_by_torchrun,
    peer_failure,
)
from .errors import EsslError
from .evaluate import knn_accuracy
from .layout import CHECKPOINT, EVAL, LOG, RESULT, pretrain_record
from .lock import run_lock
from .methods import Method, build_model
from .overrides import describe_overrides
from .recipes import Recipe
from .results import dataset_info, make_record, peak_memory, provenance, read_record, write_record
from .train import Trainer


def curves(history: list[dict]) -> dict:
    """Per-epoch curves, column-wise, from the log entries."""
    keys = sorted({k for h in history for k in h})
    return {k: [h.get(k) for h in history] for k in keys}


def pretrain(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    data_root: str | Path | None = None,
    device: str = "auto",
    restart: bool = False,
    progress: bool = True,
    record_dir: str | Path | None = None,
) -> dict | None:
    """Train `recipe`, evaluate it and write its result record (returned). Resumes from `run_dir` if possible.

    Under torchrun every process calls this; they train together (DDP), and rank 0 alone writes the checkpoint,
    log and record and runs the evaluation (the other ranks return None)."""
    start = time.perf_counter()
    dev = resolve_device(device, distributed=launched_by_torchrun())
    world = init_distributed(dev)
    check_same_config({**recipe_dict(recipe), "run_dir": str(run_dir), "restart": restart})
    origin = provenance(dev)  # the code as it was when the run started
    data = recipe_data(recipe, data_root)
    run_dir = Path(run_dir)
    if record_dir is not None and world.main:  # a record folder that cannot be made fails now, not after training
        Path(record_dir).mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir) if world.main else nullcontext():  # rank 0 holds it for all ranks
        if restart and world.main:
            for name in (CHECKPOINT, LOG, RESULT):
                (run_dir / name).unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        barrier()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        trainer = Trainer(recipe, run_dir, dev, data, progress)
        record = _completed_record(trainer, recipe)
        if record is None:
            record = _train_and_record(trainer, start, origin)
        elif progress and world.main:
            print(f"{run_dir} is complete; its record is reused (--restart trains again)", file=sys.stderr)
        if record is not None and record_dir is not None:
            write_record(Path(record_dir) / pretrain_record(recipe.name, recipe.tier, recipe.seed), record)
    return record


def load_trained_model(run_dir: str | Path, device: torch.device) -> Method:
    """The model saved in a run directory's checkpoint, in eval mode on `device`."""
    ckpt = load_checkpoint(Path(run_dir) / CHECKPOINT)
    model = build_model(recipe_from_checkpoint(ckpt))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


def _completed_record(trainer: Trainer, recipe: Recipe) -> dict | None:
    """The record of a finished run of the same recipe in the run directory, if there is one."""
    done = trainer.run_dir / RESULT
    if not (done.exists() and trainer.checkpoint_path.exists()):
        return None
    record = read_record(done)
    finished = load_checkpoint(trainer.checkpoint_path)["epoch"] == recipe.epochs
    return record if finished and record["config"] == recipe_dict(recipe) else None


def _train_and_record(trainer: Trainer, start: float, origin: dict) -> dict | None:
    """Resume or start training, evaluate, and write the run directory's record."""
    recipe, run_dir = trainer.recipe, trainer.run_dir
    main = trainer.world.main
    if trainer.resume() and trainer.progress and main:
        print(f"resuming {run_dir} from epoch {trainer.epoch}/{recipe.epochs}", file=sys.stderr)
    elif main and not (run_dir / LOG).exists():
        (run_dir / LOG).touch()
    if trainer.epoch < recipe.epochs:
        trainer.segments.append({"from_epoch": trainer.epoch, **origin["git"], "device_name": origin["device_name"]})
    try:
        trainer.fit()
        finish_distributed()  # the evaluation below runs in rank 0 alone
        if not main:
            return None
        record = _record("pretrain", trainer, trainer.history[-1]["knn_top1"], start, origin)
    except KeyboardInterrupt:
        raise EsslError(
            f"interrupted at epoch {min(trainer.epoch + 1, recipe.epochs)}; {trainer.last_checkpoint_text()}. "
            "Run the same command again to resume."
        ) from None
    except RuntimeError as exc:
        if trainer.world.size == 1 or not peer_failure(exc):
            raise
        first = str(exc).strip().splitlines()[0][:200]
        raise EsslError(
            f"rank {trainer.world.rank}: another process of this torchrun run stopped ({first}); its output says "
            f"why. {trainer.last_checkpoint_text().capitalize()}: run the same command again to resume."
        ) from None
    write_record(run_dir / RESULT, record)
    return record


def _record(kind: str, trainer: Trainer, knn_top1: float, start: float, origin: dict) -> dict:
    """Evaluate the trainer's backbone with the linear probe and assemble the result record."""
    recipe, history = trainer.recipe, trainer.history
    evaluation = trainer.evaluate()
    final = history[-1] if history else {}
    return make_record(
        kind,
        recipe=recipe.name,
        tier=recipe.tier,
        config=recipe_dict(recipe),
        seeds={"pretrain": recipe.seed, "probe": (evaluation["linear_probe_top1"] or {}).get("seeds", [])},
        dataset=dataset_info(trainer.data.meta),
        metrics={
            "knn_top1": knn_top1,
            "linear_probe_top1": evaluation["linear_probe_top1"],
            "final_loss": {k: final[k] for k in ("loss", "ssl", "rot", "rot_acc") if k in final},
            "train_images_per_s": float(np.mean([h["images_per_s"] for h in history])) if history else None,
            "epochs_trained": trainer.epoch,
        },
        curves=curves(history),
        timing={
            "train_wall_time_s": trainer.wall_time,
            "probe_time_s": evaluation["probe_time_s"],
            "this_process_wall_time_s": time.perf_counter() - start,
        },
        peak_memory=peak_memory(trainer.device),
        provenance={**origin, "training_segments": trainer.segments},
    )


# Fields `eval --set` may change: evaluation settings and the data subsets, never the trained network.
EVAL_FIELDS = {
    "knn_k",
    "knn_t",
    "probe_epochs",
    "probe_lr",
    "probe_batch",
    "probe_runs",
    "workers",
    "train_subset",
    "test_subset",
}


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    data_root: str | Path | None = None,
    device: str = "auto",
    overrides: dict | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """kNN and linear probes of a saved checkpoint; writes an "eval" record (default: eval.json beside it)."""
    start = time.perf_counter()
    overrides = overrides or {}
    bad = sorted(set(overrides) - EVAL_FIELDS)
    if bad:
        raise EsslError(f"eval cannot change {', '.join(bad)}; it may change {', '.join(sorted(EVAL_FIELDS))}")
    ckpt = load_checkpoint(checkpoint)
    trained = recipe_from_checkpoint(ckpt)
    changes = dict(overrides=trained.overrides + describe_overrides(overrides))
    recipe = dataclasses.replace(trained, **overrides, **changes).validate()
    dev = resolve_device(device)
    origin = provenance(dev)
    data = recipe_data(recipe, data_root)
    trainer = Trainer(recipe, Path(checkpoint).parent, dev, data, progress)
    trainer.load_state(ckpt)
    knn = knn_accuracy(
        trainer.model.backbone,
        data,
        dev,
        recipe.knn_k,
        recipe.knn_t,
        recipe.amp,
        NORMALIZATION[recipe.family],
        recipe.image_size,
    )
    record = _record("eval", trainer, knn, start, origin)
    record["checkpoint"] = {"path": str(Path(checkpoint).resolve()), "epoch": ckpt["epoch"]}
    write_record(out or Path(checkpoint).with_name(EVAL), record)
    return record
