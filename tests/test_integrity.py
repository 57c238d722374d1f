"""Run directories and checkpoints under attack: one process per run directory (the lock), a flipped byte in a
checkpoint found on load, interrupted writes cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from essl_core.checkpoint import PAYLOAD_FORMAT, load_checkpoint
from essl_core.errors import EsslError
from essl_core.lock import LOCK, run_lock
from essl_core.recipes import get_recipe
from essl_core.train import Trainer

from .test_cli import assert_one_line_error, run

SMALL = dict(train_subset=128, test_subset=64, batch_size=32)


@pytest.fixture
def checkpoint(small_cifar, tmp_path):
    recipe = get_recipe("cifar10-esimclr", "smoke", SMALL)
    Trainer(recipe, tmp_path, torch.device("cpu"), small_cifar, progress=False).save()
    return tmp_path / "checkpoint.pt"


def test_a_flipped_byte_anywhere_in_the_weights_is_found_on_load(checkpoint):
    assert load_checkpoint(checkpoint)["epoch"] == 0
    data = bytearray(checkpoint.read_bytes())
    middle = len(data) // 2  # inside the serialised payload, which is almost all of the file
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(EsslError, match=r"corrupted \(its checksum does not match its contents\); .*--restart"):
        load_checkpoint(checkpoint)
    assert_one_line_error(run("eval", "--checkpoint", checkpoint), "corrupted", "--restart")


def test_a_checkpoint_written_before_checksums_still_loads(checkpoint):
    payload = load_checkpoint(checkpoint)
    assert payload["format"] == PAYLOAD_FORMAT
    torch.save(payload, checkpoint)  # format 2 as it was written before: no checksum around it
    assert load_checkpoint(checkpoint)["epoch"] == 0


def test_one_process_per_run_directory(tmp_path):
    with run_lock(tmp_path):
        refused = pytest.raises(EsslError, match=rf"in use by process {os.getpid()} on .+ since .+; wait for it")
        with refused, run_lock(tmp_path):
            pass
        proc = run("train", "--recipe", "cifar10-esimclr", "--tier", "smoke", "--run-dir", tmp_path, "--quiet")
        assert_one_line_error(proc, f"is in use by process {os.getpid()}", "another --run-dir")
    with run_lock(tmp_path):  # released at the end of the block
        pass


def test_the_lock_dies_with_its_holder_even_on_kill_9(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from essl_core.lock import run_lock\nwith run_lock({str(tmp_path)!r}):\n"
                               "    print('held', flush=True)\n    import time; time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(EsslError, match=f"in use by process {holder.pid}"), run_lock(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    with run_lock(tmp_path):
        assert f"process {os.getpid()}" in (tmp_path / LOCK).read_text()


def test_temporary_files_of_an_interrupted_write_are_removed_at_the_next_start(tmp_path):
    stale = tmp_path / ".checkpoint.pt.k2j4x9.tmp"
    stale.write_bytes(b"half a checkpoint")
    kept = tmp_path / "log.jsonl"
    kept.write_text("{}\n")
    with run_lock(tmp_path):
        assert not stale.exists() and kept.exists()
