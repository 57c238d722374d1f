"""Photonic-crystal data files in the paper's h5 layout: generated (`generate`) or an official one checked and
copied (`import_official`). The command is `python -m data_scripts.photonics`.

Cell i is drawn from a generator seeded by (seed, i), so a file does not depend on workers or interruptions.
Finished cells go to FILE.h5.parts/ in small shards written atomically; an interrupted run started again with the
same arguments computes only what is missing. The h5 file appears, atomically, when every shard is there.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data import data_root
from ..errors import EsslError
from ..io import atomic_path, sha256_file, write_json
from ..lock import Busy, run_lock
from ..results import git_commit
from .cells import FAMILIES, SUPERSAMPLE, universal_fields
from .dataset import K_GRID, N_MAX, NUM_BANDS, label_fields, sample_indices, unitcell_fields
from .dos import GGR_SAMPLINGS, GGR_STEPS

SHARD = 8  # cells per shard: what an interruption can lose
INDEX_BASE = 1  # the official files number their cells from 1 (unitcell/mpbepsimage/1, ...), so do ours
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_out(
    family: str, count: int, seed: int, labelled: bool, root: str | Path | None = None, sampling: str = "points"
) -> Path:
    """Where a data file lives by default: DATA/photonics/FAMILY-COUNT-sSEED[-ul].h5 (a labelled file whose DOS is
    not the official GGR sampling is also named by its sampling: ...-bins.h5)."""
    suffix = "-ul" if not labelled else "" if sampling == "points" else f"-{sampling}"
    return data_root(root) / "photonics" / f"{family}-{count}-s{seed}{suffix}.h5"


def make_cell(family: str, seed: int, index: int, labelled: bool, sampling: str = "points") -> dict[str, np.ndarray]:
    """All fields of cell `index` of a file (its DOS by the GGR `sampling`)."""
    cell = FAMILIES[family](np.random.default_rng([seed, index]))
    fields = unitcell_fields(cell)
    if labelled:
        fields.update(label_fields(cell.eps, sampling=sampling))
    return fields


def _shard_path(parts: Path, start: int) -> Path:
    return parts / f"shard-{start:07d}.npz"


def _make_shard(
    family: str, seed: int, start: int, stop: int, labelled: bool, parts: str, sampling: str = "points"
) -> int:
    """Compute cells start..stop-1 and save them as one shard; returns the number of cells."""
    arrays = {}
    for i in range(start, stop):
        for name, value in make_cell(family, seed, i, labelled, sampling).items():
            arrays[f"{i}:{name}"] = value
    with atomic_path(_shard_path(Path(parts), start)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return stop - start


def _settings(family: str, count: int, seed: int, labelled: bool, sampling: str) -> dict:
    solver = {"method": "plane-wave expansion (essl_core.photonics.pwe), TM", "plane_waves": (2 * N_MAX + 1) ** 2}
    solver.update({"k_grid": f"{K_GRID}x{K_GRID}", "bands": NUM_BANDS, "dos": "GGR, paper post-processing"})
    solver.update({"ggr_sampling": sampling, "ggr_points": GGR_STEPS + 1})
    return {
        "family": family,
        "count": count,
        "seed": seed,
        "labelled": labelled,
        "solver": solver if labelled else None,
        "index_base": INDEX_BASE,  # files from before this key numbered their cells from 0
        "pixel_mesh": SUPERSAMPLE,  # samples per pixel side (files from before this key used 4)
    }


def _worker_start(parent: int) -> None:
    """In each worker: leave Ctrl-C to the parent (one line, not a traceback per worker) and die with it, even
    when it is killed with SIGKILL (Linux's parent-death signal)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _check_existing(out: Path, settings: dict) -> None:
    """An existing `out` is accepted only as a file generated here with the same settings."""
    import h5py

    if not out.is_file():
        raise EsslError(f"{out} exists and is not a file; choose another --out")
    try:
        with h5py.File(out, "r") as f:
            made_with = json.loads(f.attrs["settings"])
    except (OSError, KeyError, ValueError):
        raise EsslError(f"{out} exists but is not a file generated here; delete it or choose another --out") from None
    if made_with != json.loads(json.dumps(settings)):
        raise EsslError(f"{out} exists but was made with other settings ({made_with}); delete it to make it again")


def generate(
    family: str,
    count: int,
    out: Path,
    seed: int = 0,
    workers: int = 1,
    labelled: bool = True,
    progress: bool = True,
    sampling: str = "points",
) -> Path:
    """Make (or finish) the file `out`, its DOS by the GGR `sampling`; returns its path. An existing `out` is
    kept if it was made here with the same settings, refused otherwise."""
    if family not in FAMILIES:
        raise EsslError(f"unknown family {family!r}; choose from {sorted(FAMILIES)}")
    if sampling not in GGR_SAMPLINGS:
        raise EsslError(f"unknown GGR sampling {sampling!r}; choose from {list(GGR_SAMPLINGS)}")
    settings = _settings(family, count, seed, labelled, sampling)
    if out.exists():
        return _existing(out, settings, progress)
    # One process makes a file; another one asked for it (the same command started twice) waits, then reads it.
    parts = out.with_name(out.name + ".parts")
    make = functools.partial(_generate, family, count, out, parts, seed, workers, labelled, progress, sampling)
    try:
        with run_lock(parts, "data file's parts folder"):
            return make(settings)
    except Busy as busy:
        print(f"{out} is being made by {busy.holder}; waiting for it", file=sys.stderr)
    with run_lock(parts, "data file's parts folder", wait=True):
        return _existing(out, settings, progress) if out.exists() else make(settings)


def _existing(out: Path, settings: dict, progress: bool) -> Path:
    """`out`, if it was made here with `settings` (else a one-line error)."""
    _check_existing(out, settings)
    if progress:
        print(f"{out} exists, made with these settings; delete it to generate it again")
    return out


def _generate(
    family: str,
    count: int,
    out: Path,
    parts: Path,
    seed: int,
    workers: int,
    labelled: bool,
    progress: bool,
    sampling: str,
    settings: dict,
) -> Path:
    """Compute the shards `parts` lacks, assemble `out` and remove `parts`; the caller holds `parts`' lock."""
    meta = parts / "settings.json"
    if meta.exists() and json.loads(meta.read_text()) != settings:
        raise EsslError(f"{parts} holds shards made with other settings ({meta}); delete it or use the same ones")
    parts.mkdir(parents=True, exist_ok=True)
    write_json(meta, settings)
    starts = [s for s in range(0, count, SHARD) if not _shard_path(parts, s).exists()]
    done = count - sum(min(SHARD, count - s) for s in starts)
    # Worker processes, one thread each (threads scale worse than processes on 121 x 121 eigenproblems); the
    # thread caps must be in their environment before NumPy's BLAS loads, hence spawned processes even for one.
    env = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        with (
            tqdm(
                total=count, initial=done, desc=f"{family} cells", unit="cell", disable=None if progress else True
            ) as bar,
            ProcessPoolExecutor(
                max(1, workers), mp_context=get_context("spawn"), initializer=_worker_start, initargs=(os.getpid(),)
            ) as pool,
        ):
            jobs = [
                pool.submit(_make_shard, family, seed, s, min(s + SHARD, count), labelled, str(parts), sampling)
                for s in starts
            ]
            try:
                for job in jobs:
                    bar.update(job.result())
            except KeyboardInterrupt:  # the shards being computed finish; the others are dropped
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    _assemble(parts, out, settings)
    shutil.rmtree(parts)
    return out


def _assemble(parts: Path, out: Path, settings: dict) -> None:
    """Write all shards into the h5 file, atomically."""
    import h5py

    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        for start in range(0, settings["count"], SHARD):
            with np.load(_shard_path(parts, start)) as shard:
                for key in shard.files:
                    index, name = key.split(":", 1)
                    data = shard[key]
                    # Real fields in float32 as in the official files (SIB-CL writes dtype 'f'), half the size;
                    # the Fourier coefficients stay complex128 ('complex') as there.
                    f.create_dataset(
                        f"{name}/{int(index) + INDEX_BASE}",
                        data=data.astype(np.float32) if data.dtype.kind == "f" else data,
                    )
        for name, data in universal_fields(settings["family"]).items():
            f.create_dataset(name, data=data.astype(np.float32))
        f.attrs["source"] = f"generated by essl_core ({settings['family']}, seed {settings['seed']})"
        f.attrs["settings"] = json.dumps(settings)
        f.attrs["git"] = json.dumps(git_commit())  # the code that assembled the file
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")


def file_provenance(path: Path) -> dict:
    """What a record says of one data file: its name, sha256, and (for a generated file) the commit of the code
    that assembled it and its settings; an official file has neither."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in ("git", "settings", "source") if k in f.attrs}
    return {
        "name": path.name,
        "sha256": sha256_file(path),
        "generator_git": json.loads(attrs["git"]) if "git" in attrs else None,
        "settings": json.loads(attrs["settings"]) if "settings" in attrs else None,
        "source": str(attrs.get("source", "official file")),
    }


def import_official(source: Path, out: Path | None) -> Path:
    """Check an official file (e.g. sq-blob-v3-tm.h5) and copy it into the data folder."""
    import h5py

    if not source.is_file():
        raise EsslError(f"no file at {source}")
    try:
        with h5py.File(source, "r") as f:
            count = len(sample_indices(f))
            labelled = "mpbcal/DOS" in f
    except OSError as err:
        raise EsslError(f"{source} is not a readable h5 file: {err}") from err
    out = out or data_root() / "photonics" / source.name
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
    print(f"imported {count} cells ({'with' if labelled else 'without'} DOS) from {source} to {out}")
    return out
