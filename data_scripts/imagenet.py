"""Prepare an ImageNet cache (ImageNet-1k, Imagenette or another ImageNet class subset) for `essl_core`.

    python -m data_scripts.imagenet [--source PATH] [--side 64] [--encoding raw|jpeg] [--root DIR]

Without `--source` it downloads the official Imagenette (`imagenette2-320.tgz`, through torchvision). Sources: an
ImageFolder tree or tarball (`train/<wnid>/*`, `val/<wnid>/*`; e.g. fastai's `imagenette2-320.tgz`),
or a folder holding the official ILSVRC-2012 archives (`ILSVRC2012_devkit_t12.tar.gz`, `ILSVRC2012_img_train.tar`,
`ILSVRC2012_img_val.tar`), which torchvision's `ImageNet` dataset unpacks into `train/` and `val/` there. Classes
and counts are checked against Imagenette and ImageNet-1k, every image is decoded, resized once (shorter side to
`--side`, centre crop) and the cache, in a fixed shuffled order, records its source and the source's sha256.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import re
import sys
import tarfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from essl_core.data import ImageData, data_root
from essl_core.errors import EsslError, run_command
from essl_core.imagenet_data import (
    DEFAULT_SIDE,
    ENCODINGS,
    IMAGENET_1K,
    IMAGENETTE,
    IMAGENETTE_NAMES,
    KnownSet,
    cache_path,
    save_imagenet_cache,
)
from essl_core.io import sha256_file
from essl_core.lock import run_lock

from .imagefolder import (
    Item,
    check_source,
    check_writable,
    copy_note,
    count_in_tar,
    items_from_dir,
    items_from_tar,
    open_image,
    progress,
)

SPLITS = ("train", "val")
ILSVRC_DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
WNID = re.compile(r"n\d{8}")
ORDER_SEED = 0  # the cache's fixed shuffle, so that "the first n images" of a split cover every class


def resize_square(img: Image.Image, side: int) -> np.ndarray:
    """Shorter side to `side` (bicubic, antialiased), then the centre `side` x `side` crop, as RGB uint8."""
    img = img.convert("RGB")
    w, h = img.size
    scale = side / min(w, h)
    new = (max(side, round(w * scale)), max(side, round(h * scale)))
    img = img.resize(new, Image.BICUBIC)
    left, top = (new[0] - side) // 2, (new[1] - side) // 2
    return np.asarray(img.crop((left, top, left + side, top + side)), dtype=np.uint8)


def _decode_item(args: tuple[Item, int]) -> tuple[str, str, str, np.ndarray, str, tuple[int, int]]:
    (split, cls, name, raw), side = args
    formats: dict[str, int] = {}
    img = open_image(raw, name, formats)
    return split, cls, name, resize_square(img, side), next(iter(formats)), img.size


def _decoded(items: Iterable[Item], total: int | None, side: int, workers: int) -> Iterator[tuple]:
    """Decode and resize in `workers` processes, in order, a bounded chunk at a time (a pool would otherwise read
    a whole archive into its queue); the pool is torn down on any exit, Ctrl-C included."""
    jobs = ((item, side) for item in items)
    if workers <= 1:
        yield from progress(map(_decode_item, jobs), total, "decoding")
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        chunks = iter(lambda: pool.map(_decode_item, list(itertools.islice(jobs, 2048)), chunksize=32), [])
        yield from progress(itertools.chain.from_iterable(chunks), total, "decoding")


def _items(source: Path, meta: dict) -> tuple[Iterator[Item], int | None, tarfile.TarFile | None]:
    """The images of any supported source, how many there are (when cheap to know) and an archive to close."""
    if source.is_dir():
        if (source / ILSVRC_DEVKIT).exists():
            _unpack_ilsvrc(source)
            meta["format"] = "ILSVRC-2012 archives (unpacked by torchvision.datasets.ImageNet)"
        elif not ((source / "train").is_dir() and (source / "val").is_dir()):
            raise EsslError(f"{source} holds neither train/<wnid>/ and val/<wnid>/ folders nor {ILSVRC_DEVKIT}")
        else:
            meta["format"] = "imagefolder (folder)"
        return items_from_dir(source, SPLITS), None, None
    meta["source_sha256"] = sha256_file(source)
    meta["format"] = "imagefolder (tarball)"
    try:
        tar = tarfile.open(source, "r:*")  # noqa: SIM115 (read_source closes it after the last image)
        total = count_in_tar(tar, SPLITS)
    except Exception as exc:  # tarfile, gzip and zlib raise many types for a damaged archive
        raise EsslError(f"{source} is not a readable archive ({type(exc).__name__}: {exc})") from None
    if total == 0:
        tar.close()
        raise EsslError(f"{source} holds no images under train/<wnid>/ or val/<wnid>/")
    return items_from_tar(tar, SPLITS), total, tar


def _unpack_ilsvrc(source: Path) -> None:
    """Let torchvision's `ImageNet` dataset check and unpack the official archives (once; it needs ~150 GB)."""
    from torchvision.datasets import ImageNet

    for split in SPLITS:
        try:
            ImageNet(str(source), split=split)
        except (RuntimeError, OSError, ValueError) as exc:
            raise EsslError(f"the ILSVRC-2012 archives in {source} could not be read ({exc})") from None


