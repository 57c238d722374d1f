"""Labelling cells (bands, group velocities, gaps, DOS) and the h5 layout of the paper's photonic data files.

The field names are those of the official files (SIB-CL's `phc_gendata.py`, read by E-SSL's `phc_data.py`): one
dataset per sample, `unitcell/<field>/<index>` and `mpbcal/<field>/<index>`, so one loader reads both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import EsslError
from .cells import UnitCell
from .dos import PREDICTED_POINTS, dos_curve, empty_lattice
from .pwe import bands_on_grid, cell_symmetries, empty_lattice_bands, pixel_fourier

K_GRID = 25
NUM_BANDS = 10
N_MAX = 5  # 121 plane waves: median 0.03% from MPB at resolution 32 (tests/test_photonics_solver.py)
UNITCELL_FIELDS = ("mpbepsimage", "inputepsimage", "epsin", "epsout", "epsavg", "filling", "uclevel", "uccoefs")


def band_gaps(freqs: np.ndarray) -> np.ndarray:
    """Complete gaps between consecutive bands as rows (gap % of mid-gap, lower edge, upper edge), like MPB's list."""
    top, bottom = freqs.max(axis=0)[:-1], freqs.min(axis=0)[1:]
    open_ = bottom > top
    lower, upper = top[open_], bottom[open_]
    return np.stack([200 * (upper - lower) / (upper + lower), lower, upper], axis=1)


def unitcell_fields(cell: UnitCell) -> dict[str, np.ndarray]:
    """The `unitcell/*` fields of one cell."""
    values = (cell.eps, cell.input_eps, cell.eps_in, cell.eps_out, cell.eps_avg, cell.filling, cell.level, cell.coefs)
    return {f"unitcell/{name}": np.asarray(v) for name, v in zip(UNITCELL_FIELDS, values, strict=True)}


def label_fields(
    eps: np.ndarray,
    device: str | torch.device = "cpu",
    sampling: str = "points",
) -> dict[str, np.ndarray]:
    """Solve one cell on the 25 x 25 k-grid (one point per symmetry orbit) and compute its DOS (§3.6) with the
    GGR `sampling` (dos.ggr_dos)."""
    image = torch.from_numpy(np.ascontiguousarray(eps, dtype=np.float64))
    bands = bands_on_grid(
        pixel_fourier(image[None].to(device), N_MAX), K_GRID, N_MAX, NUM_BANDS, symmetries=cell_symmetries(image)
    )
    freqs = bands.freqs[0].cpu().numpy()
    velocities = bands.velocities[0].cpu().numpy()
    eps_mean = float(eps.mean())  # MPB's mean permittivity: the DOS rescaling and the empty lattice both use it
    dos = dos_curve(freqs, velocities, 1.0 / K_GRID, eps_mean, sampling)
    grpvel = np.concatenate([velocities, np.zeros((*velocities.shape[:2], 1))], axis=-1)  # MPB's 3-vectors
    # SIB-CL's band-structure targets (read by its loaders, written by a step that is not public): our choice of
    # reference is the homogeneous medium with the image's mean permittivity.
    empty = empty_lattice_bands(K_GRID, N_MAX, NUM_BANDS, eps_mean).numpy()
    return {
        "mpbcal/efreq": freqs,
        "mpbcal/grpvel": grpvel,
        "mpbcal/bandgap": band_gaps(freqs),
        "mpbcal/emptylattice": empty,
        "mpbcal/eldiff": freqs - empty,
        **dos_fields(dos, eps_mean),
    }


def dos_fields(dos: np.ndarray, eps_mean: float) -> dict[str, np.ndarray]:
    """The DOS and the forms SIB-CL's addDOSintoh5.py also stores: minus the empty lattice 2 pi w sqrt(eps_mean)
    (DOSeldiff), divided by sqrt(eps_mean) (DOSn), and that minus 2 pi w (DOSeldiffn)."""
    scale = np.sqrt(eps_mean)
    return {
        "mpbcal/DOS": dos,
        "mpbcal/DOSeldiff": dos - empty_lattice() * scale,
        "mpbcal/DOSn": dos / scale,
        "mpbcal/DOSeldiffn": dos / scale - empty_lattice(),
    }


@dataclass
class PhcData:
    """Network inputs and targets as the paper prepares them (phc_data.py)."""

    x: torch.Tensor  # (N, 1, 32, 32) float32: (eps - 1) / 19
    dos: torch.Tensor | None  # (N, 400) float32: DOS / sqrt(epsavg); None for unlabelled files
    source: str

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, index: torch.Tensor | np.ndarray) -> PhcData:
        index = torch.as_tensor(index, dtype=torch.long)
        return PhcData(self.x[index], None if self.dos is None else self.dos[index], self.source)


def sample_indices(h5file) -> list[int]:
    """The sample indices present in an open file, in numerical order."""
    if "unitcell/mpbepsimage" not in h5file:
        raise EsslError(f"{h5file.filename} has no unitcell/mpbepsimage group: not a photonic-crystal data file")
    return sorted(int(k) for k in h5file["unitcell/mpbepsimage"])


def load_h5(path: str | os.PathLike, indices: list[int] | None = None, labelled: bool = True) -> PhcData:
    """Read an official or generated file: x = (eps - 1) / 19 and, when labelled, y = DOS[:400] / sqrt(epsavg)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise EsslError(f"no photonic data file at {path}: run python -m data_scripts.photonics --help")
    with h5py.File(path, "r") as f:
        chosen = sample_indices(f) if indices is None else indices
        if labelled and "mpbcal/DOS" not in f:
            raise EsslError(f"{path} has no mpbcal/DOS: it is an unlabelled file")
        x = np.stack([f[f"unitcell/mpbepsimage/{i}"][()] for i in chosen]).astype(np.float32)
        dos = None
        if labelled:
            eps_avg = np.array([f[f"unitcell/epsavg/{i}"][()] for i in chosen], dtype=np.float64)
            curves = np.stack([f[f"mpbcal/DOS/{i}"][()][:PREDICTED_POINTS] for i in chosen])
            dos = torch.from_numpy((curves / np.sqrt(eps_avg)[:, None]).astype(np.float32))
        source = str(f.attrs.get("source", path.name))
    return PhcData(torch.from_numpy((x - 1) / 19)[:, None], dos, source)


def eldiff_baseline() -> torch.Tensor:
    """The 400-point empty-lattice curve 2 pi w that the network's output is added to (the "ELdiff" target)."""
    return torch.from_numpy(empty_lattice()[:PREDICTED_POINTS].astype(np.float32))


def relative_error(pred: torch.Tensor, target: torch.Tensor, start: int = 100) -> torch.Tensor:
    """The paper's metric per sample: sum_{i >= 100} |pred_i - y_i| / sum_{i >= 100} |y_i|, as the official
    `photonics/` code computes it."""
    return (pred[:, start:] - target[:, start:]).abs().sum(1) / target[:, start:].abs().sum(1)
