"""The one learning-rate schedule: per step, an optional linear warm-up from 0, then a half-cosine to
`final_ratio` x the base (0: the official CIFAR-10 and photonics schedules and the linear probe's; 0.001: the
official ImageNet SimCLR and Barlow Twins schedules)."""

from __future__ import annotations

import math


def cosine_lr(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0, final_ratio: float = 0.0) -> float:
    """The learning rate at `step` (0-based) of `total_steps`."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    q = 0.5 * (1 + math.cos(math.pi * progress))
    return base_lr * q + base_lr * final_ratio * (1 - q)
