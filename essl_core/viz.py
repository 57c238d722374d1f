"""Plots and widgets the chapters use: pure functions of data and result records, returning figures/widgets."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .augment import to_pixels
from .evaluate import centred_similarity, pixel_features
from .groups import Group


def as_hwc(x: torch.Tensor) -> np.ndarray:
    """One CHW image in [0, 1] as an HWC array for imshow."""
    return x.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def shown_elements(group: Group, max_elements: int = 6) -> range:
    """The elements a figure or widget shows: all of them, or the first `max_elements` (the jigsaw has 24)."""
    return range(min(group.size, max_elements))


def group_grid(images: np.ndarray, groups: Mapping[str, Group], n_images: int = 4, max_elements: int = 6) -> plt.Figure:
    """Rows: groups; columns: each element (up to `max_elements`) applied to `n_images` real images (uint8 NHWC)."""
    x = to_pixels(torch.from_numpy(images[:n_images]))
    width = max(len(shown_elements(g, max_elements)) for g in groups.values())
    fig, axes = plt.subplots(len(groups), width, figsize=(1.9 * width, 1.7 * len(groups)), squeeze=False)
    for row, group in enumerate(groups.values()):
        for k in range(width):
            ax = axes[row, k]
            ax.axis("off")
            if k in shown_elements(group, max_elements):
                strip = torch.cat(list(group.apply(x, k)), dim=2)  # images side by side
                ax.imshow(as_hwc(strip), interpolation="nearest")
                ax.set_title(
                    f"{group.name}: {group.element_names[k]}" if k == 0 else group.element_names[k], fontsize=8
                )
    fig.tight_layout()
    return fig


def curves(records: Mapping[str, dict], keys: Sequence[str], ylabel: str | None = None) -> plt.Figure:
    """Per-epoch curves read from result records, one panel per key, one line per record."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for label, record in records.items():
            c = record["curves"]
            ys = c.get(key)
            if ys is None:
                continue
            pts = [(e, y) for e, y in zip(c["epoch"], ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel or key)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep_plot(
    panels: Mapping[str, Mapping[str, Mapping[int, Mapping[str, float]]]],
    labels: Mapping[str, str],
    ylabel: str,
    scale: float = 100.0,
) -> plt.Figure:
    """One panel per key (e.g. dataset), one seaborn line per series (e.g. method) against a count on a log axis
    (e.g. labelled cells): every run as a faint point, the mean with ± sd bars over its `values`; a series
    without runs (n = 0, e.g. the trivial baseline) is a dashed line. Values are multiplied by `scale` (100:
    fractions shown as percent)."""
    import pandas as pd
    import seaborn as sns

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels.items(), strict=True):
        rows = [
            {"count": x, ylabel: scale * v, "series": labels.get(name, name), "runs": bool(points[x].get("n", 1))}
            for name, points in series.items()
            for x in sorted(points)
            for v in points[x].get("values", [points[x]["mean"]])
        ]
        data = pd.DataFrame(rows)
        palette = dict(zip(data["series"].unique(), sns.color_palette(n_colors=data["series"].nunique()), strict=True))
        runs, fixed = data[data["runs"]], data[~data["runs"]]
        sns.lineplot(data=runs, x="count", y=ylabel, hue="series", palette=palette, marker="o", errorbar="sd",
                     err_style="bars", err_kws={"capsize": 3}, ax=ax)  # fmt: skip
        sns.scatterplot(data=runs, x="count", y=ylabel, hue="series", palette=palette, alpha=0.25, s=14, ax=ax,
                        legend=False)  # fmt: skip
        if len(fixed):
            sns.lineplot(data=fixed, x="count", y=ylabel, hue="series", palette=palette, linestyle="--", ax=ax)
        ax.set_xscale("log")
        counts = sorted(data["count"].unique())
        ax.set_xticks(counts, [str(x) for x in counts])
        ax.minorticks_off()
        ax.set_xlabel("labelled cells")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    ylabel: str,
    title: str = "",
    reference: Mapping[str, float] | None = None,
    errors: Mapping[str, Mapping[str, float]] | None = None,
    baseline: tuple[str, float, float] | None = None,
) -> plt.Figure:
    """Bars of values[series][category]; optional per-category reference marks (e.g. chance level), error bars
    errors[series][category], and a baseline (label, value, spread) drawn as a line with a band."""
    series = list(values)
    cats = list(next(iter(values.values())))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(1.4 + 1.3 * len(cats), 3.4))
    for i, name in enumerate(series):
        xs = np.arange(len(cats)) + (i - (len(series) - 1) / 2) * width
        yerr = [errors[name][c] for c in cats] if errors else None
        ax.bar(xs, [values[name][c] for c in cats], width, label=name, yerr=yerr, capsize=3 if yerr else 0)
    if reference:
        for j, c in enumerate(cats):
            ax.hlines(reference[c], j - 0.45, j + 0.45, colors="k", linestyles="dashed", lw=1)
    if baseline:
        label, value, spread = baseline
        ax.axhline(value, color="k", lw=1.2, label=label)
        if spread:
            ax.axhspan(value - spread, value + spread, color="k", alpha=0.1)
    ax.set_xticks(np.arange(len(cats)), cats)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def element_panel(
    images: np.ndarray,
    group: Group,
    k: int,
    encoders: Mapping[str, nn.Module],
    device: torch.device,
    names: Sequence[str] | None = None,
) -> plt.Figure:
    """What element k of `group` does to some images (titled with their class `names`, if given), and how similar
    each encoder finds f(x) and f(g x)."""
    x = to_pixels(torch.from_numpy(images))
    moved = group.apply(x, k)
    fig = plt.figure(figsize=(1.2 * len(x) + 0.5, 3.6))
    grid = fig.add_gridspec(2, len(x), height_ratios=[1, 1.3])
    for i in range(len(x)):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(as_hwc(moved[i]), interpolation="nearest")
        ax.axis("off")
        if names is not None:
            ax.set_title(names[i], fontsize=7)
    ax = fig.add_subplot(grid[1, :])
    width = 0.8 / len(encoders)
    for j, (label, enc) in enumerate(encoders.items()):
        ref, out = pixel_features(enc, x, device), pixel_features(enc, moved, device)
        sims = centred_similarity(ref, out).cpu().numpy()
        ax.bar(np.arange(len(x)) + (j - (len(encoders) - 1) / 2) * width, sims, width, label=label)
    ax.set_ylim(-1, 1.05)
    ax.set_xticks(np.arange(len(x)), [f"image {i + 1}" for i in range(len(x))], fontsize=7)
    ax.set_ylabel("cos(f(x), f(g x))", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{group.name}: {group.element_names[k]}", fontsize=9)
    fig.tight_layout()
    return fig


def figure_png(fig: plt.Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (and closed, so notebooks do not show it twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def explorer(
    images: np.ndarray,
    groups: Mapping[str, Group],
    encoders: Mapping[str, nn.Module],
    device: torch.device,
    max_elements: int = 6,
    names: Sequence[str] | None = None,
):
    """Tabs (transformation) of tabs (element, up to `max_elements` per group), each a pre-rendered panel; with
    the images' class `names`, each panel titles its images with them and carries one DOM class `essl-class-NAME`
    per class shown, so a browser test can read what a reader sees (a tooltip would break: the widgets'
    JavaScript reads an Image's missing description for it).

    Every choice is rendered up front, so the widget works without a kernel in the static HTML book (the saved
    widget state holds all panels) and just the same in Colab.
    """
    import ipywidgets as widgets

    def panel(g: Group, k: int):
        image = widgets.Image(value=figure_png(element_panel(images, g, k, encoders, device, names)), format="png")
        for name in dict.fromkeys(names or ()):
            image.add_class(f"essl-class-{name}")
        return image

    outer = widgets.Tab()
    outer.children = [
        widgets.Tab(
            children=[panel(g, k) for k in shown_elements(g, max_elements)],
            titles=[g.element_names[k] for k in shown_elements(g, max_elements)],
        )
        for g in groups.values()
    ]
    outer.titles = [g.name for g in groups.values()]
    return outer


# seaborn's pointplot as a mean ± sd mark over the runs drawn beside it (the figures of seed_points and study_knn)
MEAN_SD_MARKS = dict(errorbar="sd", markers="_", linestyle="none", capsize=0.1, legend=False)


def seed_points(groups: Mapping[str, tuple[dict[int, dict], dict[int, dict]]], names: tuple[str, str]) -> plt.Figure:
    """Each pretraining seed's linear probe and kNN accuracy, base against E-variant, per group (a tier, a
    pipeline), with each side's mean and sample standard deviation: the runs behind `verdict.seed_comparison`."""
    import pandas as pd
    import seaborn as sns

    from .verdict import METRICS

    rows = [
        {"group": label, "method": name, "metric": metric, "seed": seed, "accuracy (%)": get(run["metrics"])}
        for label, sides in groups.items()
        for name, runs in zip(names, sides, strict=True)
        for seed, run in runs.items()
        for metric, get in METRICS.items()
    ]
    data = pd.DataFrame(rows)
    grid = sns.catplot(data=data, x="group", y="accuracy (%)", hue="method", col="metric", kind="strip", dodge=True,
                       height=3.0, aspect=1.1, sharey=False, jitter=False, size=6, alpha=0.6)  # fmt: skip
    for ax, metric in zip(grid.axes.flat, METRICS, strict=True):
        sns.pointplot(data=data[data.metric == metric], x="group", y="accuracy (%)", hue="method", dodge=0.4, ax=ax,
                      markersize=18, **MEAN_SD_MARKS)  # fmt: skip
        ax.set_title(f"{metric}: each seed, mean ± sd", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    return grid.figure


def study_knn(summary: Mapping[tuple[str, str | None], dict], keys: Sequence[str]) -> plt.Figure:
    """The transformation study's kNN accuracy: left, each seed's run per transformation and variant with its
    mean ± sd, beside the baseline's mean ± sd (line and band); right, each variant's difference from the baseline
    with twice its standard error (`verdict.difference`), the interval the verdict reads: it counts only when it
    misses 0. `summary` is `study.summarise`'s."""
    import pandas as pd
    import seaborn as sns
    import seaborn.objects as so

    from .verdict import difference

    variants = ("I-SSL", "E-SSL")
    base = summary[("baseline", None)]
    pairs = [(k, v) for k in keys for v in variants if (v, k) in summary]
    runs = pd.DataFrame(
        [
            {"transformation": k, "variant": v, "kNN accuracy (%)": value}
            for k, v in pairs
            for value in summary[(v, k)]["values"]
        ]
    )
    deltas = []
    for k, v in pairs:
        d = difference(summary[(v, k)]["values"], base["values"])
        half = 2 * d["se"] if d["se"] is not None else 0.0
        deltas.append({"transformation": k, "variant": v, "difference": d["diff"], "low": d["diff"] - half,
                       "high": d["diff"] + half})  # fmt: skip
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
    colours = {"I-SSL": "tab:blue", "E-SSL": "tab:orange"}
    order = {"order": list(keys), "hue_order": list(variants), "palette": colours}
    sns.stripplot(data=runs, x="transformation", y="kNN accuracy (%)", hue="variant", dodge=True, jitter=False,
                  alpha=0.5, size=5, ax=left, **order)  # fmt: skip
    sns.pointplot(data=runs, x="transformation", y="kNN accuracy (%)", hue="variant", dodge=0.4, ax=left, **order,
                  markersize=14, **MEAN_SD_MARKS)  # fmt: skip
    left.axhline(base["mean"], color="k", lw=1.2, label="baseline (crops only)")
    left.axhspan(base["mean"] - base["std"], base["mean"] + base["std"], color="k", alpha=0.1)
    left.set_title("each seed, and mean ± sd", fontsize=9)
    left.legend(fontsize=7)
    plot = so.Plot(pd.DataFrame(deltas), x="transformation", y="difference", ymin="low", ymax="high",
                   color="variant")  # fmt: skip
    plot = plot.add(so.Range(), so.Dodge(), legend=False).add(so.Dot(), so.Dodge(), legend=False)
    with warnings.catch_warnings():  # seaborn 0.13's objects interface passes pandas 3 a deprecated keyword
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
        plot.scale(color=so.Nominal(colours, order=list(variants))).on(right).plot()
    right.axhline(0.0, color="k", lw=1)
    right.set_ylabel("kNN minus baseline (points)")
    right.set_title("difference from the baseline ± 2 s.e. (the verdict's interval)", fontsize=9)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def markdown_table(rows: list[dict], digits: int = 3) -> str:
    """A Markdown table of `rows` (dicts with the same keys, in column order); floats get `digits` decimals."""

    def cell(value) -> str:
        text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def prediction_grid(images: np.ndarray, probs: np.ndarray, group: Group) -> plt.Figure:
    """Each image (rows) under each element of `group` (columns), titled with the element an E-branch head finds
    most likely and the probability it gives the true one (`probs` from
    `evaluate.transformation_probabilities`); green where the most likely element is the true one."""
    x = to_pixels(torch.from_numpy(images))
    n, size = len(images), group.size
    fig, axes = plt.subplots(n, size, figsize=(1.7 * size, 1.75 * n), squeeze=False)
    for i in range(n):
        for k in range(size):
            guess = int(probs[i, k].argmax())
            ax = axes[i][k]
            ax.imshow(group.apply(x[i : i + 1], k)[0].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(
                f"{group.element_names[k]}: says {group.element_names[guess]}\np(true) = {probs[i, k, k]:.2f}",
                fontsize=7,
                color="tab:green" if guess == k else "tab:red",
            )
            ax.axis("off")
    fig.tight_layout()
    return fig


def architecture_figure() -> plt.Figure:
    """E-SSL's architecture as a diagram: three views of one image, one shared backbone, the projector and its
    SSL loss, the rotation head and its prediction loss."""
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.set(xlim=(-0.02, 1.01), ylim=(0, 1))
    ax.axis("off")
    boxes = {  # name: (x, y, width, height, text, colour)
        "x": (0.0, 0.42, 0.09, 0.16, "image $x$", "0.9"),
        "v1": (0.14, 0.74, 0.16, 0.16, "view $x_1$\n32x32", "#c6dbef"),
        "v2": (0.14, 0.46, 0.16, 0.16, "view $x_2$\n32x32", "#c6dbef"),
        "v3": (0.14, 0.08, 0.16, 0.22, "rotation view $x_3$\n16x16, turned\n0°, 90°, 180°, 270°", "#fdd0a2"),
        "f": (0.37, 0.08, 0.14, 0.82, "backbone $f$\n(ResNet-18,\none for\nall views)", "#d9d9d9"),
        "g": (0.58, 0.6, 0.13, 0.16, "projector $g$", "#c6dbef"),
        "h": (0.58, 0.11, 0.13, 0.16, "rotation\nhead $h$", "#fdd0a2"),
        "ssl": (0.78, 0.6, 0.2, 0.16, "$\\mathcal{L}_{\\mathrm{SSL}}(g f x_1, g f x_2)$", "white"),
        "rot": (0.78, 0.11, 0.2, 0.16, "$\\mathrm{CE}(h f\\, \\mathrm{rot}_k x_3,\\ k)$", "white"),
    }
    for x, y, w, h, text, colour in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.01", fc=colour, ec="0.3"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(a: str, b: str, label: str = "") -> None:
        xa, ya, wa, ha = boxes[a][:4]
        xb, yb, _, hb = boxes[b][:4]
        start, end = (xa + wa, ya + ha / 2), (xb, min(max(ya + ha / 2, yb + 0.03), yb + hb - 0.03))
        ax.annotate("", end, start, arrowprops=dict(arrowstyle="->", color="0.3"))
        if label:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.03, label, fontsize=7, ha="center")

    for view in ("v1", "v2", "v3"):
        arrow("x", view)
        arrow(view, "f")
    arrow("f", "g", "features")
    arrow("f", "h", "features")
    arrow("g", "ssl")
    arrow("h", "rot")
    ax.text(0.88, 0.45, "$\\mathcal{L} = \\mathcal{L}_{\\mathrm{SSL}} + \\lambda\\,\\mathcal{L}_{\\mathrm{E}}$",
            ha="center", va="center", fontsize=11)  # fmt: skip
    ax.text(0.88, 0.38, "($\\mathcal{L}_{\\mathrm{E}}$: mean over the 4B rotated copies)", ha="center", fontsize=7)
    return fig
