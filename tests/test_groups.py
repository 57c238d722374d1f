import torch

from essl_core.groups import rotate4


def official_rotations(x: torch.Tensor) -> torch.Tensor:
    """The flip/transpose construction of the official code, written out: 0, 90, 180, 270 degrees."""
    return torch.cat([x, x.flip(3).transpose(2, 3), x.flip(3).flip(2), x.transpose(2, 3).flip(3)])


def test_rotate4_equals_official_construction_and_block_labels():
    x = torch.randn(5, 3, 16, 16)
    rotated, labels = rotate4(x)
    assert rotated.shape == (20, 3, 16, 16)
    assert torch.equal(rotated, official_rotations(x))
    assert labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for k in range(4):
        assert torch.equal(rotated[labels == k], torch.rot90(x, k, dims=(2, 3)))


def test_rotation_classes_are_distinct_and_compose():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    rotated, _ = rotate4(x)
    assert len({tuple(r.flatten().tolist()) for r in rotated}) == 4
    # k = 1 turns the first row into the first column read upwards (H axis towards W axis).
    assert rotated[1, 0, :, 0].tolist() == x[0, 0, 0, :].flip(0).tolist()
    twice, _ = rotate4(rotated[1:2])
    assert torch.equal(twice[1], rotated[2]) and torch.equal(twice[3], rotated[0])


def test_group_laws_and_labels():
    from torchvision.transforms.v2.functional import rgb_to_grayscale

    from essl_core.groups import GRAYSCALE, GROUPS, HFLIP, INVERSION, ROTATION, VFLIP

    x = torch.rand(3, 3, 8, 8)
    for g in (HFLIP, VFLIP, INVERSION):  # involutions
        assert torch.equal(g.apply(g.apply(x, 1), 1), x) and not torch.equal(g.apply(x, 1), x)
    for a in range(4):  # rotations compose: r_a r_b = r_(a+b mod 4)
        for b in range(4):
            assert torch.equal(ROTATION.apply(ROTATION.apply(x, a), b), ROTATION.apply(x, (a + b) % 4))
    gray = GRAYSCALE.apply(x, 1)
    # PIL's luma weights (0.299, 0.587, 0.114); torchvision's tensor version uses 0.2989.
    assert torch.allclose(gray, rgb_to_grayscale(x, num_output_channels=3), atol=1e-3)
    assert torch.allclose(GRAYSCALE.apply(gray, 1), gray, atol=1e-6)  # idempotent, not invertible
    for g in GROUPS.values():
        copies, labels = g.orbit(x)
        assert copies.shape == (3 * g.size, *x.shape[1:]) and labels.tolist() == [
            k for k in range(g.size) for _ in range(3)
        ]
        assert torch.equal(g.apply(x, 0), x)
