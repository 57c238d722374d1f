"""DDP on the CPU with gloo: two processes launched by torchrun, each with half of a batch, give the same losses
and the same updated weights as one process on the whole batch (the global InfoNCE through `gather`, Barlow
Twins' all-reduced cross-correlation, synchronised BatchNorm, LARS); a 2-process run resumes exactly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from essl_core.checkpoint import load_checkpoint
from essl_core.distributed import CpuSyncBatchNorm
from essl_core.results import read_record

REPO = Path(__file__).resolve().parent.parent


def _launch(*args, processes: int = 2, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if processes == 1:
        cmd = [sys.executable, "-m", "tests.ddp_run", *map(str, args)]
    else:
        # A 2 s monitor interval: torchrun stops the other ranks soon after one exits, and on a loaded machine its
        # default 0.1 s could kill rank 0 before it reports the lost peer (seen once beside two background runs).
        torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
        torchrun += ["--monitor-interval", "2"]
        cmd = [sys.executable, *torchrun, "-m", "tests.ddp_run", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("recipe", ["imagenet-esimclr", "imagenet-ebarlowtwins"])
def test_two_ranks_step_like_one_process_on_the_whole_batch(recipe, tmp_path):
    _launch("step", recipe, tmp_path / "one.pt", processes=1)
    _launch("step", recipe, tmp_path / "two.pt", processes=2)
    one, two = (torch.load(tmp_path / f, weights_only=True) for f in ("one.pt", "two.pt"))
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    assert one["losses"][1] != one["losses"][0]  # the first step changed the weights
    for name, a in one["model"].items():
        b = two["model"][name]
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
        else:
            assert torch.equal(a, b), name


def test_cpu_sync_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn, synced = torch.nn.BatchNorm2d(3), CpuSyncBatchNorm(3)
    x = torch.randn(8, 3, 4, 4)
    torch.testing.assert_close(synced(x), bn(x))
    torch.testing.assert_close(synced.running_var, bn.running_var)


def test_a_two_process_run_resumes_exactly(imagenette_root, tmp_path):
    _launch("train", imagenette_root, tmp_path / "a")
    _launch("interrupt", imagenette_root, tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    _launch("train", imagenette_root, tmp_path / "b")  # a new torchrun resumes from epoch 1
    a, b = (read_record(tmp_path / d / "result.json") for d in ("a", "b"))
    assert b["curves"]["loss"] == a["curves"]["loss"] and b["curves"]["rot"] == a["curves"]["rot"]
    assert [s["from_epoch"] for s in b["provenance"]["training_segments"]] == [0, 1]
    wa, wb = (load_checkpoint(tmp_path / d / "checkpoint.pt")["model"] for d in ("a", "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len(load_checkpoint(tmp_path / "b" / "checkpoint.pt")["ranks_rng"]) == 2


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("disagree", "error: the 2 ranks were started with different settings; start them identically"),
        ("dies", "error: rank 0: another process of this torchrun run stopped ("),
    ],
)
def test_ranks_that_disagree_or_die_stop_with_one_line(imagenette_root, tmp_path, mode, message):
    proc = _launch(mode, imagenette_root, tmp_path / "run", ok=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors and all(line.startswith(message) for line in errors), proc.stderr[-3000:]
    assert "[rank0]: Traceback" not in proc.stderr


def test_slurm_script_starts_one_torchrun_per_node_with_the_arguments(tmp_path):
    """The script with stand-ins for scontrol and srun on PATH: the command it would run on each node."""
    for tool, body in (("scontrol", 'printf "gpu-node-7\\ngpu-node-8\\n"'), ("srun", 'echo "$@"')):
        (tmp_path / tool).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / tool).chmod(0o755)
    slurm = {"SLURM_JOB_NODELIST": "gpu-node-[7-8]", "SLURM_NNODES": "2", "SLURM_GPUS_ON_NODE": "8",
             "SLURM_JOB_ID": "123", "SLURM_SUBMIT_DIR": str(REPO)}  # fmt: skip
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", **slurm}
    script = REPO / "scripts" / "slurm-train.sh"
    proc = subprocess.run(["bash", script, "--recipe", "imagenet-esimclr", "--tier", "full"], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "torchrun", "--nnodes", "2", "--nproc_per_node", "8", "--rdzv_id", "123", "--rdzv_backend", "c10d",
        "--rdzv_endpoint", "gpu-node-7:29500", "-m", "essl_core", "train", "--recipe", "imagenet-esimclr", "--tier",
        "full",
    ]  # fmt: skip
