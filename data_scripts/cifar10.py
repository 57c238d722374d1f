"""Prepare the CIFAR-10 cache used by `essl_core`.

    python -m data_scripts.cifar10 [--source PATH] [--root DIR]

Sources: the official `cifar-10-python.tar.gz` (downloaded through torchvision when no `--source` is given),
an extracted `cifar-10-batches-py/` folder, or an ImageFolder tree or tarball (`train/<class>/*`,
`test/<class>/*`) such as the shared JPEG copy. The cache records where it came from; counts, classes and
image sizes are verified, and it is written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import ClassVar

import numpy as np

from essl_core.data import (
    CIFAR10_CLASSES,
    CIFAR10_PER_CLASS,
    ImageData,
    cache_path,
    data_root,
    load_cifar10,
    save_cache,
)
from essl_core.errors import EsslError, run_command
from essl_core.io import sha256_file
from essl_core.lock import run_lock

from .imagefolder import (
    check_source,
    check_writable,
    copy_note,
    count_in_tar,
    items_from_dir,
    items_from_tar,
    open_image,
    progress,
)

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


# ---------------------------------------------------------------------------------------------------------
# Official python pickles
# ---------------------------------------------------------------------------------------------------------
class _BatchUnpickler(pickle.Unpickler):
    """Loads CIFAR batch pickles but refuses any object other than plain containers and numpy arrays."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR-10 batch")


