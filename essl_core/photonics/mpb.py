"""An independent check of the band solver: MIT Photonic Bands (MPB).

Two front ends: the Scheme program (`apt-get install mpb`; conda-forge has it too) and, when a Python with
`meep.mpb` exists (`apt-get install python3-meep python3-matplotlib python3-h5py`, or conda's pymeep; set
ESSL_MPB_PYTHON to choose the interpreter), the Python one, which is about twice as fast here. Used by the tests
(skipped with a reason when MPB is absent) and by `python -m essl_core.photonics.compare`. The cell is the same
pixel image the plane-wave solver sees, given to MPB as a material function (MPB then averages it over its mesh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EsslError

_FREQS = re.compile(r"^tmfreqs:, (\d+),(.*)$", re.MULTILINE)
_VELOCITY = re.compile(r"^tmvelocity:, (\d+),(.*)$", re.MULTILINE)
_VECTOR = re.compile(r"#\(([^)]*)\)")


def mpb_available() -> bool:
    """Whether the `mpb` program (Scheme front end) is on PATH."""
    return shutil.which("mpb") is not None


def mpb_python() -> str | None:
    """A Python interpreter that can import meep.mpb, or None."""
    candidates = [os.environ.get("ESSL_MPB_PYTHON"), "/usr/bin/python3", shutil.which("python3")]
    for exe in dict.fromkeys(c for c in candidates if c):
        try:
            probe = subprocess.run([exe, "-c", "from meep import mpb"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return exe
    return None


# Run by mpb_python(): the same cell, k-points and outputs as the Scheme control file.
_PYTHON_RUNNER = """
import sys, numpy as np, meep as mp
from meep import mpb
eps, k = np.load(sys.argv[1]), np.load(sys.argv[2])
res, bands, resolution = eps.shape[0], int(sys.argv[3]), int(sys.argv[4])
def pixel(u):
    return min(res - 1, int(np.floor(res * (u - np.floor(u)))))
def material(p):
    return mp.Medium(epsilon=float(eps[pixel(p.x), pixel(p.y)]))
velocities = []
ms = mpb.ModeSolver(num_bands=bands, k_points=[mp.Vector3(*kk) for kk in k], resolution=resolution,
                    geometry_lattice=mp.Lattice(size=mp.Vector3(1, 1)), default_material=material)
ms.run_tm(lambda s: velocities.append([[v.x, v.y] for v in s.compute_group_velocities()]))
np.save(sys.argv[5], np.array(ms.all_freqs)); np.save(sys.argv[6], np.array(velocities))
"""


def _material(image: np.ndarray, resolution: int, shift: float) -> str:
    """Scheme lines: the lattice, the resolution, and a pixel image (first axis x) as the default material; MPB's
    point u (in [-1/2, 1/2)) reads the image at frac(u + shift)."""
    res = image.shape[0]
    values = " ".join(f"{v:.10g}" for v in np.asarray(image, dtype=np.float64).reshape(-1))
    return f"""
(set! geometry-lattice (make lattice (size 1 1 no-size)))
(set! resolution {resolution})
(define eps-data (vector {values}))
(define (pixel u) (let ((v (+ u {shift!r}))) (min {res - 1} (inexact->exact (floor (* {res} (- v (floor v))))))))
(define (eps-at p) (vector-ref eps-data (+ (* {res} (pixel (vector3-x p))) (pixel (vector3-y p)))))
(set! default-material (make material-function (epsilon-func eps-at)))
"""


def control_file(image: np.ndarray, kpoints: np.ndarray, num_bands: int, resolution: int) -> str:
    """MPB's control file for a TM run over the k-points with a pixel-image permittivity (first axis x)."""
    points = " ".join(f"(vector3 {kx:.17g} {ky:.17g} 0)" for kx, ky in kpoints)
    return (
        _material(image, resolution, 0.0)
        + f"""
(set! num-bands {num_bands})
(set! k-points (list {points}))
(run-tm display-group-velocities)
"""
    )


def _run(args: list[str], folder: str, timeout: float) -> str:
    """Run MPB (one thread) in `folder`; its standard output, or one line on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(args, capture_output=True, text=True, cwd=folder, env=env, timeout=timeout)
    if run.returncode != 0:
        raise EsslError(f"MPB failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    return run.stdout


def mpb_get_epsilon(fine: np.ndarray, resolution: int = 32, timeout: float = 300.0) -> np.ndarray:
    """MPB's get_epsilon() image (resolution x resolution; what the official files store as `mpbepsimage`) of a
    cell given as a finely sampled n x n image `fine` in the frame of cells.py (pixel k centred on MPB's grid
    point k/n - 1/2), at MPB's default mesh size. The shift 1/2 + 1/(2n) maps MPB's point u to its nearest
    fine pixel."""
    if not mpb_available():
        raise EsslError("MPB is not installed: apt-get install mpb (or conda install -c conda-forge mpb)")
    import h5py

    program = _material(fine, resolution, 0.5 + 0.5 / fine.shape[0]) + "(init-params TM false)\n(output-epsilon)\n"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cell.ctl").write_text(program)
        _run(["mpb", "cell.ctl"], tmp, timeout)
        with h5py.File(Path(tmp) / "cell-epsilon.h5", "r") as f:
            return np.asarray(f["data"][()], dtype=np.float64).reshape(resolution, resolution)


def mpb_bands(
    image: np.ndarray,
    kpoints: np.ndarray,
    num_bands: int = 10,
    resolution: int = 32,
    frontend: str = "scheme",
    timeout: float = 600.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (K, bands) and group velocities (K, bands, 2) from MPB, on one thread."""
    python = mpb_python() if frontend == "python" else None
    if frontend == "python" and python is None:
        raise EsslError("no Python with meep.mpb: apt-get install python3-meep, or set ESSL_MPB_PYTHON")
    if frontend == "scheme" and not mpb_available():
        raise EsslError("MPB is not installed: apt-get install mpb (or conda install -c conda-forge mpb)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if python is not None:
            np.save(folder / "eps.npy", np.asarray(image, dtype=np.float64))
            np.save(folder / "k.npy", np.asarray(kpoints, dtype=np.float64))
            (folder / "run.py").write_text(_PYTHON_RUNNER)
            args = [python, "run.py", "eps.npy", "k.npy", str(num_bands), str(resolution), "f.npy", "v.npy"]
        else:
            (folder / "cell.ctl").write_text(control_file(image, kpoints, num_bands, resolution))
            args = ["mpb", "cell.ctl"]
        stdout = _run(args, tmp, timeout)
        if python is not None:
            freqs, velocities = np.load(folder / "f.npy"), np.load(folder / "v.npy")
        else:
            freqs, velocities = _parse_scheme_output(stdout)
    if freqs.shape != (len(kpoints), num_bands) or velocities.shape != (len(kpoints), num_bands, 2):
        raise EsslError(f"could not read MPB's output: got {freqs.shape} frequencies, {velocities.shape} velocities")
    return freqs, velocities


def _parse_scheme_output(stdout: str) -> tuple[np.ndarray, np.ndarray]:
    freq_rows = [row for row in _FREQS.findall(stdout) if row[0].strip() != "k index"]
    freqs = np.array([[float(v) for v in rest.split(",")[4:]] for _, rest in freq_rows])
    vel_rows = _VELOCITY.findall(stdout)
    velocities = np.array(
        [[[float(c) for c in vec.split()[:2]] for vec in _VECTOR.findall(rest)] for _, rest in vel_rows]
    )
    return freqs, velocities
