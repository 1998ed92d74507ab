"""Hamming-ranking retrieval metrics: mAP@all, mAP@k, P@N and precision-recall curves.

Conventions (METHODS.md "mAP@all", the DCMH/UCCH evaluation code):

* Codes are ±1 (or real-valued, binarised by sign with ``x >= 0 -> +1``; bool or unsigned
  {0, 1} arrays are read as bits, 0 -> -1). Hamming distance d = (bits - q.x) / 2.
* An item is relevant to a query when they share at least one label.
* Items are ranked by Hamming distance. ``ties="stable"``: equal distances are ordered by
  database index, ascending (deterministic; the published code uses an unstable sort).
  ``ties="expected"``: the tie-independent value, the expectation of the metric over a
  uniformly random order within each distance (closed form, McSherry & Najork, ECIR 2008).
* AP of a query = mean over its relevant items of (relevant items up to its rank) / rank.
  ``denominator="skip"`` averages over the queries with >= 1 relevant item (NRCH, SCBCH);
  ``denominator="zero"`` counts the others as AP 0 and divides by all queries (DCGMH).

How it is fast: every metric is read from, per query, (a) the histogram of the Hamming
distances of relevant and of irrelevant items (bits+1 buckets) and, for stable ties, (b) the
sum of hits/rank over relevant items in stable order and the relevance of the first ranks.
Expected-tie AP, P@N and PR curves need only (a), so no ranking is ever materialised for them.
Two interchangeable backends compute (a) and (b), chunked over queries so memory stays bounded:

* ``torch`` (numpy or torch inputs, CPU or CUDA): float32 matmul of ±1 codes for the
  distances (exact for bits <= 2**24), a stable sort of the small-integer distances;
* ``numba`` (numpy inputs, CPU, when numba is installed): packed-bit popcount and a
  two-pass counting rank per query (no sort), parallel over queries.

Both are deterministic; they agree to float64 rounding (~1e-15), not bit for bit.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from cmhash.errors import ConfigError, DataError

__all__ = [
    "hamming_distances", "average_precision", "map_at_all", "map_at_k", "precision_at_n",
    "pr_curve", "PRCurve", "retrieval_report", "numba_available",
]

Ties = Literal["stable", "expected"]
Denominator = Literal["skip", "zero"]
Backend = Literal["auto", "torch", "numba"]
ArrayLike = Any  # numpy array or torch tensor

_CHUNK_ELEMENTS = 1 << 22  # default query chunk: about 4M (query, item) pairs at a time


# =========================================================================== input handling

@dataclass(frozen=True)
class _Inputs:
    """Validated inputs: ±1 float32 codes and 0/1 float32 labels, as torch tensors on one
    device (torch backend) or numpy arrays (numba backend packs them itself)."""

    qc: Any
    dc: Any
    ql: Any
    dl: Any
    bits: int
    n_db: int
    device: torch.device | None


def _is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def _check_2d(x: Any, name: str) -> Any:
    if not _is_tensor(x):
        x = np.asarray(x)
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise DataError(f"{name}: expected a numeric array, found dtype {x.dtype}")
    else:
        x = x.detach()
    if x.ndim != 2:
        raise DataError(f"{name}: expected a 2-d rows x columns array, found shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{name}: empty array of shape {tuple(x.shape)}")
    floating = x.is_floating_point() if _is_tensor(x) else np.issubdtype(x.dtype, np.floating)
    if floating:
        finite = bool(torch.isfinite(x).all()) if _is_tensor(x) else bool(np.isfinite(x).all())
        if not finite:
            bad = (~torch.isfinite(x)).any(1).sum().item() if _is_tensor(x) else int((~np.isfinite(x)).any(1).sum())
            raise DataError(f"{name}: {bad} rows hold NaN or infinite values; check the model outputs / labels")
    return x


def _to_pm1(x: Any, name: str) -> Any:
    """±1 float32 codes: bool / unsigned {0,1} read as bits; signed or float binarised by sign."""
    if _is_tensor(x):
        if x.dtype == torch.bool or x.dtype == torch.uint8:
            if x.dtype == torch.uint8 and bool((x > 1).any()):
                raise DataError(f"{name}: unsigned codes must be bits 0/1")
            return x.to(torch.float32) * 2 - 1
        return torch.where(x >= 0, 1.0, -1.0).to(torch.float32)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.unsignedinteger):
        if (x > 1).any():
            raise DataError(f"{name}: unsigned codes must be bits 0/1")
        return x.astype(np.float32) * 2 - 1
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def _to_labels(x: Any, name: str) -> Any:
    if bool((x < 0).any()):
        raise DataError(f"{name}: labels must be non-negative (0/1 per class)")
    if _is_tensor(x):
        return (x > 0).to(torch.float32)
    return (x > 0).astype(np.float32)


def _prepare(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
             db_labels: ArrayLike, backend: str) -> _Inputs:
    names = ("query_codes", "db_codes", "query_labels", "db_labels")
    arrays = [_check_2d(a, n) for a, n in zip((query_codes, db_codes, query_labels, db_labels), names)]
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
    any_tensor = any(_is_tensor(a) for a in arrays)
    use_numba = backend == "numba" or (backend == "auto" and not any_tensor and numba_available())
    if backend == "numba" and not numba_available():
        raise ConfigError("backend: 'numba' requested but numba is not installed; use 'torch' or 'auto'")
    if use_numba:
        arrays = [a.cpu().numpy() if _is_tensor(a) else a for a in arrays]
        qc, dc, ql, dl = arrays
        return _Inputs(_to_pm1(qc, names[0]), _to_pm1(dc, names[1]), _to_labels(ql, names[2]),
                       _to_labels(dl, names[3]), bits, int(dc.shape[0]), None)
    device = next((a.device for a in arrays if _is_tensor(a)), torch.device("cpu"))
    qc, dc, ql, dl = (a.to(device) if _is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a)).to(device)
                      for a in arrays)
    return _Inputs(_to_pm1(qc, names[0]), _to_pm1(dc, names[1]), _to_labels(ql, names[2]),
                   _to_labels(dl, names[3]), bits, int(dc.shape[0]), device)


def _check_choice(value: str, allowed: Sequence[str], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, allowed))}")


def _check_chunk(chunk: int | None, n_db: int) -> int:
    if chunk is None:
        return max(1, _CHUNK_ELEMENTS // max(n_db, 1))
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ConfigError(f"chunk: expected a positive number of queries per chunk, got {chunk!r}")
    return int(chunk)


def _check_cutoffs(values: Iterable[int] | int, key: str, n_db: int) -> list[int]:
    vals = [values] if isinstance(values, (int, np.integer)) else list(values)
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= n_db:
            raise ConfigError(f"{key}: {v!r} must be an integer in [1, {n_db}] (the database size)")
    return [int(v) for v in vals]


def numba_available() -> bool:
    """True when the optional numba backend can be used (numba importable)."""
    return _numba is not None


# =========================================================================== per-query statistics

@dataclass(frozen=True)
class _Stats:
    """What every metric is read from, for all queries (torch tensors, CPU or the inputs' device).

    hist: (Q, bits+1, 2) int64 — items at each Hamming distance, [..., 0] irrelevant, [..., 1] relevant.
    ap_sum: (Q,) float64 — sum over relevant items of hits/rank in stable order (None if not asked).
    top_rel: (Q, top) bool — relevance of the items at stable ranks 1..top (None if top == 0).
    """

    hist: torch.Tensor
    ap_sum: torch.Tensor | None
    top_rel: torch.Tensor | None


def hamming_distances(query_codes: ArrayLike, db_codes: ArrayLike) -> ArrayLike:
    """Integer Hamming distances (Q x D, int64) between two code sets; a numpy array for numpy
    inputs, a tensor on the inputs' device otherwise."""
    qc = _to_pm1(_check_2d(query_codes, "query_codes"), "query_codes")
    dc = _to_pm1(_check_2d(db_codes, "db_codes"), "db_codes")
    if qc.shape[1] != dc.shape[1]:
        raise DataError(f"query_codes has {qc.shape[1]} bits but db_codes has {dc.shape[1]}")
    if _is_tensor(qc) or _is_tensor(dc):
        dev = qc.device if _is_tensor(qc) else dc.device
        qt = qc.to(dev) if _is_tensor(qc) else torch.from_numpy(qc).to(dev)
        dt = dc.to(dev) if _is_tensor(dc) else torch.from_numpy(dc).to(dev)
        return ((qc.shape[1] - qt @ dt.T) * 0.5).round().to(torch.int64)
    return np.rint((qc.shape[1] - qc @ dc.T) * 0.5).astype(np.int64)


def _torch_chunk_stats(qc: torch.Tensor, dc: torch.Tensor, ql: torch.Tensor, dl: torch.Tensor,
                       bits: int, need_ap: bool, top: int) -> _Stats:
    n_q, n_db = qc.shape[0], dc.shape[0]
    dist = ((bits - qc @ dc.T) * 0.5).round_()            # exact small integers in float32
    dist = dist.to(torch.uint8 if bits <= 255 else torch.int32)
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
    return _Stats(hist, ap_sum, top_rel)


def _collect(inp: _Inputs, chunk: int | None, need_ap: bool, top: int) -> _Stats:
    """Per-query statistics for all queries, computed ``chunk`` queries at a time."""
    step = _check_chunk(chunk, inp.n_db)
    n_q = inp.qc.shape[0]
    if inp.device is None:
        hist, ap_sum, top_rel = _numba_collect(inp.qc, inp.dc, inp.ql, inp.dl, need_ap, top, step)
        return _Stats(torch.from_numpy(hist), torch.from_numpy(ap_sum) if need_ap else None,
                      torch.from_numpy(top_rel) if top else None)
    parts = [_torch_chunk_stats(inp.qc[s:s + step], inp.dc, inp.ql[s:s + step], inp.dl, inp.bits, need_ap, top)
             for s in range(0, n_q, step)]
    return _Stats(torch.cat([p.hist for p in parts]),
                  torch.cat([p.ap_sum for p in parts]) if need_ap else None,
                  torch.cat([p.top_rel for p in parts]) if top else None)


# --------------------------------------------------------------------------- numba backend

try:  # optional accelerator; the torch backend covers every case without it
    import numba as _numba
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None

if _numba is not None:
    _M1, _M2, _M4, _H01 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333),
                           np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101))
    _S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)

    @_numba.njit(inline="always", cache=True)
    def _popcount64(x):  # pragma: no cover - compiled
        x = x - ((x >> _S1) & _M1)
        x = (x & _M2) + ((x >> _S2) & _M2)
        x = (x + (x >> _S4)) & _M4
        return (x * _H01) >> _S56

    @_numba.njit(parallel=True, cache=True)
    def _numba_kernel(qbits, dbits, qlab, dlab, bits, need_order, top, inv_rank, hist, ap_sum, top_rel):  # pragma: no cover
        """Per query, two passes over the database in index order. Pass 1: each item's
        distance (popcount of XORed packed codes) and relevance (AND of packed labels), and
        the histogram. Pass 2 (stable ties): a running counter per distance bucket, started
        at the number of items (relevant items) in the closer buckets, IS the item's stable
        rank (hits): a counting rank, no sort. Branch-free: every item adds rel*hits/rank."""
        n_q, n_db = qbits.shape[0], dbits.shape[0]
        n_words, n_lab = qbits.shape[1], qlab.shape[1]
        n_keys = 2 * (bits + 1)
        for i in _numba.prange(n_q):
            local = np.zeros(n_keys, np.int64)
            key = np.empty(n_db, np.int32)  # 2 * distance + relevant
            for j in range(n_db):
                d = 0
                for w in range(n_words):
                    d += _popcount64(qbits[i, w] ^ dbits[j, w])
                r = 0
                for w in range(n_lab):
                    if qlab[i, w] & dlab[j, w]:
                        r = 1
                k = 2 * d + r
                key[j] = k
                local[k] += 1
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


