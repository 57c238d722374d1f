"""`python -m essl_core bench`: the reference pipeline and the fast path timed side by side in one process.

Same device, model, batch size and recipe for both. The reference is the official code's way: per-image
PIL transforms in DataLoader workers and its step (fp16 autocast with a GradScaler on CUDA, NCHW, for-each
SGD, deterministic cudnn). The fast path is the default training path: views made on the device with
per-sample draws (`batched_views`), channels_last, bf16 autocast, fused SGD, optionally `torch.compile`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from .augment import NORMALIZATION, ViewPipeline, ViewSpec
from .batched_views import blur_radius
from .checkpoint import recipe_dict
from .datasets import recipe_data
from .device import resolve_device
from .errors import attempt
from .imagenet_data import KNOWN_SETS
from .layout import RUNS, bench_record
from .recipes import get_recipe
from .results import dataset_info, make_record, peak_memory, provenance, write_record
from .tiers import get_tier
from .train import Trainer

# Dense bf16 tensor-core peaks from the datasheets (FLOP/s), matched against the CUDA device name. The
# H100/H200 values are the SXM parts'; PCIe/NVL parts run lower clocks, so their MFU reads low.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10G": 70e12, "T4": 65e12}


def peak_flops(device: torch.device) -> tuple[str | None, float | None]:
    """The datasheet bf16 peak of a CUDA device, if its name is in the table."""
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in name:
            return key, flops
    return None, None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batches(views: ViewPipeline) -> Iterator[list[torch.Tensor]]:
    """Steps across epoch boundaries, as long as asked for."""
    for epoch in itertools.count():
        yield from views.epoch(epoch)


def _throughput(run_step, batches: Iterator, warmup: int, steps: int, batch_size: int, device) -> dict:
    """Source images per second over `steps` steps after `warmup` untimed ones (compile, cudnn autotune)."""
    t0 = time.perf_counter()
    for views in itertools.islice(batches, warmup):
        run_step(views)
    _sync(device)
    t1 = time.perf_counter()
    for views in itertools.islice(batches, steps):
        run_step(views)
    _sync(device)
    seconds = time.perf_counter() - t1
    return {"images_per_s": steps * batch_size / seconds, "step_time_s": seconds / steps, "warmup_s": t1 - t0}


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def time_training(trainer: Trainer, warmup: int, steps: int) -> dict:
    """Training throughput of one trainer (views and step), then its view pipeline alone."""
    dev, bs = trainer.device, trainer.recipe.batch_size
    _reset_peak(dev)
    train = _throughput(trainer._train_step, _batches(trainer.views), warmup, steps, bs, dev)
    train["peak_memory"] = peak_memory(dev)
    views = _throughput(lambda v: None, _batches(trainer.views), 1, steps, bs, dev)
    train["augment_images_per_s"] = views["images_per_s"]
    return train


def host_syncs_per_step(trainer: Trainer, steps: int = 3) -> float | None:
    """Host-device synchronisations per training step, counted by CUDA's sync debug mode (None on a CPU)."""
    if trainer.device.type != "cuda":
        return None
    batches = _batches(trainer.views)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for views in itertools.islice(batches, steps):
                trainer._train_step(views)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def kornia_views_per_s(specs: list[ViewSpec], images, batch_size: int, device: torch.device, steps: int) -> dict | None:
    """The same augmentations (one kornia pipeline per view spec) with kornia, for the choice of kernels, if
    kornia is installed."""
    try:
        import kornia.augmentation as K
    except ImportError:
        return None

    def pipeline(spec: ViewSpec):
        extra = []
        if spec.blur_p:
            kernel = 2 * blur_radius(spec.blur_sigma[1]) + 1
            extra.append(K.RandomGaussianBlur(kernel, spec.blur_sigma, border_type="replicate", p=spec.blur_p))
        if spec.solarize_p:
            extra.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=spec.solarize_p))  # threshold 0.5
        mean, std = NORMALIZATION[spec.stats]
        return K.AugmentationSequential(
            K.RandomResizedCrop((spec.size, spec.size), scale=spec.scale),
            K.RandomHorizontalFlip(),
            K.ColorJitter(*spec.jitter, p=0.8),
            K.RandomGrayscale(p=0.2),
            *extra,
            K.Normalize(torch.tensor(mean), torch.tensor(std)),
        ).to(device)

    augs = [pipeline(spec) for spec in specs]
    data = torch.from_numpy(images[: batch_size * 4]).to(device).permute(0, 3, 1, 2)

    def step(i: int) -> None:
        start = (i % 4) * batch_size
        x = data[start : start + batch_size].float().div(255)
        for aug in augs:
            aug(x)

    result = _throughput(step, itertools.count(), 1, steps, batch_size, device)
    return {
        "images_per_s": result["images_per_s"],
        "note": "kornia's ColorJitter draws one operation order per batch, torchvision one per image",
    }


