"""Image datasets in memory (`ImageData`) and the prepared CIFAR-10 cache: one uint8 `.npz` file with train and
test images, labels and provenance. The ImageNet caches (`imagenet_data.py`) load into the same `ImageData`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EsslError
from .io import read_npz, write_npz

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# Images per class in the official splits.
CIFAR10_PER_CLASS = {"train": 5000, "test": 1000}
CACHE_VERSION = 1
PREPARE_HINT = (
    "python -m data_scripts.cifar10 --source PATH "
    "(PATH: cifar-10-python.tar.gz, cifar-10-batches-py/, or an ImageFolder tree/tarball of train/<class>/ and "
    "test/<class>/; without --source it downloads the official archive)"
)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root` if given, else `$ESSL_DATA`, else `./data`."""
    return Path(root if root is not None else os.environ.get("ESSL_DATA", "data"))


def cache_path(root: str | os.PathLike | None = None) -> Path:
    """Where the CIFAR-10 cache lives under the data root."""
    return data_root(root) / "cifar10" / "cifar10.npz"


@dataclass
class ImageData:
    """A labelled image dataset in memory: images (N, H, W, 3) uint8 (HWC), labels int64. `test_*` is the held-out
    split that evaluation uses (CIFAR-10's test set, ImageNet's val set, as in the SSL literature)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    meta: dict

    @property
    def name(self) -> str:
        """The dataset name every result must carry, e.g. "CIFAR-10 (JPEG q75 copy)"."""
        return self.meta["name"]

    def test_sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """`n` test images and labels with the classes interleaved (0, 1, ..., 9, 0, 1, ...), each class's first
        images in the split's order: what a chapter shows or measures as "a few images". The cache is sorted by
        class, so `test_x[:n]` would be airplanes alone."""
        classes = np.unique(self.test_y)
        by_class = [np.flatnonzero(self.test_y == c) for c in classes]
        if n > len(classes) * min(len(idx) for idx in by_class):
            raise EsslError(f"a class-balanced sample of {n} test images is more than {self.name} holds")
        order = np.array([by_class[i % len(classes)][i // len(classes)] for i in range(n)], dtype=np.int64)
        return self.test_x[order], self.test_y[order]

    def subset(self, n_train: int | None, n_test: int | None, seed: int = 0) -> ImageData:
        """A class-balanced subset (same classes, `n/10` images each), drawn deterministically from `seed`."""
        rng = np.random.default_rng(seed)
        tx, ty = _balanced(self.train_x, self.train_y, n_train, rng)
        vx, vy = _balanced(self.test_x, self.test_y, n_test, rng)
        meta = dict(self.meta, subset={"train": len(ty), "test": len(vy), "seed": seed})
        return ImageData(tx, ty, vx, vy, meta)


def _balanced(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator):
    if n is None or n >= len(y):
        return x, y
    classes = np.unique(y)
    per_class, extra = divmod(n, len(classes))
    picks = []
    for i, c in enumerate(classes):
        idx = np.flatnonzero(y == c)
        picks.append(rng.choice(idx, size=min(len(idx), per_class + (i < extra)), replace=False))
    order = np.sort(np.concatenate(picks))
    return x[order], y[order]


def save_cache(path: str | os.PathLike, data: ImageData) -> None:
    """Write the cache atomically (uncompressed, so loading is a memory copy)."""
    arrays = {"train_x": data.train_x, "train_y": data.train_y, "test_x": data.test_x, "test_y": data.test_y}
    write_npz(path, arrays, dict(data.meta, version=CACHE_VERSION))


def load_cifar10(root: str | os.PathLike | None = None) -> ImageData:
    """Load the prepared cache, or fail with the command that prepares it."""
    path = cache_path(root)
    if not path.exists():
        raise EsslError(f"CIFAR-10 is not prepared (no {path}). Prepare it with: {PREPARE_HINT}")
    try:
        z, meta = read_npz(path)
        data = ImageData(z["train_x"], z["train_y"], z["test_x"], z["test_y"], meta)
    except (ValueError, KeyError) as exc:
        raise EsslError(f"the CIFAR-10 cache {path} is unreadable ({exc}); prepare it again: {PREPARE_HINT}") from None
    if meta.get("version") != CACHE_VERSION:
        raise EsslError(f"the CIFAR-10 cache {path} has an old format; prepare it again: {PREPARE_HINT}")
    for split_x in (data.train_x, data.test_x):
        if split_x.dtype != np.uint8 or split_x.shape[1:] != (32, 32, 3):
            raise EsslError(f"the CIFAR-10 cache {path} holds {split_x.shape} {split_x.dtype} images")
    return data
