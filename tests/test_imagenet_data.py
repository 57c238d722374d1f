"""The ImageNet data script on small generated ImageFolder sources (folders and tarballs), on broken ones, and on
the real Imagenette copy when it is beside the repository."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_scripts.imagenet import main, prepare, resize_square
from essl_core.errors import EsslError
from essl_core.imagenet_data import IMAGENETTE, cache_path, load_imagenet

REPO = Path(__file__).resolve().parent.parent
SHARED_IMAGENETTE = REPO.parent / "shared" / "data" / "imagenette2-224.tar.gz"
WNIDS = ("n00000001", "n00000002", "n00000003")
RNG = np.random.default_rng(0)


def _tree(root: Path, wnids=WNIDS, per_class=(4, 2), size=(40, 30), fmt="PNG") -> dict:
    """train/ and val/ with `per_class` images of each wnid; returns {split: {(wnid, file name): pixels}}."""
    made: dict = {}
    for split, n in zip(("train", "val"), per_class, strict=True):
        made[split] = {}
        for wnid in wnids:
            (root / split / wnid).mkdir(parents=True)
            for i in range(n):
                px = RNG.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
                name = f"{wnid}_{i}.{fmt.lower()}"
                Image.fromarray(px).save(root / split / wnid / name, fmt)
                made[split][(wnid, name)] = px
    return made


def _tar(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname="copy")
    return out


def test_resize_takes_the_centre_of_the_shorter_side():
    img = np.zeros((64, 128, 3), np.uint8)
    img[:, :32] = (255, 0, 0)  # red left and right quarters, blue middle half
    img[:, 96:] = (255, 0, 0)
    img[:, 32:96] = (0, 0, 255)
    out = resize_square(Image.fromarray(img), 32)
    assert out.shape == (32, 32, 3)
    inner = out[:, 1:-1]  # the crop's edge columns are resampled beside the red border, so slightly mixed
    assert (inner[..., 2] >= 250).all() and (inner[..., 0] <= 5).all() and (out[..., 2] >= 200).all()


def test_folder_source_lossless_labels_sorted_order_fixed(tmp_path):
    made = _tree(tmp_path / "src", size=(24, 24))
    out, _ = prepare(tmp_path / "src", tmp_path / "data", side=24, allow_partial=True, workers=1)
    assert out == cache_path("imagenet-3class", 24, "raw", tmp_path / "data")
    loaded = load_imagenet("imagenet-3class", 24, tmp_path / "data")
    assert loaded.meta["classes"] == list(WNIDS) and loaded.meta["counts"] == {"train": 12, "test": 6}
    # every source image appears once, unchanged (same size: no resampling), with its wnid's sorted index
    for split, x, y in (("train", loaded.train_x, loaded.train_y), ("val", loaded.test_x, loaded.test_y)):
        expected = sorted((WNIDS.index(w), px.tobytes()) for (w, _), px in made[split].items())
        assert sorted(zip(y.tolist(), (im.tobytes() for im in x), strict=True)) == expected
    assert loaded.train_y.tolist() != sorted(loaded.train_y.tolist())  # shuffled once, not sorted by class
    again = prepare(tmp_path / "src", tmp_path / "data2", side=24, allow_partial=True, workers=1)[1]
    assert np.array_equal(again.train_y, loaded.train_y)  # the same fixed order every time
    assert "partial" not in loaded.name and loaded.name.startswith("ImageNet 3-class subset (24x24 squashed, PNG")


def test_unknown_subset_and_incomplete_imagenette_need_allow_partial(tmp_path):
    _tree(tmp_path / "src")
    with pytest.raises(EsslError, match="neither Imagenette's 10 nor ImageNet-1k's 1000"):
        prepare(tmp_path / "src", tmp_path / "data", workers=1)
    _tree(tmp_path / "nette", wnids=IMAGENETTE.wnids, per_class=(1, 1))
    with pytest.raises(EsslError, match="Imagenette has 9,469 train and 3,925 val images; found 10 and 10"):
        prepare(tmp_path / "nette", tmp_path / "data", workers=1)
    assert not (tmp_path / "data").exists()
    _, data = prepare(tmp_path / "nette", tmp_path / "data", side=16, allow_partial=True, workers=1)
    assert data.name == "Imagenette (original sizes, PNG copy, partial: 10/10 images; cached at 16px)"
    assert data.meta["class_names"][0] == "tench"


def test_tarball_with_workers_and_compact_jpeg_cache(tmp_path):
    _tree(tmp_path / "src", size=(48, 32), fmt="JPEG")
    tar = _tar(tmp_path / "src", tmp_path / "src.tar.gz")
    _, raw = prepare(tar, tmp_path / "data", side=32, allow_partial=True, workers=2)
    _, jpeg = prepare(tar, tmp_path / "data", side=32, encoding="jpeg", quality=95, allow_partial=True, workers=2)
    assert len(raw.meta["source_sha256"]) == 64 and raw.meta["format"] == "imagefolder (tarball)"
    assert jpeg.name.endswith("cached at 32px as JPEG q95)")
    cache_path("imagenet-3class", 32, "raw", tmp_path / "data").unlink()  # the loader falls back to the JPEG cache
    loaded = load_imagenet("imagenet-3class", 32, tmp_path / "data")
    assert loaded.meta["encoding"] == "jpeg" and np.array_equal(loaded.train_y, raw.train_y)
    err = np.abs(loaded.train_x.astype(int) - raw.train_x.astype(int)).mean()
    assert 0 < err < 12  # the lossy re-encoding (noise images: the worst case for JPEG), nothing else


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda root: (root / "train" / "n00000001" / "bad.png").write_bytes(b"not an image"), "not a readable image"),
        (lambda root: (root / "train" / "cats").mkdir() or _save(root / "train" / "cats" / "a.png"), "not an ImageNet"),
        (lambda root: _save(root / "train" / "n00000009" / "a.png"), "train has 4 classes and val 3"),
    ],
)
def test_broken_sources_fail_in_one_line_and_write_nothing(tmp_path, break_it, message):
    _tree(tmp_path / "src")
    break_it(tmp_path / "src")
    with pytest.raises(EsslError, match=message):
        prepare(tmp_path / "src", tmp_path / "data", allow_partial=True, workers=1)
    assert not (tmp_path / "data").exists()


def _save(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def test_command_line_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b garbage")
    cases = [
        (["--source", str(tmp_path / "missing")], "does not exist"),
        (["--source", "/dev/zero"], "neither a folder nor a regular file"),
        (["--source", str(tmp_path / "junk.tar.gz")], "is not a readable archive"),
        (["--source", str(tmp_path), "--side", "4"], "--side 4"),
        (["--source", str(tmp_path)], "neither train/<wnid>/ and val/<wnid>/ folders"),
    ]
    for argv, message in cases:
        assert main([*argv, "--root", str(tmp_path / "data"), "--workers", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err


def test_missing_cache_says_how_to_prepare(tmp_path):
    with pytest.raises(EsslError, match="python -m data_scripts.imagenet --source PATH .* --side 64"):
        load_imagenet("imagenette", 64, tmp_path)


@pytest.mark.skipif(not SHARED_IMAGENETTE.exists(), reason="the Imagenette copy is not beside the repository")
def test_real_imagenette_counts_classes_and_pixels(tmp_path):
    _, data = prepare(SHARED_IMAGENETTE, tmp_path, side=32, workers=2)
    assert data.name == "Imagenette (224x224 squashed, JPEG q75 copy; cached at 32px)"
    assert np.bincount(data.train_y).tolist() == [963, 955, 993, 858, 941, 956, 961, 931, 951, 960]
    assert np.bincount(data.test_y).tolist() == [387, 395, 357, 386, 409, 394, 389, 419, 399, 390]
    with tarfile.open(SHARED_IMAGENETTE) as tar:  # one image, decoded and resized independently of the script
        member = next(m for m in tar if m.name.endswith(".JPEG") and "/val/n03888257/" in f"/{m.name}")
        img = Image.open(tar.extractfile(member)).convert("RGB").resize((32, 32), Image.BICUBIC)
    assert any(np.array_equal(np.asarray(img), x) for x in data.test_x[data.test_y == 9])


def test_ilsvrc_archives_go_through_torchvision(tmp_path):
    import torch

    (tmp_path / "ILSVRC2012_devkit_t12.tar.gz").write_bytes(b"not the devkit")
    with pytest.raises(EsslError, match="ILSVRC-2012 archives .* could not be read .*not present .* or is corrupted"):
        prepare(tmp_path, tmp_path / "data", allow_partial=True, workers=1)
    # What torchvision leaves after unpacking the archives once: meta.bin and train/, val/ (then it reads those)
    torch.save(({w: (w,) for w in WNIDS}, list(WNIDS)), tmp_path / "meta.bin")
    _tree(tmp_path, size=(16, 16))
    _, data = prepare(tmp_path, tmp_path / "data", side=16, allow_partial=True, workers=1)
    assert data.meta["format"].startswith("ILSVRC-2012 archives") and data.meta["counts"] == {"train": 12, "test": 6}


def test_what_a_killed_cache_write_left_is_removed_at_the_next_prepare(tmp_path):
    _tree(tmp_path / "src")
    folder = tmp_path / "data" / "imagenet"
    folder.mkdir(parents=True)
    stale = folder / ".unknown-24px.npz.x1y2z3.tmp"  # an atomic write's temporary file, its writer killed
    stale.write_bytes(b"half a cache")
    out, _ = prepare(tmp_path / "src", tmp_path / "data", side=24, allow_partial=True, workers=1)
    assert out.parent == folder and out.exists() and not stale.exists()


def test_without_a_source_imagenette_is_downloaded_checked_and_cached(tmp_path, monkeypatch, serve_folder, capsys):
    # The official archive's layout (imagenette2-320/{train,val}/<wnid>/), served on 127.0.0.1 in its place.
    import hashlib

    from torchvision.datasets import Imagenette

    made = _tree(tmp_path / "src" / "imagenette2-320", wnids=IMAGENETTE.wnids[:2], fmt="JPEG")
    served = tmp_path / "served"
    served.mkdir()
    tgz = served / "imagenette2-320.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "src" / "imagenette2-320", arcname="imagenette2-320")
    url = f"{serve_folder(served)}/{tgz.name}"
    archives = dict(Imagenette._ARCHIVES)
    monkeypatch.setattr(Imagenette, "_ARCHIVES", archives | {"320px": (url, hashlib.md5(tgz.read_bytes()).hexdigest())})
    root = tmp_path / "data"
    assert main(["--root", str(root), "--side", "16", "--allow-partial", "--workers", "1"]) == 0
    (cache,) = (root / "imagenet").glob("*-16px.npz")  # two of Imagenette's classes: a 2-class subset
    data = load_imagenet(cache.stem.removesuffix("-16px"), 16, root)
    assert len(data.train_y) == len(made["train"]) and len(data.test_y) == len(made["val"])
    assert (root / "raw" / "imagenette2-320.tgz").exists()  # kept: a second prepare does not download again
    capsys.readouterr()
    monkeypatch.setattr(Imagenette, "_ARCHIVES", archives | {"320px": (url, "0" * 32)})  # not the official file
    assert main(["--root", str(tmp_path / "other"), "--side", "16", "--allow-partial"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: could not download Imagenette") and "Traceback" not in err
