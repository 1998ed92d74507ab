"""Tests of cmhash.search and ``cmhash search``: a hand case with ties at the k boundary, every
backend against a brute-force lexsort by (distance, index), the faiss backend's tie repair
against an adversarial index, chunk/progress invariance, lazy faiss import, input errors, and
the CLI end to end (CSV content, optional columns, exit status 2 with the file or key named)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from cmhash import search as search_mod
from cmhash.cli import main
from cmhash.errors import ConfigError, DataError
from cmhash.hamming import numba_available
from cmhash.search import faiss_available, search, search_chunks, write_search_csv
from tests.helpers import REPO

OURS = ["numpy"] + (["numba"] if numba_available() else [])
needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss is not installed (pip install faiss-cpu)")
ALL = OURS + [pytest.param("faiss", marks=needs_faiss)]


def brute_force(q_bits: np.ndarray, db_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition: per query, np.lexsort by (distance, then database index), first k."""
    dist = (q_bits[:, None, :] != db_bits[None, :, :]).sum(-1)
    order = np.stack([np.lexsort((np.arange(db_bits.shape[0]), row))[:k] for row in dist])
    return order, np.take_along_axis(dist, order, 1)


# ----------------------------------------------------------------------------- the hand case
# 4 bits, query ++++. Database (index: distance): 0: d1, 1: d0, 2: d1, 3: d2, 4: d1.
# Stable order by (distance, index): 1 (d0), 0, 2, 4 (d1), 3 (d2).
# k = 3 cuts the d1 bucket {0, 2, 4}: the answer keeps its first two by index, 0 and 2.
DB = np.array([[-1, 1, 1, 1], [1, 1, 1, 1], [1, -1, 1, 1], [-1, -1, 1, 1], [1, 1, 1, -1]], np.int8)
Q = np.array([[1, 1, 1, 1], [-1, -1, 1, 1]], np.int8)
# Query 2 (--++): distances 0: d1, 1: d2, 2: d1, 3: d0, 4: d3 -> order 3, 0, 2 (d1), 1, 4.


@pytest.mark.parametrize("backend", ALL)
def test_hand_case_with_ties(backend):
    for k, want_i, want_d in [(1, [[1], [3]], [[0], [0]]),
                              (2, [[1, 0], [3, 0]], [[0, 1], [0, 1]]),      # both cut a d1 tie
                              (3, [[1, 0, 2], [3, 0, 2]], [[0, 1, 1], [0, 1, 1]]),
                              (4, [[1, 0, 2, 4], [3, 0, 2, 1]], [[0, 1, 1, 1], [0, 1, 1, 2]]),
                              (5, [[1, 0, 2, 4, 3], [3, 0, 2, 1, 4]], [[0, 1, 1, 1, 2], [0, 1, 1, 2, 3]])]:
        got = search(Q, DB, k, backend=backend)
        np.testing.assert_array_equal(got.indices, want_i, err_msg=f"k={k}")
        np.testing.assert_array_equal(got.distances, want_d, err_msg=f"k={k}")
        assert got.indices.dtype == np.int64 and got.distances.dtype == np.int32


@pytest.mark.parametrize("backend", ALL)
def test_code_formats_are_equivalent(backend):
    want = search(Q, DB, 3, backend=backend)
    for q, db in [(Q > 0, DB > 0), ((Q > 0).astype(np.uint8), (DB > 0).astype(np.uint8)),
                  (Q.astype(np.float32) * 0.3, DB.astype(np.float64) * 2.0)]:
        got = search(q, db, 3, backend=backend)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.distances, want.distances)


# ----------------------------------------------------------------------------- brute force

