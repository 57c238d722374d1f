"""SimCLR and SimSiam as "views -> loss", with the E-SSL rotation-prediction term added on top (paper_spec §1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .groups import rotate4
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
        self.rotation_head = (
            rotation_head(dim, recipe.rot_hidden, 4, second_relu=recipe.method == "simclr") if recipe.lmbd > 0 else None
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

    def rotation_loss(self, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of predicting which of the four rotations was applied, and its accuracy."""
        xr, yr = rotate4(x3)
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
