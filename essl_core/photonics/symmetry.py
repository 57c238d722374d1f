"""Symmetry augmentations of periodic unit cells, drawn per sample on the device (the official `photonics/` code).

A unit cell's DOS does not change under translations (periodic boundary conditions) or the square's point
group, so these are label-preserving. Names follow the official flags.
"""

from __future__ import annotations

import torch

from ..errors import EsslError
from ..groups import ROTATION, Group

AUGMENTATIONS = ("translate_half", "translate_any", "flip", "rotate")

# A cell's pixels sit at x_i = -1/2 + i/R (MPB's grid), so its origin is a pixel (R/2, and 0 by periodicity),
# while torch.rot90 turns the array about its centre, half a pixel from it along each axis. A quarter turn of
# the periodic cell itself is rot90 and a one-pixel roll of each axis rot90 reversed (along such an axis rot90
# sends index i to R-1-i, the turn about the origin to -i mod R).
_ORIGIN_ROLLS = {1: (1, 0), 2: (1, 1), 3: (0, 1)}


def _turn_about_origin(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.roll(torch.rot90(x, k, dims=(2, 3)), _ORIGIN_ROLLS[k], dims=(2, 3))


ORIGIN_ROTATION = Group("four-fold rotation about the cell's origin", ROTATION.element_names, _turn_about_origin)
# What the E-task's quarter turns go about: "array" (torch.rot90, as the official code) or "origin" (ours).
ROTATION_CENTRES = {"array": ROTATION, "origin": ORIGIN_ROTATION}


def periodic_shift_each(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll image i by shifts[i] = (rows, columns) with wrap-around: one gather per axis, no host sync."""
    b, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None] - shifts[:, :1]) % h
    x = x.gather(2, rows[:, None, :, None].expand(b, c, h, w))
    cols = (torch.arange(w, device=x.device)[None] - shifts[:, 1:]) % w
    return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_symmetry(x: torch.Tensor, augmentations: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Each image gets its own random translation, flip and rotation, as named (applied in that order):

    translate_half: a roll by 0 or half the cell along each axis (official `translate_pbc`);
    translate_any: a roll by 0..R-1 pixels along each axis (`trans_cont`, which replaces translate_half);
    flip: no flip, flip of axis 0 or flip of axis 1, 1/3 each; rotate: rot90 by k in 0..3.
    """
    unknown = set(augmentations) - set(AUGMENTATIONS)
    if unknown:
        raise EsslError(f"unknown augmentation(s) {sorted(unknown)}; choose from {AUGMENTATIONS}")
    b, size = x.shape[0], x.shape[-1]

    def draw(high: int, *shape: int) -> torch.Tensor:
        return torch.randint(high, (b, *shape), generator=generator, device=generator.device).to(x.device)

    if "translate_any" in augmentations:
        x = periodic_shift_each(x, draw(size, 2))
    elif "translate_half" in augmentations:
        x = periodic_shift_each(x, draw(2, 2) * (size // 2))
    if "flip" in augmentations:
        k = draw(3).view(-1, 1, 1, 1)
        x = torch.where(k == 1, x.flip(2), torch.where(k == 2, x.flip(3), x))
    if "rotate" in augmentations:
        x = ROTATION.apply_each(x, draw(4))
    return x
