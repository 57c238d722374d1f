import math

import pytest
import torch
import torch.nn.functional as F

from essl_core.losses import cross_view_infonce, negative_cosine, nt_xent, simsiam_loss


def _unit(rows):
    return [[v / math.sqrt(sum(x * x for x in r)) for v in r] for r in rows]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def _hand_infonce(a, b, t):
    """-1/B sum_i log softmax_j(a_i . b_j / t)[i], with plain Python arithmetic."""
    total = 0.0
    for i, ai in enumerate(a):
        logits = [_dot(ai, bj) / t for bj in b]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(a)


Z1 = [[1.0, 0.2, -0.5], [0.3, -1.0, 0.8], [-0.7, 0.4, 0.1], [0.2, 0.2, 0.9]]
Z2 = [[0.9, 0.1, -0.4], [0.1, -0.8, 1.0], [-0.5, 0.6, 0.0], [0.5, -0.3, 0.7]]


def test_cross_view_infonce_matches_hand_computation():
    a, b = _unit(Z1), _unit(Z2)
    expected = 0.5 * _hand_infonce(a, b, 0.5) + 0.5 * _hand_infonce(b, a, 0.5)
    got = cross_view_infonce(torch.tensor(Z1, dtype=torch.float64), torch.tensor(Z2, dtype=torch.float64), 0.5)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_ntxent_matches_hand_computation_and_differs_from_cross_view():
    a, b = _unit(Z1), _unit(Z2)
    z = a + b
    n = len(a)
    total = 0.0
    for i, zi in enumerate(z):
        pos = (i + n) % (2 * n)
        logits = {j: _dot(zi, zj) / 0.5 for j, zj in enumerate(z) if j != i}
        total += -(logits[pos] - math.log(sum(math.exp(v) for v in logits.values())))
    expected = total / (2 * n)
    t1, t2 = torch.tensor(Z1, dtype=torch.float64), torch.tensor(Z2, dtype=torch.float64)
    assert nt_xent(t1, t2, 0.5).item() == pytest.approx(expected, rel=1e-12)
    # The official loss has no intra-view negatives, so it is strictly smaller here.
    assert cross_view_infonce(t1, t2, 0.5).item() < nt_xent(t1, t2, 0.5).item() - 0.1


def test_simsiam_stops_gradient_into_targets():
    p1, p2 = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    z1, z2 = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    loss = simsiam_loss(p1, p2, z1, z2)
    expected = -0.5 * (F.cosine_similarity(p1, z2).mean() + F.cosine_similarity(p2, z1).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad is not None and p1.grad.abs().sum() > 0
    assert negative_cosine(p1, p1).item() == pytest.approx(-1.0)


def _hand_barlow_twins(a, b, weight):
    """Barlow Twins with plain Python: standardise each feature over the batch (biased variance, eps 1e-5),
    c_ij = 1/B sum_n a_ni b_nj, loss = sum_i (1 - c_ii)^2 + weight * sum_{i != j} c_ij^2."""

    def standardise(rows):
        n, d = len(rows), len(rows[0])
        cols = []
        for j in range(d):
            col = [r[j] for r in rows]
            mean = sum(col) / n
            var = sum((v - mean) ** 2 for v in col) / n
            cols.append([(v - mean) / math.sqrt(var + 1e-5) for v in col])
        return cols  # feature-major

    sa, sb, n = standardise(a), standardise(b), len(a)
    total = 0.0
    for i, ai in enumerate(sa):
        for j, bj in enumerate(sb):
            c = _dot(ai, bj) / n
            total += (1 - c) ** 2 if i == j else weight * c * c
    return total


def test_barlow_twins_matches_the_formula_computed_by_hand():
    from essl_core.losses import barlow_twins_loss

    got = barlow_twins_loss(torch.tensor(Z1), torch.tensor(Z2), 0.0051).item()
    assert got == pytest.approx(_hand_barlow_twins(Z1, Z2, 0.0051), rel=1e-5)
    # Identical, decorrelated views reach the minimum (c = identity) up to the variance epsilon.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(z, z).item() < 1e-8


@pytest.mark.parametrize("name", ["cross_view_infonce", "nt_xent", "barlow_twins_loss"])
def test_losses_are_computed_in_float32_even_under_autocast(name):
    import essl_core.losses as losses

    loss = getattr(losses, name)
    torch.manual_seed(0)
    z1, z2 = torch.randn(16, 64), torch.randn(16, 64)
    plain = loss(z1, z2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(z1.bfloat16(), z2.bfloat16())
        assert (z1 @ z2.T).dtype == torch.bfloat16  # what autocast would do to the logits otherwise
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, loss(z1.bfloat16().float(), z2.bfloat16().float()))
    assert torch.isfinite(plain)
