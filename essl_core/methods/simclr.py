"""SimCLR (the official CIFAR-10 and ImageNet code): the BN projector and the cross-view InfoNCE (or NT-Xent as an
option). On ImageNet the projector has two hidden layers and an affine last BatchNorm, temperature 0.2."""

from __future__ import annotations

import torch

from ..losses import cross_view_infonce, nt_xent
from ..models import mlp_projector
from .base import Method


class SimCLR(Method):
    name = "simclr"
    e_head_second_relu = True

    def build_heads(self, feature_dim: int) -> None:
        r = self.recipe
        if r.family == "imagenet":
            self.projector = mlp_projector(feature_dim, r.proj_hidden, r.proj_dim, 2, "bn_affine")
        else:
            self.projector = mlp_projector(feature_dim, r.proj_hidden, r.proj_dim)

    def invariance_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        r = self.recipe
        loss_fn = cross_view_infonce if r.ssl_loss == "cross_view" else nt_xent
        return loss_fn(z1, z2, r.temperature)