def _pack_bits(x: np.ndarray) -> np.ndarray:
    """Rows of 0/1 (any value > 0 is 1) packed little-endian into uint64 words."""
    n_words = -(-x.shape[1] // 64)
    padded = np.zeros((x.shape[0], n_words * 64), np.uint8)
    padded[:, :x.shape[1]] = x > 0
    return np.ascontiguousarray(np.packbits(padded, axis=1, bitorder="little")).view("<u8")


def _numba_collect(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, need_ap: bool,
                   top: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Statistics with the numba kernel. Memory is O(Q x bits + Q x top) plus one distance
    buffer per thread, so ``step`` only sets how many queries go to the kernel per call."""
    bits = qc.shape[1]
    qbits, dbits = _pack_bits(qc), _pack_bits(dc)
    qlab, dlab = _pack_bits(ql), _pack_bits(dl)
    n_q = qc.shape[0]
    hist = np.zeros((n_q, bits + 1, 2), np.int64)
    ap_sum = np.zeros(n_q, np.float64)
    top_rel = np.zeros((n_q, top), np.bool_)
    need_order = bool(need_ap or top)
    inv_rank = np.zeros(dc.shape[0] + 1)
    inv_rank[1:] = 1.0 / np.arange(1, dc.shape[0] + 1)  # hits * (1/rank): a multiply, not a divide
    for s in range(0, n_q, step):
        e = min(s + step, n_q)
        _numba_kernel(qbits[s:e], dbits, qlab[s:e], dlab, bits, need_order, top, inv_rank,
                      hist[s:e], ap_sum[s:e], top_rel[s:e])
    return hist, ap_sum, top_rel


# =========================================================================== metrics from statistics

def _harmonic(n_max: int, device: torch.device) -> torch.Tensor:
    """H(m) = sum_{t<=m} 1/t for m = 0..n_max in float64, each entry to ~1 ulp (digamma)."""
    from scipy.special import digamma

    h = digamma(np.arange(1, n_max + 2, dtype=np.float64)) + np.euler_gamma
    h[0] = 0.0
    return torch.from_numpy(h).to(device)


def _expected_ap_sum(hist: torch.Tensor) -> torch.Tensor:
    """Expected sum over relevant items of hits/rank under uniformly random order within each
    distance (McSherry & Najork 2008). For a bucket of n items, r relevant, after N items of
    which R relevant, a relevant item at bucket position t has, in expectation,
    hits = R + 1 + (t-1)(r-1)/(n-1), so the bucket adds
        (r/n) * sum_{t=1..n} (R + 1 + (t-1) b) / (N + t),   b = (r-1)/(n-1)
      = (r/n) * [(R+1) dH + b (n - (N+1) dH)],              dH = H(N+n) - H(N)."""
    hist = hist.to(torch.float64)
    n = hist.sum(-1)
    r = hist[..., 1]
    n_prev = torch.cumsum(n, 1) - n
    r_prev = torch.cumsum(r, 1) - r
    h_tab = _harmonic(int(n.sum(1).max().item()), hist.device)
    d_h = h_tab[(n_prev + n).long()] - h_tab[n_prev.long()]
    b = torch.where(n > 1, (r - 1) / (n - 1).clamp_min(1), 0.0)
    contrib = (r / n.clamp_min(1)) * ((r_prev + 1) * d_h + b * (n - (n_prev + 1) * d_h))
    return torch.where(r > 0, contrib, 0.0).sum(1)


def _mean(values: torch.Tensor, valid: torch.Tensor, denominator: str, what: str) -> float:
    """Mean of ``values`` over valid queries ('skip') or over all with invalid = 0 ('zero')."""
    if denominator == "zero":
        return float(torch.where(valid, values, 0.0).sum().item() / values.shape[0])
    count = int(valid.sum().item())
    if count == 0:
        raise DataError(f"{what}: no query has a relevant database item, so the mean over such queries "
                        "is undefined; check the labels or use denominator='zero'")
    return float(torch.where(valid, values, 0.0).sum().item() / count)


def _ap_from_stats(stats: _Stats, ties: str) -> tuple[torch.Tensor, torch.Tensor]:
    n_rel = stats.hist[..., 1].sum(1).to(torch.float64)
    total = stats.ap_sum if ties == "stable" else _expected_ap_sum(stats.hist)
    valid = n_rel > 0
    return torch.where(valid, total / n_rel.clamp_min(1), 0.0), valid


def _map_at_k_from_stats(stats: _Stats, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """AP@k = sum_{t<=k} rel_t hits_t / t divided by the relevant items in the top k
    (the DCMH/UCCH ``calc_map_k`` convention), stable ties; valid = >= 1 relevant in top k."""
    rel = stats.top_rel[:, :k]
    hits = rel.cumsum(1, dtype=torch.int64).to(torch.float64)
    rank = torch.arange(1, k + 1, device=rel.device, dtype=torch.float64)
    s = torch.where(rel, hits / rank, 0.0).sum(1)
    n_top = hits[:, -1]
    valid = n_top > 0
    return torch.where(valid, s / n_top.clamp_min(1), 0.0), valid


def _hits_at_n(stats: _Stats, n_top: int, ties: str) -> torch.Tensor:
    """Relevant items among the first ``n_top`` ranks (expected value for 'expected' ties)."""
    if ties == "stable":
        return stats.top_rel[:, :n_top].sum(1).to(torch.float64)
    hist = stats.hist.to(torch.float64)
    n = hist.sum(-1)
    r = hist[..., 1]
    cum_n = torch.cumsum(n, 1)
    cum_r = torch.cumsum(r, 1)
    target = torch.full((n.shape[0], 1), float(n_top), dtype=torch.float64, device=n.device)
    h = torch.searchsorted(cum_n.contiguous(), target).clamp_max(n.shape[1] - 1)  # bucket holding rank n_top
    n_h, r_h = n.gather(1, h), r.gather(1, h)
    before_n, before_r = cum_n.gather(1, h) - n_h, cum_r.gather(1, h) - r_h
    return (before_r + (target - before_n) * r_h / n_h.clamp_min(1)).squeeze(1)


# =========================================================================== public metrics

def average_precision(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
                      db_labels: ArrayLike, *, ties: Ties = "stable", chunk: int | None = None,
                      backend: Backend = "auto") -> np.ndarray:
    """AP of every query over the whole database (float64, length Q); NaN for a query with no
    relevant item. See the module docstring for ``ties``, ``chunk`` and ``backend``."""
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(backend, ("auto", "torch", "numba"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    ap, valid = _ap_from_stats(_collect(inp, chunk, ties == "stable", 0), ties)
    return torch.where(valid, ap, float("nan")).cpu().numpy()


def map_at_all(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
               db_labels: ArrayLike, *, ties: Ties = "stable", denominator: Denominator = "skip",
               chunk: int | None = None, backend: Backend = "auto") -> float:
    """mAP over the whole database ranked by Hamming distance (METHODS.md "mAP@all").

    ``ties``: 'stable' (by database index) or 'expected' (tie-independent expectation).
    ``denominator``: 'skip' queries with no relevant item (NRCH/SCBCH) or count them as 0
    ('zero', DCGMH). ``chunk``: queries per chunk (memory ~40 bytes x chunk x database size
    on the torch backend); results do not depend on it.
    """
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(backend, ("auto", "torch", "numba"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    ap, valid = _ap_from_stats(_collect(inp, chunk, ties == "stable", 0), ties)
    return _mean(ap, valid, denominator, "map_at_all")


def map_at_k(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
             db_labels: ArrayLike, k: int, *, denominator: Denominator = "skip",
             chunk: int | None = None, backend: Backend = "auto") -> float:
    """mAP over the top ``k`` items, stable ties. AP@k divides by the number of relevant items
    within the top k (DCMH/UCCH ``calc_map_k``); 'skip' drops queries with none there."""
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(backend, ("auto", "torch", "numba"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    (k,) = _check_cutoffs(k, "k", inp.n_db)
    ap, valid = _map_at_k_from_stats(_collect(inp, chunk, False, k), k)
    return _mean(ap, valid, denominator, "map_at_k")


def precision_at_n(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
                   db_labels: ArrayLike, ns: Iterable[int] | int, *, ties: Ties = "stable",
                   denominator: Denominator = "skip", chunk: int | None = None,
                   backend: Backend = "auto") -> np.ndarray:
    """Mean precision of the top N items, for each N in ``ns`` (float64 array, same order).
    'skip' averages over queries with >= 1 relevant item in the database, 'zero' over all."""
    _check_choice(ties, ("stable", "expected"), "ties")
    _check_choice(denominator, ("skip", "zero"), "denominator")
    _check_choice(backend, ("auto", "torch", "numba"), "backend")
    inp = _prepare(query_codes, db_codes, query_labels, db_labels, backend)
    ns = _check_cutoffs(ns, "ns", inp.n_db)
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
    hist = stats.hist.to(torch.float64)
    retrieved = torch.cumsum(hist.sum(-1), 1)        # (Q, bits+1)
    hits = torch.cumsum(hist[..., 1], 1)
    n_rel = hits[:, -1:]
    has_rel = n_rel > 0
    precision = hits / retrieved.clamp_min(1)
    recall = hits / n_rel.clamp_min(1)
    if average == "published":   # DPSH/UCCH pr_curve: average over queries with precision > 0
        mask_p = mask_r = has_rel & (hits > 0)
    else:                        # precision over queries retrieving >= 1 item, recall over all
        mask_p = has_rel & (retrieved > 0)
        mask_r = has_rel.expand_as(hits)
    cnt_p = mask_p.sum(0)
    p = torch.where(mask_p, precision, 0.0).sum(0) / cnt_p.clamp_min(1)
    r = torch.where(mask_r, recall, 0.0).sum(0) / mask_r.sum(0).clamp_min(1)
    return PRCurve(np.arange(hist.shape[1]), p.cpu().numpy(), r.cpu().numpy(), cnt_p.cpu().numpy())


def pr_curve(query_codes: ArrayLike, db_codes: ArrayLike, query_labels: ArrayLike,
             db_labels: ArrayLike, *, average: Literal["published", "retrieved"] = "published",
             chunk: int | None = None, backend: Backend = "auto") -> PRCurve:
    """Precision-recall by Hamming radius 0..bits, averaged over queries (macro), queries
    with no relevant item excluded. Per query at radius rho: precision = relevant retrieved /
    retrieved, recall = relevant retrieved / all relevant.

    ``average='published'`` (DCMH/DPSH/UCCH ``pr_curve``): both are averaged over the queries
    whose precision is > 0 at that radius (0 where none). ``'retrieved'``: precision over the
    queries that retrieve >= 1 item, recall over all queries (recall 0 counts). No tie issue:
    a radius takes whole distance buckets.
    """
    _check_choice(average, ("published", "retrieved"), "average")
    _check_choice(backend, ("auto", "torch", "numba"), "backend")
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
    _check_choice(backend, ("auto", "torch", "numba"), "backend")
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
        "n_queries": int(valid.shape[0]), "n_queries_with_relevant": int(valid.sum().item()),
        "n_database": inp.n_db, "bits": inp.bits, "ties": ties, "denominator": denominator,
    }
    for k in ks:
        apk, vk = _map_at_k_from_stats(stats, k)
        out["map_at_k"][str(k)] = _mean(apk, vk, denominator, f"map_at_k[{k}]")
    for n in ns:
        out["precision_at_n"][str(n)] = _mean(_hits_at_n(stats, n, ties) / n, valid, denominator,
                                              f"precision_at_n[{n}]")
    return out

