"""Hamming-ranking retrieval metrics: mAP@all, mAP@k, P@N and precision-recall curves.

Conventions (METHODS.md "mAP@all"; the official ``calc_map_k`` of LonganWANG-cs/NRCH @ b190e97,
utils/tools.py:465-506, and of Plke/SCBCH @ cfcc18c, utils/tools.py:524-572; ``calculate_map``
of LiuJinyu1229/DCGMH @ f208cdb, utils.py:59-112):

* Codes are ±1 (or real-valued, binarised by sign with ``x >= 0 -> +1``; bool or unsigned
  {0, 1} arrays are read as bits, 0 -> -1). Hamming distance d = (bits - q.x) / 2. Reading,
  checking and packing codes, popcount and :func:`hamming_distances` live in
  :mod:`cmhash.hamming` (shared with :mod:`cmhash.search`); this module holds the metrics.
* An item is relevant to a query when they share at least one label.
* Items are ranked by Hamming distance. ``ties="stable"``: equal distances are ordered by
  database index, ascending (deterministic; the published code uses an unstable sort: NRCH
  utils/tools.py:497, SCBCH utils/tools.py:563 ``torch.sort``, DCGMH utils.py:93 ``torch.argsort``).
  ``ties="expected"``: the tie-independent value, the expectation of the metric over a
  uniformly random order within each distance (closed form, McSherry & Najork, ECIR 2008).
* AP of a query = mean over its relevant items of (relevant items up to its rank) / rank.
  ``denominator="skip"`` averages over the queries with >= 1 relevant item (NRCH
  utils/tools.py:493-495, 505; SCBCH utils/tools.py:559-561, 571); ``denominator="zero"``
  counts the others as AP 0 and divides by all queries (DCGMH utils.py:110).

How it is fast: every metric is read from, per query, (a) the histogram of the Hamming
distances of relevant and of irrelevant items (bits+1 buckets) and, for stable ties, (b) the
sum of hits/rank over relevant items in stable order and the relevance of the first ranks.
Expected-tie AP, P@N and PR curves need only (a), so no ranking is ever materialised for them.
Three interchangeable backends compute (a) and (b) with bounded memory
(``backend="auto"``: torch for inputs on a GPU, else numba when installed, else numpy):

* ``numba`` (CPU; optional dependency): codes and labels packed into uint64 words, popcount
  distances and a two-pass counting rank per query (no sort), parallel over queries; memory
  O(Q x bits) plus one int32 per database item per thread (``chunk`` is not needed, ignored).
* ``numpy`` (CPU): the same packed words, ``chunk`` queries at a time: popcount distances, a
  per-row bincount, and for stable ties a stable (radix) argsort of the distances.
* ``torch`` (any device, for codes already on a GPU), ``chunk`` queries at a time: float32
  matmul of ±1 codes and 0/1 labels (exact for bits and classes <= 2**24, TF32/bf16 included:
  the inputs are exact there and the accumulation is float32), a stable sort of the
  small-integer distances, a cumulative sum of the sorted relevance.

mAP@k and stable-tie P@N need only the first ranks: on CPU they read them from the exact
top-k Hamming search of :mod:`cmhash.search` (same stable order; backends 'numba', 'numpy' or
'faiss' -- faiss's IndexBinaryFlat, optional), then the relevance of those k items only. At
NUS-WIDE scale (2,100 x 193,734, 64 bits, 2 shared cores, 2026-11-25) this took mAP@100 from
0.48 s (the statistics pass) to 0.06 s and mAP@1000 from 0.48 s to 0.15 s, against 16 s for the
per-query argsort; through faiss it took 0.23 s / 0.53 s (benchmarks/bench_search.py).

Default chunks hold about 1M (query, item) pairs on CPU (8M on CUDA); peak memory is roughly
40 (numpy) / 140 (torch) bytes per pair. Measured on 2 CPU cores, 2,100 x 20,000, 64 bits
(benchmarks/bench_evaluate.py): against the published per-query argsort (NRCH
utils/tools.py:489-504), numba is ~60-85x (stable) / ~140-210x (expected) faster, numpy
~28x / ~90x.

All are deterministic (per-query sums in a fixed order, whatever the chunk or thread count)
and agree with each other to float64 rounding (~1e-15), not bit for bit.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.special import digamma

from cmhash.errors import ConfigError, DataError

# one reading of codes and one packed-word layout for metrics and ranking alike (re-exported:
# hamming_distances and numba_available are part of this module's API)
from cmhash.hamming import (
    check_2d,
    hamming_distances,
    is_tensor,
    numba,
    numba_available,
    pack_bits,
    packed_distances,
    popcount64,
    to_bits,
    to_pm1,
)
from cmhash.search import search_chunks

__all__ = [
    "PRCurve",
    "average_precision",
    "hamming_distances",
    "map_at_all",
    "map_at_k",
    "numba_available",
    "pr_curve",
    "precision_at_n",
    "retrieval_report",
]

Ties = Literal["stable", "expected"]
Denominator = Literal["skip", "zero"]
Backend = Literal["auto", "numba", "numpy", "torch"]
RankBackend = Literal["auto", "numba", "numpy", "torch", "faiss"]  # metrics read from a top-k ranking
ArrayLike = Any  # numpy array or torch tensor

_CHUNK_PAIRS = {"cpu": 1 << 20, "cuda": 1 << 23}  # default (query, item) pairs per chunk (~140 B each, torch)


# =========================================================================== input handling

@dataclass(frozen=True)
class _Inputs:
    """Validated inputs for one backend. torch: ±1 float32 codes and 0/1 float32 labels on
    ``device``; numba / numpy: codes and labels packed into uint64 words, query rows
    (Q x words) and word-major database columns (words x D)."""

    backend: str
    qc: Any
    dc: Any
    ql: Any
    dl: Any
    bits: int
    n_db: int
    device: torch.device | None
    ranker: str | None = None  # a cmhash.search backend: the top-k path (qc, dc: code arrays; ql, dl: packed rows)


def _to_labels(x: Any, name: str) -> Any:
    if bool((x < 0).any()):
        raise DataError(f"{name}: labels must be non-negative (0/1 per class)")
    if is_tensor(x):
        return (x > 0).to(torch.float32)
    return (x > 0).astype(np.float32)


def _prepare(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
             db_labels: ArrayLike, backend: str, ranking: bool = False) -> _Inputs:
    """Validated inputs. ``ranking``: the caller needs only the top ranks (mAP@k, stable P@N),
    so CPU backends go through cmhash.search's top-k search ('faiss' allowed)."""
    names = ("query_codes", "db_codes", "query_labels", "db_labels")
    arrays = [check_2d(a, n) for a, n in zip((query_codes, db_codes, query_labels, db_labels), names)]
    qc, dc, ql, dl = arrays
    if qc.shape[1] != dc.shape[1]:
        raise DataError(f"query_codes has {qc.shape[1]} bits but db_codes has {dc.shape[1]}")
    if ql.shape[0] != qc.shape[0]:
        raise DataError(f"query_labels has {ql.shape[0]} rows but query_codes has {qc.shape[0]}")
    if dl.shape[0] != dc.shape[0]:
        raise DataError(f"db_labels has {dl.shape[0]} rows but db_codes has {dc.shape[0]}")
    if ql.shape[1] != dl.shape[1]:
        raise DataError(f"query_labels has {ql.shape[1]} classes but db_labels has {dl.shape[1]}")
    bits = int(qc.shape[1])
    if bits > (1 << 24):
        raise DataError(f"query_codes: {bits} bits exceed 2**24, beyond exact float32 distances")
    device = next((a.device for a in arrays if is_tensor(a) and a.device.type != "cpu"), torch.device("cpu"))
    if backend == "auto":
        backend = "torch" if device.type != "cpu" else ("numba" if numba_available() else "numpy")
    if backend == "numba" and not numba_available():
        raise ConfigError("backend: 'numba' requested but numba is not installed; use 'auto', 'numpy' or 'torch'")
    if backend in ("numba", "numpy", "faiss"):
        qc, dc, ql, dl = (a.cpu().numpy() if is_tensor(a) else a for a in arrays)
        for lab, name in ((ql, names[2]), (dl, names[3])):
            if (lab < 0).any():
                raise DataError(f"{name}: labels must be non-negative (0/1 per class)")
        if ranking:
            return _Inputs("search", qc, dc, pack_bits(ql), pack_bits(dl), bits, int(dc.shape[0]), None, backend)
        return _Inputs(backend, pack_bits(to_bits(qc, names[0])), pack_bits(to_bits(dc, names[1])).T.copy(),
                       pack_bits(ql), pack_bits(dl).T.copy(), bits, int(dc.shape[0]), None)
    qc, dc, ql, dl = (a.to(device) if is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a)).to(device)
                      for a in arrays)
    return _Inputs(backend, to_pm1(qc, names[0]), to_pm1(dc, names[1]), _to_labels(ql, names[2]),
                   _to_labels(dl, names[3]), bits, int(dc.shape[0]), device)


