"""Unit cells of 2D square-lattice photonic crystals as 32 x 32 permittivity images (SIB-CL's recipe).

Coordinates: the cell is [0, 1)^2, pixel (p, q) covers [p/R, (p+1)/R) x [q/R, (q+1)/R), first image axis x. The
image stores each pixel's mean permittivity over 4 x 4 sub-samples: the TM field is parallel to every
interface, so the arithmetic mean is the permittivity it sees (MPB's sub-pixel averaging does the same for TM).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RESOLUTION = 32
SUPERSAMPLE = 4
EPS_RANGE = (1.0, 20.0)
# gpm: orders G in {-1, 0, 1}^2 ("mf1"); the level is a quantile on a 50 x 50 grid, as in SIB-CL.
GPM_ORDERS = np.array([(mx, my) for mx in (-1, 0, 1) for my in (-1, 0, 1)])
LEVEL_GRID = 50


@dataclass
class UnitCell:
    """One generated cell and the parameters that made it (the h5 `unitcell/*` fields)."""

    eps: np.ndarray  # (R, R) pixel means: what the solver sees ("mpbepsimage")
    input_eps: np.ndarray  # (R, R) the permittivity at pixel centres ("inputepsimage")
    eps_in: float
    eps_out: float
    eps_avg: float
    filling: float
    level: float
    coefs: np.ndarray  # the shape parameters: Fourier coefficients (gpm) or blob parameters (blob)


def _sample_points(res: int, sub: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sample positions (res*sub)^2, grouped so that a reshape to (res, sub, res, sub) gives pixels."""
    axis = (np.arange(res * sub) + 0.5) / (res * sub)
    return np.meshgrid(axis, axis, indexing="ij")


def _pixel_mean(values: np.ndarray, res: int, sub: int) -> np.ndarray:
    return values.reshape(res, sub, res, sub).mean(axis=(1, 3))


def fourier_sum(coefs: np.ndarray, orders: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """f(r) = Re sum_G c_G exp(2 pi i G.r) = sum_G Re c_G cos(2 pi G.r) - Im c_G sin(2 pi G.r) (SIB-CL's form)."""
    phase = 2 * math.pi * (orders[:, 0, None, None] * x + orders[:, 1, None, None] * y)
    return (coefs.real[:, None, None] * np.cos(phase) - coefs.imag[:, None, None] * np.sin(phase)).sum(0)


def _two_phase(inside: Callable[[np.ndarray, np.ndarray], np.ndarray], eps_in: float, eps_out: float, res: int):
    """The pixel-mean image and the pixel-centre image of a cell that is eps_in where `inside` holds."""
    xs, ys = _sample_points(res, SUPERSAMPLE)
    fine = np.where(inside(xs, ys), eps_in, eps_out)
    xc, yc = _sample_points(res, 1)
    return _pixel_mean(fine, res, SUPERSAMPLE), np.where(inside(xc, yc), eps_in, eps_out).astype(np.float64)


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
    gx, gy = np.meshgrid(*(np.linspace(0, 1, LEVEL_GRID, endpoint=False),) * 2, indexing="ij")
    level = float(np.quantile(fourier_sum(coefs, GPM_ORDERS, gx, gy), filling))
    eps_in, eps_out = rng.uniform(*EPS_RANGE, size=2)
    eps, input_eps = _two_phase(lambda x, y: fourier_sum(coefs, GPM_ORDERS, x, y) > level, eps_in, eps_out, res)
    eps_avg = filling * eps_out + (1 - filling) * eps_in  # SIB-CL's formula: `filling` is the eps_out fraction
    return UnitCell(eps, input_eps, float(eps_in), float(eps_out), float(eps_avg), float(filling), level, coefs)


# blob (our design; the paper's blob recipe is not public): one smooth inclusion near the cell centre, so that a
# half-cell translation moves it to the corners and is visible, which is what the paper's E-SimCLR predicts.
BLOB_RADIUS = (0.10, 0.28)
BLOB_HARMONICS = (2, 3, 4)
BLOB_WOBBLE = 0.12  # amplitude bound of each harmonic, relative to the radius
BLOB_OFFSET = 0.04  # centre jitter around (1/2, 1/2)


def blob_cell(rng: np.random.Generator, res: int = RESOLUTION) -> UnitCell:
    """A "blob" cell: eps_in inside r(theta) = r0 (1 + sum_j a_j cos(j (theta - phi_j))) around a centre near the
    middle of the cell, eps_out outside. The largest radius is below 0.28 * 1.36 + 0.04 < 0.5: the blob never
    touches the cell boundary."""
    r0 = rng.uniform(*BLOB_RADIUS)
    amps = rng.uniform(0, BLOB_WOBBLE, size=len(BLOB_HARMONICS))
    phases = rng.uniform(0, 2 * math.pi, size=len(BLOB_HARMONICS))
    centre = 0.5 + rng.uniform(-BLOB_OFFSET, BLOB_OFFSET, size=2)
    eps_in, eps_out = rng.uniform(*EPS_RANGE, size=2)

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = x - centre[0], y - centre[1]
        theta = np.arctan2(dy, dx)
        wobble = sum(a * np.cos(j * (theta - p)) for a, j, p in zip(amps, BLOB_HARMONICS, phases, strict=True))
        return np.hypot(dx, dy) < r0 * (1 + wobble)

    eps, input_eps = _two_phase(inside, eps_in, eps_out, res)
    filling = float((eps_in - eps.mean()) / (eps_in - eps_out)) if eps_in != eps_out else 0.5  # eps_out fraction
    params = np.concatenate([[r0], amps, phases, centre]).astype(np.complex128)
    return UnitCell(eps, input_eps, float(eps_in), float(eps_out), float(eps.mean()), filling, r0, params)


FAMILIES: dict[str, Callable[[np.random.Generator], UnitCell]] = {"gpm": gpm_cell, "blob": blob_cell}
