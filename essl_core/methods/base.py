"""What every SSL method shares: the backbone, a projector, the E-branch, one step's losses and the optimizer's
parameter groups. A method is a subclass that builds its heads and defines its invariance loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import n_classes
from ..groups import GROUPS
from ..models import build_backbone
from .equivariance import EquivarianceBranch

if TYPE_CHECKING:
    from ..recipes import Recipe


class Method(nn.Module):
    """Backbone, the method's heads, the online classifier (ImageNet SimCLR and Barlow Twins) and, when
    lambda > 0, the E-branch. `forward` gives one step's losses."""

    name: ClassVar[str]
    # The CIFAR SimCLR code has a ReLU after the E-head's second LayerNorm, the CIFAR SimSiam code does not; the
    # ImageNet heads all have it (and a bottleneck, `rot_bottleneck`).
    e_head_second_relu: ClassVar[bool] = False

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe
        self.backbone = build_backbone(recipe.backbone, recipe.width)
        feature_dim = self.backbone.feature_dim
        self.build_heads(feature_dim)
        self.online_head = nn.Linear(feature_dim, n_classes(recipe.dataset)) if recipe.online_head else None
        self.equivariance = (
            EquivarianceBranch(
                feature_dim,
                recipe.rot_hidden,
                GROUPS[recipe.equivariance],
                recipe.equivariance_copies,
                self.e_head_second_relu or recipe.family == "imagenet",
                recipe.rot_bottleneck,
            )
            if recipe.e_branch
            else None
        )

    def build_heads(self, feature_dim: int) -> None:
        """Create the method's own modules (projector, predictor, ...)."""
        raise NotImplementedError

    def invariance_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The method's SSL loss on the projections of two views."""
        raise NotImplementedError

    def method_groups(self) -> list[dict]:
        """The method's parameter groups. `scheduled: False` keeps a group at the base learning rate."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "scheduled": True}]

    def param_groups(self) -> list[dict]:
        """The optimizer's groups, each with its `lr_scale`: with `norm_lr_ratio` != 1 (ImageNet Barlow Twins)
        the 1-D parameters (biases and norms) of each group get their own group at that ratio."""
        ratio = self.recipe.norm_lr_ratio
        groups = []
        for g in self.method_groups():
            if ratio == 1.0:
                groups.append({**g, "lr_scale": 1.0})
                continue
            groups.append({**g, "params": [p for p in g["params"] if p.ndim > 1], "lr_scale": 1.0})
            groups.append({**g, "params": [p for p in g["params"] if p.ndim == 1], "lr_scale": ratio})
        return groups

    def forward(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        x3: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """All loss terms of one step: `ssl`; with the E-branch `rot` and `rot_acc`; with the online classifier
        `online` and `online_acc`. `loss` is the total, ssl_scale * ssl + lmbd * rot + online."""
        r = self.recipe
        h1 = self.backbone(x1)
        out = {"ssl": self.invariance_loss(self.projector(h1), self.projector(self.backbone(x2)))}
        out["loss"] = r.ssl_scale * out["ssl"]
        if self.online_head is not None:
            # Trains only the classifier (detached features), as the official ImageNet code's accuracy monitor.
            logits = self.online_head(h1.detach()).float()
            out["online"] = F.cross_entropy(logits, labels)
            out["online_acc"] = (logits.argmax(1) == labels).float().mean()
            out["loss"] = out["loss"] + out["online"]
        if self.equivariance is not None:
            out["rot"], out["rot_acc"] = self.equivariance.loss(self.backbone, x3)
            out["loss"] = out["loss"] + r.lmbd * out["rot"]
        return out

    def view_sizes(self) -> list[int]:
        """Sizes of the views a step needs: two SSL views, plus the small rotation view for E-SSL."""
        r = self.recipe
        return [r.image_size, r.image_size] + ([r.rot_size] if self.equivariance is not None else [])
