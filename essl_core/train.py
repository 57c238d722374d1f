"""The training loop of every SSL method and its E-SSL variant, on CPU or CUDA, resumable exactly. The run around
it (directories, reuse, records) is `essl_core.runs`."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .augment import NORMALIZATION, ReferenceViews, ViewPipeline, ViewSpec, pil_view
from .batched_views import BatchedViews
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import ImageData
from .device import amp_dtype, autocast, seed_everything
from .distributed import barrier, convert_sync_batchnorm, current_world, gather_objects, mean_over_ranks
from .errors import EsslError
from .evaluate import PROBES, knn_accuracy, linear_probe
from .groups import invariance_group
from .imagenet_views import imagenet_view_specs
from .io import atomic_write
from .lars import LARS
from .layout import CHECKPOINT, LOG
from .methods import build_model
from .recipes import Recipe
from .results import dataset_info
from .schedule import cosine_lr


class NonFiniteLoss(EsslError):
    """The loss became NaN or inf; training stopped and the last good checkpoint was kept."""


@dataclass
class Trainer:
    """Holds the model, optimizers and pipeline of one run; `fit()` trains, `evaluate()` runs the probes."""

    recipe: Recipe
    run_dir: Path
    device: torch.device
    data: ImageData
    progress: bool = True
    # The fast step on CUDA: channels_last, fused SGD, cudnn autotuning. False gives the official code's step
    # (NCHW, for-each SGD, deterministic cudnn), which the benchmark times as the reference.
    fast: bool = True

    def __post_init__(self) -> None:
        r, dev = self.recipe, self.device
        self.world = current_world()
        seed_everything(r.seed)
        self.model = build_model(r).to(dev)
        if self.world.size > 1:
            if r.augment == "batched" or r.compile:
                raise EsslError("torchrun runs need augment=reference and compile=false (for now)")
            if r.batch_size % self.world.size:
                raise EsslError(f"batch_size {r.batch_size} does not split over {self.world.size} processes")
            self.model = convert_sync_batchnorm(self.model, dev)
        cuda_fast = dev.type == "cuda" and self.fast
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cuda_fast, not cuda_fast
        if cuda_fast:
            self.model = self.model.to(memory_format=torch.channels_last)
        # The step calls `forward`; `model` keeps the parameters and state dicts.
        self.forward = torch.compile(self.model) if r.compile else self.model
        if self.world.size > 1:  # DDP averages the gradients; each rank then draws its own augmentations
            self.forward = DistributedDataParallel(self.model, device_ids=[dev.index] if dev.type == "cuda" else None)
            torch.manual_seed(r.seed + 1_000_003 * self.world.rank)
        self.channels_last = cuda_fast
        # One optimizer; the schedule moves the groups marked `scheduled` (SimSiam's predictor is not).
        groups = self.model.param_groups()
        for g in groups:
            g["lr"] = r.effective_lr * g["lr_scale"]
        if r.optimizer == "lars":
            self.optimizer = LARS(groups, lr=r.effective_lr, weight_decay=r.weight_decay, momentum=r.momentum)
        else:
            self.optimizer = torch.optim.SGD(
                groups, lr=r.effective_lr, momentum=r.momentum, weight_decay=r.weight_decay, fused=cuda_fast or None
            )
        self.amp_dtype = amp_dtype(dev, r.amp)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.views = make_views(r, self.data, self.model.view_sizes(), dev)
        if self.views.steps_per_epoch == 0:
            raise EsslError(f"batch_size {r.batch_size} is larger than the {len(self.data.train_x)} training images")
        self.total_steps = r.epochs * self.views.steps_per_epoch
        self.warmup_steps = r.warmup_epochs * self.views.steps_per_epoch
        self.epoch, self.step, self.history, self.wall_time = 0, 0, [], 0.0
        self.segments: list[dict] = []  # one entry per process that trained: its commit and first epoch

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT

    def save(self) -> None:
        """Write the checkpoint (rank 0), with every rank's RNG state under DDP (a collective: all ranks call)."""
        ranks_rng = gather_objects(rng_state())
        if not self.world.main:
            return
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
            dataset=dataset_info(self.data.meta),
            ranks_rng=ranks_rng if self.world.size > 1 else None,
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
        ranks_rng = ckpt.get("ranks_rng") or [ckpt["rng"]]
        if len(ranks_rng) != self.world.size:
            raise EsslError(
                f"{self.checkpoint_path} was written by {len(ranks_rng)} process(es); resume it with as many "
                f"(now {self.world.size}), or --restart"
            )
        set_rng_state(ranks_rng[self.world.rank])
        if self.world.main:
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
    def learning_rate(self) -> float:
        """The scheduled learning rate of the current step (ImageNet SimSiam: of the current epoch)."""
        r, per_epoch = self.recipe, self.views.steps_per_epoch
        if r.lr_per_epoch:
            return cosine_lr(self.step // per_epoch, r.epochs, r.effective_lr, r.warmup_epochs, r.final_lr_ratio)
        return cosine_lr(self.step, self.total_steps, r.effective_lr, self.warmup_steps, r.final_lr_ratio)

    def _train_step(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            if group["scheduled"]:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        labels = views.pop() if self.views.labelled else None
        if self.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        with autocast(self.device, self.recipe.amp):
            out = self.forward(*views, labels=labels)
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
                f"The last good checkpoint ({self.last_checkpoint_text()}) is kept; check the data, or lower lr "
                "(--set lr=..., with --restart: a new lr is a new run)."
            )
        keys = sorted(sums)  # under DDP, each term's mean over the ranks (their batches are equal)
        sums = dict(zip(keys, mean_over_ranks(torch.stack([sums[k] for k in keys])), strict=True))
        seconds = time.perf_counter() - start
        entry = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"]}
        entry.update({k: float(v) / n for k, v in sums.items()})
        entry.update(epoch_time_s=seconds, images_per_s=n * self.recipe.batch_size / seconds)
        return entry

    def last_checkpoint_text(self) -> str:
        """Where a rerun would resume from, for messages."""
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
            if (self.epoch % r.knn_every == 0 or last) and self.world.main:
                k0 = time.perf_counter()
                entry["knn_top1"] = knn_accuracy(
                    self.model.backbone,
                    self.data,
                    self.device,
                    r.knn_k,
                    r.knn_t,
                    r.amp,
                    NORMALIZATION[r.family],
                    r.image_size,
                )
                entry["knn_time_s"] = time.perf_counter() - k0
            barrier()  # the other ranks wait for rank 0's kNN
            self.wall_time += time.perf_counter() - t0
            self.history.append(entry)
            if self.world.main:
                with open(self.run_dir / LOG, "a") as fh:
                    fh.write(json.dumps(entry) + "\n")
            if self.progress and self.world.main:
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
                    amp=r.amp,
                    protocol=PROBES[r.probe_protocol],
                    image_size=r.image_size,
                )
            )
        probe = {
            "mean": float(np.mean(runs)),
            "std": float(np.std(runs)),
            "runs": runs,
            "seeds": [r.seed + i for i in range(r.probe_runs)],
            "epochs": r.probe_epochs,
            "note": "std over probe runs on one pretrained encoder, as in the official code",
            "protocol": r.probe_protocol,
            "reported": "best epoch" if PROBES[r.probe_protocol].report == "best" else "final epoch",
        }
        return {"linear_probe_top1": probe, "probe_time_s": time.perf_counter() - t0}


def make_views(recipe: Recipe, data: ImageData, view_sizes: list[int], device: torch.device) -> ViewPipeline:
    """The recipe's view pipeline over the training images (uint8 NHWC, or image files for the reference
    pipeline); ImageNet's yields the labels too (the online classifier's)."""
    r = recipe
    world = current_world()
    if r.family == "imagenet":
        specs = imagenet_view_specs(r.image_size, r.crop_scale, r.rot_size, r.rotation_crop_scale)
        specs = specs[: len(view_sizes)]  # no rotation view without the E-branch
        labels = data.train_y if r.online_head else None
    else:
        specs, labels = [ViewSpec(size, r.crop_scale) for size in view_sizes], None
    if r.augment == "batched":
        return BatchedViews(
            data.train_x,
            specs,
            r.batch_size,
            device,
            labels=labels,
            seed=r.seed,
            compile=r.compile,
            base_augment=r.base_augment,
            invariance=invariance_group(r.invariance) if r.invariance else None,
        )
    return ReferenceViews(data.train_x, [pil_view(spec) for spec in specs], r.batch_size, device, labels=labels,
                          workers=r.workers, seed=r.seed, rank=world.rank, world=world.size)  # fmt: skip
