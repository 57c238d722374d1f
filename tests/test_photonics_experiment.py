"""The photonics experiment's parts: symmetry augmentations, networks, schedule, resuming, model selection."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from essl_core import checkpoint
from essl_core.errors import EsslError
from essl_core.groups import HALF_TRANSLATION, ROTATION
from essl_core.photonics.analysis import claim_rows, convergence_rows, settings_lines, sweep, variant_rows
from essl_core.photonics.config import get_mode, get_photonics_recipe
from essl_core.photonics.loops import pretrain
from essl_core.photonics.models import DosNet, PhcEncoder, projector, transformation_classifier
from essl_core.photonics.selection import PROTOCOLS, select
from essl_core.photonics.symmetry import ORIGIN_ROTATION, periodic_shift_each, random_symmetry


def _cells(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_periodic_shift_each_rolls_each_cell_by_its_own_shift():
    x = _cells()
    shifts = torch.tensor([[0, 0], [16, 0], [0, 16], [16, 16], [3, 29], [31, 1]])
    out = periodic_shift_each(x, shifts)
    for i, (r, c) in enumerate(shifts.tolist()):
        assert torch.equal(out[i], x[i].roll((r, c), dims=(1, 2)))


@pytest.mark.parametrize(
    ("augmentations", "candidates"),
    [
        (("translate_half",), [lambda c, r=r, s=s: c.roll((r, s), (1, 2)) for r in (0, 16) for s in (0, 16)]),
        (("flip",), [lambda c: c, lambda c: c.flip(1), lambda c: c.flip(2)]),
        (("rotate",), [lambda c, k=k: torch.rot90(c, k, (1, 2)) for k in range(4)]),
    ],
)
def test_random_symmetry_draws_an_element_per_cell(augmentations, candidates):
    x = _cells(64)
    out = random_symmetry(x, augmentations, torch.Generator().manual_seed(1))
    seen = set()
    for i in range(len(x)):
        matches = [j for j, f in enumerate(candidates) if torch.equal(out[i], f(x[i]))]
        assert matches, "every output is one of the allowed transformations of its own input"
        seen.add(matches[0])
    assert seen == set(range(len(candidates)))  # and all of them occur over 64 cells
    moved = random_symmetry(x, ("translate_any", "flip", "rotate"), torch.Generator().manual_seed(2))
    assert torch.equal(moved.flatten(1).sort(1).values, x.flatten(1).sort(1).values)  # a permutation of pixels
    with pytest.raises(EsslError, match="unknown augmentation"):
        random_symmetry(x, ("scale",), torch.Generator())


def test_half_translations_form_a_group():
    x = _cells(2)
    for a in range(4):
        assert torch.equal(HALF_TRANSLATION.apply(HALF_TRANSLATION.apply(x, a), a), x)  # each is its own inverse
    assert torch.equal(HALF_TRANSLATION.apply(HALF_TRANSLATION.apply(x, 1), 2), HALF_TRANSLATION.apply(x, 3))
    copies, labels = HALF_TRANSLATION.orbit(x)
    assert copies.shape == (8, 1, 32, 32) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_turn_about_the_origin_is_the_periodic_cells_own_quarter_turn():
    size = 32
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    index = (rows * size + cols).float()[None, None]  # each pixel holds its own number
    turned = ORIGIN_ROTATION.apply(index, 1)[0, 0].long()
    # Pixel (i, j), at x = -1/2 + (i, j)/R, goes where the quarter turn about x = 0 puts it: (-j, i) mod R.
    assert torch.equal(turned[(-cols) % size, rows], index[0, 0].long())
    x = _cells(2)
    for a in range(4):
        for b in range(4):
            assert torch.equal(
                ORIGIN_ROTATION.apply(ORIGIN_ROTATION.apply(x, a), b), ORIGIN_ROTATION.apply(x, (a + b) % 4)
            )
    # A cell with a mirror line through the origin, f(-i, j) = f(i, j): turned half way about the origin it is the
    # cell mirrored across its other axis; torch.rot90 (about the array's centre) moves it by a pixel as well.
    mirrored = (x + x.flip(2).roll(1, 2)) / 2
    other_mirror = mirrored.flip(3).roll(1, 3)
    assert torch.equal(ORIGIN_ROTATION.apply(mirrored, 2), other_mirror)
    assert not torch.equal(ROTATION.apply(mirrored, 2), other_mirror)


def test_the_recipe_picks_what_the_quarter_turns_go_about():
    assert get_mode("gpm", "simclr_ee").equivariance is ROTATION  # the official E-task by default
    recipe = get_photonics_recipe("smoke", {"rotation_centre": "origin"})
    assert get_mode("gpm", "simclr_ee", recipe.rotation_centre).equivariance is ORIGIN_ROTATION
    assert get_mode("blob", "simclr_ee", "origin").equivariance is HALF_TRANSLATION  # no quarter turns there
    with pytest.raises(EsslError, match="rotation_centre must be one of array, origin"):
        get_photonics_recipe("smoke", {"rotation_centre": "middle"})


def test_networks_have_the_official_shapes():
    encoder = PhcEncoder(1.0)
    conv = sum(p.numel() for p in encoder.conv.parameters())
    # Conv(1,64,7) + Conv(64,256,7) + Conv(256,256,7) with biases and BN (2 per channel).
    assert conv == (49 * 64 + 64 + 128) + (64 * 49 * 256 + 256 + 512) + (256 * 49 * 256 + 256 + 512)
    x = _cells(4)
    assert encoder(x).shape == (4, 1024)
    assert projector()(torch.randn(4, 1024)).shape == (4, 256)
    assert transformation_classifier(4)(torch.randn(4, 1024)).shape == (4, 4)
    assert DosNet(0.25)(x).shape == (4, 400)


def test_heads_share_one_batch_norm_as_the_official_code_unless_told_not_to():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    shared, separate = projector(), projector(shared_norm=False)
    assert count(shared) == 919_808 and count(separate) == 920_832  # the official count, and ours before
    norms = [m for m in shared if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2 and norms[0] is norms[1]
    norms = [m for m in transformation_classifier(4) if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms[0] is norms[1]
    norms = [m for m in separate if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms[0] is not norms[1]


def test_selection_on_validation_official_and_last():
    curves = {
        "1": {"val": [0.9, 0.5, 0.6], "test": [0.8, 0.45, 0.40]},
        "2": {"val": [0.7, 0.55, 0.52], "test": [0.6, 0.30, 0.35]},
    }
    chosen = select(curves)
    assert chosen["validation"] == 0.45  # checkpoint 1, evaluation 1 has the lowest validation error
    assert chosen["official"] == 0.30  # the lowest test error at an epoch start (the final evaluation excluded)
    assert chosen["last"] == 0.35


def test_pretraining_resumes_exactly(tmp_path, monkeypatch):
    recipe = get_photonics_recipe("smoke", {"pretrain_epochs": 2, "batch_ssl": 16})
    mode = get_mode("blob", "simclr_ee")
    cells, cpu = _cells(32), torch.device("cpu")
    whole = pretrain(mode, recipe, cells, tmp_path / "whole", cpu)
    assert set(whole["encoders"]) == {"1", "2"} and whole["curve"][0]["equivariance"] is not None

    real_write = checkpoint.atomic_write

    def write_then_stop(path, write):  # the process dies right after the first epoch's checkpoint
        real_write(path, write)
        raise KeyboardInterrupt

    (tmp_path / "resumed").mkdir()
    monkeypatch.setattr(checkpoint, "atomic_write", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        pretrain(mode, recipe, cells, tmp_path / "resumed", cpu)
    monkeypatch.setattr(checkpoint, "atomic_write", real_write)
    resumed = pretrain(mode, recipe, cells, tmp_path / "resumed", cpu)
    assert resumed["curve"] == whole["curve"]
    for epoch in ("1", "2"):
        for key, value in whole["encoders"][epoch].items():
            assert torch.equal(resumed["encoders"][epoch][key], value), key
    # The checkpoint is the project's one format, checked against the recipe like a CIFAR-10 one.
    with pytest.raises(EsslError, match="different recipe"):
        pretrain(mode, dataclasses.replace(recipe, pretrain_lr=0.1), cells, tmp_path / "resumed", cpu)


def _record(family: str, mode: str, by_count: dict[int, list[float]]) -> dict:
    """A record with the given per-seed test errors (the same under every protocol)."""
    results = {
        str(c): {str(i): {"selected": dict.fromkeys(PROTOCOLS, v)} for i, v in enumerate(values)}
        for c, values in by_count.items()
    }
    return {"config": {"family": family, "mode": mode}, "results": results}


def test_sweep_and_claim_rows_compare_with_the_papers_direction():
    claim = {"simclr_ee_vs_simclr": "lower error", "simclr_trans_vs_simclr": "higher error"}
    records = [
        _record("gpm", "simclr", {100: [0.10, 0.10], 300: [0.079, 0.081]}),
        _record("gpm", "simclr_ee", {100: [0.09, 0.09], 300: [0.069, 0.071]}),  # lower by 0.01: agrees
        _record("gpm", "simclr_trans", {100: [0.10, 0.10], 300: [0.078, 0.080]}),  # lower by 0.001: noise
        _record("blob", "simclr", {300: [0.05]}),
        _record("blob", "simclr_ee", {300: [0.06]}),  # one seed, wrong direction
    ]
    ee = sweep(records)["gpm"]["simclr_ee"]
    assert (
        ee[300]["mean"] == pytest.approx(0.07)
        and ee[300]["n"] == 2
        and ee[300]["std"] == pytest.approx(0.001414, rel=1e-3)
    )
    rows = {(r["dataset"], r["comparison"]): r for r in claim_rows(records, claim)}
    assert rows[("gpm", "E-SimCLR vs SimCLR")]["verdict"] == "agrees"
    assert rows[("gpm", "E-SimCLR vs SimCLR")]["labels"] == 300  # the largest label count
    assert rows[("gpm", "SimCLR + transformation vs SimCLR")]["verdict"] == "within noise"
    assert rows[("blob", "E-SimCLR vs SimCLR")]["verdict"] == "disagrees (one seed, no error bar)"
    assert ("blob", "SimCLR + transformation vs SimCLR") not in rows


def test_variant_rows_set_a_methods_other_setting_beside_simclr_and_its_first():
    records = [
        _record("gpm", "simclr", {100: [0.036, 0.037], 1000: [0.022, 0.022]}),
        _record("gpm", "simclr_ee", {100: [0.034, 0.035], 1000: [0.022, 0.023]}),
    ]
    variants = [_record("gpm", "simclr_ee", {100: [0.0365, 0.0375], 1000: [0.020, 0.021]})]
    rows = variant_rows(records, variants, "gpm", "lower error", ("rot90", "origin"))
    assert [r["labels"] for r in rows] == [100, 1000]
    assert rows[0]["SimCLR (%)"] == "3.65 ± 0.07" and rows[0]["rot90 (%)"] == "3.45 ± 0.07"
    assert rows[0]["rot90 vs SimCLR"] == "agrees"  # 3.45 vs 3.65, standard error 0.07
    assert rows[0]["origin vs SimCLR"] == "within noise"  # 3.70 vs 3.65: 0.05 against a standard error of 0.07
    assert rows[0]["origin minus rot90 (points)"] == "+0.25 ± 0.07"
    assert rows[1]["origin vs SimCLR"] == "agrees"  # 2.05 vs 2.20, standard error 0.05


def test_quiet_pretraining_draws_no_bar_even_on_a_terminal(tmp_path, monkeypatch):
    import essl_core.photonics.loops as loops

    asked = []
    real = loops.tqdm
    monkeypatch.setattr(loops, "tqdm", lambda *a, **kw: asked.append(kw.get("disable")) or real(*a, **kw))
    recipe = get_photonics_recipe("smoke", {"pretrain_epochs": 1, "batch_ssl": 16})
    pretrain(get_mode("blob", "simclr"), recipe, _cells(16), tmp_path / "quiet", torch.device("cpu"), progress=False)
    pretrain(get_mode("blob", "simclr"), recipe, _cells(16), tmp_path / "shown", torch.device("cpu"))
    assert asked == [True, None]  # None: tqdm decides, drawing on a terminal only


def test_the_trivial_baseline_is_the_empty_lattice_s_error_beside_every_label_count():
    from essl_core.photonics.analysis import TRIVIAL
    from essl_core.photonics.dataset import PhcData, eldiff_baseline
    from essl_core.photonics.loops import trivial_error

    el = eldiff_baseline()
    dos = torch.stack([el * 1.1, el * 0.8])  # 10% above and 20% below the empty lattice everywhere
    data = PhcData(torch.zeros(2, 1, 32, 32), dos, "test")
    assert trivial_error(data) == pytest.approx(0.5 * (0.1 / 1.1 + 0.2 / 0.8), rel=1e-5)
    record = _record("gpm", "simclr", {100: [0.05], 300: [0.04]}) | {"trivial": {"test": 0.041, "val": 0.04}}
    line = sweep([record])["gpm"][TRIVIAL]
    assert set(line) == {100, 300} and all(v["mean"] == 0.041 and v["std"] == 0.0 for v in line.values())
    assert TRIVIAL not in sweep([_record("gpm", "simclr", {100: [0.05]})])["gpm"]  # older records: no line


def test_small_label_counts_get_the_minimum_number_of_fine_tuning_steps():
    cpu, full = get_photonics_recipe("cpu"), get_photonics_recipe("full")
    # 100 labels at batch 64: 2 steps per epoch, so 1,600 epochs for 3,200 steps; 1,000 labels: 16 per epoch.
    assert [cpu.finetune_epochs_for(n) for n in (100, 300, 1000)] == [1600, 640, 200]
    assert get_photonics_recipe("cpu", {"finetune_min_steps": 0}).finetune_epochs_for(100) == 25  # the recipe's
    assert {full.finetune_epochs_for(n) for n in (100, 3000)} == {100}  # the paper's schedule at its tier


def test_a_methods_runs_pool_over_pretraining_and_fine_tuning_seeds():
    def seeded(pretrain_seed: int, values: list[float]) -> dict:
        record = _record("gpm", "simclr_ee", {100: values})
        record["config"]["recipe"] = {"pretrain_seed": pretrain_seed}
        return record

    pooled = sweep([seeded(1, [0.10, 0.12]), seeded(2, [0.14, 0.16])])["gpm"]["simclr_ee"][100]
    assert pooled["n"] == 4 and pooled["mean"] == pytest.approx(0.13)
    assert sorted(pooled["values"]) == pytest.approx([0.10, 0.12, 0.14, 0.16])


def test_settings_lines_say_how_each_datasets_records_were_made():
    def made(family, mode, epochs: dict[int, int], encoders, commit, recipe=None, trivial=True) -> dict:
        record = _record(family, mode, {n: [0.05, 0.05, 0.05] for n in epochs})
        for n, by_seed in record["results"].items():
            curve = (
                {"epoch": [0, epochs[int(n)]], "val": [0.1, 0.05]} if recipe else {"val": [0.1] * (epochs[int(n)] + 1)}
            )
            for entry in by_seed.values():
                entry["curves"] = dict.fromkeys(encoders, curve)
        record["config"]["recipe"] = recipe or {}
        record["provenance"] = {"git": {"commit": commit * 40}}
        return record | ({"trivial": {"test": 0.07}} if trivial else {})

    new = {"finetune_batch": 64, "ggr_sampling": "points"}
    records = [
        made("blob", "none", {100: 1600, 1000: 200}, ["0"], "a", new),
        made("blob", "simclr", {100: 1600, 1000: 200}, ["12"], "a", new),
        made("blob", "simclr", {100: 1600, 1000: 200}, ["12"], "b", new),  # a second pretraining seed
        made("gpm", "simclr", {100: 25, 300: 25}, ["6", "12"], "c", trivial=False),  # an old record
    ]
    lines = settings_lines(records)
    assert lines["blob"] == (
        "blob: 2 pretraining x 3 fine-tuning seeds per pretrained method; 100 and 1,000 labels; 3,200 fine-tuning "
        "steps at every label count; the last encoder fine-tuned; commit aaaaaaa, bbbbbbb."
    )
    assert lines["gpm"].startswith(
        "gpm: 1 pretraining x 3 fine-tuning seeds per pretrained method; 100 and 300 labels; 25 fine-tuning epochs "
        "at every label count; both kept encoders fine-tuned; commit ccccccc. These records predate the trivial "
        "baseline and the official data and heads"
    )
    records[1]["results"]["1000"]["0"]["curves"]["12"]["epoch"][-1] = 100  # 1,600 steps at 1,000 labels
    assert "3,200 and 1,600 fine-tuning steps at 100 and 1,000 labels" in settings_lines(records[1:2])["blob"]


def test_convergence_rows_compare_stopping_early_with_the_end():
    still_falling = {"epoch": [0, 40, 80, 120, 160], "val": [0.9, 0.5, 0.4, 0.3, 0.2], "test": [1, 6, 5, 4, 3]}
    flat = {"epoch": [0, 40, 80, 120, 160], "val": [0.9, 0.2, 0.3, 0.3, 0.3], "test": [1, 2, 3, 3, 3]}
    record = _record("blob", "simclr", {100: [0.0, 0.0]})
    for entry, curve in zip(record["results"]["100"].values(), [still_falling, flat], strict=True):
        entry["curves"] = {"12": curve}
    (row,) = convergence_rows([record])
    # Stopped at 75% (epoch 120): test 4 and 2; at the end: 3 and 2 (the flat run chose epoch 40 either way).
    assert row["stopped at 75% of fine-tuning (%)"] == pytest.approx(300) and row["at the end (%)"] == 250
    assert row["runs still improving after 75%"] == "1 of 2"
    assert select({"12": still_falling})["validation"] == 3  # the same choice as the full selection


def test_every_pretraining_seed_is_its_own_run_and_no_pretraining_runs_once(tmp_path):
    from essl_core.photonics.experiment import run_photonics

    settings = {"pretrain_seeds": (1, 2), "pretrain_epochs": 2, "finetune_epochs": 1, "label_counts": (8,)}
    recipe = get_photonics_recipe("smoke", settings)
    records = run_photonics(recipe, ("blob",), ("none", "simclr_ee"), device="cpu", data_dir=tmp_path / "data",
                            runs_root=tmp_path / "runs", record_dir=tmp_path / "records", progress=False)  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "records").iterdir())
    assert names == sorted(f"photonics-smoke-blob-{m}.json" for m in ("none", "simclr_ee", "simclr_ee-p2"))
    seeds = sorted((r["config"]["mode"], r["config"]["recipe"]["pretrain_seed"]) for r in records)
    assert seeds == [("none", 1), ("simclr_ee", 1), ("simclr_ee", 2)]
    assert all("trivial" in r for r in records)

    def encoders(runs: list[dict]) -> set[tuple[str, ...]]:  # the encoders each fine-tuning run started from
        return {(r["config"]["mode"], *sorted(s["curves"])) for r in runs for s in r["results"]["8"].values()}

    assert encoders(records) == {("none", "0"), ("simclr_ee", "1", "2")}  # both kept encoders, as the official
    # Run again with another setting: a new run, never the finished one of other settings.
    other = get_photonics_recipe("smoke", {**settings, "shared_head_norm": False, "finetune_from_half": False})
    again = run_photonics(other, ("blob",), ("simclr_ee",), device="cpu", data_dir=tmp_path / "data",
                          runs_root=tmp_path / "runs", progress=False)  # fmt: skip
    assert [r["config"]["recipe"]["shared_head_norm"] for r in again] == [False, False]
    assert encoders(again) == {("simclr_ee", "2")}  # finetune_from_half=False: the last encoder only
    assert {r["config"]["recipe"]["shared_head_norm"] for r in records} == {True}
    assert len(list((tmp_path / "runs").iterdir())) == 2  # one folder per settings and data


def test_a_run_another_process_holds_is_left_for_last_then_read_once_it_finishes(tmp_path, monkeypatch, capsys):
    from essl_core import results
    from essl_core.layout import RESULT, photonics_run_dir
    from essl_core.lock import run_lock
    from essl_core.photonics import experiment

    files = (tmp_path / "labelled.h5", tmp_path / "unlabelled.h5")
    for f in files:
        f.write_bytes(b"cells")
    monkeypatch.setattr(experiment, "prepare_data", lambda *args: files)
    ran, started = [], threading.Event()

    def run_mode(family, mode, *args) -> dict:  # this process's runs, in order
        ran.append(mode)
        started.set()
        return {"schema": results.SCHEMA, "config": {"family": family, "mode": mode}, "by": "this process"}

    monkeypatch.setattr(experiment, "run_mode", run_mode)
    recipe = get_photonics_recipe("smoke", {"pretrain_seeds": (1, 2)})
    held = photonics_run_dir(tmp_path / "runs", experiment.run_tag(recipe, files), "blob", "none")
    locked = threading.Event()

    def other_process() -> None:  # holds the no-pretraining run until this process has started another run
        with run_lock(held):
            locked.set()
            started.wait(60)
            results.write_record(held / RESULT, {"schema": results.SCHEMA, "config": {"mode": "none"}, "by": "other"})

    other = threading.Thread(target=other_process)
    other.start()
    assert locked.wait(60)
    records = experiment.run_photonics(recipe, ("blob",), ("none", "simclr"), device="cpu",
                                       runs_root=tmp_path / "runs", progress=False)  # fmt: skip
    other.join()
    assert ran == ["simclr", "simclr"]  # both pretraining seeds; the held run was not run again here
    assert [(r["config"]["mode"], r["by"]) for r in records] == [
        ("none", "other"),  # waited for, then read: in its place in the order
        ("simclr", "this process"),
        ("simclr", "this process"),
    ]
    assert "blob none (pretraining seed 1) is run by process" in capsys.readouterr().err


def test_fine_tuning_evaluates_at_the_step_interval_on_the_same_trajectory():
    from essl_core.photonics.dataset import PhcData
    from essl_core.photonics.loops import finetune

    def cells(n: int, seed: int) -> PhcData:
        return PhcData(_cells(n, seed), torch.rand(n, 400, generator=torch.Generator().manual_seed(seed)), "test")

    # 8 labels at batch 4: 2 steps an epoch, 6 epochs. Evaluating is deterministic and draws nothing, so the
    # sparse curve must be the every-epoch curve read at its epochs: the same training, fewer evaluations.
    settings = {"finetune_epochs": 6, "finetune_batch": 4, "width": 0.125}
    mode, data = get_mode("blob", "none"), (cells(8, 1), cells(4, 2), cells(4, 3))
    runs = {}
    for k in (0, 3):
        recipe = get_photonics_recipe("smoke", {**settings, "finetune_eval_steps": k})
        runs[k] = finetune(None, mode, recipe, *data, seed=5, device=torch.device("cpu"))
    assert runs[0]["epoch"] == [0, 1, 2, 3, 4, 5, 6]  # 0: before every epoch and after the last (official)
    assert runs[3]["epoch"] == [0, 2, 4, 6]  # at least 3 steps since the last evaluation, and the end
    for key in ("val", "test"):
        assert runs[3][key] == [runs[0][key][e] for e in runs[3]["epoch"]]
    with pytest.raises(EsslError, match="steps >= 0"):
        get_photonics_recipe("smoke", {"finetune_eval_steps": -1})
