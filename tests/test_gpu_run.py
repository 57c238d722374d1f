"""The GPU runner, end to end on the CPU at the smoke tier: every step, and every step surviving the failure of
the others (each injected failure is recorded, and the later steps still write their records)."""

from __future__ import annotations

import json

import essl_core.bench as bench
import essl_core.gpu_run as gpu_run_module
from essl_core.gpu_run import epochs_for_budget, gpu_run
from essl_core.results import read_record


def test_epochs_for_budget():
    # 480 s at 25,000 img/s with 25% overhead: 192 epochs of 50,000 images.
    assert epochs_for_budget(480, 25_000, 50_000) == 192
    assert epochs_for_budget(1, 10, 50_000) == 1  # never zero


def _run(cifar_root, tmp_path, monkeypatch) -> tuple[dict, dict]:
    monkeypatch.chdir(tmp_path)  # its run directories go under runs/ here
    written = gpu_run("smoke", tmp_path / "out", deadline_s=600, data_root=cifar_root)
    records = {p.name: read_record(p) for p in written}
    return records, records["gpu-run-steps-cifar10.json"]["steps"]


def _fail(monkeypatch, module, name: str) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError(f"injected failure in {name}")

    monkeypatch.setattr(module, name, broken)


def test_every_step_writes_its_record(cifar_root, tmp_path, monkeypatch):
    records, steps = _run(cifar_root, tmp_path, monkeypatch)
    assert all(s["status"] == "ok" for s in steps.values()), steps
    assert set(steps) == {"environment", "bench", "photonic solver", "train cifar10-esimclr", "train cifar10-simclr",
                          "deviations pair"}  # fmt: skip
    assert records["gpu-run-steps-cifar10.json"]["environment"]["cpu_count"] >= 1
    kinds = sorted(r["kind"] for r in records.values())
    assert kinds == ["bench", "gpu-run", "photonics-solver", "pretrain", "pretrain", "pretrain"]
    pretrains = [r for r in records.values() if r["kind"] == "pretrain"]
    for record in pretrains:
        assert 1 <= record["metrics"]["epochs_trained"] == record["config"]["epochs"] <= 2  # capped at the tier's
        assert record["config"]["probe_runs"] == 1
    esimclr = [r for r in pretrains if r["recipe"] == "cifar10-esimclr"]
    main, pair = sorted(esimclr, key=lambda r: r["config"]["augment"])
    assert (pair["config"]["augment"], main["config"]["augment"]) == ("reference", "batched")
    assert pair["config"]["seed"] == main["config"]["seed"] and pair["config"]["epochs"] == main["config"]["epochs"]
    assert records["bench-cifar10-esimclr-smoke-cpu.json"]["metrics"]["failures"] == {}
    solver = records["photonics-solver-cpu.json"]["summary"]  # this device's solver and all CPU cores' data script
    assert solver["ours_cells_per_s"] > 0 and solver["cpu_all_cores_cells_per_s"] > 0 and solver["cpu_workers"] >= 1


def test_failures_inside_the_benchmark_and_of_whole_steps_are_recorded_and_the_rest_still_runs(
    cifar_root, tmp_path, monkeypatch
):
    _fail(monkeypatch, gpu_run_module, "environment")
    _fail(monkeypatch, bench, "kornia_views_per_s")
    _fail(monkeypatch, bench, "flops_per_image")
    monkeypatch.setattr(bench, "time_training", _reference_fails(bench.time_training))  # the fast half runs
    _fail(monkeypatch, gpu_run_module, "run_compare")
    records, steps = _run(cifar_root, tmp_path, monkeypatch)
    assert steps["environment"]["status"] == "failed" and "injected failure" in steps["environment"]["error"]
    assert steps["photonic solver"]["status"] == "failed"
    failures = records["bench-cifar10-esimclr-smoke-cpu.json"]["metrics"]["failures"]
    assert set(failures) == {"reference", "kornia", "flop count"}
    assert records["bench-cifar10-esimclr-smoke-cpu.json"]["metrics"]["ratio"] is None
    assert steps["train cifar10-esimclr"]["status"] == steps["train cifar10-simclr"]["status"] == "ok"
    assert steps["deviations pair"]["status"] == "skipped"  # no reference speed to plan it with
    assert sorted(r["kind"] for r in records.values()).count("pretrain") == 2


