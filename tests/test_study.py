"""The transformation study: its plan and recipes, the I-SSL views and the E-SSL batch, and a small run."""

from __future__ import annotations

import pytest
import torch

import essl_core.study as study
from essl_core.augment import ViewSpec, denormalize_pixels, normalize_pixels
from essl_core.batched_views import BatchedViews, apply_view_params, crop_only, sample_view_params
from essl_core.groups import GROUPS, INVERSION, JIGSAW, ROTATION
from essl_core.methods import build_model
from essl_core.recipes import get_recipe
from essl_core.train import Trainer


def test_plan_has_a_baseline_and_both_variants_of_all_seven_per_seed():
    plan = study.study_plan([1, 2])
    assert len(plan) == 30 and plan[0] == ("baseline", None, 1)
    assert {(v, t) for v, t, s in plan if s == 2} == {("baseline", None)} | {
        (v, t) for t in GROUPS for v in ("I-SSL", "E-SSL")
    }


def test_recipes_share_the_budget_and_differ_only_where_they_should():
    base = study.study_recipe("baseline", None, "cpu", 7)
    inv = study.study_recipe("I-SSL", "grayscale", "cpu", 7)
    equi = study.study_recipe("E-SSL", "jigsaw", "cpu", 7)
    rot = study.study_recipe("E-SSL", "rotation", "cpu", 7)
    for r in (base, inv, equi, rot):
        assert (r.epochs, r.batch_size, r.train_subset, r.seed, r.base_augment) == (8, 256, 5000, 7, "crop")
        assert r.probe_runs == 0 and r.augment == "batched"
    assert base.lmbd == 0 and base.invariance is None and base.lr == 0.03
    assert inv.invariance == "grayscale" and inv.lmbd == 0
    assert (equi.equivariance, equi.equivariance_copies, equi.lmbd, equi.lr) == ("jigsaw", 4, 0.4, 0.06)
    assert (rot.equivariance, rot.equivariance_copies) == ("rotation", 0)
    assert len({r.name for r in (base, inv, equi, rot)}) == 4


def test_invariance_views_apply_each_images_own_element_after_crop_only_augmentation():
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(16, 3, 32, 32, generator=gen)
    params = crop_only(sample_view_params(16, 32, 32, gen))
    assert not (params.flip.any() or params.jitter.any() or params.gray.any())
    params.element = torch.randint(2, (16,), generator=gen)
    views = apply_view_params(pixels, params, 32, INVERSION)
    plain = denormalize_pixels(apply_view_params(pixels, params, 32))
    expected = normalize_pixels(torch.where(params.element.view(-1, 1, 1, 1) == 1, 1 - plain, plain))
    torch.testing.assert_close(views, expected, atol=1e-5, rtol=0)


def test_batched_views_of_an_i_ssl_run_draw_an_element_per_view(small_cifar):
    views = BatchedViews(small_cifar.train_x[:64], [ViewSpec()] * 2, 32, torch.device("cpu"), base_augment="crop")
    plain = next(views.epoch(0))
    views.invariance = JIGSAW
    jigsawed = next(views.epoch(0))
    assert not torch.equal(plain[0], jigsawed[0]) and jigsawed[0].shape == plain[0].shape


@pytest.mark.parametrize("key, copies", [("inversion", 0), ("jigsaw", 4), ("rotation", 0)])
def test_e_branch_batch_and_labels(key, copies):
    recipe = get_recipe("cifar10-esimclr", "smoke", {"equivariance": key, "equivariance_copies": copies})
    model = build_model(recipe)
    group = GROUPS[key]
    x3 = normalize_pixels(torch.rand(5, 3, 16, 16))
    xr, yr = model.equivariance.transformed_batch(x3)
    assert len(xr) == len(yr) == 5 * (copies or group.size)
    assert model.equivariance.head[-1].out_features == group.size
    if copies == 0:  # block layout, as the official rotation batch
        assert yr.tolist() == [k for k in range(group.size) for _ in range(5)]
    for i in range(len(xr)):
        pixels = denormalize_pixels(x3[i % 5 : i % 5 + 1])
        expected = normalize_pixels(group.apply(pixels, int(yr[i])))
        torch.testing.assert_close(xr[i : i + 1], expected, atol=1e-5, rtol=0)
    if key == "rotation":  # acts on normalised views directly, exactly as the official code
        assert torch.equal(xr[5:10], ROTATION.apply(x3, 1))


