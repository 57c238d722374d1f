"""Self-supervised losses, as the official code computes them (CIFAR-10 `main.py`, ImageNet `barlowtwins/`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .distributed import all_reduce_sum, gather, world_size


def full_precision(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Compute `loss` in (at least) float32 outside autocast: half-precision tensor arguments are cast to float32
    and its matmuls do not drop back to bf16/fp16 (the official code computes its losses in float32)."""

    def widen(a):
        return a.float() if isinstance(a, torch.Tensor) and a.dtype in (torch.float16, torch.bfloat16) else a

    @functools.wraps(loss)
    def wrapped(*args, **kwargs):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        with torch.autocast(device, enabled=False):
            return loss(*map(widen, args), **kwargs)

    return wrapped


@full_precision
def cross_view_infonce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The official CIFAR InfoNCE: B x B cross-view logits only, symmetrised.

    Row i of z1 has z2[i] as its positive and the other B-1 rows of z2 as negatives; there are no
    negatives from its own view, so this is not the 2B-2 NT-Xent. Under DDP, B is the global batch (the
    official ImageNet code's gathered logits).
    """
    z1, z2 = F.normalize(gather(z1), dim=1), F.normalize(gather(z2), dim=1)  # all ranks' rows under DDP
    logits = z1 @ z2.T / temperature
    targets = torch.arange(len(z1), device=z1.device)
    return 0.5 * F.cross_entropy(logits, targets) + 0.5 * F.cross_entropy(logits.T, targets)


@full_precision
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Standard NT-Xent (SimCLR paper): 2B anchors, one positive and 2B-2 negatives each."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    # Row i's positive is i + B for the first view and i - B for the second (made on the device).
    targets = torch.arange(len(z), device=z.device).roll(len(z1))
    return F.cross_entropy(logits, targets)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z): minus the mean cosine similarity, with a stop-gradient on z."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


@full_precision
def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """The symmetrised SimSiam loss 1/2 D(p1, sg z2) + 1/2 D(p2, sg z1)."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


def standardise(z: torch.Tensor) -> torch.Tensor:
    """Each feature standardised over the batch (biased variance, eps 1e-5), as a BatchNorm without affine
    parameters does in training."""
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)


@full_precision
def barlow_twins_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    off_diagonal_weight: float = 0.0051,
    normalise: Callable[[torch.Tensor], torch.Tensor] = standardise,
) -> torch.Tensor:
    """Barlow Twins: c = normalise(z1)^T normalise(z2) / B, summed over ranks under DDP (B the global batch), then
    sum_i (1 - c_ii)^2 + off_diagonal_weight * sum_{i != j} c_ij^2. The method passes its BatchNorm without
    affine parameters as `normalise` (the official code's; synchronised over ranks under DDP)."""
    c = all_reduce_sum(normalise(z1).T @ normalise(z2)) / (len(z1) * world_size())
    diagonal = torch.diagonal(c)
    on = (1 - diagonal).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return on + off_diagonal_weight * off
