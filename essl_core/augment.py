"""View pipelines. The reference: the paper's per-image torchvision/PIL transforms in DataLoader workers.

Every pipeline yields, per training step, the list of views `[x1, x2, x3]` already on the device, so a
batched on-device implementation can replace the reference without touching the training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

# The normalisation of the official CIFAR-10 code (its std is the commonly copied one; kept for fidelity).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Stats = tuple[tuple[float, ...], tuple[float, ...]]
NORMALIZATION: dict[str, Stats] = {"cifar10": (CIFAR_MEAN, CIFAR_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}
BICUBIC = T.InterpolationMode.BICUBIC


def to_normalized_tensor(stats: Stats = NORMALIZATION["cifar10"]) -> list:
    """ToTensor and Normalize with `stats`: the last steps of every per-image transform."""
    return [T.ToTensor(), T.Normalize(*stats)]


@dataclass(frozen=True)
class ViewSpec:
    """The random augmentation of one view; both pipelines make their views from it (`pil_view` per image,
    `batched_views` per batch). Blur and solarisation are absent where None (CIFAR-10) and present, if perhaps
    with probability 0, as steps of the official ImageNet views (their random draws are part of the stream)."""

    size: int = 32
    scale: tuple[float, float] = (0.2, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # ColorJitter's four strengths, p=0.8
    blur_p: float | None = None
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in pixels of the view
    solarize_p: float | None = None
    interpolation: str = "bilinear"  # RandomResizedCrop's resampling in the reference pipeline
    stats: str = "cifar10"  # the normalisation, a key of NORMALIZATION


class RandomBlur:
    """PIL Gaussian blur with probability `p` and sigma ~ U(sigma_min, sigma_max) (the official GaussianBlur),
    drawn from torch's generator (the official code uses Python's `random`) so that an epoch replays exactly."""

    def __init__(self, p: float, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.p, self.sigma = p, sigma

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1).item() >= self.p:
            return img
        lo, hi = self.sigma
        return img.filter(ImageFilter.GaussianBlur(lo + (hi - lo) * torch.rand(1).item()))

    def __repr__(self) -> str:
        return f"RandomBlur(p={self.p}, sigma={self.sigma})"


def pil_view(spec: ViewSpec) -> T.Compose:
    """The per-image transform of one view: RandomResizedCrop, flip, ColorJitter with p=0.8, grayscale with
    p=0.2, then the blur and solarisation the spec has, ToTensor and Normalize."""
    steps = [
        T.RandomResizedCrop(spec.size, scale=spec.scale, interpolation=T.InterpolationMode(spec.interpolation)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(*spec.jitter)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ]
    if spec.blur_p is not None:
        steps.append(RandomBlur(spec.blur_p, spec.blur_sigma))
    if spec.solarize_p is not None:
        steps.append(T.RandomSolarize(128, p=spec.solarize_p))  # PIL's solarize: invert every value >= 128
    return T.Compose([*steps, *to_normalized_tensor(NORMALIZATION[spec.stats])])


def ssl_view(size: int = 32, scale: tuple[float, float] = (0.2, 1.0)) -> T.Compose:
    """One CIFAR-10 SSL view: RandomResizedCrop, flip, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2."""
    return pil_view(ViewSpec(size, scale))


def plain_transform() -> T.Compose:
    """No augmentation (kNN memory bank and queries)."""
    return T.Compose(to_normalized_tensor())


def probe_train_transform() -> T.Compose:
    """Linear-probe training augmentation: bicubic RandomResizedCrop(32), default scale, and a flip."""
    crop = T.RandomResizedCrop(32, interpolation=BICUBIC)
    return T.Compose([crop, T.RandomHorizontalFlip(), *to_normalized_tensor()])


def probe_test_transform() -> T.Compose:
    """Linear-probe evaluation: bicubic Resize(36) then CenterCrop(32)."""
    return T.Compose([T.Resize(36, interpolation=BICUBIC), T.CenterCrop(32), *to_normalized_tensor()])


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> float NCHW in [0, 1], as ToTensor does."""
    return x.permute(0, 3, 1, 2).float().div_(255)


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def channel_constant(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    """`values` as a (1, C, 1, 1) tensor on `like`'s device and dtype, made once per device and dtype: creating
    it from Python data every step would be a host-to-device copy, which waits for the GPU."""
    key = (values, like.device, like.dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=like.dtype).view(1, -1, 1, 1).to(like.device)
    return _CONSTANTS[key]


def normalize_pixels(x: torch.Tensor, stats: Stats = NORMALIZATION["cifar10"]) -> torch.Tensor:
    """Normalize on a float NCHW batch in [0, 1] (CIFAR-10's statistics unless `stats` says otherwise)."""
    return (x - channel_constant(stats[0], x)) / channel_constant(stats[1], x)


def denormalize_pixels(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `normalize_pixels`: back to pixel values in [0, 1]."""
    return x * channel_constant(CIFAR_STD, x) + channel_constant(CIFAR_MEAN, x)


def normalize_uint8(x: torch.Tensor) -> torch.Tensor:
    """ToTensor + Normalize on a batch of uint8 NHWC images, exactly as the per-image test transform does."""
    return normalize_pixels(to_pixels(x))


def as_pil(item) -> Image.Image:
    """One image of an ImageData: a uint8 HWC array, or the path of an image file (the full ImageNet tier)."""
    if isinstance(item, (str, np.str_)):
        with Image.open(item) as img:  # torchvision's ImageFolder loader: decode, then RGB
            return img.convert("RGB")
    return Image.fromarray(item)


class ImageViews(Dataset):
    """Images (uint8 HWC arrays or file paths) -> PIL -> each transform of `transforms`; items are (tuple of
    views, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transforms: Sequence[Callable]) -> None:
        self.images, self.labels, self.transforms = images, labels, list(transforms)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = as_pil(self.images[i])
        return tuple(t(img) for t in self.transforms), int(self.labels[i])


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's order and augmentations, so an epoch replays identically on resume."""
    return seed * 100_003 + epoch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU RNG that fixes one epoch's order and worker seeds for the reference pipeline."""
    return torch.Generator().manual_seed(epoch_seed(seed, epoch))


def loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    drop_last: bool,
    workers: int,
    generator=None,
    batch_sampler: list[list[int]] | None = None,
) -> DataLoader:
    """A DataLoader with the settings every pipeline here uses (`batch_sampler`: the batches, given)."""
    batching = dict(batch_sampler=batch_sampler) if batch_sampler else dict(batch_size=batch_size, shuffle=shuffle,
                                                                            drop_last=drop_last)  # fmt: skip
    return DataLoader(
        dataset,
        **batching,
        num_workers=workers,
        generator=generator,
        pin_memory=torch.cuda.is_available(),
        # A new loader per epoch, seeded by the epoch, keeps a resumed run exact; so no persistent workers. A
        # worker stuck for 5 minutes (e.g. a full /dev/shm) is an error instead of a silent hang.
        persistent_workers=False,
        timeout=300 if workers > 0 else 0,
    )


class ViewPipeline(Protocol):
    """What the training loop needs from a view pipeline."""

    steps_per_epoch: int
    labelled: bool  # each step's list ends with the batch's labels

    def epoch(self, epoch: int) -> Iterator[list[torch.Tensor]]:
        """Yield the views of each step of `epoch` (then the labels, if `labelled`), on the device."""
        ...


class ReferenceViews:
    """The paper's pipeline: per-image PIL transforms in DataLoader workers, shuffled, `drop_last=True`; one
    transform per view. With `labels`, each step's list ends with the batch's labels.

    Under DDP (`world` > 1) every rank draws the same epoch order and takes its share of each global batch of
    `batch_size` (as a DistributedSampler with drop_last), with its own augmentation seeds."""

    def __init__(
        self,
        images: np.ndarray,
        transforms: Sequence[Callable],
        batch_size: int,
        device: torch.device,
        *,
        labels: np.ndarray | None = None,
        workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.labelled = labels is not None
        self.dataset = ImageViews(images, labels if self.labelled else np.zeros(len(images), np.int64), transforms)
        self.batch_size, self.device, self.workers, self.seed = batch_size, device, workers, seed
        self.rank, self.world = rank, world
        self.steps_per_epoch = len(images) // batch_size

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's indices for every step of `epoch`: its slice of each global batch of one shared order."""
        order = torch.randperm(len(self.dataset), generator=epoch_generator(self.seed, epoch)).tolist()
        share = self.batch_size // self.world
        starts = (step * self.batch_size + self.rank * share for step in range(self.steps_per_epoch))
        return [order[s : s + share] for s in starts]

    def epoch(self, epoch: int) -> Iterator[list[torch.Tensor]]:
        worker_seeds = epoch_generator(self.seed + 1_000_003 * (self.rank + 1), epoch)  # differ between ranks
        dl = loader(self.dataset, 0, shuffle=False, drop_last=False, workers=self.workers, generator=worker_seeds,
                    batch_sampler=self.batches(epoch))  # fmt: skip
        for views, labels in dl:
            yield [v.to(self.device, non_blocking=True) for v in (*views, *([labels] if self.labelled else []))]
