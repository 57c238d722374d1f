"""Barlow Twins (the official `imagenet/barlowtwins/main.py`): a three-layer projector and the cross-correlation loss
with off-diagonal weight 0.0051. Its E-head has no ReLU after the second LayerNorm, as SimSiam's."""

from __future__ import annotations

import torch
from torch import nn

from ..losses import barlow_twins_loss
from ..models import mlp_projector
from .base import Method

OFF_DIAGONAL_WEIGHT = 0.0051  # the official value (ImageNet)


class BarlowTwins(Method):
    name = "barlowtwins"

    def build_heads(self, feature_dim: int) -> None:
        self.projector = mlp_projector(feature_dim, self.recipe.proj_hidden, self.recipe.proj_dim, 2, "none")
        # The official normalisation of z before the cross-correlation (synchronised over ranks under DDP).
        self.normalise = nn.BatchNorm1d(self.recipe.proj_dim, affine=False)

    def invariance_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, OFF_DIAGONAL_WEIGHT, self.normalise)
