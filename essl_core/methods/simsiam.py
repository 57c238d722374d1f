"""SimSiam (the official CIFAR-10 and ImageNet code): the BN projector, the predictor and the symmetrised negative
cosine.

The predictor's learning rate stays at the base value (the official `--fix-pred-lr`), as its own parameter
group of the one optimizer.
"""

from __future__ import annotations

import torch

from ..losses import simsiam_loss
from ..models import mlp_projector, simsiam_predictor
from .base import Method


class SimSiam(Method):
    name = "simsiam"

    def build_heads(self, feature_dim: int) -> None:
        r = self.recipe
        if r.family == "imagenet":  # two hidden layers; the last Linear's bias exists but is frozen
            self.projector = mlp_projector(feature_dim, r.proj_hidden, r.proj_dim, 2, "bn", last_bias=True)
        else:
            self.projector = mlp_projector(feature_dim, r.proj_hidden, r.proj_dim)
        self.predictor = simsiam_predictor(r.proj_dim, r.pred_hidden)

    def invariance_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return simsiam_loss(p1, p2, z1, z2)

    def method_groups(self) -> list[dict]:
        predictor = {id(p) for p in self.predictor.parameters()}
        rest = [p for p in self.parameters() if id(p) not in predictor and p.requires_grad]
        return [{"params": rest, "scheduled": True}, {"params": list(self.predictor.parameters()), "scheduled": False}]