CASES = [  # (bits, queries, database, k): heavy ties, a bit count that is not a byte multiple,
    (4, 7, 60, 9),  # more than one 64-bit word, k = database size, k = 1, a single query
    (12, 30, 2000, 100),
    (13, 20, 500, 37),
    (70, 15, 400, 399),
    (130, 10, 300, 25),
    (8, 5, 200, 200),
    (16, 12, 900, 1),
    (32, 1, 1500, 64),
    (3, 5, 3000, 10),     # buckets of hundreds: the numba candidate buffer compacts many times
    (5, 4, 2000, 1500),
    (300, 4, 150, 20),    # distances past 255: the numba buffer widens to uint16
]


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("bits,n_q,n_db,k", CASES)
def test_random_against_lexsort(backend, bits, n_q, n_db, k):
    rng = np.random.default_rng(bits * 1000 + n_db)
    q = rng.random((n_q, bits)) < 0.5
    db = rng.random((n_db, bits)) < 0.5
    db[: n_db // 4] = db[n_db // 4: 2 * (n_db // 4)]          # duplicate codes: whole tied buckets
    want_i, want_d = brute_force(q, db, k)
    got = search(np.where(q, 1, -1).astype(np.int8), db, k, backend=backend)
    np.testing.assert_array_equal(got.indices, want_i)
    np.testing.assert_array_equal(got.distances, want_d)


@pytest.mark.parametrize("backend", ALL)
def test_chunks_and_progress_do_not_change_the_result(backend):
    rng = np.random.default_rng(5)
    q, db = rng.random((23, 10)) < 0.5, rng.random((700, 10)) < 0.5
    want = search(q, db, 50, backend=backend)
    seen: list[int] = []
    got = search(q, db, 50, backend=backend, chunk=4, progress=seen.append)
    assert seen == [4, 4, 4, 4, 4, 3]
    np.testing.assert_array_equal(got.indices, want.indices)
    parts = list(search_chunks(q, db, 50, backend=backend, chunk=10))
    assert [p.indices.shape[0] for p in parts] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate([p.indices for p in parts]), want.indices)


# ----------------------------------------------------------------------------- faiss's tie order

class AdversarialIndex:
    """Stands in for faiss.IndexBinaryFlat with exact distances but the worst tie order faiss's
    contract allows: at equal distance the LARGEST database indices first, rows unsorted."""

    def __init__(self, db_packed: np.ndarray):
        self.db = np.unpackbits(db_packed, axis=1)
        self.ntotal = db_packed.shape[0]
        self.range_calls = 0

    def _dist(self, q_packed):
        return (np.unpackbits(q_packed, axis=1)[:, None, :] != self.db[None]).sum(-1)

    def search(self, q_packed, k):
        dist = self._dist(q_packed)
        order = np.stack([np.lexsort((-np.arange(self.ntotal), row))[:k][::-1] for row in dist])
        return np.take_along_axis(dist, order, 1).astype(np.int32), order.astype(np.int64)

    def range_search(self, q_packed, radius):
        self.range_calls += 1
        dist = self._dist(q_packed)
        hits = [np.flatnonzero(row < radius)[::-1] for row in dist]   # faiss's radius is strict
        lims = np.concatenate([[0], np.cumsum([h.size for h in hits])]).astype(np.int64)
        ids = np.concatenate(hits).astype(np.int64)
        return lims, np.concatenate([row[h] for row, h in zip(dist, hits)]).astype(np.float32), ids


def test_faiss_backend_repairs_any_tie_order(monkeypatch):
    """The k + 1 / range-search repair gives the stable answer whatever subset of a tie
    straddling rank k the index returns (runs without faiss: the index is a stand-in)."""
    made = []
    monkeypatch.setattr(search_mod, "_resolve_backend", lambda backend: "faiss")
    monkeypatch.setattr(search_mod, "_faiss_index",
                        lambda dbits: made.append(AdversarialIndex(np.packbits(dbits, axis=1))) or made[-1])
    rng = np.random.default_rng(11)
    for bits, n_q, n_db, k in [(6, 9, 120, 10), (12, 8, 300, 40), (5, 4, 40, 40), (9, 6, 80, 1)]:
        q, db = rng.random((n_q, bits)) < 0.5, rng.random((n_db, bits)) < 0.5
        want_i, want_d = brute_force(q, db, k)
        got = search(q, db, k, backend="faiss")
        np.testing.assert_array_equal(got.indices, want_i)
        np.testing.assert_array_equal(got.distances, want_d)
    assert made[0].range_calls > 0          # the straddling ties did need the second ask
    assert made[2].range_calls == 0         # k = database size: nothing to decide


@needs_faiss
def test_real_faiss_agrees_with_ours_at_scale():
    rng = np.random.default_rng(3)
    q, db = rng.random((40, 64)) < 0.5, rng.random((20000, 64)) < 0.5
    for k in (10, 500):
        want = search(q, db, k, backend="numpy")
        got = search(q, db, k, backend="faiss")
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.distances, want.distances)