def test_study_runs_measures_and_reuses_its_runs(cifar_root, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "GROUPS", {"jigsaw": JIGSAW, "inversion": INVERSION})
    kwargs = dict(data_root=cifar_root, runs_root=tmp_path / "runs", record_dir=tmp_path / "records", progress=False)
    records = study.run_study("smoke", **kwargs)
    assert [r["study"]["variant"] for r in records] == ["baseline", "I-SSL", "E-SSL", "I-SSL", "E-SSL"]
    for r in records:
        assert 0 <= r["metrics"]["knn_top1"] <= 100 and r["metrics"]["linear_probe_top1"] is None
        assert set(r["metrics"]["measures"]) == {"jigsaw", "inversion"}
        for m in r["metrics"]["measures"].values():
            assert -1 <= m["similarity"] <= 1 and 0 <= m["predictability"] <= 100
    assert len(study.study_records(tmp_path / "records", "smoke")) == 5
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a finished run was trained again"))
    again = study.run_study("smoke", **kwargs)
    assert [r["metrics"] for r in again] == [r["metrics"] for r in records]
    # A run measured before the class-balanced sample is measured again, not retrained.
    from essl_core.layout import RESULT, study_run_dir, study_run_name
    from essl_core.results import read_record, write_record

    result = study_run_dir(tmp_path / "runs", "smoke", study_run_name("baseline", None, 42)) / RESULT
    old = read_record(result)
    del old["metrics"]["measured_on"]
    old["metrics"]["measures"] = {"jigsaw": "airplanes"}
    write_record(result, old)
    remeasured = study.run_study("smoke", **kwargs)[0]["metrics"]
    assert remeasured["measured_on"] and remeasured["measures"] == records[0]["metrics"]["measures"]


def _record(variant, transformation, seed, knn):
    return {"study": {"variant": variant, "transformation": transformation, "seed": seed}, "metrics": {"knn_top1": knn}}


def test_summary_and_claim_verdicts():
    records = [_record("baseline", None, s, v) for s, v in ((1, 50.0), (2, 52.0))]
    records += [_record("I-SSL", "rotation", s, v) for s, v in ((1, 40.0), (2, 42.0))]  # clearly worse
    records += [_record("E-SSL", "rotation", s, v) for s, v in ((1, 50.5), (2, 52.5))]  # within noise
    records += [_record("I-SSL", "hflip", 1, 55.0)]  # one seed only
    records += [_record("I-SSL", "grayscale", s, 51.0) for s in (1, 2)]  # the baseline's mean
    summary = study.summarise(records)
    assert summary[("baseline", None)] == {
        "mean": 51.0,
        "std": pytest.approx(2**0.5),
        "n": 2,
        "seeds": [1, 2],
        "values": [50.0, 52.0],
    }
    claims = {
        "rotation": {"invariance": "hurts", "equivariance": "helps"},
        "hflip": {"invariance": "helps"},
        "grayscale": {"invariance": "helps", "equivariance": None},
    }
    rows = {(r["transformation"], r["as"]): r for r in study.claim_rows(summary, claims)}
    assert rows[("rotation", "invariance")]["ours"] == "agrees"
    assert rows[("rotation", "invariance")]["kNN vs baseline (points)"] == "-10.00"
    assert rows[("rotation", "equivariance")]["ours"] == "within noise"
    assert rows[("hflip", "invariance")]["ours"] == "agrees (one seed, no error bar)"
    assert rows[("grayscale", "invariance")]["ours"] == "no difference" and ("grayscale", "equivariance") not in rows
    claims["rotation"]["invariance"] = "helps"
    assert study.claim_rows(summary, claims)[0]["ours"] == "disagrees"


def test_a_variant_s_measure_is_the_mean_over_its_seeds_and_the_baseline_s_for_the_baseline():
    def run(variant: str, transformation: str | None, similarity: float) -> dict:
        measures = {"rotation": {"similarity": similarity}}
        return {"study": {"variant": variant, "transformation": transformation}, "metrics": {"measures": measures}}

    records = [run("E-SSL", "rotation", 0.2), run("E-SSL", "rotation", 0.4), run("E-SSL", "vflip", 0.9)]
    records += [run("baseline", None, 0.7), run("I-SSL", "rotation", 0.95)]
    assert study.variant_measure(records, "E-SSL", "rotation", "similarity") == pytest.approx(0.3)
    assert study.variant_measure(records, "baseline", "rotation", "similarity") == pytest.approx(0.7)
