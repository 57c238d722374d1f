import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from essl_core.errors import EsslError
from essl_core.groups import GROUPS, ROTATION
from essl_core.models import CifarResNet18
from essl_core.results import describe, load_records, make_record, read_record, write_record
from essl_core.viz import (
    architecture_figure,
    curves,
    element_panel,
    explorer,
    figure_png,
    group_grid,
    grouped_bars,
    prediction_grid,
    seed_points,
    study_knn,
    sweep_plot,
)


def test_figures_have_the_panels_asked_for(small_cifar):
    fig = group_grid(small_cifar.test_x[:2], GROUPS)
    assert len([ax for ax in fig.axes if ax.images]) == sum(min(g.size, 6) for g in GROUPS.values())
    record = {"curves": {"epoch": [1, 2], "loss": [2.0, 1.0], "knn_top1": [None, 30.0]}}
    fig = curves({"a": record}, ["loss", "knn_top1"])
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]
    assert list(fig.axes[1].lines[0].get_xdata()) == [2]  # epochs without kNN are skipped
    fig = grouped_bars({"x": {"a": 1.0, "b": 2.0}, "y": {"a": 0.5, "b": 1.5}}, "v", reference={"a": 1, "b": 1})
    assert len(fig.axes[0].patches) == 4
    run = lambda probe, knn: {"metrics": {"linear_probe_top1": {"mean": probe}, "knn_top1": knn}}  # noqa: E731
    fig = seed_points({"cpu": ({1: run(40, 39), 2: run(38, 40)}, {1: run(45, 44), 2: run(46, 44), 3: run(44, 45)})},
                      ("SimCLR", "E-SimCLR"))  # fmt: skip
    probe_ax, knn_ax = fig.axes[:2]
    points = np.concatenate([c.get_offsets() for c in probe_ax.collections if len(c.get_offsets())])
    assert sorted(points[:, 1].tolist()) == [38, 40, 44, 45, 46]  # every seed's probe, not only the means
    assert "probe" in probe_ax.get_title() and "kNN" in knn_ax.get_title()
    plt.close("all")


def test_explorer_prerenders_every_element(small_cifar):
    torch.manual_seed(0)
    enc = CifarResNet18(width=4).eval()
    png = figure_png(element_panel(small_cifar.test_x[:3], ROTATION, 1, {"r": enc}, torch.device("cpu")))
    assert png.startswith(b"\x89PNG")
    w = explorer(small_cifar.test_x[:2], {"rotation": ROTATION}, {"r": enc}, torch.device("cpu"))
    assert list(w.titles) == ["four-fold rotation"] and len(w.children[0].children) == 4
    named = explorer(small_cifar.test_x[:3], {"rotation": ROTATION}, {"r": enc}, torch.device("cpu"),
                     names=["cat", "ship", "cat"])  # fmt: skip
    assert named.children[0].children[2]._dom_classes == ("essl-class-cat", "essl-class-ship")
    fig = element_panel(small_cifar.test_x[:2], ROTATION, 1, {"r": enc}, torch.device("cpu"), names=["cat", "ship"])
    assert [ax.get_title() for ax in fig.axes[:2]] == ["cat", "ship"]
    plt.close("all")


def test_study_knn_shows_each_seed_and_the_verdicts_interval():
    from essl_core.verdict import difference

    def runs(*values):
        return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)), "values": list(values)}

    summary = {("baseline", None): runs(30.0, 31.0, 29.0), ("I-SSL", "hflip"): runs(32.0, 33.0, 31.0),
               ("E-SSL", "hflip"): runs(29.0, 30.0, 31.0), ("E-SSL", "rotation"): runs(35.0, 34.0, 36.0)}  # fmt: skip
    fig = study_knn(summary, ["hflip", "rotation"])
    left, right = fig.axes[:2]
    assert len(left.collections[0].get_offsets()) == 3  # one point per seed
    d = difference([35.0, 34.0, 36.0], [30.0, 31.0, 29.0])
    intervals = sorted(tuple(seg[:, 1]) for seg in right.collections[0].get_segments())  # one per variant
    assert len(intervals) == 3 and intervals[-1] == pytest.approx((d["diff"] - 2 * d["se"], d["diff"] + 2 * d["se"]))
    plt.close(fig)


