"""The one learning-rate schedule: per step, an optional linear warm-up from 0, then a half-cosine to 0 (the
official CIFAR-10 and photonics schedules and the linear probe's)."""

from __future__ import annotations

import math


def cosine_lr(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0) -> float:
    """The learning rate at `step` (0-based) of `total_steps`."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))
