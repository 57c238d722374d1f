"""The transformation study (the paper's first experiment): is it better to be invariant or equivariant to g?

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
from .device import resolve_device
from .evaluate import equivariance_predictability, invariance_similarity
from .groups import GROUPS
from .layout import RESULT, RUNS, study_record, study_run_dir, study_run_name, tier_records
from .recipes import Recipe, get_recipe
from .results import write_record
from .runs import load_trained_model, pretrain
from .tiers import get_tier
from .verdict import verdict

# Our choice for groups larger than four (the jigsaw's 24): the E-branch sees 4 random elements per image,
# the same number of copies as the rotation's orbit; smaller groups use every element.
LARGE_GROUP_COPIES = 4


def study_plan(seeds) -> list[tuple[str, str | None, int]]:
    """(variant, transformation, seed) of every run: the baseline, then I-SSL and E-SSL per transformation."""
    plan = []
    for seed in seeds:
        plan.append(("baseline", None, seed))
        plan += [(variant, key, seed) for key in GROUPS for variant in ("I-SSL", "E-SSL")]
    return plan


def transformation_recipe(
    invariance: str | None, equivariance: str | None, tier: str, seed: int, lmbd: float | None = None
) -> Recipe:
    """A run of the study's kind: random crops as the base augmentation, `invariance` added to them (I-SSL),
    `equivariance` predicted by the E-branch (E-SSL, on the E-SimCLR recipe; its lambda unless `lmbd` is
    given), no linear probe. The transformation lab trains any such combination."""
    overrides = {**get_tier(tier).study, "base_augment": "crop", "seed": seed, "probe_runs": 0}
    if invariance:
        overrides["invariance"] = invariance
    if equivariance:
        group = GROUPS[equivariance]
        overrides.update(equivariance=equivariance, equivariance_copies=LARGE_GROUP_COPIES if group.size > 4 else 0)
        if lmbd is not None:
            overrides["lmbd"] = lmbd
    return get_recipe("cifar10-esimclr" if equivariance else "cifar10-simclr", tier, overrides)


def study_recipe(variant: str, transformation: str | None, tier: str, seed: int) -> Recipe:
    """The recipe of one run of the study."""
    invariance = transformation if variant == "I-SSL" else None
    equivariance = transformation if variant == "E-SSL" else None
    recipe = transformation_recipe(invariance, equivariance, tier, seed)
    return dataclasses.replace(recipe, name=f"study-{study_run_name(variant, transformation, seed)}")


def measure_encoder(
    backbone: torch.nn.Module, images: np.ndarray, device: torch.device, steps: int = 300, keys=None
) -> dict:
    """For each transformation of `keys` (default: all seven): the mean centred cosine similarity of f(x) and
    f(g x) over the non-identity elements (1 = invariant), and the accuracy of a linear probe predicting g from
    f(g x)."""
    out = {}
    for key in GROUPS if keys is None else keys:
        group = GROUPS[key]
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
    runs_root: str | Path = RUNS,
    record_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """Every run of the study at `tier` (finished runs are reused, interrupted ones resumed); returns records."""
    settings = get_tier(tier)
    seeds = tuple(seeds or settings.study_seeds)
    dev = resolve_device(device)
    plan = study_plan(seeds)
    n_images, steps = settings.measure
    measure_images, _ = load_cifar10(data_root).test_sample(n_images)
    records = []
    bar = tqdm(plan, desc=f"study ({tier})", disable=None if progress else True, file=sys.stderr)
    for variant, transformation, seed in bar:
        recipe = study_recipe(variant, transformation, tier, seed)
        name = study_run_name(variant, transformation, seed)
        run_dir = study_run_dir(runs_root, tier, name)
        bar.set_postfix_str(name)
        record = pretrain(recipe, run_dir, data_root=data_root, device=device, progress=False)
        record["study"] = {"variant": variant, "transformation": transformation, "seed": seed}
        # A run measured before the class-balanced sample (no `measured_on`: airplanes alone) is measured again
        # from its trained encoder; training is never repeated for it.
        if "measured_on" not in record["metrics"]:
            model = load_trained_model(run_dir, dev)
            record["metrics"]["measures"] = measure_encoder(model.backbone, measure_images, dev, steps)
            record["metrics"]["measured_on"] = f"{n_images} test images, class-balanced"
        write_record(run_dir / RESULT, record)
        if record_dir is not None:
            write_record(Path(record_dir) / study_record(tier, name), record)
        records.append(record)
    return records


def study_records(directory: str | Path, tier: str) -> list[dict]:
    """The study's records of one tier in `directory`."""
    return tier_records(directory, "study", tier)


def _knn_by_run(records: list[dict]) -> dict[tuple[str, str | None], dict[int, float]]:
    """kNN accuracy per (variant, transformation), by seed."""
    runs: dict[tuple[str, str | None], dict[int, float]] = {}
    for r in records:
        key = (r["study"]["variant"], r["study"]["transformation"])
        runs.setdefault(key, {})[r["study"]["seed"]] = r["metrics"]["knn_top1"]
    return runs


def summarise(records: list[dict]) -> dict[tuple[str, str | None], dict]:
    """kNN accuracy per (variant, transformation) over seeds: mean, std (over seeds; 0 for one), n, seeds and
    the per-seed values."""
    out = {}
    for key, by_seed in _knn_by_run(records).items():
        values = np.array([by_seed[s] for s in sorted(by_seed)])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {
            "mean": float(values.mean()),
            "std": std,
            "n": len(values),
            "seeds": sorted(by_seed),
            "values": values.tolist(),
        }
    return out


def variant_measure(records: list[dict], variant: str, key: str, measure: str) -> float:
    """The mean over seeds of `measure` ("similarity" or "predictability") for transformation `key`, of the
    `variant`'s run with that transformation (the baseline's, for variant "baseline")."""
    runs = [r for r in records if r["study"]["variant"] == variant and r["study"]["transformation"] in (key, None)]
    return float(np.mean([r["metrics"]["measures"][key][measure] for r in runs]))


def claim_rows(summary: dict, claims: dict[str, dict]) -> list[dict]:
    """Per transformation and variant with a claim: the paper's direction against the measured difference from
    the baseline, judged by `essl_core.verdict` (twice the standard error over seeds)."""
    base = summary[("baseline", None)]
    rows = []
    for key, claim in claims.items():
        for variant, kind in (("I-SSL", "invariance"), ("E-SSL", "equivariance")):
            if claim.get(kind) is None or (variant, key) not in summary:
                continue
            s = summary[(variant, key)]
            rows.append(
                {
                    "transformation": key,
                    "as": kind,
                    "paper": claim[kind],
                    "kNN vs baseline (points)": f"{s['mean'] - base['mean']:+.2f}",
                    "seeds": s["n"],
                    "ours": verdict(s["values"], base["values"], 1 if claim[kind] == "helps" else -1),
                }
            )
    return rows
