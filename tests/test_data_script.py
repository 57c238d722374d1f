"""The CIFAR-10 data script on tiny generated sources in every supported format, and on broken ones."""

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_scripts.cifar10 import TRAIN_BATCHES, main, prepare
from essl_core.data import CIFAR10_CLASSES, cache_path, load_cifar10
from essl_core.errors import EsslError

RNG = np.random.default_rng(0)
PER_BATCH = 10  # one image of each class per batch: 50 train, 10 test


def _images(n: int, size=(32, 32)) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, size[1], size[0], 3), dtype=np.uint8)


def _python_batches(folder: Path) -> dict:
    folder.mkdir(parents=True)
    arrays = {}
    for name in (*TRAIN_BATCHES, "test_batch"):
        x = _images(PER_BATCH)
        labels = list(range(10))
        batch = {b"data": x.transpose(0, 3, 1, 2).reshape(PER_BATCH, -1), b"labels": labels}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        arrays[name] = x
    return arrays


def _tar(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return out


def _image_tree(root: Path, fmt: str, quality: int = 75, size=(32, 32)) -> Path:
    for split, n in (("train", 3), ("test", 2)):
        for cls in CIFAR10_CLASSES:
            d = root / split / cls
            d.mkdir(parents=True)
            for i, img in enumerate(_images(n, size)):
                Image.fromarray(img).save(
                    d / f"{i:04d}.{fmt.lower()}", fmt, **({"quality": quality} if fmt == "JPEG" else {})
                )
    return root


def _no_leftovers(root: Path) -> None:
    assert not cache_path(root).exists()
    leftovers = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert leftovers == []


def test_official_python_tarball_and_folder(tmp_path):
    arrays = _python_batches(tmp_path / "src" / "cifar-10-batches-py")
    tgz = _tar(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz")
    for source in (tgz, tmp_path / "src", tmp_path / "src" / "cifar-10-batches-py"):
        root = tmp_path / f"root-{source.name}"
        prepare(source, root, allow_partial=True)
        data = load_cifar10(root)
        assert np.array_equal(data.train_x[:PER_BATCH], arrays["data_batch_1"])  # HWC decoding is exact
        assert np.array_equal(data.test_x, arrays["test_batch"])
        assert data.train_y.tolist() == list(range(10)) * 5
        assert data.name == "CIFAR-10 (partial: 50/10 images)"
        assert data.meta["counts"] == {"train": 50, "test": 10}
        assert data.meta["format"].startswith("cifar-10-python")
    assert load_cifar10(tmp_path / "root-cifar-10-python.tar.gz").meta["official_md5_match"] is False


def test_imagefolder_tree_png_is_lossless_and_labelled_in_official_order(tmp_path):
    tree = _image_tree(tmp_path / "tree", "PNG")
    prepare(tree, tmp_path / "root", allow_partial=True)
    data = load_cifar10(tmp_path / "root")
    assert data.name == "CIFAR-10 (PNG copy, partial: 30/20 images)"
    assert data.train_y.tolist() == [c for c in range(10) for _ in range(3)]
    expected = np.asarray(Image.open(tree / "train" / "bird" / "0001.png"))
    assert np.array_equal(data.train_x[2 * 3 + 1], expected)


def test_imagefolder_tarball_jpeg_names_its_quality(tmp_path):
    tree = _image_tree(tmp_path / "cifar10-jpeg", "JPEG", quality=75)
    prepare(_tar(tree, tmp_path / "copy.tar.gz"), tmp_path / "root", allow_partial=True)
    data = load_cifar10(tmp_path / "root")
    assert data.name == "CIFAR-10 (JPEG q75 copy, partial: 30/20 images)"
    assert data.meta["format"] == "imagefolder (tarball)" and len(data.meta["source_sha256"]) == 64
    tree90 = _image_tree(tmp_path / "q90", "JPEG", quality=90)
    prepare(tree90, tmp_path / "root90", allow_partial=True)
    assert load_cifar10(tmp_path / "root90").name.startswith("CIFAR-10 (JPEG q90 copy")


def test_incomplete_source_needs_allow_partial(tmp_path):
    tree = _image_tree(tmp_path / "tree", "PNG")
    with pytest.raises(EsslError, match="expected 5000 images per class.*--allow-partial"):
        prepare(tree, tmp_path / "root")
    _no_leftovers(tmp_path / "root")


def _corrupt_sources(tmp: Path) -> dict:
    good = _tar(_image_tree(tmp / "t", "PNG"), tmp / "good.tar.gz")
    truncated = tmp / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    noise = tmp / "noise.tar.gz"
    noise.write_bytes(os.urandom(4096))
    big = _image_tree(tmp / "big", "PNG", size=(33, 32))
    wrong_class = _image_tree(tmp / "wc", "PNG")
    (wrong_class / "train" / "airplane").rename(wrong_class / "train" / "aeroplane")
    broken_img = _image_tree(tmp / "bi", "PNG")
    (broken_img / "test" / "cat" / "0000.png").write_bytes(b"not a png")
    no_test = tmp / "nt" / "cifar-10-batches-py"
    _python_batches(no_test)
    (no_test / "test_batch").unlink()
    evil = tmp / "evil" / "cifar-10-batches-py"
    _python_batches(evil)
    (evil / "data_batch_3").write_bytes(pickle.dumps(os.system, protocol=2))
    empty = tmp / "empty"
    empty.mkdir()
    return {
        truncated: "not a readable CIFAR-10 archive",
        noise: "not a readable CIFAR-10 archive",
        big: "is 33x32 pixels; CIFAR-10 images are 32x32",
        wrong_class: "unknown class folder 'aeroplane'",
        broken_img: "0000.png is not a readable image",
        no_test.parent: "lacks test_batch",
        evil.parent: "data_batch_3 is not a readable CIFAR-10 batch.*unexpected object",
        empty: "holds neither",
        tmp / "missing.tar.gz": "does not exist",
        Path("/dev/zero"): "neither a folder nor a regular file",  # would be read for ever
    }


def test_corrupt_or_wrong_sources_fail_clearly_and_write_nothing(tmp_path):
    for i, (source, message) in enumerate(_corrupt_sources(tmp_path).items()):
        root = tmp_path / f"root{i}"
        with pytest.raises(EsslError, match=message):
            prepare(source, root, allow_partial=True)
        _no_leftovers(root)


def test_command_line_errors_are_one_line(tmp_path, capsys):
    assert main(["--source", str(tmp_path / "nope.tar.gz"), "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    tree = _image_tree(tmp_path / "tree", "PNG")
    assert main(["--source", str(tree), "--root", str(tmp_path / "r"), "--allow-partial"]) == 0
    assert "CIFAR-10 (PNG copy, partial: 30/20 images)" in capsys.readouterr().out


def test_missing_or_broken_cache_says_how_to_prepare(tmp_path):
    with pytest.raises(EsslError, match="python -m data_scripts.cifar10"):
        load_cifar10(tmp_path)
    cache_path(tmp_path).parent.mkdir(parents=True)
    cache_path(tmp_path).write_bytes(b"garbage")
    with pytest.raises(EsslError, match="unreadable.*prepare it again"):
        load_cifar10(tmp_path)


def test_real_cache_holds_exactly_what_pil_decodes(cifar):
    if cifar.meta.get("format") != "imagefolder (tarball)":
        pytest.skip("the session's CIFAR-10 cache was not built from an ImageFolder tarball")
    assert cifar.meta["image_formats"] == {"JPEG q75": 60000}
    with tarfile.open(cifar.meta["source"]) as tar:
        names = sorted(n for n in tar.getnames() if n.startswith("train/airplane/") and n.endswith(".jpg"))
        raw = tar.extractfile(names[0]).read()
    assert np.array_equal(cifar.train_x[0], np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))


@pytest.fixture
def official_server(tmp_path, monkeypatch, serve_folder):
    """A small archive in the official format, served over HTTP on 127.0.0.1 in place of the official address."""
    import hashlib

    import data_scripts.cifar10 as script

    served = tmp_path / "served"
    served.mkdir()
    arrays = _python_batches(tmp_path / "src" / "cifar-10-batches-py")
    tgz = _tar(tmp_path / "src" / "cifar-10-batches-py", served / "cifar-10-python.tar.gz")
    monkeypatch.setattr(script, "OFFICIAL_URL", f"{serve_folder(served)}/{tgz.name}")
    monkeypatch.setattr(script, "OFFICIAL_MD5", hashlib.md5(tgz.read_bytes()).hexdigest())
    return script, arrays


def test_without_a_source_the_official_archive_is_downloaded_checked_and_cached(official_server, tmp_path, capsys):
    script, arrays = official_server
    root = tmp_path / "data"
    assert main(["--root", str(root), "--allow-partial"]) == 0
    data = load_cifar10(root)
    assert np.array_equal(data.test_x, arrays["test_batch"]) and data.meta["counts"] == {"train": 50, "test": 10}
    assert (root / "raw" / "cifar-10-python.tar.gz").exists()  # kept: a second prepare does not download again
    capsys.readouterr()
    script.OFFICIAL_MD5 = "0" * 32  # an archive that is not the official one is refused, and nothing is kept
    other = tmp_path / "other"
    assert main(["--root", str(other), "--allow-partial"]) == 2
    err = capsys.readouterr().err  # the download's progress bar, then one line
    assert err.splitlines()[-1].startswith("error: could not download CIFAR-10") and "Traceback" not in err
    assert not list((other / "raw").glob("*")) and not cache_path(other).exists()


def test_offline_without_a_source_is_one_line_that_says_how_to_pass_a_copy(official_server, tmp_path, capsys):
    script, _ = official_server
    script.OFFICIAL_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # nothing listens on port 9 (discard)
    assert main(["--root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "could not download CIFAR-10" in err.splitlines()[-1] and "--source PATH" in err and "Traceback" not in err
