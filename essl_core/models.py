"""Networks of the recipes: the CIFAR-10 ResNet-18 (the official `cifar10/resnet.py`), torchvision's ImageNet
ResNets (the official `imagenet/*/main.py`), projectors, predictor, rotation heads."""

from __future__ import annotations

import itertools

import torch
import torchvision
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

    `imagenet_stem` and `zero_init_residual` give torchvision's ImageNet ResNet-18 instead (7x7 stride-2 conv
    and a max-pool; the last BatchNorm of each block starts at 0) at any width: the small tiers' stand-in for
    the ImageNet recipes' ResNet-50.
    """

    def __init__(self, width: int = 64, imagenet_stem: bool = False, zero_init_residual: bool = False) -> None:
        super().__init__()
        if imagenet_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(3, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        else:
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
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return torch.flatten(self.pool(x), 1)


def imagenet_resnet(arch: str) -> nn.Module:
    """torchvision's ResNet (`resnet50` in the paper; `resnet18` for the small tiers) with
    `zero_init_residual=True` and the classifier removed, as the official ImageNet code builds it."""
    net = getattr(torchvision.models, arch)(zero_init_residual=True)
    net.feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


BACKBONES = ("cifar_resnet18", "scaled_resnet18", "resnet18", "resnet50")


def build_backbone(arch: str, width: int) -> nn.Module:
    """The recipe's backbone: "cifar_resnet18" or "scaled_resnet18" (torchvision's ImageNet ResNet-18 layout)
    at `width`, or a torchvision ResNet by name."""
    if arch == "cifar_resnet18":
        return CifarResNet18(width)
    if arch == "scaled_resnet18":
        return CifarResNet18(width, imagenet_stem=True, zero_init_residual=True)
    return imagenet_resnet(arch)


def mlp_projector(
    in_dim: int, hidden: int, out_dim: int, hidden_layers: int = 1, last_norm: str = "bn", last_bias: bool = False
) -> nn.Sequential:
    """`hidden_layers` x (Linear without bias, BN, ReLU), then Linear(hidden -> out_dim) and an optional last
    norm: "bn" (no affine parameters), "bn_affine" or "none". The official projectors are all of this form:

    - CIFAR-10 SimCLR and SimSiam: 1 hidden layer, last "bn";
    - ImageNet SimCLR: 2 hidden layers, last "bn_affine" (out 128);
    - ImageNet SimSiam: 2 hidden layers, a last Linear with a frozen bias (`last_bias`), last "bn";
    - Barlow Twins: 2 hidden layers, last "none" (the loss standardises the output).
    """
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden] * hidden_layers
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    last = nn.Linear(dims[-1], out_dim, bias=last_bias)
    if last_bias:
        last.bias.requires_grad_(False)  # the official SimSiam code freezes it
    layers.append(last)
    if last_norm != "none":
        layers.append(nn.BatchNorm1d(out_dim, affine=last_norm == "bn_affine"))
    return nn.Sequential(*layers)


def simsiam_predictor(dim: int = 2048, hidden: int = 512) -> nn.Sequential:
    """The SimSiam predictor: Linear(no bias)-BN-ReLU-Linear(with bias)."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )


def rotation_head(
    in_dim: int, hidden: int = 2048, n_classes: int = 4, second_relu: bool = True, bottleneck: int = 0
) -> nn.Sequential:
    """The transformation-prediction MLP ("predictor2" on CIFAR, "rotation_projector" on ImageNet): LayerNorm,
    all layers with biases.

    CIFAR SimCLR has a ReLU after both LayerNorms; CIFAR SimSiam omits the second one. The ImageNet heads have
    both ReLUs and a `bottleneck` before the classifier: Linear(hidden -> bottleneck), LayerNorm, then
    Linear(bottleneck -> n_classes) (128 for SimCLR, 256 for SimSiam and Barlow Twins).
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
    if bottleneck:
        layers += [nn.Linear(hidden, bottleneck), nn.LayerNorm(bottleneck)]
    layers.append(nn.Linear(bottleneck or hidden, n_classes))
    return nn.Sequential(*layers)
