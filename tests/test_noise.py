"""Tests of cmhash.noise: counts, flips, determinism, and agreement with the published
NRCH noise files for MIRFlickr (when ../shared/data is present)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cmhash.errors import ConfigError, DataError
from cmhash.noise import NOISE_MODELS, corrupt, known_noise_models, noisy_row_count

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MIR = DATA / "mirflickr25k"


def random_multilabel(n: int = 1000, c: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.15).astype(np.uint8)
    y[np.arange(n), rng.integers(0, c, n)] = 1  # >= 1 label per row
    return y


def one_hot(n: int = 1000, c: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros((n, c), np.uint8)
    y[np.arange(n), rng.integers(0, c, n)] = 1
    return y


# ----------------------------------------------------------------------------- registry, errors

def test_registry_names():
    assert known_noise_models() == ["classcond", "dcgmh", "instance", "missing", "nrch", "published", "sym"]
    assert set(NOISE_MODELS) == {"nrch", "dcgmh", "sym", "missing", "classcond", "instance"}
    with pytest.raises(TypeError):
        NOISE_MODELS["x"] = None  # read-only registry


@pytest.mark.parametrize("model,rate,key", [("bogus", 0.2, "noise_model"), ("nrch", 1.0, "noise_rate"),
                                            ("nrch", -0.1, "noise_rate"), ("nrch", float("nan"), "noise_rate")])
def test_bad_config(model, rate, key):
    with pytest.raises(ConfigError, match=key):
        corrupt(random_multilabel(10), model, rate, seed=0)


def test_bad_labels():
    with pytest.raises(DataError, match="2-d"):
        corrupt(np.zeros(5, np.uint8), "nrch", 0.2, 0)
    y = random_multilabel(10).astype(float)
    y[3, 2] = np.nan
    with pytest.raises(DataError, match="1 rows"):
        corrupt(y, "nrch", 0.2, 0)


@pytest.mark.parametrize("model", ["nrch", "dcgmh", "sym"])
def test_rate_zero_is_unchanged_copy(model):
    y = one_hot(100) if model == "sym" else random_multilabel(100)
    res = corrupt(y, model, 0.0, seed=3)
    assert res.noisy.dtype == np.uint8 and res.corrupted.dtype == np.bool_
    np.testing.assert_array_equal(res.noisy, y)
    assert not res.corrupted.any()
    assert res.noisy is not y


@pytest.mark.parametrize("model", ["nrch", "dcgmh", "sym"])
def test_seeded_determinism_and_input_untouched(model):
    y = one_hot(500) if model == "sym" else random_multilabel(500)
    before = y.copy()
    a = corrupt(y, model, 0.4, seed=7)
    b = corrupt(y, model, 0.4, seed=7)
    c = corrupt(y, model, 0.4, seed=8)
    np.testing.assert_array_equal(y, before)
    assert a.noisy.tobytes() == b.noisy.tobytes()
    np.testing.assert_array_equal(a.corrupted, b.corrupted)
    assert a.noisy.tobytes() != c.noisy.tobytes()
    # the mask is exactly "row differs from clean", for every model
    np.testing.assert_array_equal(a.corrupted, (a.noisy != y).any(axis=1))


def test_noisy_row_count_guards_float_error():
    assert noisy_row_count(0.29, 100) == 29  # 0.29 * 100 = 28.999999999999996
    assert [noisy_row_count(r, 10000) for r in (0.2, 0.5, 0.8)] == [2000, 5000, 8000]
    assert noisy_row_count(0.25, 10) == 2


# ----------------------------------------------------------------------------- nrch

@pytest.mark.parametrize("rate,n", [(0.2, 1000), (0.5, 999), (0.8, 1000), (0.33, 7)])
def test_nrch_counts_and_two_flips(rate, n):
    y = random_multilabel(n)
    res = corrupt(y, "nrch", rate, seed=1)
    k = math.floor(rate * n + 1e-9)
    assert res.n_corrupted == k
    diff = res.noisy.astype(int) - y
    # exactly one 1->0 and one 0->1 in every corrupted row, nothing elsewhere
    np.testing.assert_array_equal((diff == -1).sum(1), res.corrupted.astype(int))
    np.testing.assert_array_equal((diff == 1).sum(1), res.corrupted.astype(int))
    np.testing.assert_array_equal(res.noisy.sum(1), y.sum(1))


def test_nrch_skips_unflippable_rows_and_errors_when_short():
    y = random_multilabel(10, c=4)
    y[:5] = 1  # all-positive rows: no negative to flip
    res = corrupt(y, "nrch", 0.5, seed=0)
    assert res.n_corrupted == 5 and not res.corrupted[:5].any()
    with pytest.raises(DataError, match="only 5 of 10 rows"):
        corrupt(y, "nrch", 0.6, seed=0)


def test_nrch_flip_targets_are_uniform_within_row():
    # one row pattern repeated: positives {0, 1}, negatives {2, 3, 4, 5}
    y = np.zeros((20000, 6), np.uint8)
    y[:, :2] = 1
    res = corrupt(y, "nrch", 0.5, seed=5)
    d = res.noisy.astype(int) - y
    to0 = (d == -1).sum(0)[:2]
    to1 = (d == 1).sum(0)[2:]
    assert stats.chisquare(to0).pvalue > 1e-3 and stats.chisquare(to1).pvalue > 1e-3
    assert to0.sum() == to1.sum() == 10000


# ----------------------------------------------------------------------------- sym

def test_sym_counts_and_uniform_target():
    n, c = 20000, 10
    y = one_hot(n, c)
    res = corrupt(y, "sym", 0.5, seed=2)
    assert (res.noisy.sum(1) == 1).all()
    # picked rows: 10000; a uniform draw keeps the true class with prob 1/10 -> ~9000 changed
    changed = res.n_corrupted
    assert abs(changed - 9000) < 4 * math.sqrt(10000 * 0.1 * 0.9)
    new_class = res.noisy[res.corrupted].argmax(1)
    assert stats.chisquare(np.bincount(new_class, minlength=c)).pvalue > 1e-3


# ----------------------------------------------------------------------------- dcgmh

def test_dcgmh_four_groups():
    from cmhash.noise import _dcgmh_groups

    assert [s.stop - s.start for s in _dcgmh_groups(4000)] == [1000] * 4
    assert [s.stop - s.start for s in _dcgmh_groups(10)] == [3, 3, 3, 1]   # torch.chunk sizes
    assert [s.stop - s.start for s in _dcgmh_groups(6)] == [2, 2, 2, 0]


def test_dcgmh_group_behaviour():
    n = 4000
    y = random_multilabel(n, c=24, seed=4)
    counts = y.sum(1)
    lo, hi = counts.min(), counts.max()
    res = corrupt(y, "dcgmh", 0.4, seed=11)
    # reconstruct the groups from the same generator: the first draw is the permutation
    picked = np.random.default_rng(11).permutation(n)[:1600]
    groups = [picked[i * 400:(i + 1) * 400] for i in range(4)]
    untouched = np.setdiff1d(np.arange(n), picked)
    np.testing.assert_array_equal(res.noisy[untouched], y[untouched])
    assert res.n_corrupted == 1600  # every row has >= 1 label, so every picked row changes
    new_cnt = res.noisy.sum(1)
    overlap = (res.noisy & y).sum(1)
    g1, g2, g3, g4 = groups
    # (1) same count, ceil(n/2) new, the rest kept
    np.testing.assert_array_equal(new_cnt[g1], counts[g1])
    np.testing.assert_array_equal(overlap[g1], counts[g1] - np.ceil(counts[g1] / 2))
    # (2) same count, no old label kept
    np.testing.assert_array_equal(new_cnt[g2], counts[g2])
    assert (overlap[g2] == 0).all()
    # (3) new count m != n in [lo, hi]; ceil(m/2) new + min(n, m - ceil(m/2)) kept
    m3 = new_cnt[g3]
    assert ((m3 != counts[g3]) & (m3 >= lo) & (m3 <= hi)).all()
    kept3 = overlap[g3]
    np.testing.assert_array_equal(kept3, np.minimum(counts[g3], m3 - np.ceil(m3 / 2)))
    # (4) new count m != n, all new
    m4 = new_cnt[g4]
    assert ((m4 != counts[g4]) & (m4 >= lo) & (m4 <= hi)).all()
    assert (overlap[g4] == 0).all()
    # m is uniform on [lo, hi] minus n: over many rows, every admissible count occurs
    assert set(np.concatenate([m3, m4]).tolist()) == set(range(lo, hi + 1))


def test_dcgmh_published_rounding_and_constant_counts():
    y = random_multilabel(100)
    assert corrupt(y, "dcgmh", 0.29, seed=0).n_corrupted == 28  # int(0.29 * 100) quirk
    with pytest.raises(DataError, match="groups 3 and 4"):
        corrupt(one_hot(100), "dcgmh", 0.5, seed=0)


# ----------------------------------------------------------------------------- published files

def _load_mir():
    if not MIR.is_dir():
        pytest.skip("../shared/data not present: the published MIRFlickr noise files are needed")
    h5py = pytest.importorskip("h5py")
    from scipy.io import loadmat

    lall = loadmat(MIR / "mirflickr25k-lall.mat")["LAll"]
    published = {}
    for r in (0.2, 0.5, 0.8):
        with h5py.File(MIR / f"mirflickr25k-lall-noise_{r}.h5", "r") as f:
            published[r] = (f["result"][:], f["True"][:])
    return lall, published


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_nrch_matches_published_mirflickr_noise(rate):
    lall, published = _load_mir()
    train = lall[2000:12000]
    pub_noisy, pub_true = published[rate]
    np.testing.assert_array_equal(pub_true, train.astype(np.float64))
    res = corrupt(train, "nrch", rate, seed=2024)
    pub_diff = pub_noisy - pub_true
    our_diff = res.noisy.astype(np.int64) - train
    # same number of differing rows (== round(r * 10000)), 2-bit differences in each
    assert res.n_corrupted == (pub_diff != 0).any(1).sum() == round(rate * 10000)
    assert set(np.abs(our_diff).sum(1)[res.corrupted]) == set(np.abs(pub_diff).sum(1)[(pub_diff != 0).any(1)]) == {2}
    # the flipped classes follow the same law: under "uniform positive -> 0, uniform negative
    # -> 1 in uniformly chosen rows" the expected per-class count of 0->1 flips is
    # k * mean_i (1 - y_ic) / n_neg_i, and of 1->0 flips k * mean_i y_ic / n_pos_i. Both our
    # counts and the published ones must fit these (chi-square goodness of fit), and each other.
    y = train.astype(np.float64)
    k = res.n_corrupted
    expected = {1: k * ((1 - y) / (24 - y.sum(1, keepdims=True))).mean(0),
                -1: k * (y / y.sum(1, keepdims=True)).mean(0)}
    for sign in (1, -1):
        ours = (our_diff == sign).sum(0)
        theirs = (pub_diff == sign).sum(0)
        assert stats.chisquare(ours, expected[sign]).pvalue > 1e-3
        assert stats.chisquare(theirs, expected[sign]).pvalue > 1e-3
        assert stats.chi2_contingency(np.stack([ours, theirs])).pvalue > 1e-3
        # and the test has power: the counts are far from uniform over classes for 1->0
        if sign == -1:
            assert stats.chisquare(ours).pvalue < 1e-6