def _read_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # any corruption of the pickle ends here
        raise EsslError(f"{name} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise EsslError(f"{name}: expected N x 3072 pixels (32x32 RGB) and N labels, got {data.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _assemble_pickles(files: dict[str, bytes]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    missing = [n for n in (*TRAIN_BATCHES, "test_batch") if n not in files]
    if missing:
        raise EsslError(f"the CIFAR-10 python archive lacks {', '.join(missing)}")
    train = [_read_batch(files[n], n) for n in TRAIN_BATCHES]
    return {
        "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        "test": _read_batch(files["test_batch"], "test_batch"),
    }


def _pickles_from_dir(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _pickles_from_tar(tar: tarfile.TarFile) -> dict[str, bytes]:
    wanted = {*TRAIN_BATCHES, "test_batch"}
    files = {}
    for member in tar:
        name = PurePosixPath(member.name).name
        if member.isfile() and name in wanted:
            files[name] = tar.extractfile(member).read()
    return files


# ---------------------------------------------------------------------------------------------------------
# ImageFolder trees (train/<class>/*, test/<class>/*), as a folder or a tarball
# ---------------------------------------------------------------------------------------------------------
SPLITS = ("train", "test")


def _decode(raw: bytes, name: str, formats: dict) -> np.ndarray:
    img = open_image(raw, name, formats)
    if img.size != (32, 32):
        raise EsslError(f"{name} is {img.size[0]}x{img.size[1]} pixels; CIFAR-10 images are 32x32")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _assemble_images(items: Iterable[tuple[str, str, str, bytes]], formats: dict):
    """Decode (split, class, name, bytes) items into per-split arrays with official label order."""
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    for split, cls, name, raw in items:
        if cls not in CIFAR10_CLASSES:
            raise EsslError(f"unknown class folder '{cls}' ({name}); expected {', '.join(CIFAR10_CLASSES)}")
        found[split].append((CIFAR10_CLASSES.index(cls), name, _decode(raw, name, formats)))
    out = {}
    for split, rows in found.items():
        if not rows:
            raise EsslError(f"no images under {split}/<class>/: this is not a CIFAR-10 ImageFolder source")
        rows.sort(key=lambda r: (r[0], r[1]))
        out[split] = (np.stack([r[2] for r in rows]), np.array([r[0] for r in rows], dtype=np.int64))
    return out


# ---------------------------------------------------------------------------------------------------------
# Reading any source
# ---------------------------------------------------------------------------------------------------------
def _qualified(name: str, note: str) -> str:
    """Add `note` to a dataset name: "CIFAR-10" -> "CIFAR-10 (note)", "X (a)" -> "X (a, note)"."""
    return f"{name[:-1]}, {note})" if name.endswith(")") else f"{name} ({note})"


def _name_for(formats: dict) -> tuple[str, dict]:
    """The dataset name for an ImageFolder source, from the image formats actually found."""
    return f"CIFAR-10 ({copy_note(formats)})", dict(formats)


def read_source(source: Path) -> tuple[dict, dict]:
    """Read any supported source into {'train': (x, y), 'test': (x, y)} and a provenance dict."""
    check_source(source)
    formats: dict = {}
    meta: dict = {"source": str(source.resolve())}
    if source.is_dir():
        batches = source / "cifar-10-batches-py" if (source / "cifar-10-batches-py").is_dir() else source
        if (batches / "data_batch_1").exists():
            meta.update(format="cifar-10-python (folder)", name="CIFAR-10")
            return _assemble_pickles(_pickles_from_dir(batches)), meta
        if (source / "train").is_dir() or (source / "test").is_dir():
            splits = _assemble_images(progress(items_from_dir(source, SPLITS), None, "decoding"), formats)
            name, info = _name_for(formats)
            meta.update(format="imagefolder (folder)", name=name, image_formats=info)
            return splits, meta
        raise EsslError(f"{source} holds neither cifar-10-batches-py nor train/<class>/ and test/<class>/ folders")
    meta["source_sha256"] = sha256_file(source)
    try:
        with tarfile.open(source, "r:*") as tar:
            names = tar.getnames()
            if any(PurePosixPath(n).name == "data_batch_1" for n in names):
                meta.update(format="cifar-10-python (tarball)", name="CIFAR-10")
                meta["official_md5_match"] = hashlib.md5(source.read_bytes()).hexdigest() == OFFICIAL_MD5
                return _assemble_pickles(_pickles_from_tar(tar)), meta
            n_img = count_in_tar(tar, SPLITS)
            if n_img == 0:
                raise EsslError(f"{source} is an archive but holds no CIFAR-10 batches or train/test images")
            splits = _assemble_images(progress(items_from_tar(tar, SPLITS), n_img, "decoding"), formats)
    except EsslError:
        raise
    except Exception as exc:  # tarfile, gzip and zlib raise many types for a damaged archive
        raise EsslError(f"{source} is not a readable CIFAR-10 archive ({type(exc).__name__}: {exc})") from None
    name, info = _name_for(formats)
    meta.update(format="imagefolder (tarball)", name=name, image_formats=info)
    return splits, meta


def verify(splits: dict, allow_partial: bool) -> dict:
    """Check labels and per-class counts; return the counts. Partial sources must still cover all classes."""
    counts = {}
    for split, (x, y) in splits.items():
        if x.shape[1:] != (32, 32, 3) or len(x) != len(y):
            raise EsslError(f"{split}: images have shape {x.shape[1:]}, expected 32x32x3")
        if len(y) and (y.min() < 0 or y.max() >= len(CIFAR10_CLASSES)):
            raise EsslError(f"{split}: labels outside 0..9")
        per_class = np.bincount(y, minlength=len(CIFAR10_CLASSES))
        counts[split] = len(y)
        expected = CIFAR10_PER_CLASS[split]
        if allow_partial:
            if (per_class == 0).any():
                missing = [CIFAR10_CLASSES[i] for i in np.flatnonzero(per_class == 0)]
                raise EsslError(f"{split}: no images of class {', '.join(missing)}")
        elif (per_class != expected).any():
            found = dict(zip(CIFAR10_CLASSES, per_class.tolist(), strict=True))
            raise EsslError(
                f"{split}: expected {expected} images per class, found {found}"
                " (pass --allow-partial to accept an incomplete copy)"
            )
    return counts


def prepare(source: Path | None, root: Path | None = None, allow_partial: bool = False) -> Path:
    """Build the cache from `source` (or the official download) and return its path."""
    out = cache_path(root)
    check_writable(out.parent)
    if source is None:
        source = _download(data_root(root))
    splits, meta = read_source(Path(source))
    counts = verify(splits, allow_partial)
    full = {s: CIFAR10_PER_CLASS[s] * len(CIFAR10_CLASSES) for s in counts}
    if counts != full:
        meta["name"] = _qualified(meta["name"], f"partial: {counts['train']}/{counts['test']} images")
    meta.update(counts=counts, classes=list(CIFAR10_CLASSES), prepared_at=datetime.now(timezone.utc).isoformat())
    data = ImageData(*splits["train"], *splits["test"], meta=meta)
    with run_lock(out.parent, "data folder", "use another --root"):  # also removes what a killed write left there
        save_cache(out, data)
    return out


def _download(root: Path) -> Path:
    """Download the official archive through torchvision into `root/raw` (atomically) and return its path."""
    from torchvision.datasets.utils import download_url

    target = root / "raw" / "cifar-10-python.tar.gz"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            download_url(OFFICIAL_URL, tmp, filename=target.name, md5=OFFICIAL_MD5)
        except Exception as exc:
            raise EsslError(
                f"could not download CIFAR-10 ({type(exc).__name__}: {exc}). Offline, pass a local copy: "
                "--source PATH (a cifar-10-python.tar.gz, or an ImageFolder tree or tarball)"
            ) from None
        (Path(tmp) / target.name).replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.cifar10", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="local archive or folder (default: download the official one)")
    parser.add_argument("--root", type=Path, help="data root (default: $ESSL_DATA or ./data)")
    parser.add_argument(
        "--allow-partial", action="store_true", help="accept fewer images than CIFAR-10 (marked in the name)"
    )
    args = parser.parse_args(argv)

    def command() -> None:
        out = prepare(args.source, args.root, args.allow_partial)
        meta = load_cifar10(args.root).meta
        print(f"wrote {out}: {meta['name']}, train {meta['counts']['train']}, test {meta['counts']['test']}")

    return run_command(command, "interrupted: nothing was written")


if __name__ == "__main__":
    sys.exit(main())
