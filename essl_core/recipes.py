"""Recipes: the paper's settings, one per method and variant: CIFAR-10 (the official `cifar10/main.py`) and
ImageNet (the official `imagenet/{simclr,simsiam,barlowtwins}/main.py`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import EsslError
from .evaluate import PROBES
from .groups import GROUPS, JOIN, group_keys
from .methods import METHODS
from .models import BACKBONES
from .overrides import describe_overrides, parse_overrides
from .tiers import get_tier

AUGMENTS = ("batched", "reference")
FAMILIES = ("cifar10", "imagenet")  # which official code base a recipe follows (heads, views, normalisation)
DATASETS = ("cifar10", "imagenette", "imagenet-1k")


def _names_groups(spec: str) -> bool:
    """Whether `spec` names one or more of the study's transformations (essl_core.groups.group_keys)."""
    try:
        group_keys(spec)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a pretraining run. Defaults are the official CIFAR-10 code's."""

    name: str
    method: str  # a key of essl_core.methods.METHODS: "simclr", "simsiam" or "barlowtwins"
    lr: float  # base learning rate; the optimizer gets lr * batch_size / 256
    lmbd: float  # weight of the rotation-prediction loss; 0 disables the E-SSL branch
    family: str = "cifar10"
    dataset: str = "cifar10"  # what it trains on: "cifar10", "imagenette" or "imagenet-1k"
    cache_side: int = 64  # ImageNet datasets: the side of the prepared cache to read (0: the original images)
    image_folder: str = ""  # with cache_side 0: the ImageFolder root (default <data root>/imagenet/<dataset>)
    backbone: str = "cifar_resnet18"  # one of essl_core.models.BACKBONES
    image_size: int = 32  # side of the two SSL views
    epochs: int = 800
    batch_size: int = 512
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    optimizer: str = "sgd"  # "sgd" or "lars" (essl_core.lars: no weight decay or adaptation for 1-D parameters)
    final_lr_ratio: float = 0.0  # the cosine ends at this fraction of the base lr (0.001 on ImageNet)
    lr_per_epoch: bool = False  # the cosine moves once per epoch (ImageNet SimSiam), not every step
    norm_lr_ratio: float = 1.0  # lr of 1-D parameters relative to the weights' (ImageNet Barlow Twins: 0.024)
    width: int = 64  # ResNet-18 stem width; the feature has 8 * width dimensions
    proj_hidden: int = 2048
    proj_dim: int = 2048
    pred_hidden: int = 512
    rot_hidden: int = 2048
    rot_bottleneck: int = 0  # ImageNet rotation heads: Linear(hidden -> this), LayerNorm, then the classifier
    online_head: bool = False  # a linear classifier on detached features, its loss added (ImageNet SimCLR, BT)
    temperature: float = 0.5
    ssl_scale: float = 1.0  # multiplies the SSL loss (the Barlow Twins recipes scale theirs)
    ssl_loss: str = "cross_view"  # "cross_view" (official B x B InfoNCE) or "ntxent" (2B-2 negatives)
    crop_scale: tuple[float, float] = (0.2, 1.0)
    rot_size: int = 16  # side of the separate low-resolution rotation view
    rot_crop_scale: tuple[float, float] | None = None  # its RandomResizedCrop scale (None: crop_scale)
    train_subset: int | None = None  # None: all 50 000 training images
    test_subset: int | None = None  # None: all 10 000 test images
    knn_every: int = 1
    knn_k: int = 200
    knn_t: float = 0.1
    probe_epochs: int = 100
    probe_lr: float = 30.0
    probe_batch: int = 256
    probe_protocol: str = "cifar10"  # a key of essl_core.evaluate.PROBES (optimizer, schedule, what is reported)
    probe_runs: int = 5  # 0: no linear probe (the transformation study reports kNN accuracy)
    checkpoint_every: int = 50
    workers: int = 16
    seed: int = 42
    amp: str = "bf16"  # autocast dtype on CUDA: "bf16", "fp16" (with a GradScaler) or "off"; CPU runs fp32
    # "batched": the views are made on the device, per-sample draws, no DataLoader (essl_core.batched_views);
    # "reference": the official per-image PIL transforms in DataLoader workers. Same distribution (tested).
    augment: str = "batched"
    compile: bool = False  # torch.compile the model and the batched augmentation (pays off on CUDA)
    # The transformation study (the paper's first experiment): "crop" keeps only the random crop of the base
    # augmentations; `invariance` adds a random element of a group to every view (I-SSL; several groups joined
    # by "+", e.g. "hflip+rotation": a random element of each); `equivariance` is the group the E-branch
    # predicts, from all its elements or `equivariance_copies` random ones per image.
    base_augment: str = "full"
    invariance: str | None = None
    equivariance: str = "rotation"
    equivariance_copies: int = 0  # 0: every element (the orbit)
    tier: str = "full"  # the tier the recipe was resolved at (essl_core.tiers)
    overrides: tuple[str, ...] = ()  # the `key=value` changes made on top of the tier (--set, the study)

    @property
    def effective_lr(self) -> float:
        return self.lr * self.batch_size / 256

    @property
    def rotation_crop_scale(self) -> tuple[float, float]:
        return self.rot_crop_scale or self.crop_scale

    @property
    def e_branch(self) -> bool:
        """The E-SSL branch exists exactly when its weight lambda is positive."""
        return self.lmbd > 0

    def validate(self) -> Recipe:
        """Raise a short EsslError for settings that cannot run."""
        checks = [
            (self.method in METHODS, f"method must be one of {', '.join(METHODS)}, not {self.method!r}"),
            (
                self.ssl_loss in ("cross_view", "ntxent"),
                f"ssl_loss must be cross_view or ntxent, not {self.ssl_loss!r}",
            ),
            (self.amp in ("bf16", "fp16", "off"), f"amp must be bf16, fp16 or off, not {self.amp!r}"),
            (self.family in FAMILIES and self.dataset in DATASETS, f"dataset must be one of {', '.join(DATASETS)}"),
            (self.optimizer in ("sgd", "lars"), f"optimizer must be sgd or lars, not {self.optimizer!r}"),
            (self.backbone in BACKBONES, f"backbone must be one of {', '.join(BACKBONES)}"),
            (self.probe_protocol in PROBES, f"probe_protocol must be one of {', '.join(PROBES)}"),
            (
                self.family == "cifar10" or self.augment == "reference" or self.cache_side > 0,
                "augment=batched keeps the images on the device: it needs a cache (cache_side > 0), not image files",
            ),
            (self.augment in AUGMENTS, f"augment must be {' or '.join(AUGMENTS)}, not {self.augment!r}"),
            (self.base_augment in ("full", "crop"), f"base_augment must be full or crop, not {self.base_augment!r}"),
            (
                (self.invariance is None or _names_groups(self.invariance)) and self.equivariance in GROUPS,
                f"invariance and equivariance must be one of {', '.join(GROUPS)} (invariance: or several joined "
                f"by {JOIN!r})",
            ),
            (
                self.augment == "batched" or (self.base_augment == "full" and self.invariance is None),
                "base_augment and invariance need augment=batched",
            ),
            (self.equivariance_copies >= 0 and self.probe_runs >= 0, "counts must be >= 0"),
            (self.epochs >= 1 and self.batch_size >= 2, "epochs must be >= 1 and batch_size >= 2"),
            (self.lmbd >= 0 and self.lr > 0 and self.ssl_scale > 0, "lmbd must be >= 0, lr and ssl_scale > 0"),
            (
                min(self.checkpoint_every, self.knn_every, self.width) >= 1,
                "counts must be >= 1",
            ),
            (self.train_subset is None or self.train_subset >= self.batch_size, "train_subset < batch_size"),
            (self.test_subset is None or self.test_subset >= 1, "test_subset must be >= 1"),
            (self.seed >= 0, f"seed must be >= 0, not {self.seed}"),
            (self.knn_k >= 1 and self.knn_t > 0, "knn_k must be >= 1 and knn_t > 0 (else kNN reports chance)"),
            (self.temperature > 0, "temperature must be > 0"),
            (
                self.probe_runs == 0 or (self.probe_epochs >= 1 and self.probe_batch >= 1 and self.probe_lr > 0),
                "a linear probe needs probe_epochs >= 1, probe_batch >= 1 and probe_lr > 0 (probe_runs=0: none)",
            ),
            (0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be between 0 and epochs"),
            (
                0 < self.crop_scale[0] <= self.crop_scale[1] <= 1
                and 0 < self.rotation_crop_scale[0] <= self.rotation_crop_scale[1] <= 1,
                "crop scales must satisfy 0 < low <= high <= 1",
            ),
            (0 <= self.final_lr_ratio <= 1, "final_lr_ratio must be between 0 and 1"),
            (min(self.image_size, self.rot_size, self.probe_batch) >= 1 and self.workers >= 0, "sizes must be >= 1"),
        ]
        if self.equivariance in GROUPS and self.equivariance_copies > GROUPS[self.equivariance].size:
            checks.append(
                (
                    False,
                    f"equivariance_copies {self.equivariance_copies} is more than the {self.equivariance} group's "
                    f"{GROUPS[self.equivariance].size} elements (0: all of them)",
                )
            )
        for ok, message in checks:
            if not ok:
                raise EsslError(f"invalid recipe {self.name}: {message}")
        return self


_BASE = {
    "cifar10-simclr": Recipe("cifar10-simclr", "simclr", lr=0.03, lmbd=0.0),
    "cifar10-esimclr": Recipe("cifar10-esimclr", "simclr", lr=0.06, lmbd=0.4),
    "cifar10-simsiam": Recipe("cifar10-simsiam", "simsiam", lr=0.03, lmbd=0.0),
    "cifar10-esimsiam": Recipe("cifar10-esimsiam", "simsiam", lr=0.06, lmbd=0.4),
    # Our own CIFAR-scale Barlow Twins; the paper runs it on ImageNet only, and nothing here is tuned. The loss,
    # its 0.0051 off-diagonal weight and the three-layer projector are the paper's code; the projector keeps
    # the CIFAR widths (proj_hidden, proj_dim), the optimizer and lr the CIFAR SimCLR recipes'. ssl_scale 0.1 is
    # the usual CIFAR scaling of this loss (solo-learn's CIFAR config). lambda 0.2 gives the E-term the same
    # weight relative to the loss at initialisation (about 0.77 x its dimension) as lambda 8 on ImageNet's
    # 8192-d loss: 8 / (0.77 x 8192) = 0.2 / (0.1 x 0.77 x 2048).
    "cifar10-barlowtwins": Recipe("cifar10-barlowtwins", "barlowtwins", lr=0.03, lmbd=0.0, ssl_scale=0.1),
    "cifar10-ebarlowtwins": Recipe("cifar10-ebarlowtwins", "barlowtwins", lr=0.06, lmbd=0.2, ssl_scale=0.1),
}


# The ImageNet recipes at the paper's scale (ImageNet-1k, ResNet-50, the batch over all GPUs); the small tiers
# train them on Imagenette caches (essl_core.tiers). Effective lrs: SimCLR 0.3 x 4096/256 = 4.8, Barlow Twins
# 0.2 x 4096/256 = 3.2 for weights and 0.0048 x 16 = 0.0768 for 1-D parameters (ratio 0.024), SimSiam
# 0.05 x 512/256 = 0.1. Autocast is fp16 as in the official code (bf16 is an option on CUDA).
_IMAGENET = dict(
    family="imagenet",
    dataset="imagenet-1k",
    cache_side=0,
    backbone="resnet50",
    image_size=224,
    epochs=100,
    batch_size=4096,
    weight_decay=1e-6,
    warmup_epochs=10,
    optimizer="lars",
    final_lr_ratio=0.001,
    crop_scale=(0.08, 1.0),
    rot_size=96,
    rot_crop_scale=(0.05, 0.14),
    rot_hidden=2048,
    rot_bottleneck=256,
    online_head=True,
    probe_lr=1.0,
    probe_protocol="imagenet-simclr",
    amp="fp16",
    augment="reference",
    workers=8,
    checkpoint_every=1,
    knn_every=10,  # a kNN pass embeds all 1.28M training images: every 10th epoch (and the last)
)
_SIMCLR_IN = dict(_IMAGENET, proj_hidden=2048, proj_dim=128, temperature=0.2, rot_bottleneck=128)
_BT_IN = dict(
    _IMAGENET, proj_hidden=8192, proj_dim=8192, norm_lr_ratio=0.024, probe_lr=0.3, probe_protocol="imagenet-barlowtwins"
)
_SIMSIAM_IN = dict(
    _IMAGENET,
    batch_size=512,
    weight_decay=1e-4,
    warmup_epochs=0,
    optimizer="sgd",
    final_lr_ratio=0.0,
    lr_per_epoch=True,
    proj_hidden=2048,
    proj_dim=2048,
    pred_hidden=512,
    online_head=False,
    probe_lr=0.1,  # per 256 images: 1.6 at batch 4096; LARS, 90 epochs (the official SimSiam probe)
    probe_batch=4096,
    probe_epochs=90,
    probe_protocol="imagenet-simsiam",
)
_BASE.update(
    {
        "imagenet-simclr": Recipe("imagenet-simclr", "simclr", lr=0.3, lmbd=0.0, **_SIMCLR_IN),
        "imagenet-esimclr": Recipe("imagenet-esimclr", "simclr", lr=0.3, lmbd=0.4, **_SIMCLR_IN),
        "imagenet-simsiam": Recipe("imagenet-simsiam", "simsiam", lr=0.05, lmbd=0.0, **_SIMSIAM_IN),
        "imagenet-esimsiam": Recipe("imagenet-esimsiam", "simsiam", lr=0.05, lmbd=0.08, **_SIMSIAM_IN),
        "imagenet-barlowtwins": Recipe("imagenet-barlowtwins", "barlowtwins", lr=0.2, lmbd=0.0, **_BT_IN),
        "imagenet-ebarlowtwins": Recipe("imagenet-ebarlowtwins", "barlowtwins", lr=0.2, lmbd=8.0, **_BT_IN),
    }
)


def recipe_names() -> list[str]:
    return sorted(_BASE)


def recipe_overrides(pairs) -> dict:
    """`--set key=value` strings as typed recipe fields."""
    return parse_overrides(pairs, Recipe)


def get_recipe(name: str, tier: str = "full", overrides: dict | None = None) -> Recipe:
    """The recipe `name` at `tier`, with `overrides` (from `--set`, or the study's) applied last."""
    if name not in _BASE:
        raise EsslError(f"unknown recipe {name!r}; choose one of {', '.join(recipe_names())}")
    overrides = overrides or {}
    base = _BASE[name]
    scaled = dict(get_tier(tier).cifar if base.family == "cifar10" else get_tier(tier).imagenet)
    if base.warmup_epochs == 0:  # a tier shortens a warm-up; it does not add one (ImageNet SimSiam has none)
        scaled.pop("warmup_epochs", None)
    fields = {**scaled, **overrides, "tier": tier, "overrides": describe_overrides(overrides)}
    return dataclasses.replace(base, **fields).validate()
