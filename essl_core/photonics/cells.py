"""Unit cells of 2D square-lattice photonic crystals as 32 x 32 permittivity images (SIB-CL's recipe).

Coordinates are SIB-CL's and MPB's: the cell is [-1/2, 1/2)^2, and pixel (p, q) is the box of side 1/R centred on
MPB's grid point (p/R - 1/2, q/R - 1/2), first image axis x. The image stores each pixel's mean permittivity over
3 x 3 sub-samples at the centres of its ninths. That is exactly MPB's `get_epsilon()` at its default mesh size 3,
which the official files store as `mpbepsimage`: MPB smooths each pixel into a tensor whose inverse has 1/<eps>
along the two interface tangents and <1/eps> along the normal, and reports the mean of the two tangential ones,
<eps> (its `mean_medium_from_matrix`; a test checks ours against MPB's output to 1e-8). For TM it is also the
right one: the electric field points along z, tangent to every interface, so a mixed pixel acts on it with its
arithmetic mean (the Laurent form), while the harmonic mean would matter only for in-plane (TE) fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RESOLUTION = 32
SUPERSAMPLE = 3  # MPB's default mesh-size: its get_epsilon() samples these 3 x 3 points of each pixel
EPS_RANGE = (1.0, 20.0)
# gpm: orders G in {-1, 0, 1}^2 ("mf1"), m_x varying fastest as SIB-CL's `uccoefs`; the level is a quantile on
# SIB-CL's 50 x 50 grid, linspace(-1/2, 1/2, 50) with both ends.
GPM_ORDERS = np.array([(mx, my) for my in (-1, 0, 1) for mx in (-1, 0, 1)])
LEVEL_GRID = 50


def _official_grid(points: int) -> np.ndarray:
    """SIB-CL's sampling axis: linspace(-1/2, 1/2, points), both ends included."""
    return np.linspace(-0.5, 0.5, points)


@dataclass
class UnitCell:
    """One generated cell and the parameters that made it (the h5 `unitcell/*` fields)."""

    eps: np.ndarray  # (R, R) pixel means: what the solver sees, MPB's get_epsilon() ("mpbepsimage")
    input_eps: np.ndarray  # (R, R) the permittivity on SIB-CL's grid, first axis y ("inputepsimage")
    eps_in: float
    eps_out: float
    eps_avg: float
    filling: float
    level: float
    coefs: np.ndarray  # the shape parameters: Fourier coefficients (gpm) or blob parameters (blob)


