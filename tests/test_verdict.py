import math

import pytest

from essl_core.verdict import bottom_line, difference, seed_comparison, verdict


def test_difference_has_welchs_standard_error():
    d = difference([3.0, 5.0, 4.0], [1.0, 2.0])
    assert d["diff"] == pytest.approx(4.0 - 1.5)
    assert d["se"] == pytest.approx(math.sqrt(1.0 / 3 + 0.5 / 2))
    assert d["n"] == (3, 2)
    assert difference([1.0], [2.0, 3.0])["se"] is None


def test_verdicts():
    assert verdict([3.0, 5.0, 4.0], [1.0, 2.0], +1) == "agrees"  # 2.5 > 2 x 0.76
    assert verdict([3.0, 5.0, 4.0], [1.0, 2.0], -1) == "disagrees"
    assert verdict([3.0, 5.0], [2.0, 4.0], +1) == "within noise"  # 1.0 < 2 x 1.41
    assert verdict([3.0], [2.0], +1) == "agrees (one seed, no error bar)"
    assert verdict([2.0, 2.0], [2.0, 2.0], +1) == "no difference"


def test_seed_comparison_table():
    def run(probe: float, knn: float) -> dict:
        return {"metrics": {"linear_probe_top1": {"mean": probe}, "knn_top1": knn}}

    base = {42: run(1.0, 10.0), 43: run(2.0, 12.0)}
    equi = {42: run(3.0, 11.0), 43: run(5.0, 11.0), 44: run(4.0, 11.0)}
    rows = seed_comparison({"cpu": (base, equi)}, ("SimCLR", "E-SimCLR")).splitlines()
    assert rows[0].startswith("| | metric | SimCLR (seeds) | E-SimCLR (seeds) |") and len(rows) == 6
    se = math.sqrt(1.0 / 3 + 0.5 / 2)
    assert rows[2] == f"| cpu | probe | 1.50 ± 0.71 (2) | 4.00 ± 1.00 (3) | +2.50 ± {se:.2f} | agrees |"
    assert rows[3].startswith("| cpu | kNN | 11.00 ± 1.41 (2) | 11.00 ± 0.00 (3) | +0.00")
    assert rows[3].endswith("| no difference |")
    assert (
        rows[5] == "**Bottom line:** of 2 comparisons, 1 agrees with the paper beyond noise and 1 shows no difference."
    )


def test_bottom_line_counts_every_kind_of_verdict():
    verdicts = ["agrees", "within noise", "disagrees", "within noise", "agrees (one seed, no error bar)"]
    assert bottom_line(verdicts) == (
        "**Bottom line:** of 5 comparisons, 1 agrees with the paper beyond noise, 1 disagrees beyond noise, "
        "2 are within noise and 1 rests on one seed (no verdict)."
    )
    assert bottom_line(["within noise"]) == "**Bottom line:** of 1 comparison, 1 is within noise."
    assert "no comparison" in bottom_line([])
