"""What every SSL method shares: the backbone, a projector, the E-branch, one step's losses and the optimizer's
parameter groups. A method is a subclass that builds its heads and defines its invariance loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from ..groups import GROUPS
from ..models import CifarResNet18
from .equivariance import EquivarianceBranch

if TYPE_CHECKING:
    from ..recipes import Recipe


class Method(nn.Module):
    """Backbone, the method's heads and, when lambda > 0, the E-branch. `forward` gives one step's losses."""

    name: ClassVar[str]
    # The CIFAR SimCLR code has a ReLU after the E-head's second LayerNorm; the SimSiam and Barlow Twins code
    # (ImageNet) do not.
    e_head_second_relu: ClassVar[bool] = False

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe
        self.backbone = CifarResNet18(recipe.width)
        self.build_heads(self.backbone.feature_dim)
        self.equivariance = (
            EquivarianceBranch(
                self.backbone.feature_dim,
                recipe.rot_hidden,
                GROUPS[recipe.equivariance],
                recipe.equivariance_copies,
                self.e_head_second_relu,
            )
            if recipe.e_branch
            else None
        )

    def build_heads(self, feature_dim: int) -> None:
        """Create the method's own modules (projector, predictor, ...)."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The projection of one view, through its own backbone pass."""
        return self.projector(self.backbone(x))

    def invariance_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The method's SSL loss on the projections of two views."""
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """The optimizer's parameter groups. `scheduled: False` keeps a group at the base learning rate."""
        return [{"params": list(self.parameters()), "scheduled": True}]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """All loss terms of one step: `ssl`, and with the E-branch `rot` and `rot_acc`; `loss` is the total,
        ssl_scale * ssl + lmbd * rot."""
        r = self.recipe
        out = {"ssl": self.invariance_loss(self.embed(x1), self.embed(x2))}
        out["loss"] = r.ssl_scale * out["ssl"]
        if self.equivariance is not None:
            out["rot"], out["rot_acc"] = self.equivariance.loss(self.backbone, x3)
            out["loss"] = out["loss"] + r.lmbd * out["rot"]
        return out

    def view_sizes(self) -> list[int]:
        """Sizes of the views a step needs: two 32x32 SSL views, plus the small rotation view for E-SSL."""
        return [32, 32] + ([self.recipe.rot_size] if self.equivariance is not None else [])
