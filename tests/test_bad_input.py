"""Every bad input is one line on stderr and exit 2, never a traceback or a run that reports nonsense: a table
of settings and arguments, each run through the command line's entry point in this process."""

from __future__ import annotations

import pytest

from essl_core.cli import main

TRAIN = ["train", "--recipe", "cifar10-esimclr", "--tier", "smoke"]
CASES = {
    # Settings that cannot run, or would run and report nonsense (chance, an untrained probe, wasted work).
    "knn_k=0": "knn_k must be >= 1",
    "knn_t=0": "knn_t > 0",
    "temperature=0": "temperature must be > 0",
    "probe_epochs=0": "a linear probe needs probe_epochs >= 1",
    "probe_lr=0": "probe_lr > 0",
    "probe_batch=0": "probe_batch >= 1",
    "equivariance_copies=100": "more than the rotation group's 4 elements",
    "equivariance_copies=-1": "counts must be >= 0",
    "seed=-1": "seed must be >= 0",
    "test_subset=0": "test_subset must be >= 1",
    "train_subset=16": "train_subset < batch_size",
    "warmup_epochs=9": "warmup_epochs must be between 0 and epochs",
    "epochs=0": "epochs must be >= 1",
    "batch_size=1": "batch_size >= 2",
    "lr=0": "lr and ssl_scale > 0",
    "lmbd=-1": "lmbd must be >= 0",
    "width=0": "counts must be >= 1",
    "knn_every=0": "counts must be >= 1",
    "image_size=0": "sizes must be >= 1",
    "crop_scale=0.5,0.2": "crop scales must satisfy",
    "rot_crop_scale=0,0.1": "crop scales must satisfy",
    "final_lr_ratio=2": "final_lr_ratio must be between 0 and 1",
    "augment=fast": "augment must be batched or reference",
    "amp=fp8": "amp must be bf16, fp16 or off",
    "optimizer=adam": "optimizer must be sgd or lars",
    "backbone=vit": "backbone must be one of",
    "method=byol": "method must be one of",
    "dataset=mnist": "dataset must be one of",
    "probe_protocol=imagenet-byol": "probe_protocol must be one of",
    "ssl_loss=triplet": "ssl_loss must be cross_view or ntxent",
    "invariance=zoom": "invariance and equivariance must be one of",
    "equivariance=zoom": "invariance and equivariance must be one of",
    "base_augment=none": "base_augment must be full or crop",
    # Not settings at all.
    "epoch=3": "unknown option 'epoch'",
    "seed=forty": "seed",
    "width": "key=value",
}


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("setting", list(CASES))
def test_a_bad_setting_is_one_line(setting, capsys):
    assert CASES[setting] in one_line_error(capsys, [*TRAIN, "--set", setting])


def test_an_imagenet_recipe_refuses_the_batched_path_on_image_files(capsys):
    argv = ["train", "--recipe", "imagenet-esimclr", "--tier", "smoke", "--set", "cache_side=0", "--set",
            "augment=batched"]  # fmt: skip
    assert "needs a cache (cache_side > 0)" in one_line_error(capsys, argv)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([*TRAIN, "--device", "foo"], "unknown device 'foo'"),
        (["train", "--recipe", "cifar10-byol"], "unknown recipe 'cifar10-byol'"),
        ([*TRAIN[:3], "--tier", "tiny"], "unknown tier 'tiny'"),
        (["eval", "--checkpoint", "no/such/checkpoint.pt"], "no checkpoint at no/such/checkpoint.pt"),
    ],
    ids=["device", "recipe", "tier", "checkpoint"],
)
def test_a_bad_argument_is_one_line(argv, fragment, capsys):
    assert fragment in one_line_error(capsys, argv)


def test_a_run_directory_that_is_a_file_is_one_line(cifar_root, tmp_path, capsys):
    taken = tmp_path / "run"
    taken.write_text("not a directory")
    line = one_line_error(capsys, [*TRAIN, "--data-root", str(cifar_root), "--run-dir", str(taken)])
    assert f"cannot use {taken} as a run directory" in line
    assert taken.read_text() == "not a directory"  # nothing written over it


def test_a_batch_larger_than_the_data_is_one_line(cifar_root, tmp_path, capsys):
    argv = [*TRAIN, "--data-root", str(cifar_root), "--run-dir", str(tmp_path / "r"), "--set", "train_subset=all",
            "--set", "batch_size=60000"]  # fmt: skip
    assert "batch_size 60000 is larger than the 50000 training images" in one_line_error(capsys, argv)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_a_record_folder_that_cannot_be_made_stops_before_training(cifar_root, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    argv = [*TRAIN, "--data-root", str(cifar_root), "--run-dir", str(tmp_path / "r"), "--record-dir",
            str(blocker / "records")]  # fmt: skip
    assert one_line_error(capsys, argv) == f"error: {blocker / 'records'}: Not a directory"
    assert not (tmp_path / "r").exists()  # stopped before the run began


def test_a_corrupt_record_in_a_finished_run_is_one_line(cifar_root, tmp_path, capsys):
    argv = [*TRAIN, "--data-root", str(cifar_root), "--run-dir", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    (tmp_path / "r" / "result.json").write_text('{"schema": ')
    assert "result.json is not a readable record" in one_line_error(capsys, argv)


@pytest.mark.parametrize("script", ["cifar10", "imagenet"])
def test_a_data_folder_that_cannot_be_written_stops_before_any_decoding(script, tmp_path, capsys):
    import importlib

    blocker = tmp_path / "file"
    blocker.write_text("a file where the data folder should be")
    source = tmp_path / "tree"
    source.mkdir()  # never read: the folder check comes first
    data_main = importlib.import_module(f"data_scripts.{script}").main
    assert data_main(["--source", str(source), "--root", str(blocker / "data")]) == 2
    err = capsys.readouterr().err
    folder = blocker / "data" / ("cifar10" if script == "cifar10" else "imagenet")  # where the cache would go
    assert err == f"error: cannot write the cache under {folder}: {blocker} is not a folder\n"
