"""What the chapters share: the tier, paths, a runtime banner, and trained encoders at the selected tier."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from .device import resolve_device
from .layout import RUNS, pretrain_run_dir
from .methods import Method
from .recipes import get_recipe
from .results import device_name
from .runs import load_trained_model, pretrain
from .tiers import ENV, TIERS, default_tier

REPO = Path(__file__).resolve().parent.parent


def tier() -> str:
    """The tier chapters run at: $ESSL_MODE (smoke, cpu or full), default smoke."""
    return default_tier()


def results_dir() -> Path:
    """book/results: the committed result records the chapters read."""
    return REPO / "book" / "results"


def runs_dir() -> Path:
    return REPO / RUNS


def banner() -> str:
    """Which tier runs, on what hardware, with which software: printed at the top of every chapter."""
    dev = resolve_device()
    lines = [
        f"tier: {tier()} (set {ENV}={'|'.join(TIERS)})",
        f"device: {device_name(dev)}",
        f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, Python {sys.version.split()[0]}",
    ]
    if tier() == "full" and dev.type != "cuda":
        lines.append("WARNING: the full tier is the paper's 800-epoch setting and needs a GPU.")
    return "\n".join(lines)


def pretrained(recipe_name: str, quiet: bool = True) -> tuple[Method, dict]:
    """The model of `recipe_name` trained at the current tier, and its result record.

    At the smoke tier it is trained afresh (seconds). At the cpu and full tiers an existing run in
    runs/RECIPE-TIER-s42 (the CLI's default directory) is reused, resumed or started.
    """
    t = tier()
    recipe = get_recipe(recipe_name, t)
    run_dir = pretrain_run_dir(runs_dir() / "book" if t == "smoke" else runs_dir(), recipe.name, t, recipe.seed)
    record = pretrain(recipe, run_dir, restart=t == "smoke", progress=not quiet)
    return load_trained_model(run_dir, resolve_device()), record
