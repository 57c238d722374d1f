"""Finite transformation groups acting on image batches, used as equivariance targets."""

from __future__ import annotations

import torch


def rotate4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, in block layout, with their labels.

    Returns `cat([rot90(x, k) for k in 0..3])` and labels `[0]*B + [1]*B + [2]*B + [3]*B`; class k is
    `torch.rot90(x, k, dims=(2, 3))` (k = 1 turns from the H axis towards the W axis).
    """
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return rotated, labels
