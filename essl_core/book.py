"""What the chapters share: the tier, paths, a runtime banner, and trained encoders at the selected tier."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from .errors import EsslError
from .methods import Method
from .recipes import TIERS, get_recipe
from .results import device_name
from .train import load_trained_model, pretrain, resolve_device

REPO = Path(__file__).resolve().parent.parent


def tier() -> str:
    """The tier chapters run at: $ESSL_MODE (smoke, cpu or full), default smoke."""
    mode = os.environ.get("ESSL_MODE", "smoke")
    if mode not in TIERS:
        raise EsslError(f"ESSL_MODE={mode!r}; choose one of {', '.join(TIERS)}")
    return mode


def results_dir() -> Path:
    """book/results: the committed result records the chapters read."""
    return REPO / "book" / "results"


def runs_dir() -> Path:
    return REPO / "runs"


def banner() -> str:
    """Which tier runs, on what hardware, with which software: printed at the top of every chapter."""
    dev = resolve_device()
    lines = [
        f"tier: {tier()} (set ESSL_MODE=smoke|cpu|full)",
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
    run_dir = runs_dir() / (f"book-{recipe.name}-smoke" if t == "smoke" else f"{recipe.name}-{t}-s{recipe.seed}")
    record = pretrain(recipe, t, run_dir, restart=t == "smoke", progress=not quiet)
    return load_trained_model(run_dir, resolve_device()), record
