"""The photonics experiment's settings, configured like the CIFAR recipes: one keyword dataclass (defaults are
the paper's, the full tier), resolved at a tier with `--set` overrides; and the modes (what the SSL views get,
and which group E-SimCLR predicts)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import EsslError
from ..groups import HALF_TRANSLATION, ROTATION, Group
from ..overrides import describe_overrides, parse_overrides
from ..tiers import get_tier
from .dos import GGR_SAMPLINGS
from .symmetry import ROTATION_CENTRES

# The paper's unlabelled sets: 15,000 blob cells and 20,480 gpm cells.
PAPER_UNLABELLED = {"blob": 15000, "gpm": 20480}


@dataclass(frozen=True)
class PhotonicsRecipe:
    """Sizes and hyperparameters of the experiment. The labelled file holds test, validation, training pool."""

    test: int = 2000
    val: int = 500  # ours: a validation split for honest model selection (the paper selects on test)
    train_pool: int = 3000
    unlabelled: int | None = None  # None: the paper's count for the family (PAPER_UNLABELLED)
    label_counts: tuple[int, ...] = (100, 300, 1000, 3000)
    seeds: tuple[int, ...] = (1, 2, 3)  # fine-tuning seeds
    pretrain_seeds: tuple[int, ...] = (1,)  # one pretraining per seed (the official script pretrains once)
    width: float = 1.0  # encoder channel multiplier (1 = the paper's)
    pretrain_epochs: int = 200  # encoders are kept after half of them and after all
    # The official script fine-tunes both kept encoders and selects over them; False fine-tunes only the last one
    # (ours, at the cpu tier: half the fine-tuning time, so that each run can have the steps it needs).
    finetune_from_half: bool = True
    batch_ssl: int = 256
    finetune_epochs: int = 100
    # Ours, off at the paper's tier: at least this many optimiser steps per fine-tuning run (more epochs for small
    # label counts), so a sweep over labels does not also sweep the optimisation (100 labels at batch 64 would get
    # 2 steps per epoch).
    finetune_min_steps: int = 0
    # Ours, off at the paper's tier: evaluate (validation and test) only once at least this many optimiser steps
    # have passed since the last evaluation, and after the last epoch; 0 evaluates before every epoch, as the
    # official loop does. At 100 labels an epoch is 2 steps, and one evaluation costs more than both.
    finetune_eval_steps: int = 0
    # The official heads reuse one BatchNorm1d at both hidden layers of the projector and of the E-classifier;
    # False gives each layer its own (ours before; affine parameters and running statistics not shared).
    shared_head_norm: bool = True
    temperature: float = 0.1  # NT-Xent
    lmbd: float = 5.0  # weight of the E-loss (the official code's `alpha`; `lmbd` as in the CIFAR recipes)
    pretrain_lr: float = 1e-3  # SGD, per-step cosine over pretrain_epochs + 1 epochs
    finetune_lr: float = 1e-4  # Adam
    finetune_wd: float = 1e-5
    finetune_batch: int = 64
    pretrain_seed: int = 1  # this run's; `run_photonics` runs each of `pretrain_seeds`
    labelled_seed: int = 1  # of the generated files
    unlabelled_seed: int = 99
    split_seed: int = 0  # of the fixed test / validation / pool permutation
    # How GGR puts each band's trapezoids on the frequency grid when the labelled file is made: "points" as the
    # official run_GRR.m (read at grid points; a band with velocity 0 adds nothing), "bins" ours (exact per bin).
    ggr_sampling: str = "points"
    # What E-SimCLR's quarter turns (gpm) go about: "array", the image array's centre, as the official code's
    # torch.rot90, or "origin", the cell's origin, a pixel of MPB's grid (ours; the turn of the crystal itself,
    # which gives the E-task no cue from where the pixel grid puts the mirror line).
    rotation_centre: str = "array"
    tier: str = "full"
    overrides: tuple[str, ...] = ()

    @property
    def labelled(self) -> int:
        return self.test + self.val + self.train_pool

    def finetune_epochs_for(self, count: int) -> int:
        """Fine-tuning epochs for `count` labelled cells: the recipe's, or more to reach finetune_min_steps."""
        steps_per_epoch = math.ceil(count / self.finetune_batch)
        return max(self.finetune_epochs, math.ceil(self.finetune_min_steps / steps_per_epoch))

    def unlabelled_count(self, family: str) -> int:
        return self.unlabelled or PAPER_UNLABELLED[family]

    def validate(self) -> PhotonicsRecipe:
        checks = [
            (min(self.test, self.val, self.train_pool, self.batch_ssl, self.finetune_batch) >= 1, "sizes must be >= 1"),
            (self.label_counts and max(self.label_counts) <= self.train_pool, "label_counts must be <= train_pool"),
            (bool(self.seeds) and min(self.pretrain_epochs, self.finetune_epochs) >= 1, "seeds and epochs needed"),
            (bool(self.pretrain_seeds) and min(self.finetune_min_steps, self.finetune_eval_steps) >= 0, "steps >= 0"),
            (self.lmbd >= 0 and min(self.pretrain_lr, self.finetune_lr, self.width, self.temperature) > 0, "rates > 0"),
            (self.ggr_sampling in GGR_SAMPLINGS, f"ggr_sampling must be one of {', '.join(GGR_SAMPLINGS)}"),
            (self.rotation_centre in ROTATION_CENTRES, f"rotation_centre must be one of {', '.join(ROTATION_CENTRES)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise EsslError(f"invalid photonics recipe ({self.tier} tier): {message}")
        return self


def photonics_overrides(pairs) -> dict:
    """`--set key=value` strings as typed photonics recipe fields."""
    return parse_overrides(pairs, PhotonicsRecipe)


def get_photonics_recipe(tier: str = "full", overrides: dict | None = None) -> PhotonicsRecipe:
    """The experiment at `tier`, with `overrides` applied last."""
    overrides = overrides or {}
    fields = {**get_tier(tier).photonics, **overrides, "tier": tier, "overrides": describe_overrides(overrides)}
    return dataclasses.replace(PhotonicsRecipe(), **fields).validate()


@dataclass(frozen=True)
class Mode:
    """What the two SSL views get (also used when fine-tuning) and, for E-SimCLR, the group to predict."""

    augmentations: tuple[str, ...]
    equivariance: Group | None = None
    pretrain: bool = True


# As the official load_config.py: the transformation E-SimCLR predicts is the one SimCLR+Trans adds.
MODES: dict[str, dict[str, Mode]] = {
    "blob": {
        "none": Mode(("flip", "rotate"), pretrain=False),
        "simclr": Mode(("flip", "rotate")),
        "simclr_trans": Mode(("translate_half", "flip", "rotate")),
        "simclr_ee": Mode(("flip", "rotate"), HALF_TRANSLATION),
    },
    "gpm": {
        "none": Mode(("translate_any", "flip"), pretrain=False),
        "simclr": Mode(("translate_any", "flip")),
        "simclr_trans": Mode(("translate_any", "flip", "rotate")),
        "simclr_ee": Mode(("translate_any", "flip"), ROTATION),
    },
}
MODE_LABELS = {
    "none": "no pretraining",
    "simclr": "SimCLR",
    "simclr_trans": "SimCLR + transformation",
    "simclr_ee": "E-SimCLR",
    "trivial": "trivial: predict nothing (the empty lattice)",
}


def get_mode(family: str, mode: str, rotation_centre: str = "array") -> Mode:
    """The mode; an E-task of quarter turns goes about `rotation_centre` (the recipe's field of that name)."""
    if family not in MODES:
        raise EsslError(f"unknown dataset {family!r}; choose one of {', '.join(MODES)}")
    if mode not in MODES[family]:
        raise EsslError(f"unknown mode {mode!r}; choose one of {', '.join(MODES[family])}")
    found = MODES[family][mode]
    if found.equivariance is ROTATION:
        return dataclasses.replace(found, equivariance=ROTATION_CENTRES[rotation_centre])
    return found
