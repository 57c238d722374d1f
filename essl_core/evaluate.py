"""Evaluation: the kNN monitor and the frozen-backbone linear probe, as the official `cifar10/main.py`."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .augment import ImageViews, loader, normalize_pixels, probe_test_transform, probe_train_transform, to_pixels
from .data import ImageData
from .device import autocast
from .groups import Group
from .schedule import cosine_lr


@torch.no_grad()
def pixel_features(
    backbone: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 512, amp: str = "bf16"
) -> torch.Tensor:
    """Backbone features (eval mode) of float NCHW images in [0, 1], normalised as the test transform does;
    under autocast on CUDA as `amp` says (the run's own setting where there is one)."""
    was_training = backbone.training
    backbone.eval()
    feats = []
    for chunk in x.split(batch_size):
        with autocast(device, amp):
            feats.append(backbone(normalize_pixels(chunk.to(device))).float())
    backbone.train(was_training)
    return torch.cat(feats)


def extract_features(
    backbone: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 512, amp: str = "bf16"
) -> torch.Tensor:
    """Backbone features of uint8 NHWC images under the test transform, in eval mode."""
    feats = [
        pixel_features(backbone, to_pixels(torch.from_numpy(images[i : i + batch_size])), device, batch_size, amp)
        for i in range(0, len(images), batch_size)
    ]
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
    backbone: nn.Module, data: ImageData, device: torch.device, k: int = 200, t: float = 0.1, amp: str = "bf16"
) -> float:
    """Top-1 % of the kNN classifier: training set (test transform) as memory bank, test set as queries."""
    bank = extract_features(backbone, data.train_x, device, amp=amp)
    queries = extract_features(backbone, data.test_x, device, amp=amp)
    labels = torch.from_numpy(data.train_y).to(device)
    pred = knn_predict(bank, labels, queries, k, t)
    return float(100.0 * (pred.cpu().numpy() == data.test_y).mean())


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
) -> float:
    """Train Linear(features -> 10) on a frozen copy of the backbone; return test top-1 %.

    The protocol of the official code: SGD lr 30, momentum 0.9, no weight decay, per-step cosine, bicubic
    RandomResizedCrop + flip for training, Resize(36) + CenterCrop(32) for testing. One fix: the test accuracy is
    counted over all test images (the official code averages per-batch accuracies over batches of unequal size).
    """
    frozen = copy.deepcopy(backbone).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(frozen.feature_dim, int(data.train_y.max()) + 1).to(device)
    # The head's initial weights come from `seed` without moving the caller's generators, the GPU's included.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        head.reset_parameters()
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    train_dl = loader(
        ImageViews(data.train_x, data.train_y, [probe_train_transform()]),
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
    for _ in range(epochs):
        for (x,), y in train_dl:
            for group in opt.param_groups:
                group["lr"] = cosine_lr(step, total, lr)
            with torch.no_grad(), autocast(device, amp):
                feats = frozen(x.to(device)).float()
            loss = F.cross_entropy(head(feats), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update()
    bar.close()
    test_dl = loader(
        ImageViews(data.test_x, data.test_y, [probe_test_transform()]),
        512,
        shuffle=False,
        drop_last=False,
        workers=workers,
    )
    correct = 0
    with torch.no_grad():
        for (x,), y in test_dl:
            with autocast(device, amp):
                feats = frozen(x.to(device)).float()
            correct += (head(feats).argmax(1).cpu() == y).sum().item()
    return 100.0 * correct / len(data.test_y)
