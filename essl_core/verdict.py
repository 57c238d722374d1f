"""The one verdict on a claim of the paper, used by every chapter that says "agrees", "disagrees" or "within
noise": the difference of the means of two sets of runs (over seeds) against twice its standard error."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

STATISTIC = (
    "the difference of the means over seeds counts as a result only when it exceeds twice its standard error, "
    "sqrt(s_a^2/n_a + s_b^2/n_b) with sample standard deviations s (Welch's); otherwise it is within noise"
)


def difference(a: Sequence[float], b: Sequence[float]) -> dict:
    """mean(a) - mean(b), its standard error (None with fewer than two runs on either side) and the counts."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    se = None
    if len(a) > 1 and len(b) > 1:
        se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return {"diff": float(a.mean() - b.mean()), "se": se, "n": (len(a), len(b))}


def verdict(a: Sequence[float], b: Sequence[float], paper_sign: int) -> str:
    """Whether runs `a` against runs `b` agree with the paper, which says sign(mean a - mean b) = paper_sign."""
    d = difference(a, b)
    if d["diff"] == 0:
        return "no difference"
    agrees = "agrees" if math.copysign(1, d["diff"]) == paper_sign else "disagrees"
    if d["se"] is None:
        return f"{agrees} (one seed, no error bar)"
    return "within noise" if abs(d["diff"]) < 2 * d["se"] else agrees


def bottom_line(verdicts: Sequence[str]) -> str:
    """One sentence that sums up a table of `verdict` strings: how many agree or disagree beyond noise, how many
    are within noise, and how many rest on one seed."""
    if not verdicts:
        return "**Bottom line:** no comparison with the paper here yet."
    kinds = [  # (how to tell, singular, plural)
        (lambda v: v == "agrees", "agrees with the paper beyond noise", "agree with the paper beyond noise"),
        (lambda v: v == "disagrees", "disagrees beyond noise", "disagree beyond noise"),
        (lambda v: v == "within noise", "is within noise", "are within noise"),
        (lambda v: v == "no difference", "shows no difference", "show no difference"),
        (lambda v: "one seed" in v, "rests on one seed (no verdict)", "rest on one seed (no verdict)"),
    ]
    parts = []
    for test, one, many in kinds:
        n = sum(map(test, verdicts))
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    total = len(verdicts)
    return f"**Bottom line:** of {total} comparison{'' if total == 1 else 's'}, {listed}."


def mean_sd(values: Sequence[float]) -> str:
    """'mean ± sample sd' over seeds, or the one value."""
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


METRICS = {"probe": lambda m: m["linear_probe_top1"]["mean"], "kNN": lambda m: m["knn_top1"]}


def seed_comparison(groups: dict[str, tuple[dict[int, dict], dict[int, dict]]], names: tuple[str, str]) -> str:
    """A Markdown table of base vs E-variant over pretraining seeds, per group (a tier, a pipeline) and metric
    (each run's linear-probe mean, and its final kNN): mean ± sd (seeds), the difference ± its standard error
    and the verdict on the paper's claim that the E-variant is better; then its bottom line. `groups` maps a label
    to the (base, E-variant) pretraining records by seed."""
    lines = [
        f"| | metric | {names[0]} (seeds) | {names[1]} (seeds) | difference ± s.e. | verdict |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for label, (base, equi) in groups.items():
        for metric, get in METRICS.items():
            b = [get(base[seed]["metrics"]) for seed in sorted(base)]
            a = [get(equi[seed]["metrics"]) for seed in sorted(equi)]
            d = difference(a, b)
            se = f" ± {d['se']:.2f}" if d["se"] is not None else ""
            verdicts.append(verdict(a, b, +1))
            lines.append(
                f"| {label} | {metric} | {mean_sd(b)} ({len(b)}) | {mean_sd(a)} ({len(a)}) | {d['diff']:+.2f}{se} "
                f"| {verdicts[-1]} |"
            )
    return "\n".join(lines) + "\n\n" + bottom_line(verdicts)
