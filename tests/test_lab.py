"""The transformation lab: its runs are the study's kind of run for any choice, trained and measured for real
at the smoke tier; its static part shows the committed study for every transformation."""

import dataclasses

import pytest

from essl_core.book import results_dir
from essl_core.groups import GROUPS
from essl_core.lab import committed_panel, lab_table, lab_widget, run_lab
from essl_core.study import study_recipe, study_records, transformation_recipe


def test_the_study_s_runs_are_transformation_recipes():
    for variant, inv, eq in (("baseline", None, None), ("I-SSL", "vflip", None), ("E-SSL", None, "jigsaw")):
        study = study_recipe(variant, inv or eq, "cpu", 43)
        assert dataclasses.replace(study, name="x") == dataclasses.replace(
            transformation_recipe(inv, eq, "cpu", 43), name="x"
        )
    both = transformation_recipe("hflip", "rotation", "smoke", 42, lmbd=0.8)
    assert (both.invariance, both.equivariance, both.lmbd, both.base_augment) == ("hflip", "rotation", 0.8, "crop")


def test_the_lab_trains_the_choice_and_the_baseline_and_measures_both(cifar_root, tmp_path):
    stages = []
    result = run_lab("hflip", "rotation", 0.8, "smoke", tmp_path, data_root=cifar_root, device="cpu", progress=False,
                     report=lambda done, what: stages.append((done, what)))  # fmt: skip
    assert [d for d, _ in stages] == [0, 1, 2, 3, 4] and stages[-1][1] == "done"  # what the progress bar shows
    assert result["choice"] == {"invariance": "hflip", "equivariance": "rotation", "lmbd": 0.8}
    for label in ("baseline", "your choice"):
        assert 0 <= result[label]["knn"] <= 100 and set(result[label]["measures"]) == {"hflip", "rotation"}
    assert sorted(p.name for p in (tmp_path / "lab-smoke").iterdir()) == [
        "lab-inv-hflip-e-rotation-l0.8", "lab-inv-none-e-none"]  # fmt: skip
    table = lab_table(result)
    assert table.count("<tr>") == 3 and "four-fold rotation: predictability %" in table
    no_branch = run_lab(None, "rotation", 0.0, "smoke", tmp_path, data_root=cifar_root, device="cpu", progress=False)
    assert no_branch["choice"]["equivariance"] is None  # lambda 0 is no E-branch
    several = run_lab("vflip+hflip", None, 0.4, "smoke", tmp_path, data_root=cifar_root, device="cpu", progress=False)
    assert set(several["your choice"]["measures"]) == {"hflip", "vflip"}  # each augmentation measured on its own
    assert several["choice"]["invariance"] == "hflip+vflip"  # one run directory, whatever the order typed
    assert (tmp_path / "lab-smoke" / "lab-inv-hflip+vflip-e-none").is_dir()
    for bad in ("spin", "hflip+spin"):
        with pytest.raises(ValueError, match="unknown transformation 'spin'"):
            run_lab(bad, None, 0.4, "smoke", tmp_path, data_root=cifar_root)


def test_the_static_part_shows_the_committed_study_for_every_transformation(tmp_path):
    records = study_records(results_dir() / "study", "cpu")
    panels = committed_panel(records)
    assert list(panels) == [g.name for g in GROUPS.values()]
    assert all(p.count("<tr>") == 4 and "(3)</td>" in p for p in panels.values())  # header + 3 runs, 3 seeds
    widget = lab_widget(records, "smoke", tmp_path)
    augment = widget.children[1].children[1]  # none, one or several augmentations
    assert augment.value == () and [k for _, k in augment.options] == list(GROUPS)
    tab = widget.children[-1]
    assert list(tab.titles) == list(panels) and tab.children[0].value == panels[tab.titles[0]]


def test_no_lab_control_has_a_description_the_static_page_would_typeset(tmp_path):
    # The static page's widget manager typesets descriptions with MathJax 2's API, absent beside MathJax 3.
    import ipywidgets as widgets

    def walk(w):
        yield w
        for child in getattr(w, "children", ()):
            yield from walk(child)

    lab = lab_widget(study_records(results_dir() / "study", "cpu"), "smoke", tmp_path)
    described = [w for w in walk(lab) if getattr(w, "description", "") and not isinstance(w, widgets.Button)]
    assert described == []
