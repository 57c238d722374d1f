"""Evaluation: the kNN monitor and the frozen-backbone linear probe, as the official `cifar10/main.py`."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .augment import (
    NORMALIZATION,
    ImageViews,
    Stats,
    loader,
    normalize_pixels,
    probe_test_transform,
    probe_train_transform,
    to_pixels,
)
from .data import ImageData
from .device import autocast
from .groups import Group
from .imagenet_views import imagenet_probe_transforms
from .lars import LARS
from .schedule import cosine_lr


@torch.no_grad()
def pixel_features(
    backbone: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    batch_size: int = 512,
    amp: str = "bf16",
    stats: Stats = NORMALIZATION["cifar10"],
) -> torch.Tensor:
    """Backbone features (eval mode) of float NCHW images in [0, 1], normalised as the test transform does (with
    `stats`); under autocast on CUDA as `amp` says (the run's own setting where there is one)."""
    was_training = backbone.training
    backbone.eval()
    feats = []
    for chunk in x.split(batch_size):
        with autocast(device, amp):
            feats.append(backbone(normalize_pixels(chunk.to(device), stats)).float())
    backbone.train(was_training)
    return torch.cat(feats)


def extract_features(
    backbone: nn.Module,
    images: np.ndarray,
    device: torch.device,
    batch_size: int = 512,
    amp: str = "bf16",
    stats: Stats = NORMALIZATION["cifar10"],
    image_size: int = 224,
) -> torch.Tensor:
    """Backbone features of uint8 NHWC images under the test transform, in eval mode; image files (the full
    ImageNet tier) get ImageNet's Resize + CenterCrop to `image_size` first."""
    if images.dtype.kind in "US":
        return _file_features(backbone, images, device, batch_size, amp, image_size)
    feats = [
        pixel_features(
            backbone, to_pixels(torch.from_numpy(images[i : i + batch_size])), device, batch_size, amp, stats
        )
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(feats)


@torch.no_grad()
def _file_features(backbone: nn.Module, paths: np.ndarray, device, batch_size: int, amp: str, size: int):
    was_training = backbone.training
    backbone.eval()
    test_transform = imagenet_probe_transforms(size)[1]
    dl = loader(ImageViews(paths, np.zeros(len(paths), np.int64), [test_transform]), batch_size, shuffle=False,
                drop_last=False, workers=min(8, os.cpu_count() or 1))  # fmt: skip
    feats = []
    for (x,), _ in dl:
        with autocast(device, amp):
            feats.append(backbone(x.to(device)).float())
    backbone.train(was_training)
    return torch.cat(feats)


def centred_similarity(ref: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """Per-image cosine similarity of f(x) and f(g x), both centred on the mean of the f(x)."""
    mu = ref.mean(0)
    return F.cosine_similarity(ref - mu, moved - mu)


def invariance_similarity(backbone: nn.Module, images: np.ndarray, group: Group, device: torch.device) -> list[float]:
    """For each element g: the mean cosine similarity between f(x) and f(g x), 1.0 meaning invariant to g.

    Features are centred on the mean feature of the untransformed images first: ReLU features all share a
    large common component, which would make any two images look alike.
    """
    x = to_pixels(torch.from_numpy(images))
    ref = pixel_features(backbone, x, device)
    return [
        float(centred_similarity(ref, pixel_features(backbone, group.apply(x, k), device)).mean())
        for k in range(group.size)
    ]


@torch.no_grad()
def transformation_probabilities(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """What a trained E-branch head predicts: (n, |G|, |G|) probabilities, [i, k, j] = p(element j | image i with
    element k applied). Each image is resized to the recipe's rotation-view side (the branch's input in
    training), transformed, normalised, and passed through the backbone and the head in eval mode."""
    branch, side = model.equivariance, model.recipe.rot_size
    if branch is None:
        raise ValueError(f"{model.recipe.name} has no E-branch (lambda 0): nothing predicts a transformation")
    x = F.interpolate(to_pixels(torch.from_numpy(images)), size=(side, side), mode="bilinear", antialias=True)
    copies, _ = branch.group.orbit(x.clamp(0, 1))  # block layout: [all k=0 | all k=1 | ...]
    was_training = model.training
    model.eval()
    logits = branch.head(model.backbone(normalize_pixels(copies.to(device)))).float()
    model.train(was_training)
    size = branch.group.size
    return logits.softmax(1).view(size, len(images), size).permute(1, 0, 2).cpu().numpy()


def equivariance_predictability(
    backbone: nn.Module, images: np.ndarray, group: Group, device: torch.device, steps: int = 300, seed: int = 0
) -> float:
    """Test accuracy (%) of a linear classifier that predicts g from f(g x), trained on half of the images.

    Chance is 100/|G|. An encoder invariant to the group scores chance; a high score means the feature
    carries which element was applied, i.e. the representation is (non-trivially) equivariant to it.
    """
    x = to_pixels(torch.from_numpy(images))
    copies, labels = group.orbit(x)
    feats = pixel_features(backbone, copies, device).cpu()
    image_index = torch.arange(len(x)).repeat(group.size)
    train = image_index < len(x) // 2  # split by source image, so test images were never seen in any form
    mean, std = feats[train].mean(0), feats[train].std(0) + 1e-6
    feats = (feats - mean) / std
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(feats.shape[1], group.size)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
        head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.cross_entropy(head(feats[train]), labels[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = head(feats[~train]).argmax(1)
    return float(100.0 * (pred == labels[~train]).float().mean())


def knn_predict(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    k: int = 200,
    t: float = 0.1,
    chunk: int = 1024,
) -> torch.Tensor:
    """Weighted kNN (InstDisc): cosine top-k neighbours, each voting with weight exp(sim / t)."""
    bank, queries = F.normalize(bank, dim=1), F.normalize(queries, dim=1)
    n_classes = int(bank_labels.max()) + 1
    k = min(k, len(bank))
    preds = []
    for q in queries.split(chunk):
        sim, idx = (q @ bank.T).topk(k, dim=1)
        weights = (sim / t).exp()
        votes = torch.zeros(len(q), n_classes, device=q.device)
        votes.scatter_add_(1, bank_labels[idx], weights)
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(
    backbone: nn.Module,
    data: ImageData,
    device: torch.device,
    k: int = 200,
    t: float = 0.1,
    amp: str = "bf16",
    stats: Stats = NORMALIZATION["cifar10"],
    image_size: int = 224,
) -> float:
    """Top-1 % of the kNN classifier: training set (test transform) as memory bank, test set as queries. The
    images are used as stored (CIFAR-10's 32 px; an ImageNet cache's resized, centre-cropped side); original
    image files are resized and centre-cropped to `image_size`."""
    bank = extract_features(backbone, data.train_x, device, amp=amp, stats=stats, image_size=image_size)
    queries = extract_features(backbone, data.test_x, device, amp=amp, stats=stats, image_size=image_size)
    labels = torch.from_numpy(data.train_y).to(device)
    pred = knn_predict(bank, labels, queries, k, t)
    return float(100.0 * (pred.cpu().numpy() == data.test_y).mean())


@dataclass(frozen=True)
class ProbeProtocol:
    """How a linear probe trains and what it reports, beyond the lr, epochs and batch the recipe holds."""

    optimizer: str = "sgd"  # or "lars"
    weight_decay: float = 0.0
    per_epoch: bool = False  # the cosine moves once per epoch (ImageNet probes), not every step (CIFAR-10)
    report: str = "final"  # or "best": the best test accuracy over epochs, as the official ImageNet probes
    init_std: float | None = None  # N(0, init_std) weights and zero bias; None: nn.Linear's default
    imagenet: bool = False  # ImageNet's transforms and normalisation
    lr_per_256: bool = False  # the lr is per 256 images, scaled by batch/256 (the official SimSiam probe)
    source: str = "the official cifar10/main.py (eval_loop)"


_IMAGENET_PROBE = dict(weight_decay=1e-6, per_epoch=True, report="best", init_std=0.01, imagenet=True)
PROBES = {
    "cifar10": ProbeProtocol(),
    # The official SimCLR probe creates its cosine schedule but never steps it (lr stays 1.0 for 100 epochs);
    # it is stepped here, once per epoch, as intended and as the Barlow Twins probe does.
    "imagenet-simclr": ProbeProtocol(
        **_IMAGENET_PROBE, source="the official imagenet/simclr/linear_probe.py, with its cosine stepped per epoch"
    ),
    "imagenet-barlowtwins": ProbeProtocol(
        **_IMAGENET_PROBE, source="the official imagenet/barlowtwins/linear_probe.py"
    ),
    # The official SimSiam probe uses apex's LARC (trust 0.001, no clipping, no weight decay): LARS here, the same
    # rule except that the classifier's bias is not rescaled.
    "imagenet-simsiam": ProbeProtocol(
        **{**_IMAGENET_PROBE, "weight_decay": 0.0},
        optimizer="lars",
        lr_per_256=True,
        source="the official imagenet/simsiam/linear_probe.py, with LARS in place of apex's LARC",
    ),
}


def linear_probe(
    backbone: nn.Module,
    data: ImageData,
    device: torch.device,
    *,
    epochs: int = 100,
    lr: float = 30.0,
    batch_size: int = 256,
    seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    amp: str = "bf16",
    protocol: ProbeProtocol | None = None,
    image_size: int = 32,
) -> float:
    """Train Linear(features -> classes) on a frozen copy of the backbone; return test top-1 % as the protocol
    reports it (the final epoch's, or the best epoch's).

    The default protocol is the official CIFAR-10 code's: SGD lr 30, momentum 0.9, no weight decay, per-step
    cosine, bicubic RandomResizedCrop + flip for training, Resize(36) + CenterCrop(32) for testing; the ImageNet
    ones are in `PROBES`. One fix: the test accuracy is counted over all test images (the official CIFAR code
    averages per-batch accuracies over batches of unequal size).
    """
    protocol = protocol or PROBES["cifar10"]
    if protocol.imagenet:
        train_transform, test_transform = imagenet_probe_transforms(image_size)
    else:
        train_transform, test_transform = probe_train_transform(), probe_test_transform()
    frozen = copy.deepcopy(backbone).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(frozen.feature_dim, int(data.train_y.max()) + 1).to(device)
    # The head's initial weights come from `seed` without moving the caller's generators, the GPU's included.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        head.reset_parameters()
        if protocol.init_std is not None:  # the official ImageNet probes: N(0, 0.01) weights, zero bias
            nn.init.normal_(head.weight, std=protocol.init_std)
            nn.init.zeros_(head.bias)
    if protocol.lr_per_256:
        lr = lr * batch_size / 256
    if protocol.optimizer == "lars":
        opt = LARS(head.parameters(), lr=lr, weight_decay=protocol.weight_decay, momentum=0.9)
    else:
        opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=protocol.weight_decay)
    train_dl = loader(
        ImageViews(data.train_x, data.train_y, [train_transform]),
        batch_size,
        shuffle=True,
        drop_last=True,
        workers=workers,
        generator=gen,
    )
    total = epochs * len(train_dl)
    step = 0
    bar = tqdm(
        total=total,
        desc=f"linear probe (seed {seed})",
        disable=None if progress else True,
        leave=False,
        mininterval=1.0,
    )
    test_dl = loader(
        ImageViews(data.test_x, data.test_y, [test_transform]),
        512,
        shuffle=False,
        drop_last=False,
        workers=workers,
    )
    accuracies = []
    for epoch in range(epochs):
        for (x,), y in train_dl:
            lr_step = (epoch, epochs) if protocol.per_epoch else (step, total)
            for group in opt.param_groups:
                group["lr"] = cosine_lr(*lr_step, lr)
            with torch.no_grad(), autocast(device, amp):
                feats = frozen(x.to(device)).float()
            loss = F.cross_entropy(head(feats), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update()
        if protocol.report == "best" or epoch == epochs - 1:  # "best": tested after every epoch
            accuracies.append(_test_accuracy(frozen, head, test_dl, device, amp, len(data.test_y)))
    bar.close()
    return max(accuracies) if protocol.report == "best" else accuracies[-1]


@torch.no_grad()
def _test_accuracy(frozen: nn.Module, head: nn.Module, test_dl, device: torch.device, amp: str, n: int) -> float:
    correct = 0
    for (x,), y in test_dl:
        with autocast(device, amp):
            feats = frozen(x.to(device)).float()
        correct += (head(feats).argmax(1).cpu() == y).sum().item()
    return 100.0 * correct / n
