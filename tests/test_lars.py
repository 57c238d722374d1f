"""LARS against the update rule written out independently, parameter by parameter, in float64 numpy."""

import numpy as np
import torch
from torch import nn

from essl_core.lars import LARS


def _reference_steps(params, grads_per_step, lr, wd, momentum, eta):
    """w <- w - lr * mu, mu <- m * mu + u, u = (g + wd w) * eta ||w|| / ||g + wd w|| for matrices, u = g for
    vectors (biases and norms: no weight decay, no trust ratio)."""
    ws = [p.copy() for p in params]
    mus = [np.zeros_like(p) for p in params]
    for grads in grads_per_step:
        for i, (w, g) in enumerate(zip(ws, grads, strict=True)):
            if w.ndim > 1:
                u = g + wd * w
                wn, un = np.sqrt((w**2).sum()), np.sqrt((u**2).sum())
                u = u * (eta * wn / un if wn > 0 and un > 0 else 1.0)
            else:
                u = g
            mus[i] = momentum * mus[i] + u
            ws[i] = w - lr * mus[i]
    return ws


def test_lars_matches_the_rule_over_three_steps_with_exclusions_and_a_zero_weight():
    torch.manual_seed(0)
    layer, norm = nn.Linear(6, 4), nn.LayerNorm(4)
    zero = nn.Parameter(torch.zeros(3, 3))  # a zero-initialised weight: trust ratio 1
    params = [layer.weight, layer.bias, norm.weight, norm.bias, zero]
    start = [p.detach().double().numpy().copy() for p in params]
    opt = LARS(params, lr=0.7, weight_decay=0.01, momentum=0.9, eta=0.02)
    grads_per_step = []
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        opt.step()
        grads_per_step.append([g.double().numpy() for g in grads])
    expected = _reference_steps(start, grads_per_step, 0.7, 0.01, 0.9, 0.02)
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.detach().double().numpy(), e, rtol=1e-5, atol=1e-6)
    assert not torch.equal(zero, torch.zeros(3, 3))  # it moved by the plain momentum update


def test_lars_state_round_trips_through_a_checkpoint():
    torch.manual_seed(1)
    w = nn.Parameter(torch.randn(5, 5))
    opt = LARS([w], lr=0.1, weight_decay=1e-6)
    w.grad = torch.randn(5, 5)
    opt.step()
    again = LARS([nn.Parameter(w.detach().clone())], lr=0.1, weight_decay=1e-6)
    again.load_state_dict(opt.state_dict())
    assert torch.equal(again.state_dict()["state"][0]["mu"], opt.state_dict()["state"][0]["mu"])