def read_source(source: Path, side: int, workers: int) -> tuple[dict[str, list], dict]:
    """Decode every image: {split: [(wnid, name, pixels)]} and a provenance dict."""
    check_source(source)
    meta: dict = {"source": str(source.resolve())}
    items, total, tar = _items(source, meta)
    found: dict[str, list] = {s: [] for s in SPLITS}
    formats: dict[str, int] = {}
    sizes: set[tuple[int, int]] = set()
    try:
        for split, cls, name, pixels, fmt, size in _decoded(items, total, side, workers):
            if not WNID.fullmatch(cls):
                raise EsslError(f"class folder '{cls}' ({name}) is not an ImageNet wnid such as n01440764")
            found[split].append((cls, name, pixels))
            formats[fmt] = formats.get(fmt, 0) + 1
            sizes.add(size)
    except EsslError:
        raise
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EsslError(f"{source} could not be read to the end ({type(exc).__name__}: {exc})") from None
    finally:
        if tar is not None:
            tar.close()
    meta["image_formats"] = formats
    meta["source_sizes"] = _size_note(sizes)
    return found, meta


def _size_note(sizes: set[tuple[int, int]]) -> str:
    (w, h) = next(iter(sizes))
    return f"{w}x{h} squashed" if len(sizes) == 1 and w == h else "original sizes"


def identify(found: dict[str, list], allow_partial: bool) -> KnownSet:
    """Which ImageNet subset this is, with its counts verified (a partial copy only with `allow_partial`)."""
    classes = {split: sorted({c for c, _, _ in rows}) for split, rows in found.items()}
    for split, rows in found.items():
        if not rows:
            raise EsslError(f"no images under {split}/<wnid>/")
    if classes["train"] != classes["val"]:
        raise EsslError(f"train has {len(classes['train'])} classes and val {len(classes['val'])}: not one dataset")
    wnids = tuple(classes["train"])
    counts = {split: len(rows) for split, rows in found.items()}
    if wnids == IMAGENETTE.wnids:
        known = IMAGENETTE
    elif len(wnids) == IMAGENET_1K.n_classes:
        known = IMAGENET_1K
    else:
        if not allow_partial:
            raise EsslError(
                f"{len(wnids)} classes are neither Imagenette's 10 nor ImageNet-1k's 1000"
                " (pass --allow-partial to accept another ImageNet subset)"
            )
        return KnownSet(f"imagenet-{len(wnids)}class", f"ImageNet {len(wnids)}-class subset", wnids, len(wnids), counts)
    if counts != known.counts and not allow_partial:
        raise EsslError(
            f"{known.name} has {known.counts['train']:,} train and {known.counts['val']:,} val images; found"
            f" {counts['train']:,} and {counts['val']:,} (pass --allow-partial to accept an incomplete copy)"
        )
    return known


