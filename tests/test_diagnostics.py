"""Selection diagnostics against the true corruption mask."""
import numpy as np
import pytest

from cmhash import diagnostics as d


def test_hand_computed_selection():
    corrupted = np.array([0, 0, 0, 1, 1, 0], dtype=bool)
    kept = np.array([1, 1, 0, 1, 0, 1], dtype=bool)
    out = d.selection_diagnostics(corrupted, kept=kept, clean_score=np.array([.9, .8, .3, .4, .1, .7]))
    assert out[d.KEPT_FRACTION] == pytest.approx(4 / 6)
    assert out[d.PRECISION] == pytest.approx(3 / 4)  # kept 0,1,3,5: 3 clean
    assert out[d.RECALL] == pytest.approx(3 / 4)  # clean 0,1,2,5: 3 kept
    # clean scores .9 .8 .3 .7 vs corrupted .4 .1: pairs ordered right 3+... = (2+2+1+2)/8
    assert out[d.AUC] == pytest.approx(7 / 8)
    assert out[d.NOISE_RATE_TRUE] == pytest.approx(2 / 6)


def test_weights_and_undefined_auc():
    out = d.selection_diagnostics(np.array([0, 1, 0, 1], bool), weights=np.array([1.0, 0.5, 0.8, 0.6]))
    assert out[d.WEIGHT_CLEAN] == pytest.approx(0.9) and out[d.WEIGHT_NOISY] == pytest.approx(0.55)
    assert out[d.AUC] == 1.0
    none_noisy = d.selection_diagnostics(np.zeros(3, bool), weights=np.ones(3), extra={"gmm_mean": 0.2})
    assert d.AUC not in none_noisy and none_noisy["select/gmm_mean"] == 0.2
