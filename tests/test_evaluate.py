"""Tests of cmhash.evaluate: hand-computed cases (with ties), both denominators, the
expected-tie closed form against exhaustive enumeration, sklearn agreement without ties,
chunking invariance, backends, and input errors."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from cmhash.errors import ConfigError, DataError
from cmhash.evaluate import (
    average_precision,
    hamming_distances,
    map_at_all,
    map_at_k,
    numba_available,
    pr_curve,
    precision_at_n,
    retrieval_report,
)
from cmhash.search import faiss_available

BACKENDS = ["numpy", "torch"] + (["numba"] if numba_available() else [])
# mAP@k and stable P@N read the top k from cmhash.search on CPU, where faiss is a backend too
RANKERS = ["numpy"] + (["numba"] if numba_available() else []) + [
    pytest.param("faiss", marks=pytest.mark.skipif(not faiss_available(), reason="faiss is not installed"))]


# ----------------------------------------------------------------------------- the hand case
# 4 bits, query code ++++. Database (index: distance, relevant to q1?):
#   0: d1 I   1: d0 I   2: d1 R   3: d2 R   4: d1 I
# Stable order (distance, then index): 1(I) 0(I) 2(R) 4(I) 3(R) -> relevant at ranks 3 and 5.
#   AP_stable(q1) = (1/3 + 2/5) / 2 = 11/30
# Expected ties: bucket d1 = {0, 2, 4} at ranks 2..4 holds one relevant item, equally likely at
# rank 2, 3 or 4: E = (1/2 + 1/3 + 1/4) / 3 = 13/36; item 3 is then at rank 5 with 2 hits: 2/5.
#   AP_expected(q1) = (13/36 + 2/5) / 2 = 137/360
# q2 shares no label with any item (AP undefined): 'skip' ignores it, 'zero' counts 0.
# q3 has q1's code and class 1, so items 0, 1, 4 are relevant (ranks 2, 1, 4 stable).
Q_CODES = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], np.float32)
DB_CODES = np.array([[-1, 1, 1, 1],     # d1
                     [1, 1, 1, 1],      # d0
                     [1, -1, 1, 1],     # d1
                     [-1, -1, 1, 1],    # d2
                     [1, 1, 1, -1]], np.float32)  # d1
Q_LABELS = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], np.uint8)
DB_LABELS = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]], np.uint8)


def hand(rows=(0, 1)):
    rows = list(rows)
    return Q_CODES[rows], DB_CODES, Q_LABELS[rows], DB_LABELS


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_case_map_all(backend):
    args = hand()
    assert map_at_all(*args, ties="stable", denominator="skip", backend=backend) == pytest.approx(11 / 30, abs=1e-15)
    assert map_at_all(*args, ties="stable", denominator="zero", backend=backend) == pytest.approx(11 / 60, abs=1e-15)
    assert map_at_all(*args, ties="expected", denominator="skip", backend=backend) == pytest.approx(137 / 360, abs=1e-15)
    assert map_at_all(*args, ties="expected", denominator="zero", backend=backend) == pytest.approx(137 / 720, abs=1e-15)
    ap = average_precision(*args, backend=backend)
    assert ap[0] == pytest.approx(11 / 30) and math.isnan(ap[1])
    # q3: stable ranks: 1(R) 0(R) 2(I) 4(R) 3(I) -> (1/1 + 2/2 + 3/4) / 3 = 11/12
    # expected: d0 bucket gives 1/1; d1 bucket (ranks 2..4) holds 2 relevant among 3 items:
    #   orders RRI: 2/2+3/3=2, RIR: 2/2+3/4=7/4, IRR: 2/3+3/4=17/12 -> mean (24+21+17)/36 = 31/18
    #   AP = (1 + 31/18) / 3 = 49/54
    ap3 = average_precision(*hand([2]), ties="stable", backend=backend)
    assert ap3[0] == pytest.approx(11 / 12, abs=1e-15)
    ap3e = average_precision(*hand([2]), ties="expected", backend=backend)
    assert ap3e[0] == pytest.approx(49 / 54, abs=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_case_map_at_k_and_precision_at_n(backend):
    args = hand()
    # q1 stable relevance by rank: I I R I R
    # AP@3 = (1/3) / 1 = 1/3; AP@5 = 11/30; top 2 holds nothing relevant
    assert map_at_k(*args, 3, backend=backend) == pytest.approx(1 / 3, abs=1e-15)
    assert map_at_k(*args, 5, backend=backend) == pytest.approx(11 / 30, abs=1e-15)
    assert map_at_k(*args, 2, denominator="zero", backend=backend) == 0.0
    with pytest.raises(DataError, match="no query"):
        map_at_k(*args, 2, backend=backend)
    # q3 (stable R R I R I): AP@2 = (1 + 1)/2 = 1; AP@4 = (1 + 1 + 3/4) / 3 = 11/12
    assert map_at_k(*hand([0, 2]), 4, backend=backend) == pytest.approx((1 / 3 + 11 / 12) / 2, abs=1e-15)
    # P@N for q1 (q2 skipped): stable hits at N = 1..5: 0 0 1 1 2
    p = precision_at_n(*args, [1, 3, 5], backend=backend)
    np.testing.assert_allclose(p, [0, 1 / 3, 2 / 5], atol=1e-15)
    np.testing.assert_allclose(precision_at_n(*args, [3], denominator="zero", backend=backend), [1 / 6], atol=1e-15)
    # expected ties: N=2 takes 1 of the 3 d1 items (1/3 relevant) -> 1/3 hit; N=3 -> 2/3; N=4 -> 1
    pe = precision_at_n(*args, [1, 2, 3, 4, 5], ties="expected", backend=backend)
    np.testing.assert_allclose(pe, [0, 1 / 6, 2 / 9, 1 / 4, 2 / 5], atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_case_pr_curve(backend):
    args = hand([0, 2])
    # q1: radius 0 -> 1 retrieved, 0 hits; radius 1 -> 4 retrieved, 1 hit; radius >= 2 -> 5, 2
    # q3: radius 0 -> 1 retrieved, 1 hit;  radius 1 -> 4 retrieved, 3 hits; radius >= 2 -> 5, 3
    pub = pr_curve(*args, backend=backend)
    np.testing.assert_array_equal(pub.radius, np.arange(5))
    # published: averaged over queries with precision > 0 (radius 0: q3 only)
    np.testing.assert_allclose(pub.precision, [1, (1 / 4 + 3 / 4) / 2, (2 / 5 + 3 / 5) / 2, 0.5, 0.5], atol=1e-15)
    np.testing.assert_allclose(pub.recall, [1 / 3, (1 / 2 + 1) / 2, 1, 1, 1], atol=1e-15)
    np.testing.assert_array_equal(pub.n_queries, [1, 2, 2, 2, 2])
    ret = pr_curve(*args, average="retrieved", backend=backend)
    np.testing.assert_allclose(ret.precision[:2], [(0 + 1) / 2, 0.5], atol=1e-15)
    np.testing.assert_allclose(ret.recall[:2], [(0 + 1 / 3) / 2, 0.75], atol=1e-15)


def test_retrieval_report_hand_case():
    rep = retrieval_report(*hand(), ties="expected", ks=[3, 5], ns=[2, 5])
    assert rep["map_all"] == pytest.approx(137 / 360) and rep["map_all_stable"] == pytest.approx(11 / 30)
    assert rep["map_at_k"] == {"3": pytest.approx(1 / 3), "5": pytest.approx(11 / 30)}
    assert rep["precision_at_n"] == {"2": pytest.approx(1 / 6), "5": pytest.approx(2 / 5)}
    assert rep["n_queries"] == 2 and rep["n_queries_with_relevant"] == 1 and rep["bits"] == 4
    import json
    json.dumps(rep)  # serialisable


def test_code_formats_are_equivalent():
    qc, dc, ql, dl = hand()
    ref = map_at_all(qc, dc, ql, dl)
    assert map_at_all(qc * 0.3, np.tanh(dc * 2), ql, dl) == ref            # real-valued -> sign
    assert map_at_all(qc > 0, (dc > 0).astype(np.uint8), ql, dl) == ref   # bits
    assert map_at_all(*(torch.from_numpy(a) for a in (qc, dc, ql, dl))) == ref  # torch tensors
    np.testing.assert_array_equal(hamming_distances(qc, dc), [[1, 0, 1, 2, 1]] * 2)


# ----------------------------------------------------------------------------- brute force

def brute_ap(dist_row: np.ndarray, rel_row: np.ndarray, order: np.ndarray) -> float:
    rel = rel_row[order]
    ranks = np.flatnonzero(rel) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks)) if len(ranks) else float("nan")


def random_case(n_q, n_db, bits, n_cls, seed, p_label=0.3):
    rng = np.random.default_rng(seed)
    qc = rng.choice([-1.0, 1.0], size=(n_q, bits)).astype(np.float32)
    dc = rng.choice([-1.0, 1.0], size=(n_db, bits)).astype(np.float32)
    ql = (rng.random((n_q, n_cls)) < p_label).astype(np.uint8)
    dl = (rng.random((n_db, n_cls)) < p_label).astype(np.uint8)
    return qc, dc, ql, dl


@pytest.mark.parametrize("seed", range(6))
def test_expected_ties_equal_exhaustive_average(seed):
    qc, dc, ql, dl = random_case(3, 7, 3, 3, seed, p_label=0.4)  # 3 bits, 7 items: many ties
    dist = hamming_distances(qc, dc)
    rel = (ql.astype(int) @ dl.T.astype(int)) > 0
    ap_e = average_precision(qc, dc, ql, dl, ties="expected")
    ap_s = average_precision(qc, dc, ql, dl, ties="stable")
    for i in range(3):
        buckets = [np.flatnonzero(dist[i] == h) for h in range(4)]
        aps = [brute_ap(dist[i], rel[i], np.array([j for b in perm for j in b], dtype=int))
               for perm in itertools.product(*(itertools.permutations(b) for b in buckets))]
        stable = brute_ap(dist[i], rel[i], np.argsort(dist[i], kind="stable"))
        if rel[i].any():
            assert ap_e[i] == pytest.approx(np.mean(aps), abs=1e-13)
            assert ap_s[i] == pytest.approx(stable, abs=1e-15)
        else:
            assert math.isnan(ap_e[i]) and math.isnan(ap_s[i])


def test_expected_precision_at_n_equals_exhaustive_average():
    qc, dc, ql, dl = random_case(2, 6, 2, 3, 3, p_label=0.4)
    dist = hamming_distances(qc, dc)
    rel = (ql.astype(int) @ dl.T.astype(int)) > 0
    keep = rel.any(1)
    got = precision_at_n(qc, dc, ql, dl, [1, 2, 3, 4, 5, 6], ties="expected", denominator="zero")
    want = np.zeros(6)
    for i in range(2):
        buckets = [np.flatnonzero(dist[i] == h) for h in range(3)]
        orders = [np.array([j for b in p for j in b], dtype=int) for p in itertools.product(*(itertools.permutations(b) for b in buckets))]
        want += np.mean([np.cumsum(rel[i][o]) / np.arange(1, 7) for o in orders], axis=0) * keep[i] / 2
    np.testing.assert_allclose(got, want, atol=1e-14)


def test_stable_matches_brute_force_and_sklearn_without_ties():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    bits, n_db, n_q = 256, 120, 5
    # every item at a distinct distance from every query: query = +1s, item j has d_j flips
    qc = np.ones((n_q, bits), np.float32)
    dc = np.ones((n_db, bits), np.float32)
    d = rng.choice(bits + 1, size=n_db, replace=False)
    for j in range(n_db):
        dc[j, rng.choice(bits, size=d[j], replace=False)] = -1
    ql = (rng.random((n_q, 6)) < 0.3).astype(np.uint8)
    ql[:, 0] = 1
    dl = (rng.random((n_db, 6)) < 0.2).astype(np.uint8)
    rel = (ql.astype(int) @ dl.T.astype(int)) > 0
    want = np.array([sk.average_precision_score(rel[i], -d.astype(float)) for i in range(n_q)])
    for backend in BACKENDS:
        for ties in ("stable", "expected"):
            np.testing.assert_allclose(average_precision(qc, dc, ql, dl, ties=ties, backend=backend), want, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_against_per_query_argsort(backend):
    qc, dc, ql, dl = random_case(40, 500, 16, 8, 7, p_label=0.15)
    dist = hamming_distances(qc, dc)
    rel = (ql.astype(int) @ dl.T.astype(int)) > 0
    want = np.array([brute_ap(dist[i], rel[i], np.argsort(dist[i], kind="stable")) for i in range(40)])
    got = average_precision(qc, dc, ql, dl, backend=backend)
    np.testing.assert_allclose(got, want, atol=1e-13, equal_nan=True)
    assert np.isnan(want).any()  # the case exercises both denominators
    valid = ~np.isnan(want)
    assert map_at_all(qc, dc, ql, dl, backend=backend) == pytest.approx(want[valid].mean(), abs=1e-13)
    assert map_at_all(qc, dc, ql, dl, denominator="zero", backend=backend) == pytest.approx(
        np.nan_to_num(want).sum() / 40, abs=1e-13)
    # mAP@k and P@N against the same rankings
    k = 37
    apk, pn = [], []
    for i in range(40):
        r = rel[i][np.argsort(dist[i], kind="stable")][:k]
        if r.any():
            apk.append(np.mean(np.arange(1, r.sum() + 1) / (np.flatnonzero(r) + 1)))
        pn.append(r.sum() / k)
    assert map_at_k(qc, dc, ql, dl, k, backend=backend) == pytest.approx(np.mean(apk), abs=1e-13)
    assert precision_at_n(qc, dc, ql, dl, [k], denominator="zero", backend=backend)[0] == pytest.approx(
        np.mean(pn), abs=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunking_invariance(backend):
    qc, dc, ql, dl = random_case(23, 300, 12, 5, 11)
    for ties in ("stable", "expected"):
        ref = map_at_all(qc, dc, ql, dl, ties=ties, chunk=23, backend=backend)
        for chunk in (1, 4, 100, None):
            assert map_at_all(qc, dc, ql, dl, ties=ties, chunk=chunk, backend=backend) == ref
    r1 = retrieval_report(qc, dc, ql, dl, ks=[10, 300], ns=[5, 50], chunk=1, backend=backend)
    r2 = retrieval_report(qc, dc, ql, dl, ks=[10, 300], ns=[5, 50], chunk=23, backend=backend)
    assert r1 == r2


def test_backends_agree():
    qc, dc, ql, dl = random_case(30, 700, 70, 70, 5, p_label=0.03)  # 70 bits, 70 classes: two packed words
    reports = [retrieval_report(qc, dc, ql, dl, ks=[50], ns=[10, 100], backend=b) for b in BACKENDS]
    a = reports[0]
    assert 0 < a["n_queries_with_relevant"] < 30
    for b in reports[1:]:
        for key in ("map_all_stable", "map_all_expected"):
            assert a[key] == pytest.approx(b[key], abs=1e-13)
        assert a["map_at_k"] == pytest.approx(b["map_at_k"], abs=1e-13)
        assert a["precision_at_n"] == pytest.approx(b["precision_at_n"], abs=1e-13)
        np.testing.assert_allclose(a["pr_curve"]["precision"], b["pr_curve"]["precision"], atol=1e-13)
    # and against the brute force, on the two-word case
    dist = hamming_distances(qc, dc)
    rel = (ql.astype(int) @ dl.T.astype(int)) > 0
    want = np.array([brute_ap(dist[i], rel[i], np.argsort(dist[i], kind="stable")) for i in range(30)])
    assert a["map_all_stable"] == pytest.approx(np.nanmean(want), abs=1e-13)


@pytest.mark.parametrize("backend", RANKERS)
def test_top_k_metrics_from_search_match_the_statistics_pass(backend):
    """map_at_k / stable precision_at_n through the top-k search equal the torch statistics
    pass (sort of all distances), with heavy ties, two label words, and any chunk."""
    qc, dc, ql, dl = random_case(31, 600, 9, 70, 13, p_label=0.02)
    assert 0 < int(((ql.astype(int) @ dl.T.astype(int)) > 0).any(1).sum()) < 31   # 'skip' drops some
    for k in (1, 17, 250, 600):
        for den in ("skip", "zero"):
            want = map_at_k(qc, dc, ql, dl, k, denominator=den, backend="torch")
            for chunk in (None, 4):
                assert map_at_k(qc, dc, ql, dl, k, denominator=den, chunk=chunk, backend=backend) == pytest.approx(
                    want, abs=1e-14)
    ns = [1, 9, 100, 600]
    for den in ("skip", "zero"):
        np.testing.assert_allclose(precision_at_n(qc, dc, ql, dl, ns, denominator=den, backend=backend),
                                   precision_at_n(qc, dc, ql, dl, ns, denominator=den, backend="torch"), atol=1e-14)
    t = torch.from_numpy(qc)   # CPU tensors take the same path as arrays
    assert map_at_k(t, dc, ql, dl, 17, backend=backend) == map_at_k(qc, dc, ql, dl, 17, backend=backend)


def test_faiss_backend_only_where_a_ranking_suffices():
    args = hand()
    with pytest.raises(ConfigError, match="ties='expected' needs the distance histogram"):
        precision_at_n(*args, [2], ties="expected", backend="faiss")
    with pytest.raises(ConfigError, match="backend"):
        map_at_all(*args, backend="faiss")


# ----------------------------------------------------------------------------- errors

def test_input_errors():
    qc, dc, ql, dl = hand()
    with pytest.raises(DataError, match="bits"):
        map_at_all(qc[:, :3], dc, ql, dl)
    with pytest.raises(DataError, match="query_labels has 1 rows"):
        map_at_all(qc, dc, ql[:1], dl)
    with pytest.raises(DataError, match="db_labels has 4 rows"):
        map_at_all(qc, dc, ql, dl[:4])
    with pytest.raises(DataError, match="classes"):
        map_at_all(qc, dc, ql[:, :2], dl)
    bad = qc.copy()
    bad[0, 1] = np.nan
    with pytest.raises(DataError, match="query_codes: 1 rows hold NaN"):
        map_at_all(bad, dc, ql, dl)
    with pytest.raises(DataError, match="db_codes"):
        map_at_all(qc, torch.full((5, 4), float("nan")), ql, dl)
    with pytest.raises(DataError, match="2-d"):
        map_at_all(qc[0], dc, ql, dl)
    with pytest.raises(DataError, match="no query has a relevant"):
        map_at_all(qc[1:], dc, ql[1:], dl)
    assert map_at_all(qc[1:], dc, ql[1:], dl, denominator="zero") == 0.0
    with pytest.raises(ConfigError, match="ties"):
        map_at_all(qc, dc, ql, dl, ties="random")
    with pytest.raises(ConfigError, match="denominator"):
        map_at_all(qc, dc, ql, dl, denominator="all")
    with pytest.raises(ConfigError, match="chunk"):
        map_at_all(qc, dc, ql, dl, chunk=0)
    with pytest.raises(ConfigError, match="backend"):
        map_at_all(qc, dc, ql, dl, backend="jax")
    with pytest.raises(ConfigError, match="k"):
        map_at_k(qc, dc, ql, dl, 6)
    with pytest.raises(ConfigError, match="ns"):
        precision_at_n(qc, dc, ql, dl, [0])
