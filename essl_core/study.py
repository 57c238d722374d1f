"""The transformation study (paper_spec section 5.1): is it better to be invariant or equivariant to g?

SimCLR on CIFAR-10 with random crops as the only base augmentation (the baseline), plus one of the seven
transformations either as an invariance (I-SSL: a random element of g applied to each view) or as an
equivariance target (E-SSL: the E-branch predicts g, with the E-SimCLR recipe's lambda 0.4 and doubled lr).
All runs of a tier share data, epochs, batch size and seeds; E-SSL runs cost more per step (their extra
branch). The metric is kNN accuracy, as in the paper; every encoder is also measured for how invariant and how
equivariant it is to each of the seven transformations.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import load_cifar10
from .evaluate import equivariance_predictability, invariance_similarity
from .groups import GROUPS
from .recipes import Recipe, get_recipe
from .results import read_record, write_record
from .train import RESULT, load_trained_model, pretrain, resolve_device

VARIANTS = ("baseline", "I-SSL", "E-SSL")
# Our choice for groups larger than four (the jigsaw's 24): the E-branch sees 4 random elements per image,
# the same number of copies as the rotation's orbit; smaller groups use every element.
LARGE_GROUP_COPIES = 4

# What each tier changes on top of the recipes' own tier settings. `cpu` fits 15 runs in about an hour on 2
# cores: a 5,000-image class-balanced subset, 8 epochs at width 16. `full` is the recipes' full setting.
STUDY_TIERS: dict[str, dict] = {
    "smoke": dict(train_subset=256, test_subset=100, epochs=1, warmup_epochs=0, checkpoint_every=1),
    "cpu": dict(train_subset=5_000, test_subset=1_000, epochs=8, warmup_epochs=1, knn_every=2),
    "full": {},
}
DEFAULT_SEEDS = {"smoke": (42,), "cpu": (42,), "full": (42, 43, 44)}
# Test images and probe steps of the invariance/equivariance measures per tier.
MEASURE = {"smoke": (32, 100), "cpu": (500, 300), "full": (2000, 300)}


def run_name(variant: str, transformation: str | None, seed: int) -> str:
    return f"{variant}-{transformation}-s{seed}" if transformation else f"{variant}-s{seed}"


def study_run_dir(runs_root: str | Path, tier: str, variant: str, transformation: str | None, seed: int) -> Path:
    """Where one run of the study keeps its checkpoint, log and record."""
    return Path(runs_root) / f"study-{tier}" / run_name(variant, transformation, seed)


def study_plan(seeds) -> list[tuple[str, str | None, int]]:
    """(variant, transformation, seed) of every run: the baseline, then I-SSL and E-SSL per transformation."""
    plan = []
    for seed in seeds:
        plan.append(("baseline", None, seed))
        plan += [(variant, key, seed) for key in GROUPS for variant in ("I-SSL", "E-SSL")]
    return plan


def study_recipe(variant: str, transformation: str | None, tier: str, seed: int) -> Recipe:
    """The recipe of one run of the study."""
    overrides = {**STUDY_TIERS[tier], "base_augment": "crop", "seed": seed, "probe_runs": 0}
    if variant == "I-SSL":
        overrides["invariance"] = transformation
    elif variant == "E-SSL":
        group = GROUPS[transformation]
        overrides.update(equivariance=transformation, equivariance_copies=LARGE_GROUP_COPIES if group.size > 4 else 0)
    recipe = get_recipe("cifar10-esimclr" if variant == "E-SSL" else "cifar10-simclr", tier, overrides)
    return dataclasses.replace(recipe, name=f"study-{run_name(variant, transformation, seed)}")


def measure_encoder(backbone: torch.nn.Module, images: np.ndarray, device: torch.device, steps: int = 300) -> dict:
    """For each of the seven transformations: the mean centred cosine similarity of f(x) and f(g x) over the
    non-identity elements (1 = invariant), and the accuracy of a linear probe predicting g from f(g x)."""
    out = {}
    for key, group in GROUPS.items():
        sims = invariance_similarity(backbone, images, group, device)
        out[key] = {
            "similarity": float(np.mean(sims[1:])),
            "predictability": equivariance_predictability(backbone, images, group, device, steps=steps),
            "chance": 100.0 / group.size,
        }
    return out


def run_study(
    tier: str,
    *,
    seeds=None,
    data_root: str | Path | None = None,
    device: str = "auto",
    runs_root: str | Path = "runs",
    record_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """Every run of the study at `tier` (finished runs are reused, interrupted ones resumed); returns records."""
    seeds = tuple(seeds or DEFAULT_SEEDS[tier])
    dev = resolve_device(device)
    plan = study_plan(seeds)
    n_images, steps = MEASURE[tier]
    measure_images = load_cifar10(data_root).test_x[:n_images]
    records = []
    bar = tqdm(plan, desc=f"study ({tier})", disable=None if progress else True, file=sys.stderr)
    for variant, transformation, seed in bar:
        recipe = study_recipe(variant, transformation, tier, seed)
        run_dir = study_run_dir(runs_root, tier, variant, transformation, seed)
        bar.set_postfix_str(run_name(variant, transformation, seed))
        record = pretrain(recipe, tier, run_dir, data_root=data_root, device=device, progress=False)
        record["study"] = {"variant": variant, "transformation": transformation, "seed": seed}
        if "measures" not in record["metrics"]:
            model = load_trained_model(run_dir, dev)
            record["metrics"]["measures"] = measure_encoder(model.backbone, measure_images, dev, steps)
        write_record(run_dir / RESULT, record)
        if record_dir is not None:
            write_record(Path(record_dir) / f"study-{tier}-{run_name(variant, transformation, seed)}.json", record)
        records.append(record)
    return records


def study_records(directory: str | Path, tier: str) -> list[dict]:
    """The study's records of one tier in `directory`."""
    return [read_record(p) for p in sorted(Path(directory).glob(f"study-{tier}-*.json"))]


