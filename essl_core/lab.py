"""The transformation lab: choose transformations to add to the augmentations (I-SSL), one for the E-branch to
predict (E-SSL) and lambda, train briefly, and compare with the crops-only baseline; beside it, the committed
study's results for every choice the study made, which is what the static HTML book shows without a kernel."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from .data import load_cifar10
from .device import resolve_device
from .groups import GROUPS, JOIN, group_keys
from .layout import lab_run_dir
from .runs import load_trained_model, pretrain
from .study import measure_encoder, summarise, transformation_recipe, variant_measure
from .tiers import get_tier

LAB_STAGES = 4  # train and measure the baseline, then the choice


def run_lab(
    invariance: str | None,
    equivariance: str | None,
    lmbd: float,
    tier: str,
    runs_root: str | Path,
    *,
    data_root: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    report: Callable[[int, str], None] | None = None,
) -> dict:
    """Train the chosen run and the crops-only baseline at `tier` (finished runs are reused) and measure both:
    kNN accuracy, and for each chosen transformation how invariant to it and how predictive of it each encoder
    is. `invariance` names one transformation or several joined by JOIN ("hflip+rotation"), each view getting a
    random element of each. An E-branch with lambda 0 is no E-branch. `report(done, what)` is told each of its
    LAB_STAGES stages."""
    augmented = group_keys(invariance) if invariance else ()
    invariance = JOIN.join(augmented) or None  # the study's order: one run directory per choice
    if equivariance is not None and equivariance not in GROUPS:
        raise ValueError(f"unknown transformation {equivariance!r}; choose from {', '.join(GROUPS)}")
    equivariance = equivariance if lmbd > 0 else None
    dev = resolve_device(device)
    n_images, steps = get_tier(tier).measure
    images, _ = load_cifar10(data_root).test_sample(n_images)
    keys = tuple(dict.fromkeys(k for k in (*augmented, equivariance) if k))
    results = {}
    report = report or (lambda done, what: None)
    for n, (label, inv, eq) in enumerate((("baseline", None, None), ("your choice", invariance, equivariance))):
        recipe = transformation_recipe(inv, eq, tier, 42, lmbd if eq else None)
        run_dir = lab_run_dir(runs_root, tier, inv, eq, lmbd)
        report(2 * n, f"training {label}")
        record = pretrain(recipe, run_dir, data_root=data_root, device=device, progress=progress)
        report(2 * n + 1, f"measuring {label}")
        backbone = load_trained_model(run_dir, dev).backbone
        results[label] = {
            "knn": record["metrics"]["knn_top1"],
            "measures": measure_encoder(backbone, images, dev, steps, keys),
        }
    report(LAB_STAGES, "done")
    return {"tier": tier, "choice": {"invariance": invariance, "equivariance": equivariance, "lmbd": lmbd}, **results}


def lab_table(result: dict) -> str:
    """A run_lab result as an HTML table: kNN and the measures of the baseline and the choice."""
    keys = list(result["your choice"]["measures"])
    head = ["", "kNN top-1 %"] + [f"{GROUPS[k].name}: {m}" for k in keys for m in ("similarity", "predictability %")]
    rows = []
    for label in ("baseline", "your choice"):
        r = result[label]
        cells = [label, f"{r['knn']:.1f}"]
        cells += [f"{r['measures'][k][m]:.2f}" for k in keys for m in ("similarity", "predictability")]
        rows.append(cells)
    return _html_table(head, rows)


def committed_panel(records: list[dict]) -> dict[str, str]:
    """For each transformation, an HTML table of the committed study: kNN (mean ± sd over seeds) of the baseline,
    I-SSL and E-SSL, and how invariant to it and how predictive of it each of their encoders is."""
    summary = summarise(records)
    panels = {}
    for key, group in GROUPS.items():
        rows = []
        for variant, transformation in (("baseline", None), ("I-SSL", key), ("E-SSL", key)):
            s = summary[(variant, transformation)]
            rows.append([
                {"baseline": "baseline (crops only)", "I-SSL": f"I-SSL: {group.name} as augmentation",
                 "E-SSL": f"E-SSL: {group.name} predicted"}[variant],
                f"{s['mean']:.1f} ± {s['std']:.1f} ({s['n']})",
                f"{variant_measure(records, variant, key, 'similarity'):.2f}",
                f"{variant_measure(records, variant, key, 'predictability'):.1f} (chance {100 / group.size:.0f})",
            ])  # fmt: skip
        head = ["run", "kNN top-1 % (seeds)", f"similarity to {group.name}", "predictability %"]
        panels[group.name] = _html_table(head, rows)
    return panels


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cell = lambda tag, text: f"<{tag} style='padding:2px 8px'>{html.escape(str(text))}</{tag}>"  # noqa: E731
    lines = ["<table>", "<tr>" + "".join(cell("th", h) for h in head) + "</tr>"]
    lines += ["<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in rows]
    return "\n".join([*lines, "</table>"])


def lab_widget(records: list[dict], tier: str, runs_root: str | Path, data_root: str | Path | None = None):
    """The lab: choices and a Train button (they need a running kernel), and a tab per transformation with the
    committed study's results (`records`), rendered in advance so the static page shows them too."""
    import ipywidgets as widgets

    options = [("none", None)] + [(g.name, k) for k, g in GROUPS.items()]
    # No control carries a `description`: the static page's widget manager typesets descriptions with MathJax 2's
    # API, which this book's MathJax 3 lacks (a page error); plain HTML labels stand beside the controls instead.
    invariance = widgets.SelectMultiple(options=options[1:], value=(), rows=len(GROUPS))  # none, one or several
    equivariance = widgets.Dropdown(options=options, value="rotation")
    lmbd = widgets.FloatSlider(value=0.4, min=0.0, max=2.0, step=0.1)
    button = widgets.Button(description=f"Train at the {tier} tier", button_style="primary")
    bar = widgets.FloatProgress(value=0, min=0, max=LAB_STAGES)
    status, result = widgets.HTML(), widgets.HTML()

    def step(done: int, what: str) -> None:
        bar.value, status.value = done, html.escape(what)

    def train(_) -> None:
        choice = (JOIN.join(invariance.value) or None, equivariance.value, lmbd.value)
        outcome = run_lab(*choice, tier, runs_root, data_root=data_root, progress=False, report=step)
        result.value = lab_table(outcome)

    button.on_click(train)
    committed = widgets.Tab(children=[widgets.HTML(t) for t in committed_panel(records).values()])
    committed.titles = [g.name for g in GROUPS.values()]
    note = ("<b>Try a choice</b>: training needs a running kernel (Colab or Jupyter). Below it, without one, the "
            "committed study's results for every choice it made.")  # fmt: skip
    label = lambda text: widgets.HTML(f"<b>{text}</b>")  # noqa: E731
    choices = widgets.HBox(
        [
            label("augment with (none, one or several)"),
            invariance,
            label("E-branch"),
            equivariance,
            label("lambda"),
            lmbd,
        ]
    )
    return widgets.VBox([widgets.HTML(note), choices, widgets.HBox([button, bar, status]), result, committed])
