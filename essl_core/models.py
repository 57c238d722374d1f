"""Networks of the CIFAR-10 recipes (the official `cifar10/resnet.py` and `main.py`): ResNet-18 backbone,
projectors, predictor, rotation head."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """The two-conv residual block of ResNet-18, with a 1x1 conv shortcut when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs: 3x3 stride-1 stem, no max-pool, stages [2, 2, 2, 2], no fc.

    `width` is the stem width (64 in the paper); stages use width x (1, 2, 4, 8), so the feature has
    `8 * width` dimensions (512 in the paper). Smaller widths keep the same topology for the CPU tiers.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        layers, in_ch = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            out_ch = width * 2**i
            layers.append(nn.Sequential(BasicBlock(in_ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1)))
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return torch.flatten(self.pool(x), 1)


def projector(in_dim: int, hidden: int = 2048, out_dim: int = 2048) -> nn.Sequential:
    """Linear-BN-ReLU-Linear-BN(affine=False), no biases: the CIFAR projector of both SimCLR and SimSiam."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim, bias=False),
        nn.BatchNorm1d(out_dim, affine=False),
    )


def barlow_twins_projector(in_dim: int, hidden: int = 2048, out_dim: int = 2048) -> nn.Sequential:
    """The Barlow Twins projector: two Linear(no bias)-BN-ReLU layers and a last Linear without bias; the loss
    standardises its output."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim, bias=False),
    )


def simsiam_predictor(dim: int = 2048, hidden: int = 512) -> nn.Sequential:
    """The SimSiam predictor: Linear(no bias)-BN-ReLU-Linear(with bias)."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )


def rotation_head(in_dim: int, hidden: int = 2048, n_classes: int = 4, second_relu: bool = True) -> nn.Sequential:
    """The transformation-prediction MLP ("predictor2"): LayerNorm, all layers with biases.

    The SimCLR recipe has a ReLU after both LayerNorms; the SimSiam recipe omits the second one.
    """
    layers: list[nn.Module] = [
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.LayerNorm(hidden),
    ]
    if second_relu:
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Linear(hidden, n_classes))
    return nn.Sequential(*layers)