def jpeg_decode_per_s(images, device: torch.device, n: int = 256, side: int = 224) -> dict:
    """Decoding speed of JPEGs (quality 90, `side` px, made from the first `n` cache images resized up): PIL on
    this process's one thread, as each DataLoader worker of the official pipeline decodes, and torchvision's
    batched `decode_jpeg` on `device` (nvJPEG on CUDA). For choosing how a GPU is fed at ImageNet-1k scale,
    where the images do not fit on the device."""
    import io

    import torch.nn.functional as F
    from PIL import Image
    from torchvision.io import decode_jpeg, encode_jpeg

    x = torch.from_numpy(images[:n]).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=False).round().clamp(0, 255).to(torch.uint8)
    files = [encode_jpeg(im, quality=90) for im in x]
    t0 = time.perf_counter()
    for f in files:
        Image.open(io.BytesIO(f.numpy().tobytes())).convert("RGB").load()
    pil = len(files) / (time.perf_counter() - t0)
    decode_jpeg(files[:8], device=device)  # warm-up (the CUDA decoder's start)
    _sync(device)
    t0 = time.perf_counter()
    decode_jpeg(files, device=device)
    _sync(device)
    batched = len(files) / (time.perf_counter() - t0)
    return {"side": side, "quality": 90, "images": len(files), "pil_per_worker": pil, "decode_jpeg_on_device": batched,
            "mean_bytes": sum(f.numel() for f in files) / len(files)}  # fmt: skip


def imagenet_epoch_estimate(images_per_s: float, gpus: int = 32) -> dict:
    """What one ImageNet-1k epoch would take on `gpus` devices at a measured per-device throughput: an estimate
    that assumes linear scaling (no gradient communication, no input pipeline measured)."""
    epoch = KNOWN_SETS["imagenet-1k"].counts["train"]
    seconds = epoch / (gpus * images_per_s)
    return {"gpus": gpus, "images": epoch, "seconds": seconds, "gpu_hours": seconds * gpus / 3600,
            "assumes": "linear scaling from one device; communication and the input pipeline not measured"}  # fmt: skip


