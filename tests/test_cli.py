"""The command line end to end on the real CIFAR-10 copy, and its one-line errors."""

import json
import subprocess
import sys

import pytest

from essl_core.results import read_record


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "essl_core", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def smoke_run(cifar_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    proc = run("train", "--recipe", "cifar10-esimclr", "--tier", "smoke", "--data-root", cifar_root,
               "--run-dir", out / "run", "--record-dir", out / "records", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_smoke_train_writes_a_record_with_full_provenance(smoke_run, cifar):
    out, proc = smoke_run
    record = read_record(out / "run" / "result.json")
    assert record == read_record(out / "records" / "cifar10-esimclr-smoke-s42.json")
    assert (record["config"]["tier"], record["config"]["overrides"]) == ("smoke", [])
    assert (record["kind"], record["recipe"], record["tier"]) == ("pretrain", "cifar10-esimclr", "smoke")
    assert record["dataset"]["name"] == cifar.name and record["dataset"]["subset"]["train"] == 640
    assert record["config"]["lmbd"] == 0.4 and record["config"]["lr"] == 0.06
    prov = record["provenance"]
    assert len(prov["git"]["commit"] or "") == 40 and prov["torch"] and prov["device_name"].startswith("CPU")
    assert record["peak_memory"]["bytes"] > 0 and record["timing"]["train_wall_time_s"] > 0
    m = record["metrics"]
    assert 0 <= m["knn_top1"] <= 100 and len(m["linear_probe_top1"]["runs"]) == 2
    assert len(record["curves"]["loss"]) == 2 and all(v > 0 for v in record["curves"]["rot"])
    log = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert {"loss", "ssl", "rot", "rot_acc", "lr", "knn_top1", "epoch_time_s", "images_per_s"} <= set(log[0])
    assert "linear probe" in proc.stdout and cifar.name in proc.stdout


def test_eval_command_on_the_checkpoint(smoke_run, cifar_root):
    out, _ = smoke_run
    proc = run("eval", "--checkpoint", out / "run" / "checkpoint.pt", "--data-root", cifar_root,
               "--set", "probe_runs=1", "--set", "probe_epochs=1", "--out", out / "eval.json", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = read_record(out / "eval.json")
    assert record["kind"] == "eval" and record["checkpoint"]["epoch"] == 2 and record["tier"] == "smoke"
    train_record = read_record(out / "run" / "result.json")
    assert record["metrics"]["knn_top1"] == train_record["metrics"]["knn_top1"]  # same weights, same bank
    assert_one_line_error(
        run("eval", "--checkpoint", out / "run" / "checkpoint.pt", "--set", "width=64"), "eval cannot change width"
    )


def test_checkpoint_from_another_recipe_is_refused(smoke_run, cifar_root):
    out, _ = smoke_run
    proc = run("train", "--recipe", "cifar10-simclr", "--tier", "smoke", "--data-root", cifar_root,
               "--run-dir", out / "run", "--quiet")  # fmt: skip
    assert_one_line_error(proc, "different recipe", "cifar10-esimclr", "--restart")


def test_barlow_twins_trains_from_the_same_command(cifar_root, tmp_path):
    proc = run("train", "--recipe", "cifar10-ebarlowtwins", "--tier", "smoke", "--data-root", cifar_root,
               "--run-dir", tmp_path / "run", "--set", "probe_runs=1", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = read_record(tmp_path / "run" / "result.json")
    assert (record["config"]["method"], record["config"]["lmbd"], record["config"]["ssl_scale"]) == (
        "barlowtwins",
        0.2,
        0.1,
    )
    loss, ssl, rot = (record["curves"][k] for k in ("loss", "ssl", "rot"))
    assert ssl[-1] < ssl[0] and all(
        abs(t - (0.1 * s + 0.2 * r)) < 1e-3 * t for t, s, r in zip(loss, ssl, rot, strict=True)
    )


def test_bench_command_prints_the_ratio_and_writes_a_record(cifar_root, tmp_path):
    proc = run("bench", "--tier", "smoke", "--device", "cpu", "--data-root", cifar_root, "--steps", "2",
               "--record-dir", tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ratio_lines = [line for line in proc.stdout.splitlines() if "ratio" in line]
    assert len(ratio_lines) == 1
    record = read_record(tmp_path / "bench-cifar10-esimclr-smoke-cpu.json")
    m = record["metrics"]
    assert f"{m['ratio']:.2f}x" in ratio_lines[0]
    assert m["ratio"] == pytest.approx(m["fast"]["images_per_s"] / m["reference"]["images_per_s"])
    assert m["timed_steps"] == 2 and m["flops_per_image"] > 0 and m["mfu"] is None  # no MFU on a CPU
    assert record["config"]["augment"] == "batched" and record["provenance"]["git"]["commit"]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--recipe", "cifar10-simclr"],
        ["eval", "--checkpoint", "missing.pt"],
        ["bench"],
        ["study"],
        ["photonics"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_refuses_a_bad_tier_recipe_method_or_option_in_one_line(command, monkeypatch):
    tiered = command[0] != "eval"
    if tiered:
        assert_one_line_error(run(*command, "--tier", "tiny"), "unknown tier 'tiny'")
        monkeypatch.setenv("ESSL_MODE", "huge")
        assert_one_line_error(run(*command), "unknown tier 'huge'")
        monkeypatch.delenv("ESSL_MODE")
    if command[0] in ("train", "bench"):
        assert_one_line_error(run(command[0], "--recipe", "cifar10-byol"), "unknown recipe 'cifar10-byol'")
    if command[0] in ("train", "bench"):
        assert_one_line_error(run(*command, "--set", "method=byol"), "method must be one of simclr, simsiam")
    if command[0] == "eval":
        assert_one_line_error(run(*command, "--set", "method=byol"), "eval cannot change method")
    if command[0] == "photonics":
        assert_one_line_error(run(*command, "--datasets", "cubes"), "unknown dataset 'cubes'")
        assert_one_line_error(run(*command, "--modes", "byol"), "unknown mode 'byol'")
    expected = "study takes no --set" if command[0] == "study" else "unknown option 'epoch'"
    assert_one_line_error(run(*command, "--set", "epoch=3"), expected)


def test_bad_input_gets_one_line_errors(tmp_path):
    assert_one_line_error(run("train", "--recipe", "cifar10-byol"), "unknown recipe 'cifar10-byol'")
    assert_one_line_error(run("train", "--recipe", "cifar10-simclr", "--set", "epoch=3"), "unknown option 'epoch'")
    assert_one_line_error(run("train", "--recipe", "cifar10-simclr", "--tier", "tiny"), "unknown tier")
    proc = run("train", "--recipe", "cifar10-simclr", "--data-root", tmp_path / "empty", "--run-dir", tmp_path / "r")
    assert_one_line_error(proc, "CIFAR-10 is not prepared", "python -m data_scripts.cifar10")
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"\x80\x02 definitely not a checkpoint")
    assert_one_line_error(run("eval", "--checkpoint", bad), "not a readable checkpoint")


def test_photonics_helpers_run_the_same_command():
    from essl_core.cli import build_parser, photonics_helper_argv

    parser = build_parser()
    argv = ["photonics", "--tier", "cpu", "--datasets", "gpm", "--modes", "simclr", "simclr_ee", "--processes", "3"]
    argv += ["--set", "width=0.5", "--set", "rotation_centre=origin", "--data-root", "d", "--record-dir", "r"]
    args = parser.parse_args(argv)
    helper = parser.parse_args(photonics_helper_argv(args))
    differs = {k for k in vars(args) if vars(args)[k] != vars(helper)[k]}
    assert differs == {"processes", "quiet"} and helper.processes == 1 and helper.quiet  # one process, no output
    assert_one_line_error(run("photonics", "--processes", "0"), "--processes must be at least 1, not 0")
