"""Checkpoints: written atomically with a checksum, loaded with `weights_only=True`, verified, and checked
against the recipe."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from .errors import EsslError
from .io import atomic_write
from .recipes import Recipe

# Format 2: one optimizer with parameter groups, the E-branch's head under `equivariance.head`. Format 3 is
# format 2's payload serialised, with its sha256 beside it: a flipped byte anywhere is found on load (torch's
# zip reader does not check its CRCs). Format-2 files (written before the checksum) still load, unverified.
PAYLOAD_FORMAT = "essl-checkpoint/2"
FORMAT = "essl-checkpoint/3"
RECOVER = "train again with --restart (or restore the file from a copy)"
# Recipe fields that may change between an interrupted run and its resumption without changing the result.
RESUMABLE_CHANGES = {"checkpoint_every", "workers", "knn_every", "compile", "overrides"}


def recipe_dict(recipe) -> dict:
    """A recipe (any keyword dataclass) as plain data (tuples as lists), as stored in checkpoints and records."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(recipe).items()}


def same_training(saved: dict, wanted: dict) -> bool:
    """Whether a run recorded with recipe `saved` (a record's config, a checkpoint's recipe) trained as recipe
    `wanted` asks, seed aside: the same fields but the seed, how it was invoked and what does not change the
    weights. Fields `saved` lacks were added to essl_core later, with defaults that keep the earlier behaviour."""
    ignored = {"seed", "overrides", *RESUMABLE_CHANGES}
    return all(saved[k] == v for k, v in wanted.items() if k in saved and k not in ignored)


def rng_state() -> dict:
    """Every RNG the training loop draws from, as data `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, recipe, **state) -> None:
    """Save `state` (epoch, step, model and optimizer state dicts, history, ...) with the recipe (a CIFAR or
    photonics one) and every RNG's state, atomically."""
    payload = {"format": PAYLOAD_FORMAT, "recipe": recipe_dict(recipe), "rng": rng_state(), **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    # As a uint8 tensor the payload is stored raw in the file (a Python bytes object would be pickled as text).
    payload_bytes = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    sealed = {"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "payload": payload_bytes}
    atomic_write(path, lambda fh: torch.save(sealed, fh))


def _torch_load(source, path: Path):
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EsslError(f"{path} is not a readable checkpoint ({first_line}); {RECOVER}") from None


def load_checkpoint(path: str | os.PathLike, recipe=None) -> dict:
    """Load a checkpoint safely; with `recipe`, refuse one written by a different recipe."""
    path = Path(path)
    if not path.exists():
        raise EsslError(f"no checkpoint at {path}")
    payload = _torch_load(path, path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        data = payload.get("payload")
        data = data.numpy().tobytes() if isinstance(data, torch.Tensor) and data.dtype == torch.uint8 else b""
        if hashlib.sha256(data).hexdigest() != payload.get("sha256"):
            raise EsslError(f"{path} is corrupted (its checksum does not match its contents); {RECOVER}")
        payload = _torch_load(io.BytesIO(data), path)
    if isinstance(payload, dict) and payload.get("format") == "essl-checkpoint/1":
        raise EsslError(f"{path} was written by an older essl_core (checkpoint format 1); train again with --restart")
    if not isinstance(payload, dict) or payload.get("format") != PAYLOAD_FORMAT:
        raise EsslError(f"{path} is not an essl_core checkpoint")
    if recipe is not None:
        saved, wanted = payload["recipe"], recipe_dict(recipe)
        diff = sorted(k for k in wanted if k not in RESUMABLE_CHANGES and saved.get(k) != wanted[k])
        if diff:
            details = ", ".join(f"{k}: {saved.get(k)!r} in checkpoint vs {wanted[k]!r}" for k in diff[:6])
            raise EsslError(
                f"{path} was written by a different recipe ({saved.get('name')}; {details}). "
                "Use another --run-dir, or --restart to discard it."
            )
    return payload


def recipe_from_checkpoint(payload: dict) -> Recipe:
    """Rebuild the Recipe a checkpoint was trained with."""
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in payload["recipe"].items()}
    return Recipe(**fields)
