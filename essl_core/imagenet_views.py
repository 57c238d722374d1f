"""The ImageNet recipes' views (the official `imagenet/simclr/main.py` `Transform`, shared by its SimSiam and
Barlow Twins code): BYOL's asymmetric pair and the small rotation view, per-image PIL transforms.

- view 1: RandomResizedCrop (bicubic), flip, ColorJitter(0.4, 0.4, 0.2, 0.1) with p 0.8, grayscale p 0.2,
  Gaussian blur with p 1.0, no solarisation;
- view 2: the same with blur p 0.1 and solarisation p 0.2;
- rotation view: RandomResizedCrop(96 of 224, scale (0.05, 0.14), bilinear), the same jitter and grayscale,
  blur p 0.1, no solarisation; the E-branch then rotates it all four ways.

At a reduced resolution (the small tiers) the blur's sigma, U(0.1, 2.0) pixels at 224, is scaled with the view
side so that it blurs the same fraction of the image. Random draws come from torch's generator (the official
code uses Python's `random`), so that an epoch replays exactly from its seed.
"""

from __future__ import annotations

import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from .augment import BICUBIC, NORMALIZATION, to_normalized_tensor

FULL_SIDE = 224  # the resolution the official sigma range is stated for


class RandomBlur:
    """PIL Gaussian blur with probability `p` and sigma ~ U(sigma_min, sigma_max) (the official GaussianBlur)."""

    def __init__(self, p: float, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.p, self.sigma = p, sigma

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1).item() >= self.p:
            return img
        lo, hi = self.sigma
        return img.filter(ImageFilter.GaussianBlur(lo + (hi - lo) * torch.rand(1).item()))

    def __repr__(self) -> str:
        return f"RandomBlur(p={self.p}, sigma={self.sigma})"


def imagenet_view(
    size: int, scale: tuple[float, float], blur_p: float, solarize_p: float, sigma_scale: float, interpolation=BICUBIC
) -> T.Compose:
    """One ImageNet view at side `size`; the blur's sigma range is the official one times `sigma_scale`."""
    k = sigma_scale
    return T.Compose(
        [
            T.RandomResizedCrop(size, scale=scale, interpolation=interpolation),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            RandomBlur(blur_p, (0.1 * k, 2.0 * k)),
            T.RandomSolarize(128, p=solarize_p),  # PIL's ImageOps.solarize: invert every value >= 128
            *to_normalized_tensor(NORMALIZATION["imagenet"]),
        ]
    )


def imagenet_transforms(
    size: int, scale: tuple[float, float], rot_size: int, rot_scale: tuple[float, float]
) -> list[T.Compose]:
    """The three views of a step: the asymmetric pair at `size` and the rotation view at `rot_size`. Below the
    full resolution every view's blur shrinks with `size` / 224 (the image the crops come from shrank)."""
    k = min(1.0, size / FULL_SIDE)
    bilinear = T.InterpolationMode.BILINEAR  # the official rotation view keeps RandomResizedCrop's default
    return [
        imagenet_view(size, scale, blur_p=1.0, solarize_p=0.0, sigma_scale=k),
        imagenet_view(size, scale, blur_p=0.1, solarize_p=0.2, sigma_scale=k),
        imagenet_view(rot_size, rot_scale, blur_p=0.1, solarize_p=0.0, sigma_scale=k, interpolation=bilinear),
    ]


def imagenet_probe_transforms(size: int) -> tuple[T.Compose, T.Compose]:
    """The ImageNet linear probes' (train, test) transforms at side `size`: RandomResizedCrop + flip;
    Resize(size * 256/224) + CenterCrop(size)."""
    finish = to_normalized_tensor(NORMALIZATION["imagenet"])
    train = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), *finish])
    test = T.Compose([T.Resize(round(size * 256 / FULL_SIDE)), T.CenterCrop(size), *finish])
    return train, test
