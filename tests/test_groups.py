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
    assert list(GROUPS) == ["hflip", "grayscale", "rotation", "vflip", "jigsaw", "blur", "inversion"]
    for g in GROUPS.values():
        copies, labels = g.orbit(x)
        assert copies.shape == (3 * g.size, *x.shape[1:]) and labels.tolist() == [
            k for k in range(g.size) for _ in range(3)
        ]
        assert torch.equal(g.apply(x, 0), x)


def test_jigsaw_has_24_distinct_invertible_elements_that_compose():
    from essl_core.groups import JIGSAW, JIGSAW_PERMUTATIONS

    x = torch.rand(2, 3, 8, 8)
    images = {tuple(JIGSAW.apply(x, k).flatten().tolist()) for k in range(24)}
    assert JIGSAW.size == 24 and len(images) == 24 and JIGSAW.element_names[0] == "0123"
    index = {p: k for k, p in enumerate(JIGSAW_PERMUTATIONS)}
    for a, p in enumerate(JIGSAW_PERMUTATIONS):
        inverse = index[tuple(sorted(range(4), key=lambda i: p[i]))]
        assert torch.equal(JIGSAW.apply(JIGSAW.apply(x, a), inverse), x)
        for b, q in enumerate(JIGSAW_PERMUTATIONS):  # p then q is the permutation i -> p[q[i]]
            composed = index[tuple(p[q[i]] for i in range(4))]
            assert torch.equal(JIGSAW.apply(JIGSAW.apply(x, a), b), JIGSAW.apply(x, composed))
    # Element "1032" swaps the two top and the two bottom quadrants: a horizontal flip of quadrant positions.
    grid = torch.arange(16.0).view(1, 1, 4, 4)
    assert JIGSAW.apply(grid, index[(1, 0, 3, 2)])[0, 0].tolist() == [
        [2, 3, 0, 1], [6, 7, 4, 5], [10, 11, 8, 9], [14, 15, 12, 13]
    ]  # fmt: skip


def test_blur_levels_equal_torchvision_gaussian_blur():
    from torchvision.transforms import functional as TF

    from essl_core.groups import BLUR, BLUR_KERNELS

    x = torch.rand(4, 3, 16, 16)
    assert BLUR.size == 4 and torch.equal(BLUR.apply(x, 0), x)
    for level, kernel in enumerate(BLUR_KERNELS, start=1):
        torch.testing.assert_close(BLUR.apply(x, level), TF.gaussian_blur(x, [kernel, kernel]), atol=1e-6, rtol=0)
    # Stronger levels remove more detail (mean absolute difference of neighbouring pixels falls).
    detail = [(BLUR.apply(x, k)[..., 1:] - BLUR.apply(x, k)[..., :-1]).abs().mean() for k in range(4)]
    assert detail[0] > detail[1] > detail[2] > detail[3]


def test_apply_each_gives_every_image_its_own_element():
    from essl_core.groups import GROUPS

    x = torch.rand(12, 3, 8, 8)
    for group in GROUPS.values():
        k = torch.randint(0, group.size, (12,), generator=torch.Generator().manual_seed(group.size))
        each = group.apply_each(x, k)
        for i in range(12):
            assert torch.equal(each[i], group.apply(x[i : i + 1], int(k[i]))[0]), group.name


def test_several_invariances_act_as_their_product_in_the_study_s_order():
    import pytest

    from essl_core.groups import GROUPS, HFLIP, ROTATION, group_keys, invariance_group

    assert group_keys("rotation+hflip") == ("hflip", "rotation")  # one choice, whatever the order typed
    assert invariance_group("rotation") is ROTATION  # one group is itself
    both = invariance_group("rotation+hflip+inversion")
    assert both.size == 16 and both.element_names[0] == "identity · 0° · identity" and both.on_pixels
    x = torch.rand(16, 3, 8, 8)
    for k in range(both.size):  # element k: hflip's digit, then rotation's, then inversion's (fastest)
        expected = GROUPS["inversion"].apply(ROTATION.apply(HFLIP.apply(x, k // 8), k // 2 % 4), k % 2)
        assert torch.equal(both.apply(x, k), expected), k
    k = torch.arange(16).flip(0)  # every element once, one per image
    each = both.apply_each(x, k)
    assert all(torch.equal(each[i], both.apply(x[i : i + 1], int(k[i]))[0]) for i in range(16))
    for bad, message in (("rotation+spin", "unknown transformation 'spin'"), ("hflip+hflip", "repeated")):
        with pytest.raises(ValueError, match=message):
            group_keys(bad)
