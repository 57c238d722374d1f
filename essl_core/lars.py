"""LARS, as the official ImageNet SimCLR and Barlow Twins code use it (You et al., 2017, in the form of the
Barlow Twins code): weight decay added to the gradient, the update scaled by the trust ratio
eta * ||w|| / ||g + wd w||, heavy-ball momentum, then a step of -lr. Parameters with one dimension (biases,
BatchNorm and LayerNorm weights) get neither weight decay nor the trust ratio."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def exclude_bias_and_norm(p: torch.Tensor) -> bool:
    """The official exclusion rule: one-dimensional parameters."""
    return p.ndim == 1


class LARS(torch.optim.Optimizer):
    """LARS with the official exclusions. Parameter groups may carry their own lr, weight decay and eta."""

    def __init__(
        self, params: Iterable, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, eta: float = 0.001
    ) -> None:
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta))

    @torch.no_grad()
    def step(self, closure=None):  # the closure argument is the Optimizer API's; LARS needs none
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if not exclude_bias_and_norm(p):
                    update = update.add(p, alpha=group["weight_decay"])
                    w_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                    # The trust ratio; 1 where either norm is 0 (a zero-initialised weight, no gradient).
                    ratio = torch.where((w_norm > 0) & (u_norm > 0), group["eta"] * w_norm / u_norm, 1.0)
                    update = update.mul(ratio)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                state["mu"].mul_(group["momentum"]).add_(update)
                p.add_(state["mu"], alpha=-group["lr"])
