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