def summarise(records: list[dict]) -> dict[tuple[str, str | None], dict]:
    """kNN accuracy per (variant, transformation) over seeds: mean, std (over seeds; 0 for one), n, seeds."""
    runs: dict[tuple[str, str | None], list[tuple[int, float]]] = {}
    for r in records:
        key = (r["study"]["variant"], r["study"]["transformation"])
        runs.setdefault(key, []).append((r["study"]["seed"], r["metrics"]["knn_top1"]))
    out = {}
    for key, pairs in runs.items():
        values = np.array([v for _, v in pairs])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": float(values.mean()), "std": std, "n": len(values), "seeds": sorted(s for s, _ in pairs)}
    return out


def claim_rows(summary: dict, claims: dict[str, dict]) -> list[dict]:
    """Per transformation and variant with a claim: the paper's direction against the measured difference from
    the baseline. "within noise" when the difference is under twice its standard error over seeds; with one
    seed there is no error bar, which the verdict says."""
    base = summary[("baseline", None)]
    rows = []
    for key, claim in claims.items():
        for variant, kind in (("I-SSL", "invariance"), ("E-SSL", "equivariance")):
            if claim.get(kind) is None or (variant, key) not in summary:
                continue
            s = summary[(variant, key)]
            diff = s["mean"] - base["mean"]
            observed = "helps" if diff > 0 else "hurts"
            if diff == 0:
                verdict = "no difference"
            elif s["n"] < 2 or base["n"] < 2:
                verdict = ("agrees" if observed == claim[kind] else "disagrees") + " (one seed, no error bar)"
            elif abs(diff) < 2 * np.sqrt(s["std"] ** 2 / s["n"] + base["std"] ** 2 / base["n"]):
                verdict = "within noise"
            else:
                verdict = "agrees" if observed == claim[kind] else "disagrees"
            rows.append(
                {
                    "transformation": key,
                    "as": kind,
                    "paper": claim[kind],
                    "kNN vs baseline (points)": f"{diff:+.2f}",
                    "seeds": s["n"],
                    "ours": verdict,
                }
            )
    return rows
