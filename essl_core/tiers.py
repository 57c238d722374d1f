"""The tiers: how much of each experiment a machine can afford. The one definition every command and chapter
reads; `full` is the paper, `cpu` fits an experiment in about an hour on 2 cores, `colab` a CIFAR-10 run with the
full network in about half an hour on a free Colab GPU (an estimate), `smoke` is the same code path on a few
batches, for CI and the HTML book."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from .errors import EsslError

ENV = "ESSL_MODE"  # the environment variable that picks the tier where no --tier is given


@dataclass(frozen=True)
class Tier:
    name: str
    # Overrides of every CIFAR-10 recipe. `cpu` keeps the recipe's structure (three views, separate passes,
    # the same losses, schedule shape, lambda, doubled E-lr) and shrinks the network, the heads, the data and
    # the number of epochs.
    cifar: dict = field(default_factory=dict)
    # Overrides of every ImageNet recipe: below `full` they train on an Imagenette cache, with a ResNet-18 at a
    # reduced resolution; the rotation view keeps its relative size (96/224 of the SSL views) and crop scale,
    # the views stay asymmetric, the optimizer, schedule and heads stay the recipe's.
    imagenet: dict = field(default_factory=dict)
    # The transformation study: overrides on top of `cifar`, its default seeds, and the test images and probe
    # steps of its invariance/equivariance measures.
    study: dict = field(default_factory=dict)
    study_seeds: tuple[int, ...] = (42,)
    measure: tuple[int, int] = (2000, 300)
    bench_steps: tuple[int, int] = (10, 50)  # the benchmark's (warm-up, timed) steps per path
    gpu_deadline_s: float = 500.0  # the GPU runner's default deadline (of a 600 s lease command)
    photonics: dict = field(default_factory=dict)  # overrides of the photonics recipe


TIERS: dict[str, Tier] = {
    "smoke": Tier(
        "smoke",
        cifar=dict(
            width=8,
            proj_hidden=128,
            proj_dim=128,
            pred_hidden=32,
            rot_hidden=128,
            batch_size=64,
            epochs=2,
            warmup_epochs=1,
            train_subset=640,
            test_subset=200,
            knn_every=1,
            probe_epochs=2,
            probe_batch=64,
            probe_runs=2,
            checkpoint_every=1,
            workers=0,
        ),
        imagenet=dict(
            dataset="imagenette",
            cache_side=64,
            backbone="scaled_resnet18",
            width=8,
            image_size=32,
            rot_size=16,
            proj_hidden=128,
            rot_hidden=128,
            pred_hidden=32,
            batch_size=32,
            epochs=2,
            warmup_epochs=1,
            train_subset=256,
            test_subset=100,
            probe_epochs=1,
            probe_batch=32,
            probe_runs=1,
            knn_every=1,
            workers=0,
        ),
        study=dict(train_subset=256, test_subset=100, epochs=1, warmup_epochs=0, checkpoint_every=1),
        measure=(32, 100),
        bench_steps=(2, 5),
        gpu_deadline_s=30.0,  # the runner's CPU rehearsal
        photonics=dict(
            test=8,
            val=8,
            train_pool=16,
            unlabelled=256,
            label_counts=(8, 16),
            seeds=(1,),
            width=0.125,
            pretrain_epochs=2,
            batch_ssl=64,
            finetune_epochs=3,
        ),
    ),
    "cpu": Tier(
        "cpu",
        cifar=dict(
            width=16,
            proj_hidden=512,
            proj_dim=512,
            pred_hidden=128,
            rot_hidden=512,
            batch_size=256,
            epochs=30,
            warmup_epochs=3,
            train_subset=10_000,
            test_subset=2_000,
            knn_every=5,
            probe_epochs=10,
            probe_runs=3,
            checkpoint_every=1,
            workers=1,
        ),
        # About an hour per E-SimCLR run on 2 cores (85 images/s on one torch thread, measured): all of Imagenette
        # at 64 px, an ImageNet-stem ResNet-18 at width 32, 25 epochs; the 28-px rotation view is 96/224 of the
        # views' side, as in the recipe.
        imagenet=dict(
            dataset="imagenette",
            cache_side=64,
            backbone="scaled_resnet18",
            width=32,
            image_size=64,
            rot_size=28,
            proj_hidden=512,
            rot_hidden=512,
            pred_hidden=128,
            batch_size=256,
            epochs=25,
            warmup_epochs=2,
            knn_every=5,
            probe_epochs=10,
            probe_batch=256,
            probe_runs=3,
            workers=1,
        ),
        # 15 runs in about an hour on 2 cores: a 5,000-image class-balanced subset, 8 epochs at width 16.
        study=dict(train_subset=5_000, test_subset=1_000, epochs=8, warmup_epochs=1, knn_every=2),
        measure=(500, 300),
        bench_steps=(2, 10),
        photonics=dict(
            test=500,
            val=250,
            train_pool=1000,
            unlabelled=4096,
            label_counts=(100, 1000),
            seeds=(1, 2, 3),
            pretrain_seeds=(1, 2),
            width=0.25,
            pretrain_epochs=12,
            batch_ssl=256,
            finetune_epochs=25,
            # Every label count gets 3,200 steps: probes of blob at 100 labels (Adam at the official 1e-4), with and
            # without a SimCLR encoder, gained on validation to 1,600 steps and were within 2% of their best of
            # 6,400 steps at 3,200. To pay for them: evaluations every 40 steps, the last encoder only, two label
            # counts instead of three.
            finetune_min_steps=3200,
            finetune_eval_steps=40,
            finetune_from_half=False,
        ),
    ),
    "full": Tier("full", study_seeds=(42, 43, 44)),
}
# `colab`: the full network and data on one free Colab GPU (a T4) in about 20-30 minutes per CIFAR-10 run. An
# ESTIMATE until measured: E-SimCLR's step counts 10.2 GFLOP per image (torch's FLOP counter, `bench`); at an
# assumed 30% of the T4's 65 TFLOP/s fp16 peak that is about 1,900 images/s, 26 s per epoch of 50,000 images,
# 17 min for 40 epochs, plus kNN every 5 epochs and a 10-epoch probe in PIL on Colab's two CPU cores (~6 min).
# fp16 autocast: the T4 has no bf16. The other experiments keep their cpu-tier sizes (on the GPU).
TIERS["colab"] = dataclasses.replace(
    TIERS["cpu"],
    name="colab",
    cifar=dict(
        epochs=40,
        warmup_epochs=4,
        knn_every=5,
        probe_epochs=10,
        probe_runs=1,
        checkpoint_every=5,
        workers=2,
        amp="fp16",
    ),
    imagenet=dict(TIERS["cpu"].imagenet, augment="batched", workers=2, amp="fp16"),
    bench_steps=TIERS["full"].bench_steps,
)
TIERS = {name: TIERS[name] for name in ("smoke", "cpu", "colab", "full")}  # listed from the smallest


def get_tier(name: str) -> Tier:
    """The tier called `name`; anything else is a one-line error."""
    if name not in TIERS:
        raise EsslError(f"unknown tier {name!r}; choose one of {', '.join(TIERS)}")
    return TIERS[name]


def default_tier() -> str:
    """$ESSL_MODE, else smoke: the tier of a command without --tier, and of the chapters."""
    return get_tier(os.environ.get(ENV, "smoke")).name
