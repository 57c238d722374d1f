"""One process per run directory (or data folder): an advisory lock that the OS releases when its holder exits
(`kill -9` too), so it never goes stale, and the holder's description for whoever is refused."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EsslError

LOCK = ".lock"


class Busy(EsslError):
    """Another process holds the lock; `holder` says which."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder


@contextmanager
def run_lock(
    directory: str | os.PathLike, what: str = "run directory", hint: str = "use another --run-dir", wait: bool = False
) -> Iterator[None]:
    """Hold `directory`'s lock for the block: wait for it (`wait`), or else fail at once with `Busy`, in one line
    that names the holder (and `hint`). Temporary files that an interrupted atomic write left behind are removed
    once the lock is held (nothing else writes there)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise EsslError(f"cannot use {directory} as a {what} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.read(fd, 2000).decode(errors="replace").strip() or "another process"
            raise Busy(f"{directory} is in use by {holder}; wait for it, or {hint}", holder) from None
        os.ftruncate(fd, 0)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} since {since} ({command})".encode(), 0)
        for stale in directory.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # releases the lock
