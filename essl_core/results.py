"""Result records: one JSON file per run, carrying its numbers and everything needed to trust them."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from .errors import EsslError
from .io import write_json

SCHEMA = "essl-result/1"
REPO_ROOT = Path(__file__).resolve().parent.parent
CARRIED_COMMIT = REPO_ROOT / ".gpu" / "commit.json"  # written by `make gpu-carry`


def git_commit() -> dict:
    """The commit of the code that ran, and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None and CARRIED_COMMIT.exists():  # a copy of the tree without .git (a lent GPU machine)
        return {**json.loads(CARRIED_COMMIT.read_text()), "from": str(CARRIED_COMMIT.relative_to(REPO_ROOT))}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (platform.processor() is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_name()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def peak_memory(device: torch.device) -> dict:
    """Peak device memory (CUDA allocator) or peak resident memory of this process (CPU), in bytes."""
    if device.type == "cuda":
        return {"kind": "cuda max_memory_allocated", "bytes": int(torch.cuda.max_memory_allocated(device))}
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"kind": "process peak RSS", "bytes": int(rss_kib) * 1024}


def provenance(device: torch.device) -> dict:
    """Code, software and hardware that produced a result."""
    return {
        "git": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "device_name": device_name(device),
        "platform": platform.platform(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def dataset_info(meta: dict) -> dict:
    """The dataset block of a record, from the cache's metadata."""
    keys = ("name", "format", "source", "source_sha256", "counts", "subset", "image_formats")
    return {k: meta[k] for k in keys if k in meta}


def make_record(kind: str, **fields) -> dict:
    """A record with the schema tag first; `fields` carry config, metrics, curves and provenance."""
    return {"schema": SCHEMA, "kind": kind, **fields}


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write a record atomically and return its path."""
    if record.get("schema") != SCHEMA:
        raise ValueError("not a result record")
    write_json(path, record)
    return Path(path)


def read_record(path: str | os.PathLike) -> dict:
    """Read one record, checking its schema tag; anything else is a one-line error."""
    try:
        record = json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise EsslError(f"{path} is not a readable record ({exc}); delete it (or train again with --restart)") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise EsslError(f"{path} is not an {SCHEMA} record")
    return record


def load_records(directory: str | os.PathLike, kind: str | None = None) -> dict[str, dict]:
    """Every record in `directory` (by file stem), optionally only those of one kind, sorted by name."""
    records = {p.stem: read_record(p) for p in sorted(Path(directory).glob("*.json"))}
    return {k: r for k, r in records.items() if kind is None or r["kind"] == kind}


def describe(record: dict) -> str:
    """One line naming where a result comes from: tier, hardware, dataset copy, commit."""
    prov = record["provenance"]
    commit = (prov["git"]["commit"] or "unknown")[:8] + ("+dirty" if prov["git"]["dirty"] else "")
    parts = [f"{record['tier']} tier"] if "tier" in record else []  # e.g. the solver comparison has no tier
    parts += [prov["device_name"]] + ([record["dataset"]["name"]] if "dataset" in record else [])
    return ", ".join([*parts, f"torch {prov['torch']}", f"commit {commit}"])
