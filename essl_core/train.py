"""One training loop for SimCLR, SimSiam and their E-SSL variants, on CPU or CUDA, resumable exactly."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .augment import ReferenceViews, ViewPipeline
from .batched_views import BatchedViews
from .checkpoint import load_checkpoint, recipe_dict, recipe_from_checkpoint, save_checkpoint, set_rng_state
from .data import CifarData, load_cifar10
from .errors import EsslError
from .evaluate import knn_accuracy, linear_probe
from .groups import GROUPS
from .io import atomic_write
from .methods import Method, build_model
from .recipes import Recipe
from .results import dataset_info, make_record, peak_memory, provenance, read_record, write_record

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
RESULT = "result.json"


class NonFiniteLoss(EsslError):
    """The loss became NaN or inf; training stopped and the last good checkpoint was kept."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU; asking for an absent CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EsslError("--device cuda was asked for, but this machine has no usable CUDA GPU")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warm-up from 0, then half-cosine to 0, per step (the official schedule)."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Trainer:
    """Holds the model, optimizers and pipeline of one run; `fit()` trains, `evaluate()` runs the probes."""

    recipe: Recipe
    run_dir: Path
    device: torch.device
    data: CifarData
    tier: str = "custom"
    progress: bool = True
    # The fast step on CUDA: channels_last, fused SGD, cudnn autotuning. False gives the official code's step
    # (NCHW, for-each SGD, deterministic cudnn), which the benchmark times as the reference.
    fast: bool = True

    def __post_init__(self) -> None:
        r, dev = self.recipe, self.device
        seed_everything(r.seed)
        self.model = build_model(r).to(dev)
        cuda_fast = dev.type == "cuda" and self.fast
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cuda_fast, not cuda_fast
        if cuda_fast:
            self.model = self.model.to(memory_format=torch.channels_last)
        # The step calls `forward`; `model` keeps the parameters and state dicts.
        self.forward = torch.compile(self.model) if r.compile else self.model
        self.channels_last = cuda_fast
        # One optimizer; the schedule moves the groups marked `scheduled` (SimSiam's predictor is not).
        self.optimizer = torch.optim.SGD(
            self.model.param_groups(),
            lr=r.effective_lr,
            momentum=r.momentum,
            weight_decay=r.weight_decay,
            fused=cuda_fast or None,
        )
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(r.amp) if dev.type == "cuda" else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.views = make_views(r, self.data.train_x, self.model.view_sizes(), dev)
        self.total_steps = r.epochs * self.views.steps_per_epoch
        self.warmup_steps = r.warmup_epochs * self.views.steps_per_epoch
        self.epoch, self.step, self.history, self.wall_time = 0, 0, [], 0.0
        self.segments: list[dict] = []  # one entry per process that trained: its commit and first epoch

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT

    def save(self) -> None:
        save_checkpoint(
            self.checkpoint_path,
            self.recipe,
            epoch=self.epoch,
            step=self.step,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler else None,
            history=self.history,
            wall_time_s=self.wall_time,
            segments=self.segments,
            tier=self.tier,
            dataset=dataset_info(self.data.meta),
        )

    def resume(self) -> bool:
        """Continue from the run directory's checkpoint, if there is one."""
        if not self.checkpoint_path.exists():
            return False
        ckpt = load_checkpoint(self.checkpoint_path, self.recipe)
        if ckpt["dataset"].get("name") != self.data.name:
            raise EsslError(
                f"{self.checkpoint_path} was trained on {ckpt['dataset'].get('name')}, not {self.data.name}; "
                "use another --run-dir or --restart"
            )
        self.load_state(ckpt)
        set_rng_state(ckpt["rng"])
        self._write_log()  # drop log lines of epochs that ran after this checkpoint
        return True

    def load_state(self, ckpt: dict) -> None:
        """Model, optimizers, scaler, counters and history from a loaded checkpoint."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler and ckpt["scaler"]:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        self.wall_time = ckpt["wall_time_s"]
        self.segments = list(ckpt["segments"])

    def _write_log(self) -> None:
        text = "".join(json.dumps(h) + "\n" for h in self.history)
        atomic_write(self.run_dir / LOG, lambda fh: fh.write(text.encode()))

    # -- training ------------------------------------------------------------------------------------------
    def _train_step(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        lr = lr_at(self.step, self.total_steps, self.warmup_steps, self.recipe.effective_lr)
        for group in self.optimizer.param_groups:
            if group["scheduled"]:
                group["lr"] = lr
        if self.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            out = self.forward(*views)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            # One optimizer, so the scale is updated once, after the predictor's step too (the official fp16
            # SimSiam code updates it between its two optimizers' steps).
            self.scaler.scale(out["loss"]).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            out["loss"].backward()
            self.optimizer.step()
        self.step += 1
        return {k: v.detach() for k, v in out.items()}

    def train_epoch(self) -> dict:
        """One epoch; returns its log entry. Loss values stay on the device until the epoch ends."""
        self.model.train()
        start = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        finite = []
        first_step = self.step
        bar = tqdm(
            self.views.epoch(self.epoch),
            total=self.views.steps_per_epoch,
            desc=f"epoch {self.epoch + 1}/{self.recipe.epochs}",
            disable=None if self.progress else True,  # None: no bar when stderr is not a terminal
            leave=False,
            mininterval=1.0,
            file=sys.stderr,
        )
        for i, views in enumerate(bar):
            out = self._train_step(views)
            finite.append(torch.isfinite(out["loss"]))
            for k, v in out.items():
                sums[k] = sums.get(k, 0) + v
            if not bar.disable and i % 25 == 0:  # a host sync, only when a bar is shown
                bar.set_postfix(loss=f"{out['loss'].item():.3f}")
        bar.close()
        n = self.step - first_step
        ok = torch.stack(finite).cpu()
        if not ok.all():
            bad = first_step + int((~ok).nonzero()[0]) + 1
            raise NonFiniteLoss(
                f"the loss became NaN/inf at step {bad} (epoch {self.epoch + 1}); training stopped. "
                f"The last good checkpoint ({self._last_checkpoint_text()}) is kept; lower lr or check the data."
            )
        seconds = time.perf_counter() - start
        entry = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"]}
        entry.update({k: float(v) / n for k, v in sums.items()})
        entry.update(epoch_time_s=seconds, images_per_s=n * self.recipe.batch_size / seconds)
        return entry

    def _last_checkpoint_text(self) -> str:
        if not self.checkpoint_path.exists():
            return "none was written yet"
        return f"epoch {load_checkpoint(self.checkpoint_path)['epoch']} in {self.checkpoint_path}"

    def fit(self) -> None:
        """Train to the recipe's last epoch, logging every epoch and checkpointing every `checkpoint_every`."""
        r = self.recipe
        while self.epoch < r.epochs:
            t0 = time.perf_counter()
            entry = self.train_epoch()
            self.epoch += 1
            last = self.epoch == r.epochs
            entry["knn_top1"] = None
            if self.epoch % r.knn_every == 0 or last:
                k0 = time.perf_counter()
                entry["knn_top1"] = knn_accuracy(self.model.backbone, self.data, self.device, r.knn_k, r.knn_t)
                entry["knn_time_s"] = time.perf_counter() - k0
            self.wall_time += time.perf_counter() - t0
            self.history.append(entry)
            with open(self.run_dir / LOG, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            if self.progress:
                knn = f", kNN {entry['knn_top1']:.2f}%" if entry["knn_top1"] is not None else ""
                print(
                    f"epoch {self.epoch}/{r.epochs}: loss {entry['loss']:.4f}{knn}, {entry['images_per_s']:.0f} img/s",
                    file=sys.stderr,
                )
            if self.epoch % r.checkpoint_every == 0 or last:
                self.save()

    def evaluate(self) -> dict:
        """The repeated linear probe on the final backbone (none when `probe_runs` is 0)."""
        r = self.recipe
        if r.probe_runs == 0:
            return {"linear_probe_top1": None, "probe_time_s": 0.0}
        t0 = time.perf_counter()
        runs = []
        for i in range(r.probe_runs):
            runs.append(
                linear_probe(
                    self.model.backbone,
                    self.data,
                    self.device,
                    epochs=r.probe_epochs,
                    lr=r.probe_lr,
                    batch_size=r.probe_batch,
                    seed=r.seed + i,
                    workers=r.workers,
                    progress=self.progress,
                )
            )
        probe = {
            "mean": float(np.mean(runs)),
            "std": float(np.std(runs)),
            "runs": runs,
            "seeds": [r.seed + i for i in range(r.probe_runs)],
            "epochs": r.probe_epochs,
            "note": "std over probe runs on one pretrained encoder, as in the official code",
        }
        return {"linear_probe_top1": probe, "probe_time_s": time.perf_counter() - t0}


def make_views(recipe: Recipe, images: np.ndarray, view_sizes: list[int], device: torch.device) -> ViewPipeline:
    """The recipe's view pipeline over `images` (uint8 NHWC)."""
    r = recipe
    if r.augment == "batched":
        return BatchedViews(
            images,
            view_sizes,
            r.batch_size,
            device,
            scale=r.crop_scale,
            seed=r.seed,
            compile=r.compile,
            base_augment=r.base_augment,
            invariance=GROUPS[r.invariance] if r.invariance else None,
        )
    return ReferenceViews(images, view_sizes, r.batch_size, device, scale=r.crop_scale, workers=r.workers, seed=r.seed)


def curves(history: list[dict]) -> dict:
    """Per-epoch curves, column-wise, from the log entries."""
    keys = sorted({k for h in history for k in h})
    return {k: [h.get(k) for h in history] for k in keys}


def pretrain(
    recipe: Recipe,
    tier: str,
    run_dir: str | Path,
    *,
    data_root: str | Path | None = None,
    device: str = "auto",
    restart: bool = False,
    progress: bool = True,
    record_dir: str | Path | None = None,
) -> dict:
    """Train `recipe`, evaluate it and write its result record (returned). Resumes from `run_dir` if possible."""
    start = time.perf_counter()
    dev = resolve_device(device)
    origin = provenance(dev)  # the code as it was when the run started
    data = load_cifar10(data_root).subset(recipe.train_subset, recipe.test_subset, seed=0)
    run_dir = Path(run_dir)
    if restart:
        for name in (CHECKPOINT, LOG, RESULT):
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    trainer = Trainer(recipe, run_dir, dev, data, tier, progress)
    record = _completed_record(trainer, recipe)
    if record is None:
        record = _train_and_record(trainer, start, origin)
    elif progress:
        print(f"{run_dir} is complete; its record is reused (--restart trains again)", file=sys.stderr)
    if record_dir is not None:
        write_record(Path(record_dir) / f"{recipe.name}-{tier}.json", record)
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


def _train_and_record(trainer: Trainer, start: float, origin: dict) -> dict:
    """Resume or start training, evaluate, and write the run directory's record."""
    recipe, run_dir = trainer.recipe, trainer.run_dir
    if trainer.resume() and trainer.progress:
        print(f"resuming {run_dir} from epoch {trainer.epoch}/{recipe.epochs}", file=sys.stderr)
    elif not (run_dir / LOG).exists():
        (run_dir / LOG).touch()
    if trainer.epoch < recipe.epochs:
        trainer.segments.append({"from_epoch": trainer.epoch, **origin["git"], "device_name": origin["device_name"]})
    try:
        trainer.fit()
        record = _record("pretrain", trainer, trainer.history[-1]["knn_top1"], start, origin)
    except KeyboardInterrupt:
        raise EsslError(
            f"interrupted at epoch {min(trainer.epoch + 1, recipe.epochs)}; {trainer._last_checkpoint_text()}. "
            "Run the same command again to resume."
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
        tier=trainer.tier,
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
    recipe = dataclasses.replace(recipe_from_checkpoint(ckpt), **overrides).validate()
    dev = resolve_device(device)
    origin = provenance(dev)
    data = load_cifar10(data_root).subset(recipe.train_subset, recipe.test_subset, seed=0)
    trainer = Trainer(recipe, Path(checkpoint).parent, dev, data, ckpt.get("tier", "custom"), progress)
    trainer.load_state(ckpt)
    knn = knn_accuracy(trainer.model.backbone, data, dev, recipe.knn_k, recipe.knn_t)
    record = _record("eval", trainer, knn, start, origin)
    record["checkpoint"] = {"path": str(Path(checkpoint).resolve()), "epoch": ckpt["epoch"]}
    write_record(out or Path(checkpoint).with_name("eval.json"), record)
    return record
