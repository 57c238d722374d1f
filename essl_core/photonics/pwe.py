"""Plane-wave expansion for TM modes of 2D square-lattice photonic crystals.

Units: lattice constant a = 1, wave vectors kappa in reciprocal-lattice units (k = 2 pi kappa), frequencies
normalised as omega a / (2 pi c). For TM (E along z) the wave equation |k+G|^2 E_G = (omega/c)^2 sum eps(G-G') E_G'
becomes, with Q = diag|kappa + m| and the Toeplitz matrix of eps's Fourier coefficients, the Hermitian problem
Q eps^-1 Q y = omega_n^2 y (Ho, Chan and Soukoulis 1990). Group velocities follow from Hellmann-Feynman:
d(omega_n^2)/d kappa_a = 2 Re(y^H D_a eps^-1 Q y) with D_a = diag((kappa + m)_a / |kappa + m|) (see solve_tm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EsslError


@dataclass
class Bands:
    """Frequencies (cells, k-points, bands) in omega a / 2 pi c and group velocities (..., 2) in units of c."""

    freqs: torch.Tensor
    velocities: torch.Tensor | None


def plane_wave_orders(n_max: int) -> torch.Tensor:
    """The reciprocal-lattice orders m = (m_x, m_y) with max(|m_x|, |m_y|) <= n_max, shape ((2 n_max + 1)^2, 2)."""
    r = torch.arange(-n_max, n_max + 1)
    mx, my = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([mx.reshape(-1), my.reshape(-1)], dim=1)


def kgrid(n: int = 25) -> torch.Tensor:
    """The n x n grid over the whole Brillouin zone used by the paper's data (SIB-CL), k_x varying fastest.

    kappa = -0.5 + dk/2 ... 0.5 - dk/2 with dk = 1/n; point j and point n*n - 1 - j are each other's negatives.
    """
    dk = 1.0 / n
    axis = torch.linspace(-0.5 + dk / 2, 0.5 - dk / 2, n, dtype=torch.float64)
    ky, kx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([kx.reshape(-1), ky.reshape(-1)], dim=1)


def empty_lattice_bands(n: int, n_max: int, bands: int, eps: float) -> torch.Tensor:
    """The exact bands of a homogeneous medium on the n x n grid (the "empty lattice"): the lowest |kappa + m| /
    sqrt(eps) over the plane waves, shape (n * n, bands)."""
    folded = (kgrid(n)[:, None] + plane_wave_orders(n_max).double()[None]).norm(dim=-1)
    return folded.sort(dim=1).values[:, :bands] / math.sqrt(eps)


def symmetry_path(points: int = 31) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    """k-points along Gamma -> X -> M -> Gamma (where the square lattice's band extrema usually lie) and the
    index and name of each corner, for band diagrams."""
    t = torch.linspace(0, 1, points, dtype=torch.float64)[:, None]
    g, x, m = (torch.tensor(p, dtype=torch.float64) for p in ([0.0, 0.0], [0.5, 0.0], [0.5, 0.5]))
    path = torch.cat([g + t * (x - g), x + t * (m - x), m + t * (g - m)])
    return path, [(0, "Γ"), (points, "X"), (2 * points, "M"), (3 * points - 1, "Γ")]


def pixel_fourier(eps: torch.Tensor, n_max: int) -> torch.Tensor:
    """Exact Fourier coefficients of a pixelated cell for all differences of plane-wave orders.

    eps: (cells, R, R), first axis x, pixel (p, q) covering [p/R, (p+1)/R) x [q/R, (q+1)/R). Returns (cells, 4 n_max
    + 1, 4 n_max + 1) complex128 indexed by m + 2 n_max: eps_hat(m) = integral over the cell of eps(r) e^{-2 pi i m.r}.
    """
    if eps.dim() != 3 or eps.shape[1] != eps.shape[2]:
        raise EsslError(f"expected permittivity images of shape (cells, R, R), got {tuple(eps.shape)}")
    res = eps.shape[-1]
    span = 2 * n_max
    if span >= res / 2:
        raise EsslError(f"n_max={n_max} needs orders up to {span}, beyond what a {res}x{res} image resolves")
    dft = torch.fft.fft2(eps.to(torch.float64)) / res**2
    m = torch.arange(-span, span + 1, device=eps.device)
    block = dft[:, m % res][:, :, m % res]
    # Each pixel is a box, not a point: its transform adds a sinc, and the pixel centre a half-pixel phase.
    x = math.pi * m.to(torch.float64) / res
    sinc = torch.where(m == 0, torch.ones_like(x), torch.sin(x) / torch.where(m == 0, torch.ones_like(x), x))
    phase = torch.exp(-1j * x)
    factor = sinc * phase
    return block * factor[:, None] * factor[None, :]


def rod_fourier(eps_rod: float, eps_background: float, radius: float, n_max: int) -> torch.Tensor:
    """Analytic Fourier coefficients of one circular rod per cell (the textbook crystal), shape (1, 4n+1, 4n+1)."""
    span = 2 * n_max
    m = torch.arange(-span, span + 1, dtype=torch.float64)
    gx, gy = torch.meshgrid(m, m, indexing="ij")
    g = 2 * math.pi * torch.sqrt(gx**2 + gy**2)
    fill = math.pi * radius**2
    safe = torch.where(g == 0, torch.ones_like(g), g * radius)
    shape = torch.where(g == 0, torch.ones_like(g), 2 * torch.special.bessel_j1(safe) / safe)
    coeff = (eps_rod - eps_background) * fill * shape
    coeff[span, span] += eps_background
    return coeff.to(torch.complex128)[None]


def toeplitz(coeff: torch.Tensor, n_max: int) -> torch.Tensor:
    """The matrix eps_hat(m_i - m_j) over the plane-wave orders, shape (cells, P, P)."""
    orders = plane_wave_orders(n_max).to(coeff.device)
    diff = orders[:, None, :] - orders[None, :, :] + 2 * n_max
    return coeff[:, diff[..., 0], diff[..., 1]]


def _lowest_eigenpairs(matrix: torch.Tensor, count: int, vectors: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The lowest eigenvalues (and vectors) of a batch of Hermitian matrices.

    On the CPU, LAPACK's subset driver (zheevr through SciPy) computes only the wanted pairs: 0.49 s against
    0.76 s for torch's full eigh over 313 matrices of size 121 on one core (measured here); elsewhere
    torch's batched eigh.
    """
    if matrix.device.type != "cpu":
        return _lowest_eigenpairs_batched(matrix, count, vectors)
    import scipy.linalg

    flat = matrix.reshape(-1, *matrix.shape[-2:]).numpy()
    pairs = [
        scipy.linalg.eigh(m, subset_by_index=[0, count - 1], eigvals_only=not vectors, driver="evr", check_finite=False)
        for m in flat
    ]
    if not vectors:
        return torch.from_numpy(np.stack(pairs)).reshape(*matrix.shape[:-2], count), None
    values = torch.from_numpy(np.stack([v for v, _ in pairs])).reshape(*matrix.shape[:-2], count)
    vecs = torch.from_numpy(np.stack([u for _, u in pairs])).reshape(*matrix.shape[:-1], count)
    return values, vecs


def _lowest_eigenpairs_batched(
    matrix: torch.Tensor, count: int, vectors: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torch's batched full eigh, cut to the lowest pairs: the path for accelerators."""
    if vectors:
        values, vecs = torch.linalg.eigh(matrix)
        return values[..., :count], vecs[..., :count]
    return torch.linalg.eigvalsh(matrix)[..., :count], None


def solve_tm(
    coeff: torch.Tensor,
    kpoints: torch.Tensor,
    n_max: int,
    num_bands: int = 10,
    velocities: bool = True,
) -> Bands:
    """Lowest TM bands at the given k-points for cells given by their Fourier coefficients (see pixel_fourier).

    All k-points of a cell form one batch of Hermitian eigenproblems in float64 (complex64 loses up to 1% near
    Gamma, measured against float64).
    """
    orders = plane_wave_orders(n_max).to(coeff.device, torch.float64)
    if num_bands > orders.shape[0]:
        raise EsslError(f"{num_bands} bands need more than {orders.shape[0]} plane waves; raise n_max")
    eps_inv = torch.linalg.inv(toeplitz(coeff, n_max))
    kq = kpoints.to(coeff.device, torch.float64)[:, None, :] + orders[None]  # (K, P, 2): kappa + m
    q = kq.norm(dim=-1)
    matrix = q[None, :, :, None] * eps_inv[:, None] * q[None, :, None, :]
    values, vectors = _lowest_eigenpairs(matrix, num_bands, velocities)
    # Only the lowest band at Gamma has omega = 0; its eigenvalue comes out as round-off (~1e-16), whose square
    # root (~1e-8) would differ between equivalent cells. Below omega^2 = 1e-10 (omega = 1e-5) it is exactly 0.
    moving = values > 1e-10
    freqs = torch.where(moving, values.clamp_min(0).sqrt(), torch.zeros_like(values))
    if vectors is None:
        return Bands(freqs, None)
    # d(omega^2)/d kappa_a = 2 Re((D_a y)^H eps^-1 Q y) with D_a = diag((kappa + m)_a / |kappa + m|), 0 where q = 0.
    unit = kq / torch.where(q == 0, torch.ones_like(q), q)[..., None]
    projected = eps_inv[:, None] @ (q[None, :, :, None] * vectors)
    weights = (vectors.conj() * projected).real  # Re(conj(y_i) (eps^-1 Q y)_i); unit vectors are real
    slopes = 2 * torch.einsum("kpa,ckpb->ckba", unit, weights)
    # At Gamma the lowest band is a cone: no derivative, report 0 (as MPB does).
    speed = slopes / (2 * torch.where(moving, freqs, torch.ones_like(freqs)))[..., None]
    return Bands(freqs, torch.where(moving[..., None], speed, torch.zeros_like(speed)))


# The square lattice's point group as integer matrices acting on kappa and on positions.
POINT_GROUP = [
    torch.tensor(m, dtype=torch.float64)
    for m in ([[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
              [[0, 1], [1, 0]], [[0, -1], [-1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]])
]  # fmt: skip


def _transform_image(image: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
    """The image of x -> op x (positions modulo the cell, pixel centres mapped to pixel centres)."""
    out = image.transpose(-2, -1) if op[0, 0] == 0 else image
    # After an optional transpose the op is diagonal; a -1 mirrors that axis (pixel p -> R-1-p).
    diag = (op[0, 1], op[1, 0]) if op[0, 0] == 0 else (op[0, 0], op[1, 1])
    dims = [d for d, sign in zip((-2, -1), diag, strict=True) if sign < 0]
    return out.flip(dims) if dims else out


def cell_symmetries(image: torch.Tensor, tol: float = 1e-9) -> list[torch.Tensor]:
    """The point-group operations that map the pixel image onto itself up to a translation by whole pixels.

    Each one, with time reversal, is a symmetry of the band structure: omega(S k) = omega(k).
    """
    scale = tol * float(image.abs().max())
    found = []
    for op in POINT_GROUP:
        moved = _transform_image(image, op)
        # The best periodic shift from the cross-correlation, then an exact check of that shift.
        overlap = torch.fft.ifft2(torch.fft.fft2(moved).conj() * torch.fft.fft2(image)).real
        shift = divmod(int(overlap.argmax()), image.shape[-1])
        if float((moved.roll(shift, dims=(-2, -1)) - image).abs().max()) <= scale:
            found.append(op)
    return found


def _grid_orbits(n: int, ops: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each point of the n x n grid: its orbit representative and the op mapping the representative to it."""
    grid = kgrid(n)
    group = [s * op for op in ops for s in (1, -1)]  # time reversal adds -op
    index = torch.arange(n * n)
    rep = index.clone()
    rep_op = torch.zeros(n * n, dtype=torch.long)
    for g, op in enumerate(group):
        moved = grid @ op.T  # the image of every point; grid points map to grid points (the grid is symmetric)
        cells = torch.round((moved + 0.5) * n - 0.5).long()
        target = cells[:, 1] * n + cells[:, 0]
        better = index < rep[target]
        rep[target[better]] = index[better]
        rep_op[target[better]] = g
    return rep, rep_op, torch.stack(group)


def bands_on_grid(
    coeff: torch.Tensor,
    n: int = 25,
    n_max: int = 5,
    num_bands: int = 10,
    velocities: bool = True,
    symmetries: list[torch.Tensor] | None = None,
) -> Bands:
    """Bands of one cell on the full n x n k-grid, solving only one point per symmetry orbit.

    Time reversal always holds (omega(-k) = omega(k), v(-k) = -v(k)); pass the cell's point-group operations
    (cell_symmetries) to use them too: omega(S k) = omega(k), v(S k) = S v(k).
    """
    if coeff.shape[0] != 1:
        raise EsslError("bands_on_grid solves one cell at a time (its symmetries are the cell's own)")
    identity = POINT_GROUP[0]
    ops = [identity] + [op for op in symmetries or [] if not torch.equal(op, identity)]
    rep, rep_op, group = _grid_orbits(n, ops)
    unique, inverse = torch.unique(rep, return_inverse=True)
    solved = solve_tm(coeff, kgrid(n)[unique], n_max, num_bands, velocities)
    freqs = solved.freqs[:, inverse]
    if solved.velocities is None:
        return Bands(freqs, None)
    ops = group[rep_op].to(solved.velocities.device)  # (K, 2, 2)
    return Bands(freqs, torch.einsum("kab,ckib->ckia", ops, solved.velocities[:, inverse]))