def _reference_fails(real):
    def time_training(trainer, *args):
        if not trainer.fast:
            raise RuntimeError("injected failure in the reference half")
        return real(trainer, *args)

    return time_training


def test_a_failed_benchmark_falls_back_to_a_measured_fast_throughput(cifar_root, tmp_path, monkeypatch):
    _fail(monkeypatch, gpu_run_module, "run_bench")
    real = gpu_run_module.train_budgeted

    def esimclr_fails(name, *args, **kwargs):
        if name == "cifar10-esimclr":
            raise RuntimeError("injected failure in E-SimCLR's training")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(gpu_run_module, "train_budgeted", esimclr_fails)
    records, steps = _run(cifar_root, tmp_path, monkeypatch)
    assert steps["bench"]["status"] == "failed" and steps["fast throughput"]["status"] == "ok"
    assert (
        steps["train cifar10-esimclr"]["status"] == "failed" and "injected" in steps["train cifar10-esimclr"]["error"]
    )
    assert steps["train cifar10-simclr"]["status"] == "ok"
    assert [r["recipe"] for r in records.values() if r["kind"] == "pretrain"] == ["cifar10-simclr"]
    assert steps["photonic solver"]["status"] == "ok" and "photonics-solver-cpu.json" in records
    assert steps["deviations pair"]["status"] == "skipped"
    saved = json.loads((tmp_path / "out" / "gpu-run-steps-cifar10.json").read_text())
    assert saved["steps"] == steps


def test_the_imagenet_experiment_benchmarks_then_trains_replica_pairs_while_time_is_left(
    imagenette_root, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gpu_run_module, "REPLICA_SEEDS", (42, 43))
    written = gpu_run("smoke", tmp_path / "out", deadline_s=600, data_root=imagenette_root, experiment="imagenet")
    records = {p.name: read_record(p) for p in written}
    steps = records["gpu-run-steps-imagenet.json"]["steps"]
    assert all(s["status"] == "ok" for s in steps.values()), steps
    assert list(steps) == ["environment", "bench"] + [
        f"train imagenet-{m} s{seed}" for seed in (42, 43) for m in ("simclr", "esimclr")
    ]
    bench_metrics = records["bench-imagenet-esimclr-smoke-cpu.json"]["metrics"]
    assert bench_metrics["failures"] == {} and bench_metrics["jpeg_decode"]["decode_jpeg_on_device"] > 0
    assert bench_metrics["imagenet_epoch_estimate"]["images"] == 1_281_167
    replica = [r for name, r in records.items() if name.endswith("-batched-cpu.json")]
    assert sorted((r["recipe"], r["config"]["seed"]) for r in replica) == [
        (m, seed) for m in ("imagenet-esimclr", "imagenet-simclr") for seed in (42, 43)
    ]
    assert all(r["config"]["augment"] == "batched" and r["tier"] == "smoke" for r in replica)


def test_the_imagenet_experiment_skips_runs_that_no_longer_fit(imagenette_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clock = iter(range(0, 10_000, 100))  # every reading of the clock is 100 s later
    monkeypatch.setattr(gpu_run_module.time, "monotonic", lambda: float(next(clock)))
    written = gpu_run("smoke", tmp_path / "out", deadline_s=1_000, data_root=imagenette_root, experiment="imagenet",
                      started=0.0)  # fmt: skip
    steps = read_record(tmp_path / "out" / "gpu-run-steps-imagenet.json")["steps"]
    assert steps["bench"]["status"] == "ok"
    skipped = [name for name, s in steps.items() if s["status"] == "skipped"]
    assert skipped and all(name.startswith("train ") for name in skipped)
    assert len(written) == 2 + sum(s["status"] == "ok" for name, s in steps.items() if name.startswith("train "))


def test_the_first_replica_run_is_judged_by_a_measured_run(imagenette_root, tmp_path, monkeypatch):
    # With a measured run longer than the deadline, no replica run starts (none is killed half-way).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gpu_run_module, "REPLICA_RUN_S", {"smoke": 10_000.0})
    gpu_run("smoke", tmp_path / "out", deadline_s=600, data_root=imagenette_root, experiment="imagenet")
    steps = read_record(tmp_path / "out" / "gpu-run-steps-imagenet.json")["steps"]
    trains = {name: s for name, s in steps.items() if name.startswith("train ")}
    assert trains and all(s["status"] == "skipped" and "10000 s" in s["error"] for s in trains.values())
