"""The photonics networks of the official code: a 3-layer CNN encoder, the SSL projector, the
transformation classifier and the DOS head. `width` scales the convolution channels (1 = the paper's)."""

from __future__ import annotations

from torch import nn

KERNEL = 7
REPRESENTATION = 1024


def _mlp(dims: list[int], batch_norm: bool, shared_norm: bool = False) -> nn.Sequential:
    """Linear (BN) ReLU ... Linear. `shared_norm`: one BatchNorm1d object at every hidden layer, as the official
    heads build it (its affine parameters and running statistics are then shared by the layers)."""
    hidden = set(dims[1:-1])
    if shared_norm and len(hidden) != 1:
        raise ValueError(f"a shared BatchNorm needs equal hidden widths, not {dims[1:-1]}")
    shared = nn.BatchNorm1d(dims[1]) if shared_norm else None
    layers: list[nn.Module] = []
    for i in range(len(dims) - 2):
        layers += [nn.Linear(dims[i], dims[i + 1])]
        layers += [shared or nn.BatchNorm1d(dims[i + 1])] if batch_norm else []
        layers += [nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-2], dims[-1]))


class PhcEncoder(nn.Module):
    """Conv(1->64, k7) BN ReLU MaxPool2 | Conv(64->256) BN ReLU MaxPool4 | Conv(256->256) BN ReLU MaxPool4 |
    Linear(256->1024) ReLU Linear(1024->1024), zero padding 3: a 32x32 cell to a 1024-d representation."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (64, 256, 256))
        blocks: list[nn.Module] = []
        for cin, cout, pool in ((1, c1, 2), (c1, c2, 4), (c2, c3, 4)):
            blocks += [nn.Conv2d(cin, cout, KERNEL, padding=KERNEL // 2), nn.BatchNorm2d(cout), nn.ReLU()]
            blocks += [nn.MaxPool2d(pool)]
        self.conv = nn.Sequential(*blocks, nn.Flatten())
        self.fc = _mlp([c3, REPRESENTATION, REPRESENTATION], batch_norm=False)

    def forward(self, x):
        return self.fc(self.conv(x))


def projector(shared_norm: bool = True) -> nn.Sequential:
    """The SSL projector on the representation: 1024 -> 512 -> 512 -> 256 with BN (depth 3); by default one BN
    serves both hidden layers, as in the official code (919,808 parameters; 920,832 with two)."""
    return _mlp([REPRESENTATION, 512, 512, 256], batch_norm=True, shared_norm=shared_norm)


def transformation_classifier(classes: int = 4, shared_norm: bool = True) -> nn.Sequential:
    """The E-branch on the representation (not the projector): 1024 -> 512 -> 512 -> classes with BN (shared by
    default, as the projector's)."""
    return _mlp([REPRESENTATION, 512, 512, classes], batch_norm=True, shared_norm=shared_norm)


class DosNet(nn.Module):
    """The fine-tuning network: the encoder, then 1024 -> 1024 -> 1024 -> 512 -> 400 (no BN) predicting the DOS
    minus the empty lattice."""

    def __init__(self, width: float = 1.0, points: int = 400) -> None:
        super().__init__()
        self.encoder = PhcEncoder(width)
        self.head = _mlp([REPRESENTATION, 1024, 1024, 512, points], batch_norm=False)

    def forward(self, x):
        return self.head(self.encoder(x))
