"""Finite transformation groups acting on image batches (NCHW, pixel values in [0, 1]).

Each group knows its size, the name of each element, and how to apply an element, to a whole batch (`apply`)
or a different element to each image (`apply_each`); `orbit` produces every transformed copy of a batch with
its labels in block layout. The same object serves as an invariance augmentation (a random element per
image) and as an equivariance target (predict the element). The seven transformations of the paper's study
are here; the four-fold blur is a set of four blur levels, not a group (blurs neither compose nor invert).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .augment import channel_constant

# ITU-R 601-2 luma, the weights PIL's convert("L") and torchvision's rgb_to_grayscale use.
LUMA = (0.299, 0.587, 0.114)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    w = channel_constant(LUMA, x)
    return (x * w).sum(1, keepdim=True).expand_as(x).contiguous()


@dataclass(frozen=True)
class Group:
    """A finite group of image transformations; element 0 is the identity."""

    name: str
    element_names: tuple[str, ...]
    act: Callable[[torch.Tensor, int], torch.Tensor]
    # Optional faster `apply_each` (x, per-image elements) for large groups; default: one `act` per element.
    act_each: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # True when the action needs raw pixels in [0, 1] (it does not commute with per-channel normalisation).
    on_pixels: bool = False

    @property
    def size(self) -> int:
        return len(self.element_names)

    def apply(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Element k applied to every image of the batch."""
        if not 0 <= k < self.size:
            raise ValueError(f"{self.name} has elements 0..{self.size - 1}, not {k}")
        return x if k == 0 else self.act(x, k)

    def apply_each(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Element k[i] applied to image i (k: a long tensor on x's device; no host round-trip)."""
        if self.act_each is not None:
            return self.act_each(x, k)
        out = x
        for element in range(1, self.size):
            out = torch.where((k == element).view(-1, 1, 1, 1), self.act(x, element), out)
        return out

    def orbit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every element applied to the batch, in block layout: [all k=0 | all k=1 | ...], and the labels."""
        copies = torch.cat([self.apply(x, k) for k in range(self.size)])
        labels = torch.arange(self.size, device=x.device).repeat_interleave(len(x))
        return copies, labels


ROTATION = Group("four-fold rotation", ("0°", "90°", "180°", "270°"), lambda x, k: torch.rot90(x, k, dims=(2, 3)))
HFLIP = Group("horizontal flip", ("identity", "flipped"), lambda x, k: x.flip(3))
VFLIP = Group("vertical flip", ("identity", "flipped"), lambda x, k: x.flip(2))
GRAYSCALE = Group("grayscale", ("colour", "grayscale"), lambda x, k: _grayscale(x), on_pixels=True)
INVERSION = Group("colour inversion", ("identity", "inverted"), lambda x, k: 1.0 - x, on_pixels=True)

# 2x2 jigsaw: element p puts input quadrant p[i] at position i (quadrants 0 1 / 2 3); identity first.
JIGSAW_PERMUTATIONS = tuple(itertools.permutations(range(4)))


@functools.cache
def _permutation_table(device: torch.device) -> torch.Tensor:
    return torch.tensor(JIGSAW_PERMUTATIONS).to(device)


def _quadrants(x: torch.Tensor) -> torch.Tensor:
    """(n, c, h, w) -> (n, 4, c, h/2, w/2), quadrants in reading order."""
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"a 2x2 jigsaw needs even image sides, not {h}x{w}")
    return x.view(n, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5).reshape(n, 4, c, h // 2, w // 2)


def _from_quadrants(q: torch.Tensor) -> torch.Tensor:
    n, _, c, h2, w2 = q.shape
    return q.view(n, 2, 2, c, h2, w2).permute(0, 3, 1, 4, 2, 5).reshape(n, c, 2 * h2, 2 * w2)


def _jigsaw_each(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    q = _quadrants(x)
    index = _permutation_table(x.device)[k].view(len(x), 4, 1, 1, 1).expand_as(q)
    return _from_quadrants(q.gather(1, index))


def _jigsaw(x: torch.Tensor, k: int) -> torch.Tensor:
    return _from_quadrants(_quadrants(x)[:, list(JIGSAW_PERMUTATIONS[k])])


JIGSAW = Group("2x2 jigsaw", tuple("".join(map(str, p)) for p in JIGSAW_PERMUTATIONS), _jigsaw, _jigsaw_each)

# Four-fold blur: none, or a Gaussian blur with kernel 5, 9 or 15 and torchvision's default sigma for that
# kernel, 0.3 * ((k - 1) / 2 - 1) + 0.8, with reflect padding (as torchvision's gaussian_blur).
BLUR_KERNELS = (5, 9, 15)


def _blur(x: torch.Tensor, k: int) -> torch.Tensor:
    size = BLUR_KERNELS[k - 1]
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    t = torch.arange(size, device=x.device, dtype=x.dtype) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = torch.nn.functional.pad(x, [size // 2] * 4, mode="reflect")
    rows = torch.nn.functional.conv2d(padded, kernel.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return torch.nn.functional.conv2d(rows, kernel.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


BLUR = Group("four-fold blur", ("sharp", *(f"blur {k}x{k}" for k in BLUR_KERNELS)), _blur)


def _half_shift(x: torch.Tensor, k: int) -> torch.Tensor:
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return x.roll(((0, 0), (0, w), (h, 0), (h, w))[k], dims=(2, 3))


# Half-cell translations of a periodic unit cell (photonics, blob): what the paper's E-SimCLR predicts there.
HALF_TRANSLATION = Group(
    "half-cell translation", ("none", "half along W", "half along H", "half along both"), _half_shift
)

# The seven transformations of the paper's transformation study, in its order.
GROUPS: dict[str, Group] = {
    "hflip": HFLIP,
    "grayscale": GRAYSCALE,
    "rotation": ROTATION,
    "vflip": VFLIP,
    "jigsaw": JIGSAW,
    "blur": BLUR,
    "inversion": INVERSION,
}


# Several invariances at once: a recipe's `invariance` joins group keys with this, e.g. "hflip+rotation".
JOIN = "+"


def product(groups: list[Group]) -> Group:
    """The groups acting one after another (in the given order): element k is the tuple (k_1, ..., k_m) in mixed
    radix, the last group's index varying fastest; element 0 is the identity. A uniformly random element of the
    product is an independent random element of each group, which is what several invariances at once need."""
    if len(groups) == 1:
        return groups[0]
    sizes = [g.size for g in groups]

    def digits(k):  # an int, or a long tensor of per-image elements
        out = []
        for size in reversed(sizes):
            out.append(k % size)
            k = k // size
        return out[::-1]

    def act(x: torch.Tensor, k: int) -> torch.Tensor:
        for group, d in zip(groups, digits(k), strict=True):
            x = group.apply(x, d)
        return x

    def act_each(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        for group, d in zip(groups, digits(k), strict=True):
            x = group.apply_each(x, d)
        return x

    names = tuple(" · ".join(p) for p in itertools.product(*(g.element_names for g in groups)))
    return Group(" + ".join(g.name for g in groups), names, act, act_each, any(g.on_pixels for g in groups))


def group_keys(spec: str) -> tuple[str, ...]:
    """The study's transformation keys named by `spec` ("rotation", or several joined by JOIN), in the study's
    order (so that "rotation+hflip" and "hflip+rotation" are one choice); unknown or repeated keys are refused."""
    keys = spec.split(JOIN)
    unknown = [k for k in keys if k not in GROUPS]
    if unknown or len(set(keys)) != len(keys):
        what = f"unknown transformation {unknown[0]!r}" if unknown else f"a transformation repeated in {spec!r}"
        raise ValueError(f"{what}; choose from {', '.join(GROUPS)}, several joined by {JOIN!r}")
    return tuple(k for k in GROUPS if k in keys)


def invariance_group(spec: str) -> Group:
    """A recipe's `invariance` as one group: the product of the groups it names, in the study's order."""
    return product([GROUPS[k] for k in group_keys(spec)])


def rotate4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, in block layout, with their labels (the E-SSL rotation batch).

    Class k is `torch.rot90(x, k, dims=(2, 3))` (k = 1 turns from the H axis towards the W axis).
    """
    return ROTATION.orbit(x)
