"""Exact top-k Hamming search: the k nearest database items of every query.

Codes are read by :mod:`cmhash.hamming`, as the metrics of :mod:`cmhash.evaluate` read them:
±1 (or real-valued, binarised by sign with ``x >= 0 -> +1``; bool or unsigned {0, 1} arrays
are bits, 0 -> -1). The distance is the number of differing bits. Ties are broken by database index, ascending: the result of a query
is the first k items of the stable order by (distance, index), the order the ``ties="stable"``
mAP ranks by, so ``search(...).indices`` is exactly the ranking that ``map_at_k`` and
``precision_at_n`` score. The result does not depend on the backend, the chunk or the threads.

Backends (``backend="auto"``: numba when installed, else numpy; faiss only when asked for,
since ours was faster at every size measured -- see below):

* ``numba`` (ours, CPU): codes packed into uint64 words. Per query, popcount distances to
  every item into a uint8 buffer (a vectorised loop over the word-major database), then one
  pass in index order, 64 items at a time, with a running threshold: a vectorised compare
  gives the block's bit mask of items under the threshold and only those are visited. Once
  k visited items lie at distance <= t, a later item must be closer than t to matter (at t
  it ranks after k earlier ones), and t drops as the closer buckets fill -- the counting
  selection faiss's ``hammings_knn_mc`` also uses, with the tie order pinned down. The
  candidates (a 2k buffer, compacted when full) are finally counting-sorted by distance,
  stably. Parallel over queries; memory: the result, plus per thread one byte per database
  item and O(k) candidates.
* ``numpy`` (ours, CPU, no optional dependency): popcount distances for ``chunk`` queries at
  a time and a stable (radix) argsort of the small-integer distances, cut at k.
* ``faiss`` (optional ``faiss-cpu``, imported only when used): ``faiss.IndexBinaryFlat`` over
  ``np.packbits`` codes (zero-padded to whole bytes: equal padding adds no distance), the
  field's standard exact Hamming k-NN, with its counting search (``use_heap = False``,
  faster than its heap here). faiss guarantees the distances but not which items tied at the
  k-th distance it returns, nor their order. So this backend asks faiss for k + 1
  neighbours and re-sorts them by (distance, index); a query whose (k+1)-th distance is
  larger than its k-th has its boundary bucket wholly inside the answer, which is then
  exact. A query whose tie straddles rank k -- nearly all of them with 64 bits and 10^5
  items -- is asked again by ``range_search(radius = d_k + 1)`` (every item at distance
  <= d_k; faiss's radius is strict), grouped by d_k, and cut at k after the same stable
  sort. Exact whatever order faiss uses, at the cost of a second scan. (faiss 1.15.1 was
  seen to return the stable subset already; nothing here relies on it.)

Measured 2026-11-25 on 2 shared CPU cores, NUS-WIDE scale (2,100 queries x 193,734 items,
64 bits), best of 3 (benchmarks/bench_search.py, whose docstring has the whole table):
top-100 numba 0.054 s, faiss made exact 0.22 s, faiss's raw k-NN 0.13 s (ties left to faiss),
numpy 0.90 s, per-query argsort 15 s; top-1000 numba 0.15 s, faiss exact 0.47 s, faiss raw
0.20 s, numpy 0.96 s.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import numpy as np

from cmhash.errors import ConfigError, DataError

# one reading of codes and one packed-word layout for ranking and metrics alike (codes_as_bits
# is re-exported: part of this module's API)
from cmhash.hamming import (
    codes_as_bits,
    numba,
    numba_available,
    pack_bits,
    packed_distances,
    popcount64,
)

__all__ = ["SearchResult", "codes_as_bits", "faiss_available", "search", "search_chunks", "write_search_csv"]

SearchBackend = Literal["auto", "numba", "numpy", "faiss"]
BACKENDS = ("auto", "numba", "numpy", "faiss")
_NUMPY_PAIRS = 1 << 22   # (query, item) pairs per numpy chunk: ~12 bytes each (distances + argsort)
_RESULT_ENTRIES = 1 << 22  # (query, rank) results per block by default: 12 bytes each
_PROGRESS_PAIRS = 1 << 27  # pairs per chunk when reporting progress (a few chunks per second)
_RANGE_PAIRS = 1 << 24     # bound on faiss range-search results per call (12 bytes each)


@dataclass(frozen=True)
class SearchResult:
    """The k nearest database items of each query, nearest first, ties by database index.

    indices: (Q, k) int64 database row numbers; distances: (Q, k) int32 Hamming distances.
    """

    indices: np.ndarray
    distances: np.ndarray


def faiss_available() -> bool:
    """True when the optional faiss backend can be used (``import faiss`` succeeds)."""
    return _faiss() is not None


def _faiss() -> Any:
    """The faiss module, or None; imported on first use only (it is optional)."""
    # its loader logs every instruction-set build it fails to find at INFO: not news to users
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _check_k(k: Any, n_db: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_db:
        raise ConfigError(f"k: {k!r} must be an integer in [1, {n_db}] (the database size)")
    return int(k)


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not one of {', '.join(map(repr, BACKENDS))}")
    if backend == "auto":  # ours beat faiss at every size measured (module docstring)
        return "numba" if numba_available() else "numpy"
    if backend == "numba" and not numba_available():
        raise ConfigError("backend: 'numba' requested but numba is not installed; use 'auto' or 'numpy'")
    if backend == "faiss" and not faiss_available():
        raise ConfigError("backend: 'faiss' requested but faiss is not installed (pip install faiss-cpu); "
                          "use 'auto', 'numba' or 'numpy'")
    return backend


def _bits(query_codes: Any, db_codes: Any) -> tuple[np.ndarray, np.ndarray]:
    qbits = codes_as_bits(query_codes, "query_codes")
    dbits = codes_as_bits(db_codes, "db_codes")
    if qbits.shape[1] != dbits.shape[1]:
        raise DataError(f"query_codes has {qbits.shape[1]} bits but db_codes has {dbits.shape[1]}")
    return qbits, dbits


def search(query_codes: Any, db_codes: Any, k: int, *, backend: SearchBackend = "auto",
           chunk: int | None = None, progress: Callable[[int], None] | None = None) -> SearchResult:
    """The ``k`` nearest database items of every query by Hamming distance, ties by database
    index (see the module docstring). ``chunk``: queries per backend call (default as in
    :func:`search_chunks`, or ~2**27 (query, item) pairs per call when ``progress`` is given);
    ``progress`` is called with the number of queries finished after each chunk. Results do
    not depend on either. Raises DataError on bad codes, ConfigError on a bad
    ``k``/``backend``/``chunk``."""
    if chunk is None and progress is not None:
        chunk = max(1, _PROGRESS_PAIRS // max(1, len(db_codes)))
    blocks = search_chunks(query_codes, db_codes, k, backend=backend, chunk=chunk)
    n_q, k = len(query_codes), int(k)
    indices = np.empty((n_q, k), np.int64)
    distances = np.empty((n_q, k), np.int32)
    s = 0
    for part in blocks:
        e = s + part.indices.shape[0]
        indices[s:e], distances[s:e] = part.indices, part.distances
        s = e
        if progress is not None:
            progress(part.indices.shape[0])
    return SearchResult(indices, distances)


def search_chunks(query_codes: Any, db_codes: Any, k: int, *, backend: SearchBackend = "auto",
                  chunk: int | None = None) -> Iterator[SearchResult]:
    """:func:`search` one block of ``chunk`` consecutive queries at a time, the database
    prepared once: for streaming the results of many queries, or reducing each block (as
    ``evaluate.map_at_k`` does) without holding Q x k indices. Default blocks hold ~4M
    (query, rank) results (4,194 queries at k = 1,000), and for numpy also at most ~4M
    (query, item) pairs. All inputs are validated here, before the first block."""
    name = _resolve_backend(backend)
    qbits, dbits = _bits(query_codes, db_codes)
    n_db, n_bits = dbits.shape[0], qbits.shape[1]
    k = _check_k(k, n_db)
    if chunk is None:
        step = max(1, _RESULT_ENTRIES // k)
        if name == "numpy":
            step = min(step, max(1, _NUMPY_PAIRS // n_db))
    elif isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ConfigError(f"chunk: expected a positive number of queries per chunk, got {chunk!r}")
    else:
        step = int(chunk)
    return _blocks(name, qbits, dbits, n_bits, k, step)


def _blocks(name: str, qbits: np.ndarray, dbits: np.ndarray, bits: int, k: int, step: int) -> Iterator[SearchResult]:
    if name == "faiss":
        index = _faiss_index(dbits)
        qpacked = np.packbits(qbits, axis=1)
        kernel = lambda s, e, idx, dist: _faiss_search(index, qpacked[s:e], k, idx, dist)
    else:
        db_t = pack_bits(dbits).T.copy()
        qwords = pack_bits(qbits)
        fn = _numba_topk if name == "numba" else _numpy_topk
        kernel = lambda s, e, idx, dist: fn(qwords[s:e], db_t, bits, k, idx, dist)
    for s in range(0, qbits.shape[0], step):
        e = min(s + step, qbits.shape[0])
        idx = np.empty((e - s, k), np.int64)
        dist = np.empty((e - s, k), np.int32)
        kernel(s, e, idx, dist)
        yield SearchResult(idx, dist)


# --------------------------------------------------------------------------- numpy backend

def _numpy_topk(qwords: np.ndarray, db_t: np.ndarray, bits: int, k: int,
                out_idx: np.ndarray, out_dist: np.ndarray) -> None:
    """Popcount distances of a query chunk and a stable (radix, small integers) argsort."""
    dist = packed_distances(qwords, db_t, bits)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    out_idx[:] = order
    out_dist[:] = np.take_along_axis(dist, order, 1)


# --------------------------------------------------------------------------- numba backend

_BLOCK = 64  # database items per threshold test: one bit each in a uint64 mask


def _numba_topk(qwords: np.ndarray, db_t: np.ndarray, bits: int, k: int,
                out_idx: np.ndarray, out_dist: np.ndarray) -> None:
    """Run the kernel with one distance buffer per work block (about 4 per thread), padded
    to whole 64-item blocks with a value above every distance."""
    n_db = db_t.shape[1]
    dtype = np.uint8 if bits < 255 else (np.uint16 if bits < 65535 else np.uint32)
    n_blocks = max(1, min(qwords.shape[0], 4 * numba.get_num_threads()))
    scratch = np.full((n_blocks, -(-n_db // _BLOCK) * _BLOCK), np.iinfo(dtype).max, dtype)
    _numba_topk_kernel(qwords, db_t, bits, k, scratch, out_idx, out_dist)


if numba is not None:
    @numba.njit(inline="always", cache=True)
    def _keep_first(cand_i, cand_d, n_c, count, t, k):  # pragma: no cover - compiled
        """Compact the candidates (in index order) to those closer than t and the first
        k - (those) at distance t; recount bucket t. Returns how many remain (<= k)."""
        room = k
        for h in range(t):
            room -= count[h]
        n = 0
        for c in range(n_c):
            d = cand_d[c]
            if d < t or (d == t and room > 0):
                if d == t:
                    room -= 1
                cand_i[n] = cand_i[c]
                cand_d[n] = d
                n += 1
        for h in range(t, count.shape[0]):
            count[h] = 0
        for c in range(n):
            if cand_d[c] == t:
                count[t] += 1
        return n

    @numba.njit(parallel=True, cache=True)
    def _numba_topk_kernel(qwords, db_t, bits, k, scratch, out_idx, out_dist):  # pragma: no cover - compiled
        """Queries split into scratch.shape[0] work blocks, in parallel. Per query:
        1. popcount distances of every item into the block's small-integer buffer (word-major
           database: a vectorised loop);
        2. one pass in index order, 64 items at a time, with a running threshold: a vectorised
           compare makes the block's mask of items closer than the threshold, and only those
           are visited. A visited item joins the candidates (kept in index order) and its
           distance bucket; once k candidates lie at distance <= t, later items need
           distance < t (at t they would rank after k earlier ones), and t drops while the
           buckets below it already hold k. Candidates past t are compacted away when the
           2k buffer fills, so memory is O(k), whatever the ties;
        3. a stable counting sort of the k survivors by distance: order (distance, index)."""
        n_q = qwords.shape[0]
        n_words, n_db = db_t.shape
        n_blocks = scratch.shape[0]
        one = np.uint64(1)
        for b in numba.prange(n_blocks):
            dist = scratch[b]
            rows = dist.reshape(-1, 64)
            cand_i = np.empty(2 * k, np.int64)
            cand_d = np.empty(2 * k, np.int64)
            count = np.empty(bits + 1, np.int64)
            for i in range(b * n_q // n_blocks, (b + 1) * n_q // n_blocks):
                q = qwords[i, 0]
                row = db_t[0]
                for j in range(n_db):
                    dist[j] = popcount64(q ^ row[j])
                for w in range(1, n_words):
                    q = qwords[i, w]
                    row = db_t[w]
                    for j in range(n_db):
                        dist[j] += popcount64(q ^ row[j])
                count[:] = 0
                n_c = 0
                t = bits       # cut distance: candidates at distance <= t may be in the top k
                below = 0      # candidates at distance <= t
                thr = bits + 1  # an item is a candidate iff its distance < thr
                for r in range(rows.shape[0]):
                    blk = rows[r]
                    mask = np.uint64(0)
                    for jj in range(64):
                        mask |= np.uint64(blk[jj] < thr) << np.uint64(jj)
                    while mask != 0:
                        low = mask & (~mask + one)
                        jj = popcount64(low - one)
                        mask ^= low
                        d = np.int64(blk[jj])
                        if d >= thr:  # thr fell within this block
                            continue
                        if n_c == cand_i.shape[0]:
                            n_c = _keep_first(cand_i, cand_d, n_c, count, t, k)
                            below = n_c
                        cand_i[n_c] = r * 64 + jj
                        cand_d[n_c] = d
                        n_c += 1
                        count[d] += 1
                        below += 1
                        while below - count[t] >= k:
                            below -= count[t]
                            t -= 1
                        thr = t if below >= k else t + 1
                n_c = _keep_first(cand_i, cand_d, n_c, count, t, k)
                start = 0
                for h in range(t + 1):
                    c = count[h]
                    count[h] = start
                    start += c
                for c in range(n_c):
                    p = count[cand_d[c]]
                    out_idx[i, p] = cand_i[c]
                    out_dist[i, p] = cand_d[c]
                    count[cand_d[c]] = p + 1


# --------------------------------------------------------------------------- faiss backend

def _faiss_index(dbits: np.ndarray, use_heap: bool = False) -> Any:
    """IndexBinaryFlat over the packed database. ``use_heap=False`` selects faiss's counting
    k-NN (``hammings_knn_mc``) over its default heap: exact too, and as fast or faster at
    k = 100..1000 in the benchmark."""
    faiss = _faiss()
    packed = np.packbits(dbits, axis=1)          # zero-padded to whole bytes, as the queries
    index = faiss.IndexBinaryFlat(packed.shape[1] * 8)
    index.add(packed)
    index.use_heap = use_heap
    return index


def _stable(dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows re-sorted by (distance, index)."""
    order = np.lexsort((idx, dist))
    return np.take_along_axis(dist, order, -1), np.take_along_axis(idx, order, -1)