def _check_choice(value: str, allowed: Sequence[str], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, allowed))}")


def _check_chunk(chunk: int | None, n_db: int, device: torch.device | None) -> int:
    if chunk is None:
        pairs = _CHUNK_PAIRS["cuda" if device is not None and device.type == "cuda" else "cpu"]
        return max(1, pairs // max(n_db, 1))
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ConfigError(f"chunk: expected a positive number of queries per chunk, got {chunk!r}")
    return int(chunk)


def _check_cutoffs(values: Iterable[int] | int, key: str, n_db: int) -> list[int]:
    vals = [values] if isinstance(values, (int, np.integer)) else list(values)
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= n_db:
            raise ConfigError(f"{key}: {v!r} must be an integer in [1, {n_db}] (the database size)")
    return [int(v) for v in vals]


# =========================================================================== per-query statistics

@dataclass(frozen=True)
class _Stats:
    """What every metric is read from, for all queries (numpy arrays).

    hist: (Q, bits+1, 2) int64 — items at each Hamming distance, [..., 0] irrelevant, [..., 1] relevant.
    ap_sum: (Q,) float64 — sum over relevant items of hits/rank in stable order (None if not asked).
    top_rel: (Q, top) bool — relevance of the items at stable ranks 1..top (None if top == 0).
    """

    hist: np.ndarray
    ap_sum: np.ndarray | None
    top_rel: np.ndarray | None


def _torch_chunk_stats(qc: torch.Tensor, dc: torch.Tensor, ql: torch.Tensor, dl: torch.Tensor,
                       bits: int, need_ap: bool, top: int) -> tuple[torch.Tensor, Any, Any]:
    n_q, n_db = qc.shape[0], dc.shape[0]
    dot = qc @ dc.T                                        # exact small integers in float32
    dist = dot.neg_().add_(bits).mul_(0.5).round_().to(torch.uint8 if bits <= 255 else torch.int32)
    del dot
    rel = (ql @ dl.T) > 0
    offsets = torch.arange(n_q, device=qc.device).unsqueeze(1) * (2 * (bits + 1))
    key = (dist.to(torch.int64) * 2 + rel) + offsets
    hist = torch.bincount(key.reshape(-1), minlength=n_q * 2 * (bits + 1)).reshape(n_q, bits + 1, 2)
    del key
    ap_sum = top_rel = None
    if need_ap or top:
        order = torch.sort(dist, dim=1, stable=True).indices  # ties by database index
        rel_sorted = rel.gather(1, order)
        del order
        if need_ap:
            hits = rel_sorted.cumsum(1, dtype=torch.int32)
            rank = torch.arange(1, n_db + 1, device=qc.device, dtype=torch.float64)
            ap_sum = torch.where(rel_sorted, hits.to(torch.float64) / rank, 0.0).sum(1)
        if top:
            top_rel = rel_sorted[:, :top].clone()
    return hist, ap_sum, top_rel


def _numpy_chunk_stats(qbits: np.ndarray, dbits_t: np.ndarray, qlab: np.ndarray, dlab_t: np.ndarray,
                       bits: int, need_ap: bool, top: int, inv_rank: np.ndarray) -> tuple[np.ndarray, Any, Any]:
    """The numba kernel's statistics with whole-array numpy operations on a query chunk:
    popcount distances, a per-row bincount of 2*distance+relevant, and for stable ties a stable
    (radix, for bits <= 255) argsort of the distances and a cumulative sum of the relevance."""
    n_q = qbits.shape[0]
    dist = packed_distances(qbits, dbits_t, bits)
    rel = (qlab[:, :1] & dlab_t[0][None, :]) != 0
    for w in range(1, qlab.shape[1]):
        rel |= (qlab[:, w:w + 1] & dlab_t[w][None, :]) != 0
    n_keys = 2 * (bits + 1)
    key = dist.astype(np.int64)
    key *= 2
    key += rel
    key += (np.arange(n_q, dtype=np.int64) * n_keys)[:, None]
    hist = np.bincount(key.ravel(), minlength=n_q * n_keys).reshape(n_q, bits + 1, 2)
    del key
    ap_sum = top_rel = None
    if need_ap or top:
        order = np.argsort(dist, axis=1, kind="stable")  # ties by database index
        rel_sorted = np.take_along_axis(rel, order, 1)
        del order
        if need_ap:
            hits = np.cumsum(rel_sorted, axis=1, dtype=np.int32)
            hits *= rel_sorted
            ap_sum = (hits * inv_rank[1:]).sum(1)
        if top:
            top_rel = rel_sorted[:, :top].copy()
    return hist, ap_sum, top_rel


def _collect(inp: _Inputs, chunk: int | None, need_ap: bool, top: int) -> _Stats:
    """Per-query statistics for all queries, computed ``chunk`` queries at a time."""
    step = _check_chunk(chunk, inp.n_db, inp.device)
    n_q = inp.qc.shape[0]
    if inp.backend == "numba":  # bounded memory without chunks (see _numba_collect)
        hist, ap_sum, top_rel = _numba_collect(inp.qc, inp.dc, inp.ql, inp.dl, inp.bits, need_ap, top)
        return _Stats(hist, ap_sum if need_ap else None, top_rel if top else None)
    if inp.backend == "numpy":
        inv_rank = _inverse_ranks(inp.n_db)
        parts = [_numpy_chunk_stats(inp.qc[s:s + step], inp.dc, inp.ql[s:s + step], inp.dl, inp.bits,
                                    need_ap, top, inv_rank) for s in range(0, n_q, step)]
        return _Stats(np.concatenate([p[0] for p in parts]),
                      np.concatenate([p[1] for p in parts]) if need_ap else None,
                      np.concatenate([p[2] for p in parts]) if top else None)
    parts = [_torch_chunk_stats(inp.qc[s:s + step], inp.dc, inp.ql[s:s + step], inp.dl, inp.bits, need_ap, top)
             for s in range(0, n_q, step)]
    return _Stats(torch.cat([p[0] for p in parts]).cpu().numpy(),
                  torch.cat([p[1] for p in parts]).cpu().numpy() if need_ap else None,
                  torch.cat([p[2] for p in parts]).cpu().numpy() if top else None)


def _collect_top(inp: _Inputs, chunk: int | None, top: int) -> tuple[_Stats, np.ndarray]:
    """Relevance of the first ``top`` stable ranks (a _Stats without histogram) from
    cmhash.search's exact top-k, ``chunk`` queries per search block, and per query whether the
    database holds any relevant item (a query label that some database item carries)."""
    n_q = inp.qc.shape[0]
    step = None if chunk is None else _check_chunk(chunk, inp.n_db, None)  # None: search's bounded blocks
    top_rel = np.empty((n_q, top), np.bool_)
    s = 0
    for part in search_chunks(inp.qc, inp.dc, top, backend=inp.ranker, chunk=step):
        e = s + part.indices.shape[0]
        top_rel[s:e] = ((inp.dl[part.indices] & inp.ql[s:e, None, :]) != 0).any(-1)
        s = e
    valid = ((inp.ql & np.bitwise_or.reduce(inp.dl, axis=0)) != 0).any(1)
    return _Stats(np.empty((n_q, 0, 2), np.int64), None, top_rel), valid


def _inverse_ranks(n_db: int) -> np.ndarray:
    """1/rank for rank 0..n_db (entry 0 unused): hits * (1/rank), a multiply, not a divide."""
    inv = np.zeros(n_db + 1)
    inv[1:] = 1.0 / np.arange(1, n_db + 1)
    return inv


# --------------------------------------------------------------------------- numba backend

if numba is not None:  # optional accelerator (cmhash.hamming); numpy and torch cover every case without it
    @numba.njit(parallel=True, cache=True)
    def _numba_kernel(qbits, dbits_t, qlab, dlab_t, bits, need_order, top, inv_rank, hist, ap_sum, top_rel):  # pragma: no cover
        """Per query (in parallel), over the database in index order:
        pass 1: key_j = 2 * distance + relevant, from the popcount of XORed packed code words
        and the AND of packed label words (word-major database layout: vectorisable loops),
        then the histogram of keys;
        pass 2 (stable ties): a running counter per distance bucket, started at the number of
        items (relevant items) in the closer buckets, IS the item's stable rank (hits): a
        counting rank, no sort. Branch-free: every item adds rel * hits * (1/rank)."""
        n_q = qbits.shape[0]
        n_words, n_db = dbits_t.shape
        n_lab = dlab_t.shape[0]
        n_keys = 2 * (bits + 1)
        for i in numba.prange(n_q):
            key = np.zeros(n_db, np.int32)
            for w in range(n_words):
                q = qbits[i, w]
                row = dbits_t[w]
                for j in range(n_db):
                    key[j] += popcount64(q ^ row[j])
            for j in range(n_db):
                key[j] *= 2
            for w in range(n_lab):
                lab = qlab[i, w]
                row = dlab_t[w]
                for j in range(n_db):
                    key[j] |= np.int32((lab & row[j]) != 0)
            local = np.zeros(n_keys, np.int64)
            for j in range(n_db):
                local[key[j]] += 1
            for k in range(n_keys):
                hist[i, k >> 1, k & 1] = local[k]
            if need_order:
                rank = np.empty(bits + 1, np.int64)
                hits = np.empty(bits + 1, np.int64)
                acc_n = 0
                acc_r = 0
                for h in range(bits + 1):
                    rank[h] = acc_n
                    hits[h] = acc_r
                    acc_n += local[2 * h] + local[2 * h + 1]
                    acc_r += local[2 * h + 1]
                total = 0.0
                for j in range(n_db):
                    h = key[j] >> 1
                    r = key[j] & 1
                    rk = rank[h] + 1
                    rank[h] = rk
                    ht = hits[h] + r
                    hits[h] = ht
                    total += (r * ht) * inv_rank[rk]
                    if rk <= top:
                        top_rel[i, rk - 1] = r == 1
                ap_sum[i] = total


def _numba_collect(qbits: np.ndarray, dbits_t: np.ndarray, qlab: np.ndarray, dlab_t: np.ndarray, bits: int,
                   need_ap: bool, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Statistics with the numba kernel, all queries in one parallel call: memory is
    O(Q x (bits + top)) plus a 4-byte key per database item per thread, so no chunking."""
    n_q = qbits.shape[0]
    hist = np.zeros((n_q, bits + 1, 2), np.int64)
    ap_sum = np.zeros(n_q, np.float64)
    top_rel = np.zeros((n_q, top), np.bool_)
    _numba_kernel(qbits, dbits_t, qlab, dlab_t, bits, bool(need_ap or top), top, _inverse_ranks(dbits_t.shape[1]),
                  hist, ap_sum, top_rel)
    return hist, ap_sum, top_rel


# =========================================================================== metrics from statistics
# (numpy, float64: the statistics are small -- Q x (bits+1) -- whatever the backend)

def _harmonic(n_max: int) -> np.ndarray:
    """H(m) = sum_{t<=m} 1/t for m = 0..n_max in float64, each entry to ~1 ulp (digamma)."""
    h = digamma(np.arange(1, n_max + 2, dtype=np.float64)) + np.euler_gamma
    h[0] = 0.0
    return h


def _expected_ap_sum(hist: np.ndarray) -> np.ndarray:
    """Expected sum over relevant items of hits/rank under uniformly random order within each
    distance (McSherry & Najork 2008). For a bucket of n items, r relevant, after N items of
    which R relevant, a relevant item at bucket position t has, in expectation,
    hits = R + 1 + (t-1)(r-1)/(n-1), so the bucket adds
        (r/n) * sum_{t=1..n} (R + 1 + (t-1) b) / (N + t),   b = (r-1)/(n-1)
      = (r/n) * [(R+1) dH + b (n - (N+1) dH)],              dH = H(N+n) - H(N).
    (n - (N+1) dH = sum (t-1)/(N+t) loses at most ~N * 1e-16 to cancellation: < 1e-10.)"""
    n = hist.sum(-1)
    r = hist[..., 1]
    n_prev = np.cumsum(n, 1) - n
    r_prev = (np.cumsum(r, 1) - r).astype(np.float64)
    h_tab = _harmonic(int(n.sum(1).max()))
    d_h = h_tab[n_prev + n] - h_tab[n_prev]
    nf, rf = n.astype(np.float64), r.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(n > 1, (rf - 1) / (nf - 1), 0.0)
        contrib = (rf / nf) * ((r_prev + 1) * d_h + b * (nf - (n_prev + 1) * d_h))
    return np.where(r > 0, contrib, 0.0).sum(1)


def _mean(values: np.ndarray, valid: np.ndarray, denominator: str, what: str,
          where: str = "in the database") -> float:
    """Mean of ``values`` over valid queries ('skip') or over all with invalid = 0 ('zero')."""
    total = float(np.where(valid, values, 0.0).sum())
    if denominator == "zero":
        return total / values.shape[0]
    count = int(valid.sum())
    if count == 0:
        raise DataError(f"{what}: no query has a relevant item {where}, so the mean over such queries "
                        "is undefined; check the labels or use denominator='zero'")
    return total / count


def _ap_from_stats(stats: _Stats, ties: str) -> tuple[np.ndarray, np.ndarray]:
    n_rel = stats.hist[..., 1].sum(1)
    total = stats.ap_sum if ties == "stable" else _expected_ap_sum(stats.hist)
    valid = n_rel > 0
    return np.where(valid, total / np.maximum(n_rel, 1), 0.0), valid


def _map_at_k_from_stats(stats: _Stats, k: int) -> tuple[np.ndarray, np.ndarray]:
    """AP@k = sum_{t<=k} rel_t hits_t / t divided by the relevant items in the top k
    (UCCH's ``fx_calc_map_multilabel_k``, penghu-cs/UCCH @ 0c20e62 UCCH.py:244-260; not NRCH's
    ``calc_map_k(k=...)``, whose AP runs over the first min(k, R) relevant items of the whole
    ranking, utils/tools.py:500-504), stable ties; valid = >= 1 relevant in top k."""
    rel = stats.top_rel[:, :k]
    hits = np.cumsum(rel, 1, dtype=np.int64)
    s = np.where(rel, hits / np.arange(1, k + 1, dtype=np.float64), 0.0).sum(1)
    n_top = hits[:, -1]
    valid = n_top > 0
    return np.where(valid, s / np.maximum(n_top, 1), 0.0), valid


def _hits_at_n(stats: _Stats, n_top: int, ties: str) -> np.ndarray:
    """Relevant items among the first ``n_top`` ranks (expected value for 'expected' ties)."""
    if ties == "stable":
        return stats.top_rel[:, :n_top].sum(1).astype(np.float64)
    n = stats.hist.sum(-1)
    r = stats.hist[..., 1]
    cum_n, cum_r = np.cumsum(n, 1), np.cumsum(r, 1)
    h = np.minimum((cum_n < n_top).sum(1), n.shape[1] - 1)[:, None]  # bucket holding rank n_top
    n_h, r_h = np.take_along_axis(n, h, 1), np.take_along_axis(r, h, 1)
    before_n = np.take_along_axis(cum_n, h, 1) - n_h
    before_r = np.take_along_axis(cum_r, h, 1) - r_h
    return (before_r + (n_top - before_n) * r_h / np.maximum(n_h, 1)).ravel().astype(np.float64)


# =========================================================================== public metrics

def average_precision(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
                      db_labels: ArrayLike, *, ties: Ties = "stable", chunk: int | None = None,
                      backend: Backend = "auto") -> np.ndarray:
    """AP of every query over the whole database (float64, length Q); NaN for a query with no
    relevant item. See the module docstring for ``ties``, ``chunk`` and ``backend``."""
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(backend, ("auto", "numba", "numpy", "torch"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    ap, valid = _ap_from_stats(_collect(inp, chunk, ties == "stable", 0), ties)
    return np.where(valid, ap, np.nan)


def map_at_all(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
               db_labels: ArrayLike, *, ties: Ties = "stable", denominator: Denominator = "skip",
               chunk: int | None = None, backend: Backend = "auto") -> float:
    """mAP over the whole database ranked by Hamming distance (METHODS.md "mAP@all").

    ``ties``: 'stable' (by database index) or 'expected' (tie-independent expectation).
    ``denominator``: 'skip' queries with no relevant item (NRCH/SCBCH, utils/tools.py:493-495) or
    count them as 0 ('zero', DCGMH utils.py:110); with 'skip' and no such query at all,
    DataError. ``chunk``: queries per chunk on the torch backend (peak memory ~140 bytes x chunk
    x database size); results do not depend on it. ``backend``: 'auto' (numba for numpy inputs when installed, else
    torch on the inputs' device), 'torch' or 'numba'.
    """
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(backend, ("auto", "numba", "numpy", "torch"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    ap, valid = _ap_from_stats(_collect(inp, chunk, ties == "stable", 0), ties)
    return _mean(ap, valid, denominator, "map_at_all")


def map_at_k(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
             db_labels: ArrayLike, k: int, *, denominator: Denominator = "skip",
             chunk: int | None = None, backend: RankBackend = "auto") -> float:
    """mAP over the top ``k`` items, stable ties. AP@k divides by the number of relevant items
    within the top k; 'skip' drops queries with none there (UCCH ``fx_calc_map_multilabel_k``,
    UCCH.py:244-260; NRCH's ``CalcTopMap``, utils/tools.py:552-571, divides by all queries, i.e.
    'zero'; NRCH's ``calc_map_k(k=...)`` is a different quantity, see ``_map_at_k_from_stats``).

    CPU backends ('numba', 'numpy', 'faiss') read the top k from cmhash.search's exact
    top-k search (``chunk``: queries per search block, default: search_chunks's bounded blocks),
    relevance only for those k items; 'torch' (and 'auto' on GPU inputs) uses the statistics
    pass. 'auto' on CPU: numba, else numpy (faster than faiss in benchmarks/bench_search.py)."""
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(backend, ("auto", "numba", "numpy", "torch", "faiss"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend, ranking=True)
    (k,) = _check_cutoffs(k, "k", inp.n_db)
    stats = _collect_top(inp, chunk, k)[0] if inp.ranker else _collect(inp, chunk, False, k)
    ap, valid = _map_at_k_from_stats(stats, k)
    return _mean(ap, valid, denominator, "map_at_k", f"within its top {k}")


def precision_at_n(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
                   db_labels: ArrayLike, ns: Iterable[int] | int, *, ties: Ties = "stable",
                   denominator: Denominator = "skip", chunk: int | None = None,
                   backend: RankBackend = "auto") -> np.ndarray:
    """Mean precision of the top N items, for each N in ``ns`` (float64 array, same order).
    'skip' averages over queries with >= 1 relevant item in the database, 'zero' over all.
    Stable ties on CPU read the top max(N) from cmhash.search, as :func:`map_at_k` does;
    expected ties need the distance histogram, so not 'faiss'."""
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(backend, ("auto", "numba", "numpy", "torch", "faiss"), "backend")
    if backend == "faiss" and ties == "expected":
        raise ConfigError("backend: 'faiss' gives a top-k ranking only; ties='expected' needs the distance "
                          "histogram: use 'auto', 'numba', 'numpy' or 'torch'")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend, ranking=ties == "stable")
    ns = _check_cutoffs(ns, "ns", inp.n_db)
    if inp.ranker:
        stats, valid = _collect_top(inp, chunk, max(ns))
    else:
        stats = _collect(inp, chunk, False, max(ns) if ties == "stable" else 0)
        valid = stats.hist[..., 1].sum(1) > 0
    return np.array([_mean(_hits_at_n(stats, n, ties) / n, valid, denominator, "precision_at_n") for n in ns])


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall at Hamming radius 0..bits (items with distance <= radius retrieved).

    ``n_queries[i]``: how many queries the values at radius i average over.
    """

    radius: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_queries: np.ndarray

    def as_dict(self) -> dict[str, list]:
        return {k: getattr(self, k).tolist() for k in ("radius", "precision", "recall", "n_queries")}


def _pr_from_stats(stats: _Stats, average: str) -> PRCurve:
    retrieved = np.cumsum(stats.hist.sum(-1), 1)      # (Q, bits+1): items within each radius
    hits = np.cumsum(stats.hist[..., 1], 1)
    n_rel = hits[:, -1:]
    has_rel = n_rel > 0
    precision = hits / np.maximum(retrieved, 1)
    recall = hits / np.maximum(n_rel, 1)
    if average == "published":   # DCMH-PyTorch-lineage pr_curve: average over queries with precision > 0
        mask_p = mask_r = has_rel & (hits > 0)
    else:                        # precision over queries retrieving >= 1 item, recall over all
        mask_p = has_rel & (retrieved > 0)
        mask_r = np.broadcast_to(has_rel, hits.shape)
    cnt_p = mask_p.sum(0)
    p = np.where(mask_p, precision, 0.0).sum(0) / np.maximum(cnt_p, 1)
    r = np.where(mask_r, recall, 0.0).sum(0) / np.maximum(mask_r.sum(0), 1)
    return PRCurve(np.arange(hits.shape[1]), p, r, cnt_p)


def pr_curve(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
             db_labels: ArrayLike, *, average: Literal["published", "retrieved"] = "published",
             chunk: int | None = None, backend: Backend = "auto") -> PRCurve:
    """Precision-recall by Hamming radius 0..bits, averaged over queries (macro), queries
    with no relevant item excluded. Per query at radius rho: precision = relevant retrieved /
    retrieved, recall = relevant retrieved / all relevant.

    ``average='published'`` (the widely copied DCMH-PyTorch-lineage ``pr_curve``, ``mask = (P > 0)``;
    not used by NRCH, SCBCH or DCGMH: NRCH utils/tools.py:509-550 and SCBCH utils/tools.py:575-620
    cut the ranking at 15 top-K depths and average over all queries, DCGMH utils.py:129-178 divides
    by all queries; UCCH has no PR curve): both are averaged over the queries whose precision is
    > 0 at that radius (0 where none). ``'retrieved'``: precision over the
    queries that retrieve >= 1 item, recall over all queries (recall 0 counts). No tie issue:
    a radius takes whole distance buckets.
    """
    _check_choice(average, ("published", "retrieved"), "average")
    _check_choice(backend, ("auto", "numba", "numpy", "torch"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    return _pr_from_stats(_collect(inp, chunk, False, 0), average)


def retrieval_report(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
                     db_labels: ArrayLike, *, ties: Ties = "stable", denominator: Denominator = "skip",
                     ks: Iterable[int] = (), ns: Iterable[int] = (),
                     pr_average: Literal["published", "retrieved"] = "published",
                     chunk: int | None = None, backend: Backend = "auto") -> dict[str, Any]:
    """All metrics of one retrieval direction from a single pass (JSON-serialisable dict):
    ``map_all`` (under ``ties``/``denominator``), ``map_all_stable``, ``map_all_expected``,
    ``map_at_k`` {k: value}, ``precision_at_n`` {N: value} (under ``ties``), ``pr_curve``,
    query counts and the settings used."""
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(pr_average, ("published", "retrieved"), "pr_average")
    _check_choice(backend, ("auto", "numba", "numpy", "torch"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    ks = _check_cutoffs(ks, "ks", inp.n_db)
    ns = _check_cutoffs(ns, "ns", inp.n_db)
    top = max([*ks, *(ns if ties == "stable" else [])], default=0)
    stats = _collect(inp, chunk, True, top)
    ap_s, valid = _ap_from_stats(stats, "stable")
    ap_e, _ = _ap_from_stats(stats, "expected")
    maps = {"stable": _mean(ap_s, valid, denominator, "map_all"),
            "expected": _mean(ap_e, valid, denominator, "map_all")}
    out: dict[str, Any] = {
        "map_all": maps[ties], "map_all_stable": maps["stable"], "map_all_expected": maps["expected"],
        "map_at_k": {}, "precision_at_n": {},
        "pr_curve": _pr_from_stats(stats, pr_average).as_dict(),
        "n_queries": int(valid.shape[0]), "n_queries_with_relevant": int(valid.sum()),
        "n_database": inp.n_db, "bits": inp.bits, "ties": ties, "denominator": denominator,
    }
    for k in ks:
        apk, vk = _map_at_k_from_stats(stats, k)
        out["map_at_k"][str(k)] = _mean(apk, vk, denominator, f"map_at_k[{k}]", f"within its top {k}")
    for n in ns:
        out["precision_at_n"][str(n)] = _mean(_hits_at_n(stats, n, ties) / n, valid, denominator,
                                              f"precision_at_n[{n}]")
    return out

