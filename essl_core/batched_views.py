"""The fast view pipeline: the uint8 dataset resident on the device, augmented in batches with per-sample draws.

It draws the same random parameters as the per-image reference (`augment.pil_view` of the same `ViewSpec`):
torchvision's RandomResizedCrop rule, a flip with p=0.5, ColorJitter with p=0.8 in a random order per image,
grayscale with p=0.2 and, for the ImageNet views, a Gaussian blur and solarisation; then applies them to a
whole batch at once, every image with its own draw (torchvision's transforms on a batch tensor would share one
draw across the batch). Differences from the PIL reference, all within the tolerances tested in
`tests/test_batched_views.py`: pixels stay float between the operations (PIL rounds to uint8 after each); the
crop is resampled with `roi_align`, which averages bilinear samples inside each output pixel (PIL's
antialiasing filter is a triangle of the same width; the ImageNet views' bicubic is not reproduced); the blur
is a true Gaussian cut at 3 sigma (PIL's GaussianBlur approximates one with three box blurs).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from .augment import NORMALIZATION, Stats, ViewSpec, epoch_seed, normalize_pixels
from .groups import Group

# ITU-R 601-2 luma weights as torchvision's tensor `rgb_to_grayscale` uses them.
LUMA = (0.2989, 0.587, 0.114)
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # ColorJitter's four operations, as its order indices


@dataclass
class ViewParams:
    """Per-sample random parameters of one batch of views (each field has the batch as its first dimension)."""

    boxes: torch.Tensor  # (n, 4) float crop boxes x0, y0, x1, y1 in pixel-edge coordinates
    flip: torch.Tensor  # (n,) bool
    jitter: torch.Tensor  # (n,) bool: ColorJitter applied (p=0.8)
    factors: torch.Tensor  # (n, 4) brightness, contrast, saturation factors and hue shift
    order: torch.Tensor  # (n, 4) a permutation of the four jitter operations per sample
    gray: torch.Tensor  # (n,) bool
    blur_sigma: torch.Tensor | None = None  # (n,) the Gaussian blur's sigma in pixels, 0 for no blur
    blur_radius: int = 0  # the blur kernel's half-width: 3 x the largest sigma the spec allows
    solarize: torch.Tensor | None = None  # (n,) bool
    element: torch.Tensor | None = None  # (n,) long: the invariance group's element per view, if there is one


def crop_only(params: ViewParams) -> ViewParams:
    """The same crops with no flip, colour jitter, grayscale, blur or solarisation (the transformation study's
    base augmentation)."""
    off = torch.zeros_like(params.flip)
    return dataclasses.replace(params, flip=off, jitter=off, gray=off, blur_sigma=None, solarize=None)


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device).mul_(high - low).add_(low)


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    tries: int = 10,
) -> torch.Tensor:
    """RandomResizedCrop's rule for `n` images at once: up to `tries` draws each, first valid one wins, else a
    centre crop of the closest allowed aspect ratio. Returns (n, 4) integer-valued boxes x0, y0, x1, y1."""
    device = gen.device
    area = height * width
    target = _uniform(n * tries, scale[0], scale[1], gen, device).view(n, tries) * area
    aspect = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), gen, device).exp_().view(n, tries)
    w = torch.sqrt(target * aspect).round()  # round half to even, like Python's round()
    h = torch.sqrt(target / aspect).round()
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(valid, torch.arange(tries, device=device), tries).amin(1)  # tries = none valid
    found = first < tries
    pick = first.clamp(max=tries - 1).unsqueeze(1)
    w, h = w.gather(1, pick).squeeze(1), h.gather(1, pick).squeeze(1)
    # Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
    in_ratio = width / height
    fw, fh = float(width), float(height)
    if in_ratio < ratio[0]:
        fh = float(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw = float(round(height * ratio[1]))
    w, h = torch.where(found, w, fw), torch.where(found, h, fh)
    # Offsets uniform over the integers 0..(size - crop), as torch.randint(0, size - crop + 1).
    top = torch.floor(torch.rand(n, generator=gen, device=device) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=gen, device=device) * (width - w + 1))
    top = torch.where(found, top, torch.div(height - h, 2, rounding_mode="floor"))
    left = torch.where(found, left, torch.div(width - w, 2, rounding_mode="floor"))
    return torch.stack([left, top, left + w, top + h], 1)


CIFAR_VIEW = ViewSpec()  # the CIFAR-10 SSL view


def sample_view_params(
    n: int, height: int, width: int, gen: torch.Generator, spec: ViewSpec = CIFAR_VIEW
) -> ViewParams:
    """Draw every random choice of `n` views made as `spec` says (its size is applied later)."""
    device = gen.device
    boxes = sample_crop_boxes(n, height, width, gen, spec.scale)
    coin = torch.rand(n, 3, generator=gen, device=device)
    brightness, contrast, saturation, hue = spec.jitter
    factors = torch.stack(
        [
            _uniform(n, 1 - brightness, 1 + brightness, gen, device),
            _uniform(n, 1 - contrast, 1 + contrast, gen, device),
            _uniform(n, 1 - saturation, 1 + saturation, gen, device),
            _uniform(n, -hue, hue, gen, device),
        ],
        1,
    )
    order = torch.rand(n, 4, generator=gen, device=device).argsort(1)  # a uniform random permutation per row
    params = ViewParams(boxes, coin[:, 0] < 0.5, coin[:, 1] < 0.8, factors, order, coin[:, 2] < 0.2)
    if spec.blur_p:
        blurred = torch.rand(n, generator=gen, device=device) < spec.blur_p
        sigma = _uniform(n, *spec.blur_sigma, gen, device)
        params.blur_sigma = torch.where(blurred, sigma, 0.0)
        params.blur_radius = blur_radius(spec.blur_sigma[1])
    if spec.solarize_p:
        params.solarize = torch.rand(n, generator=gen, device=device) < spec.solarize_p
    return params


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(n, 3, h, w) -> (n, 1, h, w) luma."""
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of each image by `shift` (fractions of a turn), keeping saturation and value."""
    r, g, b = x.unbind(1)
    value, chroma = x.amax(1), x.amax(1) - x.amin(1)  # amax/amin: much faster than max/min with indices
    # Hue in sixths of a turn, read from the largest channel (a tie gives the same hue from either channel);
    # a grey pixel has chroma 0 and a zero numerator, so its hue is 0 without a special case.
    scale = 1 / chroma.clamp_min(1e-12)
    hue = torch.where(r == value, (g - b) * scale, torch.where(g == value, (b - r) * scale + 2, (r - g) * scale + 4))
    hue = torch.remainder(hue + (6 * shift).view(-1, 1, 1), 6).unsqueeze(1)
    # HSV -> RGB: channel n is v - v*s*clamp(min(k, 4 - k), 0, 1) with k = (n + hue) mod 6, n = 5, 3, 1,
    # and v*s is the chroma.
    k = hue + torch.arange(5, 0, -2, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)  # n = 5, 3, 1
    k = torch.where(k >= 6, k - 6, k)
    ramp = torch.minimum(k, 4 - k).clamp_(0, 1)
    return (value.unsqueeze(1) - chroma.unsqueeze(1) * ramp).clamp_(0, 1)


def _blend_pass(x: torch.Tensor, op: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """One of brightness, contrast, saturation per sample: `clamp(f * x + (1 - f) * target)`, where the target
    is black, the mean luma, or the luma image. `op` and `factor` are (n,); a factor of 1 leaves x as it is."""
    luma = grayscale(x)
    # (1 - f) * target = w * luma + c, with per-sample w (saturation) and c (contrast); no per-pixel select.
    keep = (1 - factor).view(-1, 1, 1, 1)
    w = keep * (op == SATURATION).view(-1, 1, 1, 1)
    c = keep * (op == CONTRAST).view(-1, 1, 1, 1) * luma.mean((1, 2, 3), keepdim=True)
    return torch.addcmul(torch.addcmul(c, w, luma), factor.view(-1, 1, 1, 1), x).clamp_(0, 1)


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """ColorJitter with per-sample factors and order (tensor semantics: clamp to [0, 1] after each operation).

    Brightness, contrast and saturation are blends with black, the mean luma and the luma image; hue is a
    rotation in HSV. The hue rotation (the costly one) runs once for the whole batch: each sample's three
    blends are split into those its order puts before the hue and those after, and the passes a sample does
    not need use the factor 1. No host round-trip, so it also suits CUDA."""
    slots = torch.arange(4, device=order.device)
    hue_slot = torch.where(order == HUE, slots, 0).sum(1)
    blends = order.gather(1, torch.where(order == HUE, 4, slots).argsort(1)[:, :3])  # order without the hue
    for before in (True, False):
        for j in range(3):
            needed = (j < hue_slot) if before else (j >= hue_slot)
            factor = torch.where(needed, factors.gather(1, blends[:, j : j + 1]).squeeze(1), 1.0)
            x = _blend_pass(x, blends[:, j], factor)
        if before:
            x = shift_hue(x, factors[:, HUE])
    return x


def blur_radius(sigma_max: float) -> int:
    """The half-width of a blur kernel that covers 3 standard deviations of the widest sigma drawn."""
    return max(1, math.ceil(3 * sigma_max))


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur each image of (n, c, h, w) `x` with its own Gaussian of standard deviation `sigma` (n,) pixels, 0
    leaving it as it is; a separable kernel of 2 * radius + 1 taps, edge pixels repeated beyond the border."""
    n, c, h, w = x.shape
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma.clamp_min(1e-3).unsqueeze(1)) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n * c, taps): one per channel
    y = F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    y = F.conv2d(y, kernel.view(n * c, 1, 1, -1), groups=n * c)  # along rows, then columns
    y = F.conv2d(y, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return torch.where((sigma > 0).view(-1, 1, 1, 1), y.view(n, c, h, w), x)


def apply_view_params(
    pixels: torch.Tensor,
    params: ViewParams,
    size: int,
    invariance: Group | None = None,
    stats: Stats = NORMALIZATION["cifar10"],
) -> torch.Tensor:
    """Crop-resize, flip, jitter, grayscale, blur, solarise, the invariance group's element (if any) and
    normalise (with `stats`) float (n, 3, H, W) pixels in [0, 1]."""
    n = pixels.shape[0]
    rois = torch.cat([torch.arange(n, device=pixels.device, dtype=pixels.dtype).unsqueeze(1), params.boxes], 1)
    # sampling_ratio=-1: ceil(crop/size) bilinear samples per output pixel and axis are averaged, which
    # antialiases downscaling (crops larger than `size`) like PIL does; aligned=True: pixel-edge boxes.
    x = roi_align(pixels, rois, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    x = torch.where(params.flip.view(-1, 1, 1, 1), x.flip(-1), x)
    x = torch.where(params.jitter.view(-1, 1, 1, 1), color_jitter(x, params.factors, params.order), x)
    x = torch.where(params.gray.view(-1, 1, 1, 1), grayscale(x).expand(-1, 3, -1, -1), x)
    if params.blur_sigma is not None:
        x = gaussian_blur(x, params.blur_sigma, params.blur_radius)
    if params.solarize is not None:  # PIL inverts the uint8 values >= 128
        x = torch.where(params.solarize.view(-1, 1, 1, 1) & (x >= 128 / 255), 1 - x, x)
    if invariance is not None:
        x = invariance.apply_each(x, params.element)
    return normalize_pixels(x, stats)


def view_statistics(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel statistics of a batch of normalised views: mean, spread, per-image contrast, and sharpness
    (mean absolute difference of neighbouring pixels, which shows the resampling filter)."""
    return {
        "mean": x.mean((0, 2, 3)),
        "std": x.std((0, 2, 3)),
        "image_std": x.std((2, 3)).mean(0),
        "sharpness": (x[..., 1:] - x[..., :-1]).abs().mean((0, 2, 3)),
    }


class BatchedViews:
    """The training views, made on the device from a resident uint8 copy of the images (no DataLoader), one
    view per `ViewSpec`; with `labels`, each step's list ends with the batch's labels (resident too).

    An epoch is a permutation drawn from a generator seeded by (seed, epoch), like the reference pipeline's
    order, so a resumed epoch replays exactly; `drop_last` as in the official loader."""

    def __init__(
        self,
        images: np.ndarray,
        specs: Sequence[ViewSpec],
        batch_size: int,
        device: torch.device,
        *,
        labels: np.ndarray | None = None,
        seed: int = 0,
        compile: bool = False,
        base_augment: str = "full",
        invariance: Group | None = None,
    ) -> None:
        # Parameters are drawn eagerly (generators do not compile); applying them is one fused graph.
        self.apply = torch.compile(apply_view_params, dynamic=False) if compile else apply_view_params
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous()
        self.labelled = labels is not None
        self.labels = torch.from_numpy(labels).to(device) if self.labelled else None
        self.specs, self.batch_size, self.device, self.seed = list(specs), batch_size, device, seed
        self.base_augment, self.invariance = base_augment, invariance
        self.steps_per_epoch = len(images) // batch_size

    def epoch(self, epoch: int) -> Iterator[list[torch.Tensor]]:
        gen = torch.Generator(self.device).manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(len(self.images), generator=gen, device=self.device)
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            views = self.views(self.images[index].float().div_(255), gen)
            yield [*views, self.labels[index]] if self.labelled else views

    def views(self, pixels: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
        """All views of one batch; views with the same spec are augmented in one call (one set of launches)."""
        by_spec = {}
        for spec, copies in Counter(self.specs).items():
            n, _, height, width = pixels.shape
            params = sample_view_params(n * copies, height, width, gen, spec)
            if self.base_augment == "crop":
                params = crop_only(params)
            if self.invariance is not None:
                params.element = torch.randint(self.invariance.size, (n * copies,), generator=gen, device=gen.device)
            views = self.apply(pixels.repeat(copies, 1, 1, 1), params, spec.size, self.invariance,
                               NORMALIZATION[spec.stats])  # fmt: skip
            by_spec[spec] = iter(views.chunk(copies))
        return [next(by_spec[spec]) for spec in self.specs]
