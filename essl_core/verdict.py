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
