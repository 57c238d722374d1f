"""Atomic file writes: a reader never sees a half-written file, an interruption leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # what open() would give (0644 under the usual umask), not mkstemp's 0600
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(fh)` on a binary temporary file and move it to `path` when it succeeded."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write arrays and a JSON metadata dict as one uncompressed `.npz` (loading is a memory copy), atomically."""
    payload = {**arrays, "meta_json": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    atomic_write(path, lambda fh: np.savez(fh, **payload))


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read what `write_npz` wrote (no pickles); raises ValueError for anything unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta_json"]).decode())
            return {k: z[k] for k in z.files if k != "meta_json"}, meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