def _fresh_python(code: str) -> list[str]:
    """What ``code`` prints, run in a fresh interpreter (nothing imported yet), word by word."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          check=True).stdout.split()


def test_faiss_is_imported_only_when_asked():
    assert _fresh_python(
        "import sys, numpy as np; from cmhash.search import search; "
        "search(np.ones((2, 8)), np.ones((5, 8)), 2); "
        "from cmhash.evaluate import map_at_k; map_at_k(np.ones((2, 8)), np.ones((5, 8)), np.ones((2, 1)), "
        "np.ones((5, 1)), 2); print('faiss' in sys.modules)") == ["False"]


def test_search_does_not_import_the_metrics():
    """search and the metrics share cmhash.hamming; search never imports cmhash.evaluate (no
    import circle), while cmhash.evaluate still re-exports hamming's public names."""
    assert _fresh_python(
        "import sys; import cmhash.search; print('cmhash.evaluate' in sys.modules); "
        "import cmhash.evaluate as ev, cmhash.hamming as h; "
        "print(ev.hamming_distances is h.hamming_distances and ev.numba_available is h.numba_available "
        "and cmhash.search.codes_as_bits is h.codes_as_bits)") == ["False", "True"]


def test_missing_faiss_is_a_config_error(monkeypatch):
    monkeypatch.setattr(search_mod, "_faiss", lambda: None)
    assert not faiss_available()
    with pytest.raises(ConfigError, match="faiss-cpu"):
        search(Q, DB, 2, backend="faiss")
    assert search(Q, DB, 2).indices.shape == (2, 2)   # 'auto' never needs it


# ----------------------------------------------------------------------------- input errors

def test_input_errors():
    with pytest.raises(DataError, match="query_codes has 4 bits but db_codes has 3"):
        search(Q, DB[:, :3], 2)
    for k in (0, 6, 2.0, True):
        with pytest.raises(ConfigError, match=r"k: .* must be an integer in \[1, 5\]"):
            search(Q, DB, k)
    bad = Q.astype(np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match="query_codes: 1 rows hold NaN"):
        search(bad, DB, 2)
    with pytest.raises(DataError, match="db_codes: unsigned codes must be bits 0/1"):
        search(Q, np.full((5, 4), 2, np.uint8), 2)
    with pytest.raises(DataError, match="db_codes: expected a 2-d"):
        search(Q, DB[0], 1)
    with pytest.raises(ConfigError, match="backend"):
        search(Q, DB, 2, backend="annoy")
    with pytest.raises(ConfigError, match="chunk"):
        search(Q, DB, 2, chunk=0)


# ----------------------------------------------------------------------------- the CLI

@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(2)
    q = np.where(rng.random((6, 16)) < 0.5, 1, -1).astype(np.int8)
    db = np.where(rng.random((40, 16)) < 0.5, 1, -1).astype(np.int8)
    db[20:] = db[:20]                                   # ties
    ql = (rng.random((6, 5)) < 0.3).astype(np.uint8)
    dl = (rng.random((40, 5)) < 0.3).astype(np.uint8)
    paths = {}
    for name, arr in dict(q=q, db=db, ql=ql, dl=dl).items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], arr)
    return tmp_path, paths, (q, db, ql, dl)


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_cli_writes_the_search_as_csv(files, capsys):
    tmp, p, (q, db, ql, dl) = files
    out = tmp / "sub" / "nn.csv"
    assert main(["search", "--query-codes", str(p["q"]), "--database-codes", str(p["db"]), "-k", "7",
                 "--out", str(out)]) == 0
    rows = read_csv(out.read_text())
    assert list(rows[0]) == ["query", "rank", "database_index", "hamming_distance"]
    assert len(rows) == 6 * 7
    want_i, want_d = brute_force(q > 0, db > 0, 7)
    got_i = np.array([int(r["database_index"]) for r in rows]).reshape(6, 7)
    got_d = np.array([int(r["hamming_distance"]) for r in rows]).reshape(6, 7)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)
    assert [int(r["query"]) for r in rows[:8]] == [0] * 7 + [1]
    assert [int(r["rank"]) for r in rows[:8]] == [1, 2, 3, 4, 5, 6, 7, 1]
    assert not [f for f in out.parent.iterdir() if f.name != "nn.csv"]   # no temporary left behind


