"""The photonics experiment (the paper's third experiment): SimCLR, SimCLR + transformation, E-SimCLR and no
pretraining, each fine-tuned to regress the DOS of labelled cells, over a sweep of label counts and seeds.

Faithful to the official code (see `loops`), with one fix: model selection. The official number is the minimum
*test* error over checkpoints and epochs; we select on a validation split and also report that official
protocol, labelled (`selection`). Configuration: `config`; what the chapter reads: `analysis`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..checkpoint import recipe_dict
from ..device import resolve_device
from ..io import sha256_file, write_json
from ..layout import RESULT, RUNS, finetune_file, photonics_record, photonics_run_dir
from ..lock import Busy, run_lock
from ..results import make_record, peak_memory, provenance, read_record, write_record
from .config import MODE_LABELS, PhotonicsRecipe, get_mode
from .dataset import load_h5
from .generate import default_out, file_provenance, generate
from .loops import finetune, pretrain, trivial_error
from .selection import select, split_labelled, summary


def data_files(family: str, recipe: PhotonicsRecipe, root: str | Path | None = None) -> tuple[Path, Path]:
    """The labelled and unlabelled files the recipe uses."""
    return (
        default_out(family, recipe.labelled, recipe.labelled_seed, True, root, recipe.ggr_sampling),
        default_out(family, recipe.unlabelled_count(family), recipe.unlabelled_seed, False, root),
    )


def prepare_data(
    family: str, recipe: PhotonicsRecipe, root: str | Path | None = None, workers: int = 1, progress: bool = True
) -> tuple[Path, Path]:
    """Generate the recipe's files where missing (resuming any interrupted generation); existing files are used
    only if they were made with the same settings (a file from older code is refused with one line)."""
    labelled, unlabelled = data_files(family, recipe, root)
    r = recipe
    generate(family, r.labelled, labelled, r.labelled_seed, workers, True, progress, r.ggr_sampling)
    generate(family, r.unlabelled_count(family), unlabelled, r.unlabelled_seed, workers, False, progress)
    return labelled, unlabelled


def run_tag(recipe: PhotonicsRecipe, files: tuple[Path, Path]) -> str:
    """The tier and a digest of what its runs depend on, the whole recipe (code defaults included) and the data
    files' contents, so that a finished run is reused only for the same settings and data, never mixed."""
    identity = {"recipe": recipe_dict(recipe), "files": [sha256_file(p) for p in files]}
    return f"{recipe.tier}-{hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]}"


def run_mode(
    family: str,
    mode_name: str,
    recipe: PhotonicsRecipe,
    files: tuple[Path, Path],
    run_dir: Path,
    device,
    progress: bool = True,
) -> dict:
    """Pretrain one mode (unless `none`), fine-tune for every label count and seed; returns its record. The caller
    holds the run directory's lock."""
    mode = get_mode(family, mode_name, recipe.rotation_centre)
    start = time.perf_counter()
    labelled = load_h5(files[0])
    splits = split_labelled(labelled, recipe)
    trivial = {"test": trivial_error(splits.test), "val": trivial_error(splits.val)}
    pre = {"encoders": {"0": None}, "curve": [], "seconds": 0.0}
    if mode.pretrain:
        unlabelled = load_h5(files[1], labelled=False).x[: recipe.unlabelled_count(family)]
        pre = pretrain(mode, recipe, unlabelled, run_dir, device, progress)
    encoders = pre["encoders"]
    if mode.pretrain and not recipe.finetune_from_half:  # the last encoder only
        encoders = {k: v for k, v in encoders.items() if int(k) == recipe.pretrain_epochs}
    results: dict[str, dict] = {}
    jobs = [(n, s) for n in recipe.label_counts for s in recipe.seeds]
    quiet = None if progress else True  # None: tqdm's own choice (no bar when stderr is not a terminal)
    bar = tqdm(jobs, desc=f"{family} {mode_name} fine-tuning", leave=False, file=sys.stderr, disable=quiet)
    for count, seed in bar:
        done = run_dir / finetune_file(count, seed)
        if done.exists():
            entry = json.loads(done.read_text())
        else:
            train = splits.train_pool.subset(torch.arange(count))
            curves = {
                ep: finetune(state, mode, recipe, train, splits.val, splits.test, seed, device)
                for ep, state in encoders.items()
            }
            entry = {"curves": curves, "selected": select(curves)}
            write_json(done, entry)
        results.setdefault(str(count), {})[str(seed)] = entry
    config = {"family": family, "mode": mode_name, "label": MODE_LABELS[mode_name], "recipe": recipe_dict(recipe)}
    config.update(
        augmentations=list(mode.augmentations), equivariance=mode.equivariance.name if mode.equivariance else None
    )
    return make_record(
        "photonics",
        tier=recipe.tier,
        config=config,
        dataset={
            "name": f"{family} cells ({labelled.source})",
            "files": [file_provenance(p) for p in files],
            "splits": {"test": len(splits.test), "val": len(splits.val), "train_pool": len(splits.train_pool)},
        },
        pretraining={"curve": pre["curve"], "seconds": pre["seconds"]},
        results=results,
        summary=summary(results),
        trivial=trivial,
        wall_seconds=time.perf_counter() - start,
        peak_memory=peak_memory(device),
        provenance=provenance(device),
    )


