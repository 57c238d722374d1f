"""The prepared ImageNet caches (ImageNet-1k, Imagenette, or another subset of ImageNet classes) for the small
tiers: every image resized once to a square side, train and val, as one `.npz` with labels and provenance.

Two encodings: `raw` (uint8 pixels; loading is a memory copy) and `jpeg` (each resized image re-encoded as a
JPEG at a stated quality: small enough to carry to a lent GPU machine, decoded once when loaded). The full tier
does not use a cache: it reads the original JPEGs (`data/imagenet/<dataset>/{train,val}/<wnid>/`) as the
official code does.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .data import ImageData, data_root
from .errors import EsslError
from .io import read_npz, write_npz

CACHE_VERSION = 1
ENCODINGS = ("raw", "jpeg")
DEFAULT_SIDE = 64
PREPARE_HINT = (
    "python -m data_scripts.imagenet --source PATH (PATH: an ImageFolder tree or tarball of train/<wnid>/ and "
    "val/<wnid>/, such as imagenette2-320.tgz, or a folder with the official ILSVRC-2012 archives)"
)


@dataclass(frozen=True)
class KnownSet:
    """An ImageNet class subset whose classes and image counts the data script verifies."""

    key: str
    name: str
    wnids: tuple[str, ...] | None  # None: all 1000 ILSVRC-2012 classes (the devkit's list)
    n_classes: int
    counts: dict[str, int]


IMAGENETTE_NAMES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn", "n03417042": "garbage truck",
    "n03425413": "gas pump", "n03445777": "golf ball", "n03888257": "parachute",
}  # fmt: skip
IMAGENETTE = KnownSet("imagenette", "Imagenette", tuple(IMAGENETTE_NAMES), 10, {"train": 9469, "val": 3925})
IMAGENET_1K = KnownSet("imagenet-1k", "ImageNet-1k", None, 1000, {"train": 1_281_167, "val": 50_000})
KNOWN_SETS = {s.key: s for s in (IMAGENETTE, IMAGENET_1K)}


def cache_path(dataset: str, side: int, encoding: str = "raw", root: str | os.PathLike | None = None) -> Path:
    """Where a cache lives: `<data root>/imagenet/<dataset>-<side>px[-jpeg].npz`."""
    suffix = "" if encoding == "raw" else f"-{encoding}"
    return data_root(root) / "imagenet" / f"{dataset}-{side}px{suffix}.npz"


def encode_jpeg(images: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S, 3) uint8 -> all JPEG files concatenated (uint8) and their N + 1 offsets."""
    blobs = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=quality)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    return np.concatenate(blobs) if blobs else np.zeros(0, np.uint8), offsets


def decode_jpeg(blob: np.ndarray, offsets: np.ndarray, side: int) -> np.ndarray:
    """The inverse of `encode_jpeg` (Pillow, on the CPU)."""
    out = np.empty((len(offsets) - 1, side, side, 3), dtype=np.uint8)
    for i in range(len(out)):
        raw = blob[offsets[i] : offsets[i + 1]].tobytes()
        out[i] = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    return out


def save_imagenet_cache(path: str | os.PathLike, data: ImageData, encoding: str, quality: int | None) -> None:
    """Write a cache atomically; `meta` must hold the dataset key, side and classes."""
    meta = dict(data.meta, version=CACHE_VERSION, encoding=encoding, jpeg_quality=quality)
    if encoding == "raw":
        arrays = {"train_x": data.train_x, "test_x": data.test_x}
    else:
        arrays = {}
        for split, x in (("train", data.train_x), ("test", data.test_x)):
            arrays[f"{split}_jpeg"], arrays[f"{split}_offsets"] = encode_jpeg(x, quality)
    write_npz(path, {**arrays, "train_y": data.train_y, "test_y": data.test_y}, meta)


def load_imagenet(
    dataset: str = IMAGENETTE.key, side: int = DEFAULT_SIDE, root: str | os.PathLike | None = None
) -> ImageData:
    """Load a prepared cache (the raw one if both encodings exist), or fail with the command that prepares it."""
    paths = [cache_path(dataset, side, enc, root) for enc in ENCODINGS]
    path = next((p for p in paths if p.exists()), None)
    if path is None:
        raise EsslError(
            f"no {side}-px cache of {dataset} (looked for {paths[0]}). Prepare it with: {PREPARE_HINT} --side {side}"
        )
    try:
        z, meta = read_npz(path)
        if meta.get("version") != CACHE_VERSION:
            raise EsslError(f"the cache {path} has an old format; prepare it again: {PREPARE_HINT}")
        if meta["encoding"] == "jpeg":
            xs = [decode_jpeg(z[f"{s}_jpeg"], z[f"{s}_offsets"], side) for s in ("train", "test")]
        else:
            xs = [z["train_x"], z["test_x"]]
        data = ImageData(xs[0], z["train_y"], xs[1], z["test_y"], meta)
    except (ValueError, KeyError, OSError) as exc:
        raise EsslError(f"the cache {path} is unreadable ({exc}); prepare it again: {PREPARE_HINT}") from None
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        if x.dtype != np.uint8 or x.shape[1:] != (side, side, 3) or len(x) != len(y):
            raise EsslError(f"the cache {path} holds {x.shape} {x.dtype} images for {len(y)} labels")
    return data
