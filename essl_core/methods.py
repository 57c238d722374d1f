"""SimCLR and SimSiam as "views -> loss", with the E-SSL term added on top (paper_spec §1): predicting the
four-fold rotation, or in the transformation study another group's element. Its outputs keep the names `rot`
and `rot_acc` whatever the group, so records and curves read the same."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .augment import denormalize_pixels, normalize_pixels
from .groups import GROUPS
from .losses import cross_view_infonce, nt_xent, simsiam_loss
from .models import CifarResNet18, projector, rotation_head, simsiam_predictor
from .recipes import Recipe


class EsslModel(nn.Module):
    """Backbone, projector, the SimSiam predictor (SimSiam only) and the rotation head (when lambda > 0)."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe
        self.backbone = CifarResNet18(recipe.width)
        dim = self.backbone.feature_dim
        self.projector = projector(dim, recipe.proj_hidden, recipe.proj_dim)
        self.predictor = simsiam_predictor(recipe.proj_dim, recipe.pred_hidden) if recipe.method == "simsiam" else None
        self.group = GROUPS[recipe.equivariance]
        self.rotation_head = (
            rotation_head(dim, recipe.rot_hidden, self.group.size, second_relu=recipe.method == "simclr")
            if recipe.lmbd > 0
            else None
        )

    def main_parameters(self) -> list[nn.Parameter]:
        """Parameters of the main optimizer: everything except the SimSiam predictor."""
        skip = {id(p) for p in self.predictor.parameters()} if self.predictor is not None else set()
        return [p for p in self.parameters() if id(p) not in skip]

    def ssl_loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """The invariance loss on two views, each through its own backbone pass."""
        r = self.recipe
        z1, z2 = self.projector(self.backbone(x1)), self.projector(self.backbone(x2))
        if r.method == "simsiam":
            p1, p2 = self.predictor(z1), self.predictor(z2)
            return simsiam_loss(p1.float(), p2.float(), z1.float(), z2.float())
        loss_fn = cross_view_infonce if r.ssl_loss == "cross_view" else nt_xent
        return loss_fn(z1.float(), z2.float(), r.temperature)

    def transformed_batch(self, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The E-branch batch from the normalised view x3: every element of the group (block layout, as the
        official rotations), or `equivariance_copies` random elements per image; and the labels."""
        group, copies = self.group, self.recipe.equivariance_copies
        x = denormalize_pixels(x3) if group.on_pixels else x3  # grayscale and inversion act on [0, 1] pixels
        if copies == 0:
            xr, yr = group.orbit(x)
        else:
            yr = torch.randint(group.size, (copies * len(x),), device=x.device)
            xr = group.apply_each(x.repeat(copies, 1, 1, 1), yr)
        return (normalize_pixels(xr) if group.on_pixels else xr), yr

    def rotation_loss(self, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of predicting which transformation (by default, which of four rotations) was applied,
        and its accuracy."""
        xr, yr = self.transformed_batch(x3)
        logits = self.rotation_head(self.backbone(xr)).float()
        return F.cross_entropy(logits, yr), (logits.argmax(1) == yr).float().mean()

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """All loss terms of one step: `ssl`, and with the E-branch `rot` and `rot_acc`; `loss` is the total."""
        out = {"ssl": self.ssl_loss(x1, x2)}
        out["loss"] = out["ssl"]
        if self.rotation_head is not None:
            out["rot"], out["rot_acc"] = self.rotation_loss(x3)
            out["loss"] = out["ssl"] + self.recipe.lmbd * out["rot"]
        return out

    def view_sizes(self) -> list[int]:
        """Sizes of the views a step needs: two 32x32 SSL views, plus the 16x16 rotation view for E-SSL."""
        return [32, 32] + ([self.recipe.rot_size] if self.rotation_head is not None else [])