def run_photonics(
    recipe: PhotonicsRecipe,
    families: tuple[str, ...] = ("blob", "gpm"),
    modes: tuple[str, ...] = ("none", "simclr", "simclr_trans", "simclr_ee"),
    *,
    device: str = "auto",
    data_dir: str | Path | None = None,
    runs_root: str | Path = RUNS,
    record_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[dict]:
    """Data (generated where missing) and every mode of the experiment; finished runs are reused. A run another
    process is running (the same command started twice, to use two cores) is left for last, then waited for and
    read, so each process takes the runs the other has not started."""
    dev = resolve_device(device)
    for family in families:  # bad names fail before any work
        for mode in modes:
            get_mode(family, mode)
    make = functools.partial(_record, runs_root=runs_root, record_dir=record_dir, device=dev, progress=progress)
    records: dict[tuple[str, str, int], dict] = {}  # in the order of the runs
    held = []
    for family in families:
        files = prepare_data(family, recipe, data_dir, workers, progress)
        tag = run_tag(recipe, files)
        for mode in modes:
            # One run per pretraining seed; without pretraining only the fine-tuning seeds vary.
            seeds = recipe.pretrain_seeds if get_mode(family, mode).pretrain else recipe.pretrain_seeds[:1]
            for seed in seeds:
                key, run = (family, mode, seed), dataclasses.replace(recipe, pretrain_seed=seed)
                records[key] = {}
                try:
                    records[key] = make(family, mode, run, files, tag)
                except Busy as busy:
                    print(
                        f"{family} {mode} (pretraining seed {seed}) is run by {busy.holder}; left for last",
                        file=sys.stderr,
                    )
                    held.append((key, run, files, tag))
    for (family, mode, seed), run, files, tag in held:
        records[(family, mode, seed)] = make(family, mode, run, files, tag, wait=True)
    return list(records.values())


def _record(
    family: str,
    mode: str,
    recipe: PhotonicsRecipe,
    files: tuple[Path, Path],
    tag: str,
    *,
    runs_root: str | Path,
    record_dir: str | Path | None,
    device,
    progress: bool,
    wait: bool = False,
) -> dict:
    """One run's record, read if it is finished, else made, under its run directory's lock (`Busy` if another
    process holds it, unless `wait`); copied into `record_dir` if given."""
    run_dir = photonics_run_dir(runs_root, tag, family, mode, recipe.pretrain_seed)
    final = run_dir / RESULT
    with run_lock(run_dir, wait=wait):
        if final.exists():
            record = read_record(final)
        else:
            record = run_mode(family, mode, recipe, files, run_dir, device, progress)
        write_record(final, record)
    if record_dir is not None:
        write_record(Path(record_dir) / photonics_record(recipe.tier, family, mode, recipe.pretrain_seed), record)
    return record
