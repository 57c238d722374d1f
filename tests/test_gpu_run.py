"""The prepared GPU script, end to end on the CPU at the smoke tier, and its epoch budget."""

from __future__ import annotations

from essl_core.gpu_run import epochs_for_budget, gpu_run
from essl_core.results import read_record


def test_epochs_for_budget():
    # 480 s at 25,000 img/s with 25% overhead: 192 epochs of 50,000 images.
    assert epochs_for_budget(480, 25_000, 50_000) == 192
    assert epochs_for_budget(1, 10, 50_000) == 1  # never zero


def test_gpu_run_smoke_writes_bench_and_both_training_records(cifar_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its run directories go under runs/ here
    written = gpu_run("smoke", tmp_path / "out", deadline_s=30, data_root=cifar_root)
    records = {p.name: read_record(p) for p in written}
    assert sorted(r["kind"] for r in records.values()) == ["bench", "photonics-solver", "pretrain", "pretrain"]
    bench = next(r for r in records.values() if r["kind"] == "bench")
    assert bench["metrics"]["reference"]["images_per_s"] > 0 and bench["metrics"]["fast"]["images_per_s"] > 0
    for record in records.values():
        if record["kind"] == "pretrain":
            epochs = record["config"]["epochs"]
            assert record["metrics"]["epochs_trained"] == epochs >= 1
            assert record["config"]["probe_runs"] == 1 and record["config"]["augment"] == "batched"
            assert len(record["curves"]["knn_top1"]) == epochs
    assert {r["recipe"] for r in records.values() if r["kind"] == "pretrain"} == {"cifar10-esimclr", "cifar10-simclr"}
    solver = next(r for r in records.values() if r["kind"] == "photonics-solver")
    assert solver["summary"]["ours_cells_per_s"] > 0 and solver["config"]["mpb"] is None
