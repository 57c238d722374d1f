import math

import pytest

from essl_core.verdict import difference, verdict


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
