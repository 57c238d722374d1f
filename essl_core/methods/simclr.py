"""SimCLR (CIFAR-10 official code): the BN projector and the cross-view InfoNCE (or NT-Xent as an option)."""

from __future__ import annotations

import torch

from ..losses import cross_view_infonce, nt_xent
from ..models import projector
from .base import Method


class SimCLR(Method):
    name = "simclr"
    e_head_second_relu = True

    def build_heads(self, feature_dim: int) -> None:
        self.projector = projector(feature_dim, self.recipe.proj_hidden, self.recipe.proj_dim)

    def invariance_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        r = self.recipe
        loss_fn = cross_view_infonce if r.ssl_loss == "cross_view" else nt_xent
        return loss_fn(z1, z2, r.temperature)
