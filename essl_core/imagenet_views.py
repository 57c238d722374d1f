"""The ImageNet recipes' views (the official `imagenet/simclr/main.py` `Transform`, shared by its SimSiam and
Barlow Twins code): BYOL's asymmetric pair and the small rotation view, as `ViewSpec`s that both pipelines
make their views from.

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

from torchvision import transforms as T

from .augment import NORMALIZATION, ViewSpec, pil_view, to_normalized_tensor

FULL_SIDE = 224  # the resolution the official sigma range is stated for


def imagenet_view_specs(
    size: int, scale: tuple[float, float], rot_size: int, rot_scale: tuple[float, float]
) -> list[ViewSpec]:
    """The three views of a step: the asymmetric pair at `size` and the rotation view at `rot_size`. Below the
    full resolution every view's blur shrinks with `size` / 224 (the image the crops come from shrank)."""
    k = min(1.0, size / FULL_SIDE)
    common = dict(jitter=(0.4, 0.4, 0.2, 0.1), blur_sigma=(0.1 * k, 2.0 * k), stats="imagenet")
    return [
        ViewSpec(size, scale, blur_p=1.0, solarize_p=0.0, interpolation="bicubic", **common),
        ViewSpec(size, scale, blur_p=0.1, solarize_p=0.2, interpolation="bicubic", **common),
        # The official rotation view keeps RandomResizedCrop's default (bilinear) resampling.
        ViewSpec(rot_size, rot_scale, blur_p=0.1, solarize_p=0.0, **common),
    ]


def imagenet_transforms(
    size: int, scale: tuple[float, float], rot_size: int, rot_scale: tuple[float, float]
) -> list[T.Compose]:
    """The per-image transforms of `imagenet_view_specs`."""
    return [pil_view(spec) for spec in imagenet_view_specs(size, scale, rot_size, rot_scale)]


def imagenet_probe_transforms(size: int) -> tuple[T.Compose, T.Compose]:
    """The ImageNet linear probes' (train, test) transforms at side `size`: RandomResizedCrop + flip;
    Resize(size * 256/224) + CenterCrop(size)."""
    finish = to_normalized_tensor(NORMALIZATION["imagenet"])
    train = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), *finish])
    test = T.Compose([T.Resize(round(size * 256 / FULL_SIDE)), T.CenterCrop(size), *finish])
    return train, test