def _faiss_search(index: Any, qpacked: np.ndarray, k: int, out_idx: np.ndarray, out_dist: np.ndarray) -> None:
    """k-NN by faiss made exact under stable ties (module docstring): ask for k + 1, keep the
    queries whose boundary bucket ends inside the top k, re-ask the others by range search."""
    n_db = index.ntotal
    extra = min(k + 1, n_db)
    dist, idx = index.search(qpacked, extra)
    dist, idx = _stable(dist.astype(np.int32), idx)
    out_idx[:] = idx[:, :k]
    out_dist[:] = dist[:, :k]
    if extra == k:       # k == database size: every item returned, nothing to decide
        return
    straddle = np.flatnonzero(dist[:, k] == dist[:, k - 1])
    if straddle.size == 0:
        return
    radii = dist[straddle, k - 1]
    step = max(1, _RANGE_PAIRS // n_db)  # a range result may hold the whole database per query
    for radius in np.unique(radii):
        group = straddle[radii == radius]
        for s in range(0, group.size, step):
            rows = group[s:s + step]
            lims, rdist, ridx = index.range_search(qpacked[rows], int(radius) + 1)  # faiss: distance < radius
            rdist = rdist.astype(np.int32)
            for r, row in enumerate(rows):
                d, i = _stable(rdist[lims[r]:lims[r + 1]], ridx[lims[r]:lims[r + 1]])
                out_idx[row] = i[:k]
                out_dist[row] = d[:k]


# --------------------------------------------------------------------------- CSV output

CSV_COLUMNS = ("query", "rank", "database_index", "hamming_distance")


def write_search_csv(out: TextIO, query_codes: Any, db_codes: Any, k: int, *,
                     db_ids: Sequence[Any] | None = None, db_labels: np.ndarray | None = None,
                     query_labels: np.ndarray | None = None, backend: SearchBackend = "auto",
                     progress: bool = False) -> int:
    """Search and write one CSV row per (query, rank): ``query`` (row of the query codes),
    ``rank`` (1 = nearest), ``database_index`` (row of the database codes), ``hamming_distance``;
    then, when given, ``database_id`` (``db_ids[database_index]``), ``database_labels`` (the
    item's classes, ';'-joined column numbers) and ``relevant`` (1 if it shares a class with
    the query; needs both label arrays). Written block by block (~2**27 (query, item) pairs
    each), with a progress bar on a terminal when ``progress``. Returns the rows written."""
    import pandas as pd
    from tqdm.auto import tqdm

    n_q, n_db = len(query_codes), len(db_codes)
    _check_rows(db_ids, n_db, "db_ids", "db_codes")
    _check_rows(db_labels, n_db, "db_labels", "db_codes")
    _check_rows(query_labels, n_q, "query_labels", "query_codes")
    if query_labels is not None:
        if db_labels is None:
            raise ConfigError("query_labels: printing relevance needs the database labels too")
        if query_labels.shape[1] != db_labels.shape[1]:
            raise DataError(f"query_labels has {query_labels.shape[1]} classes but db_labels has {db_labels.shape[1]}")
    label_text = None
    if db_labels is not None:
        label_text = np.array([";".join(map(str, np.flatnonzero(row > 0))) for row in db_labels], dtype=object)
    ids = None if db_ids is None else np.asarray(db_ids, dtype=object)
    step = max(1, _PROGRESS_PAIRS // max(n_db, 1))
    blocks = search_chunks(query_codes, db_codes, k, backend=backend, chunk=step)  # validates everything
    rows = 0
    with tqdm(total=n_q, unit="query", desc="search", disable=None if progress else True, leave=False) as bar:
        for part in blocks:
            n = part.indices.shape[0]
            idx = part.indices.ravel()
            cols = {"query": np.repeat(np.arange(rows // k, rows // k + n), k),
                    "rank": np.tile(np.arange(1, k + 1), n),
                    "database_index": idx,
                    "hamming_distance": part.distances.ravel()}
            if ids is not None:
                cols["database_id"] = ids[idx]
            if label_text is not None:
                cols["database_labels"] = label_text[idx]
            if query_labels is not None:
                q = np.repeat(np.arange(rows // k, rows // k + n), k)
                cols["relevant"] = ((query_labels[q] > 0) & (db_labels[idx] > 0)).any(1).astype(np.int8)
            pd.DataFrame(cols).to_csv(out, header=rows == 0, index=False, lineterminator="\n")
            rows += n * k
            bar.update(n)
    return rows


def _check_rows(values: Any, n: int, name: str, against: str) -> None:
    if values is not None and len(values) != n:
        raise DataError(f"{name} has {len(values)} rows but {against} has {n}")
