"""Our plane-wave solver against MPB on the paper's labelling job, side by side.

    python -m essl_core.photonics.compare [--cells 3] [--device cpu|cuda] [--all-cores N] [--record-dir book/results]

For generated cells of both families: CPU-seconds per cell for the full label (625 k-points, 10 TM bands,
group velocities) by MPB at resolution 32 and by ours (121 plane waves, symmetry-reduced grid), the relative
deviation of the eigenfrequencies, the largest velocity difference, and the deviation of the DOS curve computed
by the same GGR pipeline from each solver's bands. Both run on one thread. With `--all-cores N`, also the
cells/s of the data script labelling N cells on every CPU core of the machine (one process per core), the rate
to hold against ours on `--device cuda`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device
from ..errors import run_command
from ..layout import record_file
from ..results import make_record, provenance, write_record
from .cells import FAMILIES
from .dataset import K_GRID, N_MAX, label_fields
from .dos import dos_curve
from .generate import THREAD_VARIABLES, generate
from .mpb import mpb_available, mpb_bands, mpb_python
from .pwe import kgrid


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compare_cell(eps: np.ndarray, device: torch.device, frontend: str | None) -> dict:
    """Timings and deviations for one cell."""
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    ours = label_fields(eps, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    row = {"ours_cpu_s": time.process_time() - start_cpu, "ours_wall_s": time.perf_counter() - start_wall}
    if frontend is None:
        return row
    before = _children_cpu()
    ref_f, ref_v = mpb_bands(eps, kgrid(K_GRID).numpy(), frontend=frontend)
    row["mpb_cpu_s"] = _children_cpu() - before
    f = ours["mpbcal/efreq"]
    moving = ref_f > 1e-4  # the zero-frequency mode at Gamma has no relative error
    rel = np.abs(f - ref_f)[moving] / ref_f[moving]
    ref_dos = dos_curve(ref_f, ref_v, 1.0 / K_GRID, float(eps.mean()))
    window = slice(100, 400)
    row.update(
        freq_rel_median=float(np.median(rel)),
        freq_rel_p99=float(np.percentile(rel, 99)),
        freq_rel_max=float(rel.max()),
        velocity_abs_max=float(np.abs(ours["mpbcal/grpvel"][..., :2] - ref_v).max()),
        dos_rel_l1=float(np.abs(ours["mpbcal/DOS"] - ref_dos)[window].sum() / np.abs(ref_dos)[window].sum()),
    )
    return row


def pick_frontend(choice: str) -> str | None:
    """The MPB front end to time: the faster Python one when present ("auto"), else Scheme, else None."""
    if choice == "auto":
        return "python" if mpb_python() else ("scheme" if mpb_available() else None)
    return choice


def all_cores_rate(cells: int, workers: int, seed: int = 2026) -> float:
    """Cells/s of the data script's labelling on `workers` CPU processes of one thread each: a labelled gpm file
    of `cells` cells made end to end by `generate`, the processes' start included, as a user makes data."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate("gpm", cells, Path(tmp) / "cells.h5", seed=seed, workers=workers, progress=False)
        return cells / (time.perf_counter() - start)


def run_compare(
    cells: int, device: torch.device, frontend: str | None, seed: int = 2026, all_cores_cells: int = 0
) -> dict:
    """Compare on `cells` cells of each family (and, with `all_cores_cells`, time the data script on every CPU
    core); returns a `photonics-solver` record."""
    torch.set_num_threads(1)
    with_mpb = frontend is not None
    if not with_mpb:
        print("MPB is not installed (apt-get install mpb): timing our solver only")
    rows = []
    for family, make in FAMILIES.items():
        for i in range(cells):
            row = {
                "family": family,
                "index": i,
                **compare_cell(make(np.random.default_rng([seed, i])).eps, device, frontend),
            }
            rows.append(row)
            mpb_part = (
                f"MPB {row['mpb_cpu_s']:.2f} s | median dev {100 * row['freq_rel_median']:.3f}% "
                f"max {100 * row['freq_rel_max']:.3f}% | DOS {100 * row['dos_rel_l1']:.3f}%"
                if with_mpb
                else ""
            )
            print(
                f"{family} cell {i}: ours {row['ours_cpu_s']:.2f} CPU-s ({row['ours_wall_s']:.2f} s wall) | {mpb_part}"
            )
    summary = {"ours_cpu_s_per_cell": float(np.mean([r["ours_cpu_s"] for r in rows]))}
    summary["ours_cells_per_s"] = 1.0 / float(np.mean([r["ours_wall_s"] for r in rows]))
    if with_mpb:
        summary["mpb_cpu_s_per_cell"] = float(np.mean([r["mpb_cpu_s"] for r in rows]))
        summary["speedup_cpu_s"] = summary["mpb_cpu_s_per_cell"] / summary["ours_cpu_s_per_cell"]
        for key in ("freq_rel_median", "freq_rel_max", "velocity_abs_max", "dos_rel_l1"):
            summary[key] = float(
                np.median([r[key] for r in rows]) if key == "freq_rel_median" else max(r[key] for r in rows)
            )
        print(
            f"MPB {summary['mpb_cpu_s_per_cell']:.2f} CPU-s per cell, ours {summary['ours_cpu_s_per_cell']:.2f}: "
            f"ratio {summary['speedup_cpu_s']:.1f}x; median frequency deviation {100 * summary['freq_rel_median']:.3f}%"
        )
    if all_cores_cells:
        workers = os.cpu_count() or 1
        summary["cpu_all_cores_cells_per_s"] = all_cores_rate(all_cores_cells, workers, seed)
        summary["cpu_workers"] = workers
        print(f"data script on {workers} CPU processes: {summary['cpu_all_cores_cells_per_s']:.2f} cells/s")
    config = {"cells_per_family": cells, "seed": seed, "k_grid": K_GRID, "plane_waves": (2 * N_MAX + 1) ** 2}
    config["all_cores_cells"] = all_cores_cells or None
    config["mpb"] = f"MPB {frontend} front end, resolution 32, 10 TM bands, group velocities" if with_mpb else None
    return make_record("photonics-solver", config=config, summary=summary, cells=rows, provenance=provenance(device))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=3, help="cells per family")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mpb", choices=["auto", "python", "scheme"], default="auto", help="MPB front end to time")
    parser.add_argument("--all-cores", type=int, default=0, metavar="N", help="also label N cells on every CPU core")
    parser.add_argument("--record-dir", type=Path)
    args = parser.parse_args(argv)
    if argv is None and any(os.environ.get(name) != "1" for name in THREAD_VARIABLES):
        # NumPy's BLAS (SciPy's eigh on the CPU) takes its thread count when it loads: to time one core, run
        # again with every thread cap at 1.
        caps = dict.fromkeys(THREAD_VARIABLES, "1")
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name, *sys.argv[1:]], os.environ | caps)

    def command() -> None:
        device = resolve_device(args.device)
        record = run_compare(args.cells, device, pick_frontend(args.mpb), all_cores_cells=args.all_cores)
        if args.record_dir:
            print(write_record(args.record_dir / record_file("photonics-solver", device.type), record))

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
