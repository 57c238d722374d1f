"""Recipes: the paper's CIFAR-10 settings (its official `cifar10/main.py`), one per method and variant."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import EsslError
from .groups import GROUPS
from .methods import METHODS
from .overrides import describe_overrides, parse_overrides
from .tiers import get_tier

AUGMENTS = ("batched", "reference")


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a pretraining run. Defaults are the official CIFAR-10 code's."""

    name: str
    method: str  # a key of essl_core.methods.METHODS: "simclr", "simsiam" or "barlowtwins"
    lr: float  # base learning rate; the optimizer gets lr * batch_size / 256
    lmbd: float  # weight of the rotation-prediction loss; 0 disables the E-SSL branch
    epochs: int = 800
    batch_size: int = 512
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    width: int = 64  # ResNet-18 stem width; the feature has 8 * width dimensions
    proj_hidden: int = 2048
    proj_dim: int = 2048
    pred_hidden: int = 512
    rot_hidden: int = 2048
    temperature: float = 0.5
    ssl_scale: float = 1.0  # multiplies the SSL loss (the Barlow Twins recipes scale theirs)
    ssl_loss: str = "cross_view"  # "cross_view" (official B x B InfoNCE) or "ntxent" (2B-2 negatives)
    crop_scale: tuple[float, float] = (0.2, 1.0)
    rot_size: int = 16  # side of the separate low-resolution rotation view
    train_subset: int | None = None  # None: all 50 000 training images
    test_subset: int | None = None  # None: all 10 000 test images
    knn_every: int = 1
    knn_k: int = 200
    knn_t: float = 0.1
    probe_epochs: int = 100
    probe_lr: float = 30.0
    probe_batch: int = 256
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
    # augmentations; `invariance` adds a random element of a group to every view (I-SSL); `equivariance` is
    # the group the E-branch predicts, from all its elements or `equivariance_copies` random ones per image.
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
            (self.augment in AUGMENTS, f"augment must be {' or '.join(AUGMENTS)}, not {self.augment!r}"),
            (self.base_augment in ("full", "crop"), f"base_augment must be full or crop, not {self.base_augment!r}"),
            (
                self.invariance in (None, *GROUPS) and self.equivariance in GROUPS,
                f"invariance and equivariance must be one of {', '.join(GROUPS)}",
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
        ]
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
    fields = {**get_tier(tier).cifar, **overrides, "tier": tier, "overrides": describe_overrides(overrides)}
    return dataclasses.replace(_BASE[name], **fields).validate()
