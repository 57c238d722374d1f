import numpy as np
import torch
from torch import nn

from essl_core.evaluate import equivariance_predictability, invariance_similarity
from essl_core.groups import ROTATION, VFLIP

CPU = torch.device("cpu")


class PooledColour(nn.Module):
    """Mean colour of the image: exactly invariant to rotations and flips."""

    feature_dim = 3

    def forward(self, x):
        return x.mean(dim=(2, 3))


class TopRow(nn.Module):
    """Mean colour of the top and left pixel rows: changes with every rotation."""

    feature_dim = 6

    def forward(self, x):
        return torch.cat([x[:, :, :4].mean(dim=(2, 3)), x[:, :, :, :4].mean(dim=(2, 3))], dim=1)


def _images(small_cifar, n=200):
    return small_cifar.test_x[:n]


def test_invariant_encoder_scores_one_and_chance(small_cifar):
    images = _images(small_cifar)
    sims = invariance_similarity(PooledColour(), images, ROTATION, CPU)
    assert np.allclose(sims, 1.0, atol=1e-5)
    assert abs(equivariance_predictability(PooledColour(), images, ROTATION, CPU) - 25.0) < 10.0


def test_orientation_sensitive_encoder_is_predictable():
    # Noise images that are brighter at the top: every rotation moves the bright side elsewhere.
    rng = np.random.default_rng(0)
    ramp = np.linspace(200, 0, 32)[None, :, None, None]
    images = np.clip(rng.integers(0, 55, size=(200, 32, 32, 3)) + ramp, 0, 255).astype(np.uint8)
    sims = invariance_similarity(TopRow(), images, VFLIP, CPU)
    assert sims[0] > 0.9999 and sims[1] < 0.9
    assert equivariance_predictability(TopRow(), images, ROTATION, CPU) > 60.0
