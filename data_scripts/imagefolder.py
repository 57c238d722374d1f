"""Reading ImageFolder sources (`<split>/<class>/<image>`, as a folder or a tarball), shared by the data scripts:
which files are images of which split and class, their bytes, and the JPEG quality they were saved with."""

from __future__ import annotations

import functools
import io
import os
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from essl_core.errors import EsslError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}
# IJG (libjpeg) standard luminance quantisation table (quality 50), row-major as Pillow reports it.
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
)  # fmt: skip
Item = tuple[str, str, str, bytes]  # (split, class folder, file name, bytes)


def check_source(source: Path) -> None:
    """A `--source` must be a folder or a regular file: a device or a pipe would be read for ever."""
    if not source.exists():
        raise EsslError(f"--source {source} does not exist")
    if not (source.is_dir() or source.is_file()):
        raise EsslError(f"--source {source} is neither a folder nor a regular file")


def check_writable(folder: Path) -> None:
    """Fail now, not after decoding every image, when the cache's folder cannot be made or written; nothing is
    created here (a failed run leaves no folder behind)."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise EsslError(f"cannot write the cache under {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EsslError(f"cannot write the cache under {folder}: {existing} is not writable")


def jpeg_quality(img: Image.Image) -> int | None:
    """The IJG quality factor whose luminance table the JPEG uses, or None if it matches none."""
    tables = getattr(img, "quantization", None)
    return _quality_of_table(tuple(tables[0])) if tables and 0 in tables else None


@functools.lru_cache(maxsize=64)
def _quality_of_table(table: tuple[int, ...]) -> int | None:
    luma = np.asarray(table)
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        ref = np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)
        if np.array_equal(ref, luma):
            return q
    return None


def format_key(img: Image.Image) -> str:
    """ "JPEG q75", "PNG", ...: how an image file was stored, for the dataset's name and provenance."""
    q = jpeg_quality(img) if img.format == "JPEG" else None
    return f"{img.format}" + (f" q{q}" if q else "")


def split_class(path: PurePosixPath, splits: tuple[str, ...]) -> tuple[str, str] | None:
    """(split, class) for `.../<split>/<class>/<image file>`, else None."""
    parts = path.parts
    if len(parts) >= 3 and parts[-3] in splits and path.suffix.lower() in IMAGE_SUFFIXES:
        return parts[-3], parts[-2]
    return None


def items_from_dir(folder: Path, splits: tuple[str, ...]) -> Iterator[Item]:
    """Every image under `folder/<split>/<class>/`, in sorted path order."""
    for path in sorted(folder.rglob("*")):
        sc = split_class(PurePosixPath(path.relative_to(folder).as_posix()), splits)
        if sc and path.is_file():
            yield (*sc, str(path), path.read_bytes())


def items_from_tar(tar: tarfile.TarFile, splits: tuple[str, ...]) -> Iterator[Item]:
    """Every image under `<split>/<class>/` in an open tarball, in archive order."""
    for member in tar:
        sc = split_class(PurePosixPath(member.name), splits)
        if sc and member.isfile():
            yield (*sc, member.name, tar.extractfile(member).read())


def count_in_tar(tar: tarfile.TarFile, splits: tuple[str, ...]) -> int:
    """How many images `items_from_tar` will yield (for the progress bar); reads the archive's index."""
    return sum(split_class(PurePosixPath(n), splits) is not None for n in tar.getnames())


def progress(items: Iterable, total: int | None, desc: str) -> Iterable:
    """A progress bar on stderr (silent when stderr is not a terminal)."""
    return tqdm(items, total=total, desc=desc, unit="img", mininterval=1.0, file=sys.stderr, disable=None)


def open_image(raw: bytes, name: str, formats: dict[str, int]) -> Image.Image:
    """Decode one image file fully, counting its storage format in `formats`; one-line error if unreadable."""
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Exception as exc:
        raise EsslError(f"{name} is not a readable image ({exc})") from None
    key = format_key(img)
    formats[key] = formats.get(key, 0) + 1
    return img


def copy_note(formats: dict[str, int]) -> str:
    """How a copy is stored, for its dataset name: "JPEG q75 copy", "PNG copy", "mixed-format copy"."""
    if len(formats) != 1:
        return "mixed-format copy"
    (key,) = formats
    return "JPEG copy, unknown quality" if key == "JPEG" else f"{key} copy"