def test_cli_optional_columns_to_stdout(files, capsys):
    tmp, p, (q, db, ql, dl) = files
    splits = tmp / "splits.json"
    splits.write_text(json.dumps({"query": list(range(6)), "database": [100 + i for i in range(40)]}))
    assert main(["search", "--query-codes", str(p["q"]), "--database-codes", str(p["db"]), "-k", "3",
                 "--database-ids", str(splits), "--database-labels", str(p["dl"]),
                 "--query-labels", str(p["ql"])]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert list(rows[0]) == ["query", "rank", "database_index", "hamming_distance", "database_id",
                             "database_labels", "relevant"]
    for r in rows:
        i, j = int(r["query"]), int(r["database_index"])
        assert int(r["database_id"]) == 100 + j
        assert r["database_labels"] == ";".join(map(str, np.flatnonzero(dl[j])))
        assert int(r["relevant"]) == int((ql[i] & dl[j]).any())
    names = tmp / "ids.txt"
    names.write_text("\n".join(f"item{i}" for i in range(40)) + "\n")
    assert main(["search", "--query-codes", str(p["q"]), "--database-codes", str(p["db"]), "-k", "2",
                 "--database-ids", str(names), "--backend", "numpy"]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert all(r["database_id"] == f"item{r['database_index']}" for r in rows)


def cli_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_cli_errors_exit_2_naming_the_file(files, capsys):
    tmp, p, (q, db, ql, dl) = files
    base = ["search", "--query-codes", str(p["q"]), "--database-codes", str(p["db"])]
    missing = tmp / "nope.npy"
    assert f"{missing}: file not found" in cli_error(["search", "--query-codes", str(p["q"]),
                                                      "--database-codes", str(missing), "-k", "2"], capsys)
    short = tmp / "short.npy"
    np.save(short, db[:, :12])
    err = cli_error(["search", "--query-codes", str(p["q"]), "--database-codes", str(short), "-k", "2"], capsys)
    assert str(p["q"]) in err and str(short) in err and "16-bit" in err and "12-bit" in err
    err = cli_error(base + ["-k", "41"], capsys)
    assert "-k 41" in err and "[1, 40]" in err and str(p["db"]) in err
    assert "-k 0" in cli_error(base + ["-k", "0"], capsys)
    nan = tmp / "nan.npy"
    bad = q.astype(np.float32)
    bad[2, 0] = np.nan
    np.save(nan, bad)
    err = cli_error(["search", "--query-codes", str(nan), "--database-codes", str(p["db"]), "-k", "2"], capsys)
    assert f"{nan}: 1 rows hold NaN" in err
    flat = tmp / "flat.npy"
    np.save(flat, q[0])
    assert f"{flat}: expected a 2-d array" in cli_error(
        ["search", "--query-codes", str(flat), "--database-codes", str(p["db"]), "-k", "2"], capsys)
    ids = tmp / "ids.npy"
    np.save(ids, np.arange(39))
    assert f"{ids}: 39 ids but the database codes have 40 rows" in cli_error(
        base + ["-k", "2", "--database-ids", str(ids)], capsys)
    assert f"{p['ql']}: 6 rows but {p['db']} has 40" in cli_error(
        base + ["-k", "2", "--database-labels", str(p["ql"])], capsys)
    assert "--query-labels: needs --database-labels" in cli_error(
        base + ["-k", "2", "--query-labels", str(p["ql"])], capsys)


def test_cli_runs_as_a_command(files):
    tmp, p, _ = files
    out = subprocess.run([sys.executable, "-m", "cmhash.cli", "search", "--query-codes", str(p["q"]),
                          "--database-codes", str(p["db"]), "-k", "2"],
                         capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.splitlines()[0] == "query,rank,database_index,hamming_distance"
    assert len(out.stdout.splitlines()) == 1 + 6 * 2


def test_write_search_csv_checks_its_arrays():
    with pytest.raises(DataError, match="db_ids has 3 rows but db_codes has 5"):
        write_search_csv(io.StringIO(), Q, DB, 2, db_ids=["a", "b", "c"])
    with pytest.raises(ConfigError, match="needs the database labels"):
        write_search_csv(io.StringIO(), Q, DB, 2, query_labels=np.ones((2, 3)))


def test_cli_stops_quietly_when_the_reader_does(tmp_path):
    """`cmhash search ... | head` is not an error: more output than a pipe holds, reader gone."""
    rng = np.random.default_rng(4)
    np.save(tmp_path / "q.npy", rng.random((6, 16)) < 0.5)
    np.save(tmp_path / "db.npy", rng.random((3000, 16)) < 0.5)
    proc = subprocess.Popen([sys.executable, "-m", "cmhash.cli", "search", "--query-codes", str(tmp_path / "q.npy"),
                             "--database-codes", str(tmp_path / "db.npy"), "-k", "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout.readline() == b"query,rank,database_index,hamming_distance\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err