def test_sweep_plot_draws_each_run_the_mean_with_sd_and_a_runless_baseline_dashed():
    panels = {
        "blob": {
            "simclr": {100: {"mean": 0.05, "std": 0.01, "n": 2, "values": [0.04, 0.06]},
                       300: {"mean": 0.03, "std": 0.0, "n": 2, "values": [0.03, 0.03]}},
            "trivial": {100: {"mean": 0.07, "std": 0.0, "n": 0, "values": [0.07]},
                        300: {"mean": 0.07, "std": 0.0, "n": 0, "values": [0.07]}},
        }
    }  # fmt: skip
    fig = sweep_plot(panels, {"simclr": "SimCLR", "trivial": "trivial"}, "error (%)")
    ax = fig.axes[0]
    means = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert list(means[0].get_ydata()) == pytest.approx([5.0, 3.0])  # the mean, in percent
    points = next(c for c in ax.collections if type(c).__name__ == "PathCollection").get_offsets().tolist()
    assert sorted(map(tuple, points)) == [(100, 4.0), (100, 6.0), (300, 3.0), (300, 3.0)]  # every run
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_ydata())]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == pytest.approx([7.0, 7.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SimCLR", "trivial"]
    plt.close(fig)


def test_the_architecture_diagram_draws_every_part_and_both_losses():
    fig = architecture_figure()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("image", "view $x_1$", "view $x_2$", "rotation view $x_3$", "backbone", "projector", "rotation\nhead"):
        assert part in texts, part
    assert "mathcal{L}_{\\mathrm{SSL}}" in texts and "CE" in texts
    assert len(fig.axes[0].patches) == 9  # the boxes
    plt.close(fig)


def test_prediction_grid_titles_each_guess_green_when_right(small_cifar):
    probs = np.full((2, 4, 4), 0.1)
    probs[0, :, :] = np.eye(4) * 0.7 + 0.1  # image 0: every rotation named right
    probs[1, :, 0] = 0.7  # image 1: always "0°"
    fig = prediction_grid(small_cifar.test_x[:2], probs, ROTATION)
    colours = [ax.title.get_color() for ax in fig.axes]
    assert colours == ["tab:green"] * 4 + ["tab:green", "tab:red", "tab:red", "tab:red"]
    assert fig.axes[5].get_title() == "90°: says 0°\np(true) = 0.10"
    plt.close(fig)


def test_records_round_trip_and_describe(tmp_path):
    rec = make_record(
        "pretrain",
        tier="cpu",
        dataset={"name": "CIFAR-10 (JPEG q75 copy)"},
        provenance={"git": {"commit": "a" * 40, "dirty": False}, "device_name": "CPU: x", "torch": "2.14.1"},
    )
    write_record(tmp_path / "r.json", rec)
    assert read_record(tmp_path / "r.json") == rec
    (tmp_path / "other.json").write_text(json.dumps({"schema": "nope"}))
    with pytest.raises(EsslError, match="is not an essl-result"):
        load_records(tmp_path)
    (tmp_path / "other.json").unlink()
    assert list(load_records(tmp_path, kind="pretrain")) == ["r"] and load_records(tmp_path, kind="eval") == {}
    assert describe(rec) == "cpu tier, CPU: x, CIFAR-10 (JPEG q75 copy), torch 2.14.1, commit aaaaaaaa"
    untiered = make_record("photonics-solver", provenance=rec["provenance"])  # no tier, no dataset
    assert describe(untiered) == "CPU: x, torch 2.14.1, commit aaaaaaaa"


def test_committed_records_are_valid():
    from essl_core.book import results_dir
    from essl_core.layout import pretrain_record

    records = load_records(results_dir())
    paper = records["paper"]
    assert all(r["verified"] for r in paper["imagenet_linear_probe_top1"])
    assert all(r["top1"] is None and not r["verified"] for r in paper["cifar10_linear_probe_top1"])
    for name, r in records.items():
        if r["kind"] == "pretrain":
            stem = pretrain_record(r["recipe"], r["tier"], r["seeds"]["pretrain"]).removesuffix(".json")
            # gpu-run's names: the replica's say its pipeline and device, the budgeted runs their epochs
            budgeted = f"{r['recipe']}-full-{r['metrics']['epochs_trained']}ep"
            assert name == stem or name.startswith(stem + "-") or name.startswith(budgeted), name
            assert r["provenance"]["git"]["commit"]
