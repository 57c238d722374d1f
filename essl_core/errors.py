"""The one exception type that reaches the user as a short message instead of a traceback, and the one wrapper
that turns it into that message."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class EsslError(Exception):
    """Bad input or a state the user can fix: the CLI prints the message and exits with status 2."""


def run_command(action: Callable[[], object], interrupted: str = "interrupted") -> int:
    """Run a command's body and return its exit status: 0; 2 with `error: <message>` (one line) for an
    EsslError or an OSError (naming its path); 130 with the one line `interrupted` for Ctrl-C. Every command-line
    entry point goes through it."""
    try:
        action()
    except EsslError as exc:  # one line even when a library's text inside the message has several
        print("error: " + "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()), file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written (read-only, full, not a folder): say which
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return 0


def attempt(name: str, action: Callable[[], T], failures: dict[str, str]) -> T | None:
    """Run one step of a longer job in its own guard: on any exception, note `name: error` in `failures`, say so
    in one line and return None, so that the steps after it still run (the GPU runner, the benchmark)."""
    try:
        return action()
    except Exception as exc:
        failures[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        print(f"{name} failed: {failures[name]}", file=sys.stderr, flush=True)
        return None
