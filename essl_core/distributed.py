"""Data-parallel training with PyTorch's own engine: DDP in processes launched by `torchrun` (one node, several,
or under SLURM through `scripts/slurm-train.sh`). Without torchrun everything here is the identity, so the same
code trains in one process.

What a step needs across ranks, each tested on the CPU with gloo against one process on the whole batch:
- `gather`: all ranks' projections, concatenated, with gradients flowing back to every rank's slice, so the
  InfoNCE logits are global (4096 x 4096 at the paper's batch), as the official GatherLayer;
- `all_reduce_sum`: Barlow Twins' cross-correlation summed over ranks, differentiably (see its docstring);
- synchronised BatchNorm: torch's `SyncBatchNorm` on CUDA; on the CPU, where torch has no kernels for it,
  `CpuSyncBatchNorm` (the same statistics from one all-reduce of per-channel sums).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from .errors import EsslError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, logs and records and runs the evaluation."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device) -> World:
    """Join the process group torchrun described in the environment (nccl on CUDA, gloo on the CPU), or return
    the one-process world."""
    if not launched_by_torchrun():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # A rank that dies makes the others fail within this time instead of waiting forever.
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    return current_world()


def current_world() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size())


def world_size() -> int:
    return current_world().size


def gather(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x`, concatenated in rank order; the gradient of each slice flows back to its rank."""
    if world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x.contiguous()), 0)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient of this rank's slice (as reduce-scatter would):
    each rank computes the same global loss, DDP then averages the parameter gradients, so the update equals
    one process on the whole batch."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x)
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(grads)
        dist.all_reduce(stacked)
        return stacked[dist.get_rank()]


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of `x` over ranks, differentiable: its backward all-reduces the gradient too.

    The official Barlow Twins code all-reduces its cross-correlation outside autograd, so each rank's gradient
    holds only its own part of c: the parameters LARS does not rescale (biases and norms) get 1/world of the
    one-process gradient there. Ours equals one process on the whole batch (tested)."""
    return x if world_size() == 1 else _AllReduceSum.apply(x)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient is summed over ranks too (every rank's loss depends on every rank's x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with statistics over every rank's batch, for the CPU (torch's SyncBatchNorm runs on GPUs only).

    Per-channel sums, sums of squares and counts are all-reduced in one differentiable call, so autograd
    gives the synchronised backward; running statistics are updated as torch's BatchNorm does (unbiased
    variance of the global batch)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype)
        stats = all_reduce_sum(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `module` synchronised over ranks: torch's SyncBatchNorm on CUDA, ours on the CPU."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        synced = CpuSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


def check_same_config(config: dict) -> None:
    """Stop every rank with one line when the ranks were started with different settings."""
    if world_size() == 1:
        return
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    digests: list = [None] * world_size()
    dist.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        raise EsslError(f"the {len(digests)} ranks were started with different settings; start them identically")


def gather_objects(obj) -> list:
    """`obj` from every rank, in rank order (on every rank)."""
    if world_size() == 1:
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of `x` over ranks (for logging), outside autograd."""
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / world_size()


def peer_failure(exc: BaseException) -> bool:
    """Whether `exc` is a collective that failed because another rank died or hung."""
    text = str(exc)
    signs = ("Connection closed by peer", "Connection reset by peer", "remote worker", "Timed out", "NCCL")
    return isinstance(exc, dist.DistError) or any(sign in text for sign in signs)


def finish_distributed() -> None:
    """Leave the process group after training (every rank), so that rank 0 can evaluate alone."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
