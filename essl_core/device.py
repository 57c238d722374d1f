"""Where a run computes, and its seeds."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import EsslError


def resolve_device(name: str = "auto", distributed: bool = False) -> torch.device:
    """'auto' picks CUDA when present, else the CPU; asking for an absent CUDA or an unknown device is an error.
    Under torchrun (`distributed`) a CUDA process takes the GPU of its LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed and name == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EsslError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise EsslError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EsslError("--device cuda was asked for, but this machine has no usable CUDA GPU")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype of the `amp` setting ("bf16", "fp16" or "off") on `device`; CPU runs stay float32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp) if device.type == "cuda" else None


def autocast(device: torch.device, amp: str = "bf16") -> torch.autocast:
    """Autocast as the `amp` setting asks, on CUDA only (training, and the evaluations that follow it)."""
    dtype = amp_dtype(device, amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