def _sample_points(res: int, sub: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sample positions (res*sub)^2, grouped so that a reshape to (res, sub, res, sub) gives pixels: the
    centres of the sub-boxes of each pixel's box (centred on MPB's grid point p/R - 1/2)."""
    axis = (np.arange(res * sub) + 0.5) / (res * sub) - 0.5 - 0.5 / res
    return np.meshgrid(axis, axis, indexing="ij")


def _pixel_mean(values: np.ndarray, res: int, sub: int) -> np.ndarray:
    return values.reshape(res, sub, res, sub).mean(axis=(1, 3))


def fourier_sum(coefs: np.ndarray, orders: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """f(r) = Re sum_G c_G exp(2 pi i G.r) = sum_G Re c_G cos(2 pi G.r) - Im c_G sin(2 pi G.r) (SIB-CL's form)."""
    phase = 2 * math.pi * (orders[:, 0, None, None] * x + orders[:, 1, None, None] * y)
    return (coefs.real[:, None, None] * np.cos(phase) - coefs.imag[:, None, None] * np.sin(phase)).sum(0)


def _two_phase(inside: Callable[[np.ndarray, np.ndarray], np.ndarray], eps_in: float, eps_out: float, res: int):
    """The pixel-mean image and the "inputepsimage" (the cell sampled on SIB-CL's grid, both ends included, first
    axis y) of a cell that is eps_in where `inside` holds."""
    xs, ys = _sample_points(res, SUPERSAMPLE)
    fine = np.where(inside(xs, ys), eps_in, eps_out)
    yg, xg = np.meshgrid(_official_grid(res), _official_grid(res), indexing="ij")
    return _pixel_mean(fine, res, SUPERSAMPLE), np.where(inside(xg, yg), eps_in, eps_out).astype(np.float64)


def pm_coefficients(rng: np.random.Generator) -> np.ndarray:
    """Random c_G = rho e^{i phi} (rho ~ U(0,1), phi ~ U(0, 2 pi)) with c_(-mx,my) = c_(mx,my): then f(-x, y) = f(x, y),
    the mirror of plane group pm (No. 3). SIB-CL's generator for symmetric groups (Crystalline.jl through
    PyJulia) is not public; this keeps its symmetry and its coefficient law, not necessarily its exact draws."""
    free = {
        (mx, my): rng.uniform(0, 1) * np.exp(1j * rng.uniform(0, 2 * math.pi)) for mx in (0, 1) for my in (-1, 0, 1)
    }
    return np.array([free[(abs(mx), my)] for mx, my in GPM_ORDERS])


def gpm_cell(rng: np.random.Generator, res: int = RESOLUTION) -> UnitCell:
    """A "gpm" cell: the level set of a pm-symmetric Fourier sum with maxF = 1, filling ~ U(0.01, 0.99) and
    eps_in, eps_out ~ U(1, 20) (SIB-CL's mf1 recipe with sgnum 3)."""
    coefs = pm_coefficients(rng)
    filling = rng.uniform(0.01, 0.99)
    gx, gy = np.meshgrid(*(_official_grid(LEVEL_GRID),) * 2, indexing="ij")
    level = float(np.quantile(fourier_sum(coefs, GPM_ORDERS, gx, gy), filling))
    eps_in, eps_out = rng.uniform(*EPS_RANGE, size=2)
    eps, input_eps = _two_phase(lambda x, y: fourier_sum(coefs, GPM_ORDERS, x, y) > level, eps_in, eps_out, res)
    eps_avg = filling * eps_out + (1 - filling) * eps_in  # SIB-CL's formula: `filling` is the eps_out fraction
    return UnitCell(eps, input_eps, float(eps_in), float(eps_out), float(eps_avg), float(filling), level, coefs)


# blob (our design; the paper's blob recipe is not public): one smooth inclusion near the cell centre (the origin),
# so that a half-cell translation moves it to the corners and is visible, which is what the paper's E-SimCLR
# predicts.
BLOB_RADIUS = (0.10, 0.28)
BLOB_HARMONICS = (2, 3, 4)
BLOB_WOBBLE = 0.12  # amplitude bound of each harmonic, relative to the radius
BLOB_OFFSET = 0.04  # centre jitter around the origin


def blob_cell(rng: np.random.Generator, res: int = RESOLUTION) -> UnitCell:
    """A "blob" cell: eps_in inside r(theta) = r0 (1 + sum_j a_j cos(j (theta - phi_j))) around a centre near the
    middle of the cell, eps_out outside. The largest radius is below 0.28 * 1.36 + 0.04 < 0.5: the blob never
    touches the cell boundary."""
    r0 = rng.uniform(*BLOB_RADIUS)
    amps = rng.uniform(0, BLOB_WOBBLE, size=len(BLOB_HARMONICS))
    phases = rng.uniform(0, 2 * math.pi, size=len(BLOB_HARMONICS))
    centre = rng.uniform(-BLOB_OFFSET, BLOB_OFFSET, size=2)
    eps_in, eps_out = rng.uniform(*EPS_RANGE, size=2)

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = ((v - c + 0.5) % 1.0 - 0.5 for v, c in zip((x, y), centre, strict=True))  # nearest periodic copy
        theta = np.arctan2(dy, dx)
        wobble = sum(a * np.cos(j * (theta - p)) for a, j, p in zip(amps, BLOB_HARMONICS, phases, strict=True))
        return np.hypot(dx, dy) < r0 * (1 + wobble)

    eps, input_eps = _two_phase(inside, eps_in, eps_out, res)
    filling = float((eps_in - eps.mean()) / (eps_in - eps_out)) if eps_in != eps_out else 0.5  # eps_out fraction
    params = np.concatenate([[r0], amps, phases, centre]).astype(np.complex128)
    return UnitCell(eps, input_eps, float(eps_in), float(eps_out), float(eps.mean()), filling, r0, params)


FAMILIES: dict[str, Callable[[np.random.Generator], UnitCell]] = {"gpm": gpm_cell, "blob": blob_cell}


def universal_fields(family: str) -> dict[str, np.ndarray]:
    """A file's `universal/*` fields, as SIB-CL writes them: the lattice vectors and, for the Fourier-sum family,
    the orders G of `uccoefs` (a blob is not a Fourier sum: it has none)."""
    fields = {"universal/rvecs": np.eye(2)}
    if family == "gpm":
        fields["universal/ucgvecs"] = GPM_ORDERS.astype(np.float64)
    return fields
