"""The trained encoders committed for the published book: export from a finished run, the checks on the way
out and in, and the committed encoders themselves (they load, match today's recipes, and reproduce their
records' kNN accuracy exactly)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import essl_core.published as published
from essl_core import book
from essl_core.augment import NORMALIZATION
from essl_core.checkpoint import load_checkpoint, save_checkpoint
from essl_core.cli import main
from essl_core.datasets import recipe_data
from essl_core.errors import EsslError
from essl_core.evaluate import knn_accuracy
from essl_core.layout import CHECKPOINT, RESULT
from essl_core.published import MANIFEST, export_encoder, load_published, read_manifest
from essl_core.recipes import get_recipe
from essl_core.runs import load_trained_model, pretrain

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def finished_run(cifar_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("published") / "cifar10-esimclr-smoke-s42"
    pretrain(get_recipe("cifar10-esimclr", "smoke"), run_dir, data_root=cifar_root, progress=False)
    return run_dir


def test_an_exported_encoder_loads_as_the_trained_model(finished_run, tmp_path):
    entry = export_encoder(finished_run, finished_run / RESULT, tmp_path / "enc")
    assert entry["file"] == "cifar10-esimclr-smoke-s42.safetensors" and entry["record"] == RESULT
    assert read_manifest(tmp_path / "enc")["cifar10-esimclr-smoke-s42"] == entry
    shutil.copy(finished_run / RESULT, tmp_path / RESULT)
    model, record = load_published("cifar10-esimclr", "smoke", tmp_path / "enc", tmp_path, CPU)
    trained = load_trained_model(finished_run, CPU)
    saved, loaded = trained.state_dict(), model.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert record["metrics"] == json.loads((finished_run / RESULT).read_text())["metrics"]
    assert load_published("cifar10-simclr", "smoke", tmp_path / "enc", tmp_path, CPU) is None  # none committed


def test_export_refuses_an_unfinished_run_a_foreign_record_and_an_oversized_encoder(
    finished_run, tmp_path, monkeypatch
):
    ckpt = load_checkpoint(finished_run / CHECKPOINT)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    state = {k: v for k, v in ckpt.items() if k not in ("format", "recipe", "rng")}
    save_checkpoint(unfinished / CHECKPOINT, get_recipe("cifar10-esimclr", "smoke"), **{**state, "epoch": 1})
    with pytest.raises(EsslError, match="stopped at epoch 1 of 2"):
        export_encoder(unfinished, finished_run / RESULT, tmp_path / "enc")
    foreign = json.loads((finished_run / RESULT).read_text())
    foreign["config"]["seed"] = 7
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    with pytest.raises(EsslError, match="is not the record of"):
        export_encoder(finished_run, tmp_path / "foreign.json", tmp_path / "enc")
    monkeypatch.setattr(published, "MAX_ENCODER_BYTES", 1000)
    with pytest.raises(EsslError, match="over the cap"):
        export_encoder(finished_run, finished_run / RESULT, tmp_path / "enc")
    assert not (tmp_path / "enc").exists()  # nothing written by a refused export


def test_a_tampered_encoder_is_refused(finished_run, tmp_path):
    entry = export_encoder(finished_run, finished_run / RESULT, tmp_path / "enc")
    path = tmp_path / "enc" / entry["file"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(EsslError, match="does not match its sha256"):
        load_published("cifar10-esimclr", "smoke", tmp_path / "enc", finished_run, CPU)


def test_the_command_exports_and_a_bad_run_is_one_line(finished_run, tmp_path, capsys):
    argv = ["export-encoder", "--run-dir", str(finished_run), "--record", str(finished_run / RESULT)]
    assert main([*argv, "--out", str(tmp_path / "enc")]) == 0
    assert "listed in" in capsys.readouterr().out and (tmp_path / "enc" / MANIFEST).exists()
    assert main(["export-encoder", "--run-dir", str(tmp_path), "--record", str(finished_run / RESULT)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no checkpoint at"), err


def test_the_committed_encoders_are_listed_verified_and_under_the_caps():
    manifest = read_manifest(book.ENCODERS)
    files = {p.name for p in book.ENCODERS.glob("*.safetensors")}
    assert files == {e["file"] for e in manifest.values()}  # nothing committed outside the manifest
    assert sum(e["bytes"] for e in manifest.values()) <= published.MAX_TOTAL_BYTES
    for entry in manifest.values():
        assert entry["bytes"] == (book.ENCODERS / entry["file"]).stat().st_size <= published.MAX_ENCODER_BYTES
        assert (book.results_dir() / entry["record"]).exists()


def test_the_published_build_shows_the_committed_encoders(monkeypatch):
    monkeypatch.setenv(book.BUILD_ENV, "published")
    assert "build: published" in book.banner()
    for name in ("cifar10-simclr", "cifar10-esimclr"):  # the chapters' trained models
        model, record = book.pretrained(name)
        assert record["tier"] == book.PUBLISHED_TIER and record["recipe"] == name and not model.training
    monkeypatch.setenv(book.BUILD_ENV, "publish")
    with pytest.raises(EsslError, match="ESSL_BOOK='publish'"):
        book.publishing()


def test_the_committed_e_simclr_encoder_reproduces_its_records_knn(cifar_root, monkeypatch):
    # The same kNN evaluation as at the end of training, on the recipe's own subsets: the exact number.
    monkeypatch.setenv(book.BUILD_ENV, "published")
    model, record = book.pretrained("cifar10-esimclr")
    r = model.recipe
    data = recipe_data(r, cifar_root)
    knn = knn_accuracy(model.backbone, data, CPU, r.knn_k, r.knn_t, r.amp, NORMALIZATION[r.family], r.image_size)
    assert knn == pytest.approx(record["metrics"]["knn_top1"], abs=0.051)  # one test image in 2,000 is 0.05


def test_the_committed_e_simclr_rotation_head_is_trained(cifar, monkeypatch):
    from essl_core.evaluate import transformation_probabilities

    monkeypatch.setenv(book.BUILD_ENV, "published")
    model, _ = book.pretrained("cifar10-esimclr")
    images, _ = cifar.test_sample(200)
    probs = transformation_probabilities(model, images, CPU)
    accuracy = sum((probs[:, k].argmax(1) == k).mean() for k in range(4)) / 4
    assert accuracy > 0.45  # chance is 0.25; the record's last training epoch had rot_acc near 0.6
