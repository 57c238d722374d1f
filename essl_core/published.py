"""Trained encoders committed with the book: exported from finished runs as safetensors, listed in a manifest
with their sha256, size and recipe, and loaded (never retrained) by the published build of the book.

The manifest (`manifest.json` in the encoders folder) maps each file to the run it came from: the recipe as
the checkpoint stored it and the name of that run's result record in book/results/. A load checks the file
against its sha256 before building the model, so a truncated or altered encoder is refused in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .checkpoint import load_checkpoint, recipe_dict, recipe_from_checkpoint, same_training
from .errors import EsslError
from .io import atomic_write, write_json
from .layout import CHECKPOINT, pretrain_record
from .methods import Method, build_model
from .recipes import get_recipe
from .results import read_record

MANIFEST = "manifest.json"
# Size caps that keep the repository light (a cpu-tier CIFAR-10 E-SimCLR, ResNet-18 of width 16 with its heads,
# is 5.2 MiB in fp32) and small enough to travel to a lent GPU machine beside `make gpu-carry`'s 50 MiB of data
# (the device tool moves at most 64 MiB).
MAX_ENCODER_BYTES = 8 * 2**20
MAX_TOTAL_BYTES = 12 * 2**20


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def export_encoder(run_dir: str | Path, record_path: str | Path, directory: str | Path) -> dict:
    """Write the model of a finished run to `directory` as NAME.safetensors and list it in the manifest.

    Refuses an unfinished run, a record that belongs to another run, and files over the size caps."""
    run_dir, record_path, directory = Path(run_dir), Path(record_path), Path(directory)
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    recipe = recipe_from_checkpoint(ckpt)
    if ckpt["epoch"] != recipe.epochs:
        raise EsslError(f"{run_dir} stopped at epoch {ckpt['epoch']} of {recipe.epochs}; finish it before exporting")
    record = read_record(record_path)
    if record.get("config") != ckpt["recipe"]:
        raise EsslError(f"{record_path} is not the record of {run_dir} (their recipes differ)")
    data = save_safetensors({k: v.contiguous() for k, v in ckpt["model"].items()})
    if len(data) > MAX_ENCODER_BYTES:
        raise EsslError(f"the encoder of {run_dir} is {len(data) / 2**20:.1f} MiB, over the cap of "
                        f"{MAX_ENCODER_BYTES / 2**20:.0f} MiB")  # fmt: skip
    r = ckpt["recipe"]
    name = Path(pretrain_record(r["name"], r["tier"], r["seed"])).stem  # named as its run's record
    manifest = read_manifest(directory)
    manifest[name] = {
        "file": f"{name}.safetensors",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "record": record_path.name,
        "commit": record["provenance"]["git"]["commit"],
        "recipe": ckpt["recipe"],
    }
    total = sum(entry["bytes"] for entry in manifest.values())
    if total > MAX_TOTAL_BYTES:
        raise EsslError(f"the committed encoders would total {total / 2**20:.1f} MiB, over the cap of "
                        f"{MAX_TOTAL_BYTES / 2**20:.0f} MiB")  # fmt: skip
    atomic_write(directory / manifest[name]["file"], lambda fh: fh.write(data))
    write_json(directory / MANIFEST, dict(sorted(manifest.items())))
    return manifest[name]


def load_published(
    recipe_name: str, tier: str, directory: str | Path, results: str | Path, device: torch.device
) -> tuple[Method, dict] | None:
    """The committed encoder of `recipe_name` at `tier` (lowest seed first) in eval mode on `device`, with its
    run's result record; None if none is committed."""
    directory = Path(directory)
    wanted = recipe_dict(get_recipe(recipe_name, tier))
    entries = [e for e in read_manifest(directory).values() if e["recipe"]["name"] == recipe_name]
    for entry in sorted(entries, key=lambda e: e["recipe"]["seed"]):
        if not same_training(entry["recipe"], wanted):
            continue
        path = directory / entry["file"]
        data = path.read_bytes() if path.exists() else b""
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise EsslError(f"{path} is missing or does not match its sha256 in {directory / MANIFEST}")
        model = build_model(recipe_from_checkpoint({"recipe": entry["recipe"]}))
        model.load_state_dict(load_safetensors(data))
        return model.to(device).eval(), read_record(Path(results) / entry["record"])
    return None