def assemble(found: dict[str, list], known: KnownSet, meta: dict, side: int, quality: int | None) -> ImageData:
    """Arrays in the cache's order: sorted by (class, file name), then one fixed permutation per split."""
    wnids = sorted({c for c, _, _ in found["train"]})
    index = {w: i for i, w in enumerate(wnids)}  # ImageFolder's (and ImageNet-1k's) class order
    rng = np.random.default_rng(ORDER_SEED)
    arrays = []
    for split in SPLITS:
        rows = sorted(found[split], key=lambda r: (index[r[0]], r[1]))
        order = rng.permutation(len(rows))
        arrays += [np.stack([rows[i][2] for i in order]), np.array([index[rows[i][0]] for i in order], np.int64)]
    counts = {split: len(found[split]) for split in SPLITS}
    partial = "" if counts == known.counts else f", partial: {counts['train']}/{counts['val']} images"
    cached = f"cached at {side}px" + (f" as JPEG q{quality}" if quality else "")
    name = f"{known.name} ({meta['source_sizes']}, {copy_note(meta['image_formats'])}{partial}; {cached})"
    meta = dict(
        meta,
        name=name,
        dataset=known.key,
        side=side,
        resize="shorter side to the cache side (Pillow bicubic), centre crop",
        order=f"sorted by (class, file name), then numpy default_rng({ORDER_SEED}) permutations of train and val",
        counts={"train": counts["train"], "test": counts["val"]},
        classes=wnids,
        class_names=[IMAGENETTE_NAMES[w] for w in wnids] if known is IMAGENETTE else wnids,
        prepared_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return ImageData(*arrays, meta=meta)


def download_imagenette(root: Path) -> Path:
    """The official Imagenette (320 px, aspect kept) through torchvision (md5-checked), unpacked under root/raw."""
    from torchvision.datasets import Imagenette

    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        try:
            Imagenette(str(raw), split=split, size="320px", download=True)
        except Exception as exc:  # network and archive errors come in many types
            raise EsslError(
                f"could not download Imagenette ({type(exc).__name__}: {exc}). Offline, pass a local copy: "
                "--source PATH (an ImageFolder tree or tarball of train/<wnid>/ and val/<wnid>/)"
            ) from None
    return raw / "imagenette2-320"


def prepare(
    source: Path | None,
    root: Path | None = None,
    side: int = DEFAULT_SIDE,
    encoding: str = "raw",
    quality: int = 90,
    allow_partial: bool = False,
    workers: int | None = None,
) -> tuple[Path, ImageData]:
    """Build a cache from `source`; return its path and what it holds."""
    if side < 8 or side > 512:
        raise EsslError(f"--side {side}: choose a side between 8 and 512 pixels")
    if not 1 <= quality <= 100:
        raise EsslError(f"--quality {quality}: a JPEG quality is between 1 and 100")
    check_writable(cache_path(IMAGENETTE.key, side, encoding, root).parent)  # every dataset's cache folder
    if source is None:
        source = download_imagenette(data_root(root))
    found, meta = read_source(Path(source), side, workers or os.cpu_count() or 1)
    known = identify(found, allow_partial)
    quality = quality if encoding == "jpeg" else None
    data = assemble(found, known, meta, side, quality)
    out = cache_path(known.key, side, encoding, root)
    with run_lock(out.parent, "data folder", "use another --root"):  # also removes what a killed write left there
        save_imagenet_cache(out, data, encoding, quality)
    return out, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.imagenet", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, help="ImageFolder tree/tarball or ILSVRC-2012 folder (default: download Imagenette)"
    )
    parser.add_argument("--root", type=Path, help="data root (default: $ESSL_DATA or ./data)")
    parser.add_argument("--side", type=int, default=DEFAULT_SIDE, help=f"cache side in pixels ({DEFAULT_SIDE})")
    parser.add_argument("--encoding", choices=ENCODINGS, default="raw", help="raw pixels, or JPEG (compact)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality with --encoding jpeg (90)")
    parser.add_argument("--workers", type=int, help="decoding processes (default: all CPU cores)")
    parser.add_argument("--allow-partial", action="store_true", help="accept an incomplete copy or other subset")
    args = parser.parse_args(argv)

    def command() -> None:
        out, data = prepare(
            args.source, args.root, args.side, args.encoding, args.quality, args.allow_partial, args.workers
        )
        size = out.stat().st_size / 2**20
        print(f"wrote {out} ({size:.1f} MiB): {data.name}, train {len(data.train_y)}, val {len(data.test_y)}")

    return run_command(command, "interrupted: nothing was written")


if __name__ == "__main__":
    sys.exit(main())
