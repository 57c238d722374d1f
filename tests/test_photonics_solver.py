"""The plane-wave band solver, the DOS and the unit cells, validated against physics that can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from essl_core.errors import EsslError
from essl_core.photonics import cells, dos, mpb, pwe
from essl_core.photonics.dataset import band_gaps, label_fields


def _first_gap(coeff: torch.Tensor, n_max: int) -> tuple[float, float]:
    freqs = pwe.solve_tm(coeff, pwe.symmetry_path()[0], n_max, 2, velocities=False).freqs[0]
    return float(freqs[:, 0].max()), float(freqs[:, 1].min())


def _random_cell(seed: int) -> torch.Tensor:
    return 1 + 19 * torch.rand(32, 32, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_rods_in_air_have_the_textbook_tm_gap():
    # Joannopoulos et al., Molding the Flow of Light, ch. 5 (and MPB): eps 8.9 rods, r = 0.2a, TM gap
    # 0.3225-0.4425 (31.4%). With the rod's exact Fourier transform, 121 plane waves reach 0.05%.
    lower, upper = _first_gap(pwe.rod_fourier(8.9, 1.0, 0.2, 5), 5)
    assert lower == pytest.approx(0.3225, rel=5e-4)
    assert upper == pytest.approx(0.4425, rel=5e-4)
    assert 200 * (upper - lower) / (upper + lower) == pytest.approx(31.4, abs=0.1)
    # The same crystal as a 32 x 32 pixel image (what the data use): within 0.3%.
    xs, ys = cells._sample_points(32, 8)
    image = cells._pixel_mean(np.where(np.hypot(xs, ys) < 0.2, 8.9, 1.0), 32, 8)  # a rod on the origin
    lower, upper = _first_gap(pwe.pixel_fourier(torch.from_numpy(image)[None], 5), 5)
    assert lower == pytest.approx(0.3225, rel=3e-3)
    assert upper == pytest.approx(0.4425, rel=3e-3)


@pytest.mark.parametrize("eps", [1.0, 6.25])
def test_a_homogeneous_cell_gives_the_empty_lattice(eps):
    coeff = pwe.pixel_fourier(torch.full((1, 32, 32), eps), 5)
    bands = pwe.bands_on_grid(coeff, 25, 5)
    assert torch.allclose(bands.freqs[0], pwe.empty_lattice_bands(25, 5, 10, eps), atol=1e-12)
    # The DOS after the paper's scaling is 2 pi w on the points the metric uses (GGR and smoothing: 0.05%).
    curve = dos.dos_curve(bands.freqs[0].numpy(), bands.velocities[0].numpy(), 1 / 25, eps) / math.sqrt(eps)
    el = dos.empty_lattice()
    assert np.abs(curve - el)[100:400].max() < 5e-4 * el[100:400].mean()


def test_pixel_fourier_is_the_exact_transform_of_the_pixel_image():
    image = _random_cell(0)
    coeff = pwe.pixel_fourier(image[None], 3)[0]
    # pixel_fourier's convention: pixel p covers [p, p + 1) / 32. Each is sampled 16 x 16 times: a Riemann sum.
    xs, ys = np.meshgrid(*((np.arange(32 * 16) + 0.5) / (32 * 16),) * 2, indexing="ij")
    fine = image.numpy().repeat(16, 0).repeat(16, 1)
    for m in [(0, 0), (1, 0), (2, -3), (-5, 4)]:
        direct = (fine * np.exp(-2j * math.pi * (m[0] * xs + m[1] * ys))).mean()
        assert complex(coeff[m[0] + 6, m[1] + 6]) == pytest.approx(direct, abs=2e-3 * abs(direct) + 1e-6)
    with pytest.raises(EsslError, match="resolves"):
        pwe.pixel_fourier(image[None], 8)


def test_group_velocities_are_the_derivatives_of_the_bands():
    coeff = pwe.pixel_fourier(_random_cell(1)[None], 4)
    k = torch.tensor([[0.13, -0.21], [0.31, 0.07]], dtype=torch.float64)
    v = pwe.solve_tm(coeff, k, 4, 6).velocities[0]
    h = 1e-6
    for axis in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[axis] = h
        up = pwe.solve_tm(coeff, k + step, 4, 6, velocities=False).freqs[0]
        down = pwe.solve_tm(coeff, k - step, 4, 6, velocities=False).freqs[0]
        assert torch.allclose(v[..., axis], (up - down) / (2 * h), atol=1e-6)


def test_the_accelerator_eigensolver_path_matches_lapack(monkeypatch):
    # CUDA runs torch's batched eigh instead of LAPACK's subset driver; on the CPU both must give the same bands.
    coeff = pwe.pixel_fourier(torch.stack([_random_cell(3), _random_cell(4)]), 4)
    k = torch.tensor([[0.13, -0.21], [0.31, 0.07], [0.0, 0.0]], dtype=torch.float64)
    lapack = pwe.solve_tm(coeff, k, 4, 8)
    monkeypatch.setattr(pwe, "_lowest_eigenpairs", pwe._lowest_eigenpairs_batched)
    batched = pwe.solve_tm(coeff, k, 4, 8)
    assert lapack.freqs.shape == batched.freqs.shape == (2, 3, 8)
    assert torch.allclose(lapack.freqs, batched.freqs, atol=1e-10)
    assert torch.allclose(lapack.velocities, batched.velocities, atol=1e-8)


@pytest.mark.parametrize("symmetric", [False, True])
def test_symmetry_reduced_grid_equals_solving_every_point(symmetric):
    image = _random_cell(2)
    if symmetric:
        image = (image + image.flip(0)).roll(5, 0)  # a mirror about a line off the cell origin
    ops = pwe.cell_symmetries(image)
    assert len(ops) == (2 if symmetric else 1)
    coeff = pwe.pixel_fourier(image[None], 3)
    reduced = pwe.bands_on_grid(coeff, 9, 3, 6, symmetries=ops)
    full = pwe.solve_tm(coeff, pwe.kgrid(9), 3, 6)
    assert torch.allclose(reduced.freqs, full.freqs, atol=1e-10)
    assert torch.allclose(reduced.velocities, full.velocities, atol=1e-8)


def test_ggr_conserves_states_and_a_flat_band_is_a_narrow_peak():
    rng = np.random.default_rng(0)
    freqs = np.sort(rng.uniform(0.1, 0.9, size=(49, 3)), axis=1)
    velocities = rng.normal(scale=0.3, size=(49, 3, 2))
    density = dos.ggr_dos(freqs, velocities, 1 / 7, 1.2, 4001, "bins")
    assert density.sum() * 1.2 / 4000 == pytest.approx(3.0, rel=1e-9)  # three bands, one state each per cell
    flat = dos.ggr_dos(np.full((49, 1), 0.5), np.zeros((49, 1, 2)), 1 / 7, 1.0, 1001, "bins")
    assert flat.argmax() == 500 and flat.sum() * 1e-3 == pytest.approx(1.0, rel=1e-9)


def test_official_point_sampling_reads_wide_trapezoids_and_misses_flat_bands():
    rng = np.random.default_rng(0)
    freqs = np.sort(rng.uniform(0.1, 0.9, size=(49, 3)), axis=1)
    velocities = rng.normal(scale=0.3, size=(49, 3, 2))
    points = dos.ggr_dos(freqs, velocities, 1 / 7, 1.2, 4001, "points")
    bins = dos.ggr_dos(freqs, velocities, 1 / 7, 1.2, 4001, "bins")
    assert points.sum() * 1.2 / 4000 == pytest.approx(3.0, rel=1e-2)  # states kept where trapezoids are wide
    # A trapezoid of half-widths 0.03 and 0.01 read at a point of its plateau and of its ramp.
    one = dos.ggr_dos(np.array([[0.5]]), np.array([[[0.06, 0.02]]]), 1.0, 1.0, 101, "points")
    assert one[50] == pytest.approx(1 / 0.06) and one[53] == pytest.approx((0.04 - 0.03) / (4 * 0.03 * 0.01))
    assert one[54] == 0 and np.count_nonzero(one > 1e-9) == 7  # 0.46 and 0.54 lie on its ends
    # Velocity 0 (every band at Gamma): a delta between two grid points is not seen at all; the bins keep it.
    gamma = (np.full((49, 1), 0.5005), np.zeros((49, 1, 2)), 1 / 7, 1.0, 1001)
    assert dos.ggr_dos(*gamma, "points").sum() == 0 and dos.ggr_dos(*gamma, "bins").sum() > 0
    on_point = dos.ggr_dos(np.full((49, 1), 0.5), np.zeros((49, 1, 2)), 1 / 7, 1.0, 1001, "points")
    assert on_point[500] == pytest.approx(1000.0)  # a delta on a point: capped at its whole mass in one step
    assert np.abs(points - bins).max() > 0


def test_band_gaps_lists_complete_gaps_only():
    freqs = np.array([[0.1, 0.3, 0.31, 0.6], [0.2, 0.32, 0.5, 0.7]])  # rows: k-points; bands 2 and 3 overlap
    gaps = band_gaps(freqs)
    assert gaps[:, 1:].tolist() == [[0.2, 0.3], [0.5, 0.6]]
    assert gaps[0, 0] == pytest.approx(200 * 0.1 / 0.5)


def test_gpm_cells_have_their_mirror_and_blob_cells_their_centred_inclusion():
    for i in range(5):
        gpm = cells.gpm_cell(np.random.default_rng([1, i]))
        assert np.allclose(gpm.eps, np.roll(gpm.eps[::-1], 1, axis=0), atol=1e-9)  # f(-x, y) = f(x, y); x_p = p/R - 1/2
        assert len(pwe.cell_symmetries(torch.from_numpy(gpm.eps))) >= 2
        assert gpm.eps.min() >= 1 and gpm.eps.max() <= 20
        blob = cells.blob_cell(np.random.default_rng([1, i]))
        border = np.concatenate([blob.eps[0], blob.eps[-1], blob.eps[:, 0], blob.eps[:, -1]])
        assert np.allclose(border, blob.eps_out, rtol=1e-12)  # the inclusion never reaches the cell boundary
        assert blob.eps[16, 16] == pytest.approx(blob.eps_in)  # ... and covers the centre
        shifted = np.roll(blob.eps, (16, 16), axis=(0, 1))
        assert np.abs(shifted - blob.eps).max() > 0  # so a half-cell translation is visible
    again = cells.gpm_cell(np.random.default_rng([1, 0]))
    assert np.array_equal(again.eps, cells.gpm_cell(np.random.default_rng([1, 0])).eps)


@pytest.mark.skipif(not mpb.mpb_available(), reason="MPB is not installed (apt-get install mpb)")
def test_agrees_with_mpb_at_resolution_32():
    """Target of issue 4: median relative deviation from MPB at resolution 32 at most 0.1%."""
    k = pwe.kgrid(25)[::53]
    deviations, speed_errors = [], []
    for cell in (cells.gpm_cell(np.random.default_rng([7, 0])), cells.blob_cell(np.random.default_rng([7, 1]))):
        ref_f, ref_v = mpb.mpb_bands(cell.eps, k.numpy())
        ours = pwe.solve_tm(pwe.pixel_fourier(torch.from_numpy(cell.eps)[None], 5), k, 5)
        f = ours.freqs[0].numpy()
        moving = ref_f > 1e-4
        deviations.append(np.abs(f - ref_f)[moving] / ref_f[moving])
        speed_errors.append(np.abs(ours.velocities[0].numpy() - ref_v).max())
    deviations = np.concatenate(deviations)
    assert np.median(deviations) < 1e-3
    assert np.percentile(deviations, 99) < 5e-3
    assert max(speed_errors) < 0.02


@pytest.mark.skipif(not mpb.mpb_available(), reason="MPB is not installed (apt-get install mpb)")
def test_cell_images_are_mpbs_get_epsilon(monkeypatch):
    """The official `mpbepsimage` is MPB's get_epsilon(): the mean of the two tangential eigenvalues of its
    smoothed tensor, the pixel's arithmetic mean over its 3 x 3 mesh. Given the same cell, MPB reports our image
    (the cell is handed to it as its samples at MPB's mesh points: one per pixel at 3x the resolution)."""
    for family in ("gpm", "blob"):
        for i in range(2):
            cell = cells.FAMILIES[family](np.random.default_rng([5, i]))
            with monkeypatch.context() as patch:
                patch.setattr(cells, "SUPERSAMPLE", 1)
                fine = cells.FAMILIES[family](np.random.default_rng([5, i]), res=3 * cells.RESOLUTION).eps
            reported = mpb.mpb_get_epsilon(fine, cells.RESOLUTION)
            mixed = ~np.isclose(cell.eps, cell.eps_in, rtol=1e-12) & ~np.isclose(cell.eps, cell.eps_out, rtol=1e-12)
            assert mixed.sum() > 10  # interface pixels, where a harmonic or 3/trace mean would differ
            np.testing.assert_allclose(cell.eps, reported, rtol=1e-8)


def test_label_fields_match_the_official_shapes():
    cell = cells.gpm_cell(np.random.default_rng([3, 0]))
    fields = label_fields(cell.eps)
    assert fields["mpbcal/efreq"].shape == (625, 10)
    assert fields["mpbcal/grpvel"].shape == (625, 10, 3)
    assert fields["mpbcal/DOS"].shape == (500,)
    assert np.all(fields["mpbcal/DOS"] >= -1e-9)
