"""Finite transformation groups acting on image batches (NCHW, pixel values in [0, 1]).

Each group knows its size, the name of each element, and how to apply an element; `orbit` produces every
transformed copy of a batch with its labels in block layout. The same object serves as an invariance
augmentation (apply a random element) and as an equivariance target (predict the element).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .augment import channel_constant

# ITU-R 601-2 luma, the weights PIL's convert("L") and torchvision's rgb_to_grayscale use.
LUMA = (0.299, 0.587, 0.114)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    w = channel_constant(LUMA, x)
    return (x * w).sum(1, keepdim=True).expand_as(x).contiguous()


@dataclass(frozen=True)
class Group:
    """A finite group of image transformations; element 0 is the identity."""

    name: str
    element_names: tuple[str, ...]
    act: Callable[[torch.Tensor, int], torch.Tensor]

    @property
    def size(self) -> int:
        return len(self.element_names)

    def apply(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Element k applied to every image of the batch."""
        if not 0 <= k < self.size:
            raise ValueError(f"{self.name} has elements 0..{self.size - 1}, not {k}")
        return x if k == 0 else self.act(x, k)

    def orbit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every element applied to the batch, in block layout: [all k=0 | all k=1 | ...], and the labels."""
        copies = torch.cat([self.apply(x, k) for k in range(self.size)])
        labels = torch.arange(self.size, device=x.device).repeat_interleave(len(x))
        return copies, labels


ROTATION = Group("four-fold rotation", ("0°", "90°", "180°", "270°"), lambda x, k: torch.rot90(x, k, dims=(2, 3)))
HFLIP = Group("horizontal flip", ("identity", "flipped"), lambda x, k: x.flip(3))
VFLIP = Group("vertical flip", ("identity", "flipped"), lambda x, k: x.flip(2))
GRAYSCALE = Group("grayscale", ("colour", "grayscale"), lambda x, k: _grayscale(x))
INVERSION = Group("colour inversion", ("identity", "inverted"), lambda x, k: 1.0 - x)

GROUPS: dict[str, Group] = {
    "rotation": ROTATION,
    "hflip": HFLIP,
    "vflip": VFLIP,
    "grayscale": GRAYSCALE,
    "inversion": INVERSION,
}


def rotate4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, in block layout, with their labels (the E-SSL rotation batch).

    Class k is `torch.rot90(x, k, dims=(2, 3))` (k = 1 turns from the H axis towards the W axis).
    """
    return ROTATION.orbit(x)