def flops_per_image(model: torch.nn.Module, views: list[torch.Tensor], amp_dtype: torch.dtype | None = None) -> float:
    """FLOPs (2 per multiply-add) of one training step's forward and backward per source image, counted by
    `torch.utils.flop_counter` on `views` (the batch's x1, x2 and, for E-SSL, x3)."""
    counter = FlopCounterMode(display=False)
    device_type = views[0].device.type
    with counter, torch.autocast(device_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        model(*views)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / views[0].shape[0]


def run_bench(
    recipe_name: str,
    tier: str,
    *,
    device: str = "auto",
    data_root: str | Path | None = None,
    overrides: dict | None = None,
    warmup: int | None = None,
    steps: int | None = None,
    record_dir: str | Path | None = None,
    out=sys.stdout,
) -> dict:
    """Time both paths, print the comparison and write a "bench" record (returned)."""
    dev = resolve_device(device)
    origin = provenance(dev)
    recipe = get_recipe(recipe_name, tier, overrides)
    default_warmup, default_steps = get_tier(tier).bench_steps
    warmup, steps = warmup or default_warmup, steps or default_steps
    data = recipe_data(recipe, data_root)
    workers = min(recipe.workers, os.cpu_count() or 1)
    reference_recipe = dataclasses.replace(
        recipe, augment="reference", amp="fp16" if dev.type == "cuda" else recipe.amp, workers=workers, compile=False
    )
    fast_recipe = dataclasses.replace(recipe, augment="batched")
    say = lambda text: print(text, file=out, flush=True)  # noqa: E731
    say(
        f"bench {recipe.name}, {tier} tier, {origin['device_name']}, batch {recipe.batch_size}, "
        f"width {recipe.width}: {steps} timed steps after {warmup} warm-up steps per path"
    )
    failures: dict[str, str] = {}  # each part but the fast path's timing is optional: a failure is recorded
    with tempfile.TemporaryDirectory() as tmp:

        def time_reference() -> dict:
            reference = Trainer(reference_recipe, Path(tmp), dev, data, progress=False, fast=False)
            return time_training(reference, warmup, steps)

        ref = attempt("reference", time_reference, failures)
        if ref:
            say(
                f"reference (PIL views in {workers} DataLoader worker(s), official step): "
                f"{ref['images_per_s']:,.0f} source images/s"
            )
        fast = Trainer(fast_recipe, Path(tmp), dev, data, progress=False, fast=True)
        specs = fast.views.specs
        fst = time_training(fast, warmup, steps)
        fst["host_syncs_per_step"] = attempt("host syncs", lambda: host_syncs_per_step(fast), failures)
        flops = attempt(
            "flop count", lambda: flops_per_image(fast.model, next(fast.views.epoch(0)), fast.amp_dtype), failures
        )
    ratio = fst["images_per_s"] / ref["images_per_s"] if ref else None
    kornia = attempt("kornia", lambda: kornia_views_per_s(specs, data.train_x, recipe.batch_size, dev, steps), failures)
    decode = epoch = None
    if recipe.family == "imagenet":
        decode = attempt("jpeg decode", lambda: jpeg_decode_per_s(data.train_x, dev), failures)
        epoch = imagenet_epoch_estimate(fst["images_per_s"])
    peak_name, peak = peak_flops(dev)
    mfu = fst["images_per_s"] * flops / peak if peak and flops else None
    say(
        f"fast (batched on-device views, {'compiled ' if recipe.compile else ''}fast step): "
        f"{fst['images_per_s']:,.0f} source images/s"
    )
    if ratio:
        say(f"ratio fast / reference: {ratio:.2f}x")
    if fst["host_syncs_per_step"] is not None:
        say(f"host synchronisations per fast step (CUDA sync debug mode): {fst['host_syncs_per_step']:g}")
    say(
        f"augmentation alone (all views of a step): batched {fst['augment_images_per_s']:,.0f} img/s"
        + (f", reference {ref['augment_images_per_s']:,.0f} img/s with {workers} worker(s)" if ref else "")
        + (f", kornia {kornia['images_per_s']:,.0f} img/s" if kornia else ", no kornia")
    )
    say(f"peak memory ({fst['peak_memory']['kind']}): fast {fst['peak_memory']['bytes'] / 2**20:,.0f} MiB")
    achieved = fst["images_per_s"] * flops if flops else None
    if achieved:
        say(
            f"model FLOPs per source image {flops / 1e9:.3f} GFLOP; fast path {achieved / 1e12:.3f} TFLOP/s"
            + (f", MFU {mfu:.1%} of the {peak_name} bf16 peak {peak / 1e12:.0f} TFLOP/s" if mfu else "")
        )
    if decode:
        say(
            f"JPEG decoding ({decode['side']} px, q90): PIL {decode['pil_per_worker']:,.0f} img/s per worker, "
            f"decode_jpeg on {dev} {decode['decode_jpeg_on_device']:,.0f} img/s"
        )
    if epoch:
        say(
            f"estimate, not a measurement: one ImageNet-1k epoch of this recipe at this rate on {epoch['gpus']} "
            "such devices takes "
            f"{epoch['seconds'] / 60:,.1f} min ({epoch['gpu_hours']:,.1f} device-hours; {epoch['assumes']})"
        )
    record = make_record(
        "bench",
        recipe=recipe.name,
        tier=tier,
        config=recipe_dict(fast_recipe),
        seeds={"pretrain": recipe.seed},
        dataset=dataset_info(data.meta),
        metrics={
            "reference": ref
            and {
                **ref,
                "workers": workers,
                "pipeline": "PIL per image in DataLoader workers",
                "step": "fp16 + GradScaler on CUDA, NCHW, for-each SGD, deterministic cudnn",
            },
            "fast": {
                **fst,
                "pipeline": "batched on-device views, per-sample draws",
                "step": "bf16 autocast on CUDA, channels_last, fused SGD" + (", compiled" if recipe.compile else ""),
            },
            "ratio": ratio,
            "kornia_augment": kornia,
            "flops_per_image": flops,
            "achieved_flops_per_s": achieved,
            "peak_flops": peak,
            "mfu": mfu,
            "jpeg_decode": decode,
            "imagenet_epoch_estimate": epoch,
            "warmup_steps": warmup,
            "timed_steps": steps,
            "failures": failures,
        },
        provenance=origin,
    )
    path = Path(record_dir or RUNS) / bench_record(recipe.name, tier, dev.type)
    write_record(path, record)
    say(f"record: {path}")
    return record


def fast_throughput(recipe_name: str, tier: str, device: torch.device, data_root: str | Path | None = None) -> float:
    """The fast path's training throughput alone (source images/s): what the GPU runner budgets its runs with
    when the full benchmark failed."""
    recipe = get_recipe(recipe_name, tier)
    warmup, steps = get_tier(tier).bench_steps
    data = recipe_data(recipe, data_root)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(dataclasses.replace(recipe, augment="batched"), Path(tmp), device, data, progress=False)
        return time_training(trainer, warmup, steps)["images_per_s"]
