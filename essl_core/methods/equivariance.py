"""The E-SSL branch, shared by every method: predict which element of a group was applied to a view.

By default the group is the four-fold rotation (the paper's E-SSL); the transformation study uses the other
groups of `essl_core.groups`. Its outputs keep the names `rot` and `rot_acc` whatever the group, so records
and curves read the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import denormalize_pixels, normalize_pixels
from ..groups import Group
from ..models import rotation_head


class EquivarianceBranch(nn.Module):
    """The transformation-prediction head and its loss; it exists exactly when the recipe's lambda is > 0."""

    def __init__(
        self, feature_dim: int, hidden: int, group: Group, copies: int, second_relu: bool, bottleneck: int = 0
    ) -> None:
        super().__init__()
        self.group, self.copies = group, copies
        self.head = rotation_head(feature_dim, hidden, group.size, second_relu=second_relu, bottleneck=bottleneck)

    def transformed_batch(self, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The branch's batch from the normalised view x3: every element of the group (block layout, as the
        official rotations), or `copies` random elements per image; and the labels."""
        group = self.group
        x = denormalize_pixels(x3) if group.on_pixels else x3  # grayscale and inversion act on [0, 1] pixels
        if self.copies == 0:
            xr, yr = group.orbit(x)
        else:
            yr = torch.randint(group.size, (self.copies * len(x),), device=x.device)
            xr = group.apply_each(x.repeat(self.copies, 1, 1, 1), yr)
        return (normalize_pixels(xr) if group.on_pixels else xr), yr

    def loss(self, backbone: nn.Module, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of predicting which transformation was applied (its own backbone pass), and the
        accuracy."""
        xr, yr = self.transformed_batch(x3)
        logits = self.head(backbone(xr)).float()
        return F.cross_entropy(logits, yr), (logits.argmax(1) == yr).float().mean()
