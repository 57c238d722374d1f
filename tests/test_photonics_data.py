"""The photonic data script: official field names, determinism, resuming, importing, and the loader."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from data_scripts import photonics as command
from essl_core.errors import EsslError
from essl_core.io import sha256_file
from essl_core.photonics import generate as script
from essl_core.photonics.dataset import eldiff_baseline, load_h5, relative_error

REPO = Path(__file__).resolve().parent.parent
OFFICIAL_FIELDS = ["unitcell/mpbepsimage", "unitcell/epsavg", "unitcell/epsin", "unitcell/epsout", "unitcell/filling"]
LABELS = ["mpbcal/efreq", "mpbcal/grpvel", "mpbcal/bandgap", "mpbcal/DOS", "mpbcal/emptylattice", "mpbcal/eldiff"]


def _arrays(path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_a_labelled_file_has_the_official_layout_and_loads(tmp_path):
    out = script.generate("blob", 3, tmp_path / "blob.h5", seed=5, workers=1)
    with h5py.File(out, "r") as f:
        for field in OFFICIAL_FIELDS + LABELS:
            assert sorted(f[field]) == ["1", "2", "3"], field  # numbered from 1, as the official files
        assert f["mpbcal/efreq/1"].shape == f["mpbcal/emptylattice/1"].shape == (625, 10)
        assert f["mpbcal/DOS/1"].dtype == f["unitcell/mpbepsimage/1"].dtype == np.float32  # the official dtypes
        assert f["unitcell/uccoefs/1"].dtype.kind == "c"
        # SIB-CL's derived DOS fields (addDOSintoh5.py), with eps_bar the mean of the image, and the lattice.
        w, scale = np.linspace(0, 1.2, 500), np.sqrt(f["unitcell/mpbepsimage/2"][()].astype(np.float64).mean())
        dos_ = f["mpbcal/DOS/2"][()]
        assert np.allclose(f["mpbcal/DOSn/2"][()], dos_ / scale, rtol=1e-5)
        assert np.allclose(f["mpbcal/DOSeldiff/2"][()], dos_ - 2 * np.pi * w * scale, atol=1e-4)
        assert np.allclose(f["mpbcal/DOSeldiffn/2"][()], dos_ / scale - 2 * np.pi * w, atol=1e-4)
        assert f["universal/rvecs"][()].tolist() == [[1, 0], [0, 1]] and "universal/ucgvecs" not in f  # a blob
        # The band-structure target: the bands minus a homogeneous medium's; small at long wavelengths only.
        efreq, eldiff = f["mpbcal/efreq/1"][()], f["mpbcal/eldiff/1"][()]
        assert np.allclose(efreq - f["mpbcal/emptylattice/1"][()], eldiff, atol=1e-6)
        assert np.abs(eldiff[:, 0]).max() < 0.1 * efreq[:, 0].max() < np.abs(eldiff).max()
    made = script.file_provenance(out)  # what a record says of it
    assert made["name"] == "blob.h5" and made["sha256"] == sha256_file(out) and made["settings"]["seed"] == 5
    assert len(made["generator_git"]["commit"] or "") in (0, 40)
    data = load_h5(out)
    assert data.x.shape == (3, 1, 32, 32) and data.dos.shape == (3, 400)
    assert float(data.x.min()) >= 0 and float(data.x.max()) <= 1  # (eps - 1) / 19 with eps in [1, 20]
    # Targets are DOS / sqrt(epsavg): near the empty lattice 2 pi w at long wavelengths (an effective medium;
    # below point ~15 the smoothing's boundary and the cone at Gamma distort both ours and the paper's curves).
    assert relative_error(data.dos, data.dos).abs().max() == 0
    low = slice(20, 60)
    assert torch.allclose(data.dos[:, low], eldiff_baseline()[low].expand(3, -1), rtol=0.05)
    assert not (tmp_path / "blob.h5.parts").exists()


def test_generation_is_deterministic_and_resumes_without_loss(tmp_path):
    whole = script.generate("gpm", 10, tmp_path / "whole.h5", seed=3, workers=2, labelled=False)
    # An interrupted run: the parts folder holds the first shard only; the rerun computes the rest.
    parts = tmp_path / "resumed.h5.parts"
    parts.mkdir()
    (parts / "settings.json").write_text(json.dumps(script._settings("gpm", 10, 3, False, "points")))
    script._make_shard("gpm", 3, 0, script.SHARD, False, str(parts))
    first = np.load(parts / "shard-0000000.npz")["0:unitcell/mpbepsimage"]
    resumed = script.generate("gpm", 10, tmp_path / "resumed.h5", seed=3, workers=1, labelled=False)
    a, b = _arrays(whole), _arrays(resumed)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert np.array_equal(first.astype(np.float32), b["unitcell/mpbepsimage/1"])  # cell 0, numbered 1
    assert "mpbcal/DOS/1" not in a  # unlabelled: cells only
    with pytest.raises(EsslError, match="unlabelled"):
        load_h5(whole)
    assert load_h5(whole, labelled=False).dos is None
    # Shards made with other settings are refused, not mixed in.
    other = tmp_path / "other.h5.parts"
    other.mkdir()
    (other / "settings.json").write_text('{"family": "blob"}')
    with pytest.raises(EsslError, match="other settings"):
        script.generate("gpm", 10, tmp_path / "other.h5", seed=3)


def test_a_file_another_process_is_making_is_waited_for_then_read(tmp_path, monkeypatch, capsys):
    made = script.generate("blob", 2, tmp_path / "made.h5", seed=5, labelled=False, progress=False)
    out = tmp_path / "asked.h5"
    parts = out.with_name(out.name + ".parts")
    locked, waiting, lock = threading.Event(), threading.Event(), script.run_lock

    def run_lock(*args, wait: bool = False, **kwargs):  # says when this process starts waiting
        if wait:
            waiting.set()
        return lock(*args, wait=wait, **kwargs)

    monkeypatch.setattr(script, "run_lock", run_lock)

    def other_process() -> None:  # makes `out` (a copy of one made with the same settings), as generate would
        with lock(parts):
            locked.set()
            waiting.wait(60)
            shutil.copy(made, out)
            shutil.rmtree(parts)

    other = threading.Thread(target=other_process)
    other.start()
    assert locked.wait(60)
    assert script.generate("blob", 2, out, seed=5, labelled=False, progress=False) == out
    other.join()
    assert "asked.h5 is being made by process" in capsys.readouterr().err
    assert sha256_file(out) == sha256_file(made) and not parts.exists()  # read, not made again


def test_cli_imports_an_official_file_and_rejects_bad_input(tmp_path, capsys):
    official = tmp_path / "sq-blob-test.h5"
    with h5py.File(official, "w") as f:  # the official layout, indices from 1 as in the paper's files
        for i in (1, 2):
            f[f"unitcell/mpbepsimage/{i}"] = np.full((32, 32), 1.0 + 19 * i / 2)
            f[f"unitcell/epsavg/{i}"] = 4.0
            f[f"mpbcal/DOS/{i}"] = np.linspace(0, 8, 500)
    assert command.main(["--source", str(official), "--out", str(tmp_path / "data" / "copy.h5")]) == 0
    assert "imported 2 cells (with DOS)" in capsys.readouterr().out
    data = load_h5(tmp_path / "data" / "copy.h5")
    assert data.x[:, 0, 0, 0].tolist() == [0.5, 1.0]
    assert torch.allclose(data.dos[1], torch.linspace(0, 8, 500)[:400] / 2)
    (tmp_path / "bad.h5").write_bytes(b"not h5")
    assert command.main(["--source", str(tmp_path / "bad.h5")]) == 2
    assert "not a readable h5 file" in capsys.readouterr().err
    assert command.main(["--family", "gpm"]) == 2
    assert "--family and a positive --count" in capsys.readouterr().err


def test_an_existing_out_is_accepted_only_when_made_here_with_the_same_settings(tmp_path):
    made = script.generate("gpm", 2, tmp_path / "gpm.h5", seed=1, workers=1, labelled=False)
    assert script.generate("gpm", 2, made, seed=1, workers=1, labelled=False) == made  # the same: kept
    with pytest.raises(EsslError, match="made with other settings"):
        script.generate("gpm", 2, made, seed=2, workers=1, labelled=False)
    (tmp_path / "junk.h5").write_bytes(b"not an h5 file")
    with pytest.raises(EsslError, match="not a file generated here"):
        script.generate("gpm", 2, tmp_path / "junk.h5", workers=1, labelled=False)
    (tmp_path / "folder.h5").mkdir()
    with pytest.raises(EsslError, match="is not a file"):
        script.generate("gpm", 2, tmp_path / "folder.h5", workers=1, labelled=False)


def test_the_dos_sampling_is_a_setting_named_in_the_file_and_in_its_default_name(tmp_path):
    official = script.generate("blob", 1, tmp_path / "points.h5", seed=4, workers=1, progress=False)
    ours = script.generate("blob", 1, tmp_path / "bins.h5", seed=4, workers=1, progress=False, sampling="bins")
    assert script.file_provenance(ours)["settings"]["solver"]["ggr_sampling"] == "bins"
    assert script.file_provenance(official)["settings"]["solver"]["ggr_sampling"] == "points"
    a, b = _arrays(official), _arrays(ours)
    assert np.array_equal(a["unitcell/mpbepsimage/1"], b["unitcell/mpbepsimage/1"])  # the same cell
    assert not np.array_equal(a["mpbcal/DOS/1"], b["mpbcal/DOS/1"])  # another DOS
    with pytest.raises(EsslError, match="made with other settings"):  # a file is never reused under another
        script.generate("blob", 1, official, seed=4, workers=1, sampling="bins")
    assert script.default_out("blob", 5, 1, True, tmp_path).name == "blob-5-s1.h5"
    assert script.default_out("blob", 5, 1, True, tmp_path, "bins").name == "blob-5-s1-bins.h5"
    assert script.default_out("blob", 5, 1, False, tmp_path, "bins").name == "blob-5-s1-ul.h5"  # no DOS there
    with pytest.raises(EsslError, match="unknown GGR sampling"):
        script.generate("blob", 1, tmp_path / "x.h5", sampling="centres")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, parent pid, ...]; a process that is gone reads as a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ["Z", "0"]


def _children(pid: int) -> set[int]:
    return {int(p.name) for p in Path("/proc").glob("[0-9]*") if _stat(int(p.name))[1] == str(pid)}


def _alive(pids) -> list[int]:
    return [p for p in pids if _stat(p)[0] != "Z"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_die_with_their_parent_even_on_kill_9(tmp_path):
    cmd = [sys.executable, "-m", "data_scripts.photonics", "--family", "gpm", "--count", "4000", "--workers", "2",
           "--out", str(tmp_path / "big.h5")]  # fmt: skip
    parent = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "big.h5.parts").glob("*.npz")) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the workers are computing (a finished shard)
        workers = _children(parent.pid)
        assert len(workers) >= 2, "the workers did not start"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
    # Left alone, busy workers would go on through their queued shards (measured: still running 10 s later).
    deadline = time.monotonic() + 5
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(workers)


def _official_loader(path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """A loader written to the official layout (as the official `photonics/phc_data.py` reads a file): cells
    1..count by number, x = (mpbepsimage - 1) / 19 and y = DOS[:400] / sqrt(epsavg)."""
    cells = range(1, count + 1)
    with h5py.File(path, "r") as f:
        x = np.stack([(f[f"unitcell/mpbepsimage/{i}"][()] - 1) / 19 for i in cells])
        y = np.stack([f[f"mpbcal/DOS/{i}"][()][:400] / np.sqrt(f[f"unitcell/epsavg/{i}"][()]) for i in cells])
    return x, y


def test_the_official_layout_reads_our_files_and_ours_reads_files_in_the_official_layout(tmp_path):
    ours = script.generate("gpm", 3, tmp_path / "ours.h5", seed=2, workers=1)
    x, y = _official_loader(ours, 3)
    data = load_h5(ours)
    assert np.allclose(data.x[:, 0].numpy(), x) and np.allclose(data.dos.numpy(), y)
    # A file as the official pipeline writes it (cells from 1, float32 fields, complex coefficients) loads here.
    official = tmp_path / "official.h5"
    with h5py.File(ours, "r") as src, h5py.File(official, "w") as dst:
        for field in ("unitcell/mpbepsimage", "unitcell/epsavg", "mpbcal/DOS"):
            for i in range(1, 4):
                dst.create_dataset(f"{field}/{i}", data=src[f"{field}/{i}"][()])
    again = load_h5(official)
    assert torch.equal(again.x, data.x) and torch.equal(again.dos, data.dos)
