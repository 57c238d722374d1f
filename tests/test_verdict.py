import math

import pytest

from essl_core.verdict import difference, seed_comparison, verdict


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
    assert rows[0].startswith("| | metric | SimCLR (seeds) | E-SimCLR (seeds) |") and len(rows) == 4
    se = math.sqrt(1.0 / 3 + 0.5 / 2)
    assert rows[2] == f"| cpu | probe | 1.50 ± 0.71 (2) | 4.00 ± 1.00 (3) | +2.50 ± {se:.2f} | agrees |"
    assert rows[3].startswith("| cpu | kNN | 11.00 ± 1.41 (2) | 11.00 ± 0.00 (3) | +0.00")
    assert rows[3].endswith("| no difference |")
