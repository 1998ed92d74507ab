"""Benchmark cmhash.evaluate against the per-query argsort mAP the published code computes.

    .venv/bin/python benchmarks/bench_evaluate.py                # 2,100 x 20,000, 64 bits, 21 labels
    .venv/bin/python benchmarks/bench_evaluate.py --scale nus    # 2,100 x 193,734 (NUS-WIDE size)
    .venv/bin/python benchmarks/bench_evaluate.py --queries 500 --db 5000 --bits 32
    .venv/bin/python benchmarks/bench_evaluate.py --scale nus --backends numba --ref-queries 300
    .venv/bin/python benchmarks/bench_evaluate.py --scale nus --backends numba --ref-queries 300 --device cuda --json e.json

Prints one row per method: seconds, peak memory (growth of resident memory during the call), the mAP, and |diff| against the reference with stable ties.
Synthetic data: random ±1 codes correlated with random multi-hot labels (so mAP is not
trivial), fixed seed. The reference is deliberately kept out of the library.
``--device`` (e.g. ``cuda``) also runs the torch backend on tensors on that device and checks
that every metric of its report (mAP@all under both tie rules, mAP@k, P@N) equals the first CPU
backend's to 1e-9. ``--json`` writes every row and that comparison (benchmarks/gpu_check.sh).
Top-k search, mAP@k and P@N against faiss's IndexBinaryFlat: benchmarks/bench_search.py.
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from cmhash.evaluate import (
    average_precision,
    map_at_all,
    numba_available,
    retrieval_report,
)
from cmhash.io import save_json

TOLERANCE = 1e-9
SCALES = {"moderate": (2100, 20000), "nus": (2100, 193734), "small": (300, 5000)}


def map_at_all_reference(q_codes: np.ndarray, db_codes: np.ndarray, q_labels: np.ndarray,
                         db_labels: np.ndarray, *, denominator: str = "skip") -> float:
    """mAP@all as the published NRCH/DCMH ``calc_map`` computes it, one query at a time:
    Hamming distances 0.5 * (bits - q.B^T), relevance q_labels.db_labels^T > 0, argsort of the
    distances (stable here, so ties go by database index), AP = mean(hits / rank) over the
    relevant ranks; queries with no relevant item skipped ('skip') or counted as 0 ('zero')."""
    bits = q_codes.shape[1]
    total, counted = 0.0, 0
    for i in range(q_codes.shape[0]):
        relevant = (q_labels[i] @ db_labels.T > 0).astype(np.float32)
        n_rel = int(relevant.sum())
        if n_rel == 0:
            counted += denominator == "zero"
            continue
        hamming = 0.5 * (bits - q_codes[i] @ db_codes.T)
        order = np.argsort(hamming, kind="stable")
        relevant = relevant[order]
        hits = np.linspace(1, n_rel, n_rel)
        ranks = np.asarray(np.where(relevant == 1)).ravel() + 1.0
        total += float(np.mean(hits / ranks))
        counted += 1
    return total / counted


def synthetic(n_q: int, n_db: int, bits: int, n_cls: int, seed: int = 0):
    """Codes = sign(labels @ P + noise), so items sharing labels tend to be close."""
    rng = np.random.default_rng(seed)

    def labels(n):
        y = (rng.random((n, n_cls)) < 1.5 / n_cls).astype(np.float32)
        y[np.arange(n), rng.integers(0, n_cls, n)] = 1
        return y

    proj = rng.standard_normal((n_cls, bits)).astype(np.float32)
    ql, dl = labels(n_q), labels(n_db)
    qc = np.sign(ql @ proj + 1.5 * rng.standard_normal((n_q, bits)).astype(np.float32))
    dc = np.sign(dl @ proj + 1.5 * rng.standard_normal((n_db, bits)).astype(np.float32))
    qc[qc == 0] = 1
    dc[dc == 0] = 1
    return qc.astype(np.float32), dc.astype(np.float32), ql, dl


def _rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure(fn: Callable[[], float]) -> tuple[float, float, float]:
    """(seconds, peak RSS growth in MiB during the call, value); RSS sampled every 2 ms."""
    gc.collect()
    base = _rss_mb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    return seconds, max(peak[0], _rss_mb()) - base, value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="moderate")
    ap.add_argument("--queries", type=int)
    ap.add_argument("--db", type=int)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--threads", type=int, default=2, help="torch / numba threads")
    ap.add_argument("--backends", default="numba,numpy,torch", help="comma-separated: numba, numpy, torch")
    ap.add_argument("--ref-queries", type=int, default=None,
                    help="run the reference on the first N queries only: its time is extrapolated to "
                         "all queries and every method is checked against it on those N queries")
    ap.add_argument("--device", default=None,
                    help="also time the torch backend on tensors on this device (e.g. cuda) and check its report "
                         "against the first CPU backend's")
    ap.add_argument("--json", default=None, help="also write the rows and the device check to this JSON file")
    args = ap.parse_args(argv)
    n_q, n_db = SCALES[args.scale]
    n_q, n_db = args.queries or n_q, args.db or n_db
    torch.set_num_threads(args.threads)
    backends = [b for b in args.backends.split(",") if b and (b != "numba" or numba_available())]
    if numba_available():
        import numba
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    qc, dc, ql, dl = synthetic(n_q, n_db, args.bits, args.classes)
    print(f"# {n_q} queries x {n_db} database items, {args.bits} bits, {args.classes} labels, "
          f"{args.threads} threads, numba={'yes' if numba_available() else 'no'}, torch {torch.__version__}")

    n_ref = min(args.ref_queries or n_q, n_q)
    t_ref, m_ref, ref = measure(lambda: map_at_all_reference(qc[:n_ref], dc, ql[:n_ref], dl))
    t_ref *= n_q / n_ref
    note = "" if n_ref == n_q else f" [{n_ref} queries, time x{n_q / n_ref:.1f}]"
    rows = [("reference (per-query argsort)" + note, t_ref, m_ref, ref, None)]
    reports: dict[str, dict] = {}  # backend (and device) -> its retrieval_report

    def diff_to_ref(ap_stable: np.ndarray) -> float:
        """|mAP over the reference's queries - reference| from a method's per-query APs."""
        sub = ap_stable[:n_ref]
        return abs(float(np.nanmean(sub)) - ref)

    def run_backend(name: str, inputs: tuple, sync: Callable[[], None]) -> dict:
        where = "" if inputs[0] is qc else " " + str(inputs[0].device)
        for ties in ("stable", "expected"):
            def call(ties=ties):
                v = map_at_all(*inputs, ties=ties, backend=name)
                sync()
                return v
            s, m, v = measure(call)
            diff = None
            if ties == "stable":
                diff = abs(v - ref) if n_ref == n_q else diff_to_ref(average_precision(*inputs, backend=name))
            rows.append((f"map_at_all {name}{where} ties={ties}",
                         s, m, v, diff))

        def report():
            r = retrieval_report(*inputs, ks=[100, 1000], ns=[100, 1000], backend=name)
            sync()
            return r
        s, m, rep = measure(report)
        rows.append((f"retrieval_report {name}{where} (all metrics)", s, m, rep["map_all"],
                     abs(rep["map_all"] - ref) if n_ref == n_q else None))
        return rep

    for backend in backends:
        # warm up outside the timing: numba compiles (or loads its cache), torch pages in its
        # kernels (hundreds of MB of shared libraries that would otherwise count as memory)
        retrieval_report(qc[:3], dc[:500], ql[:3], dl[:500], ks=[10], ns=[10], backend=backend)
        reports[backend] = run_backend(backend, (qc, dc, ql, dl), lambda: None)
    device_check = None
    if args.device is not None:
        dev = torch.device(args.device)
        tq = tuple(torch.from_numpy(a).to(dev) for a in (qc, dc, ql, dl))
        retrieval_report(*(t[:500] for t in tq), ks=[10], ns=[10])  # warm-up
        on_device = run_backend("torch", tq, (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None))
        if reports:
            cpu_name = next(iter(reports))
            diffs = {key: abs(a - b) for key, (a, b) in
                     _metrics_of(on_device, reports[cpu_name]).items()}
            worst = max(diffs, key=diffs.get)
            device_check = {"device": str(dev), "against": f"{cpu_name} (cpu)", "metrics": len(diffs),
                            "max_abs_diff": diffs[worst], "worst_metric": worst, "tolerance": TOLERANCE,
                            "ok": diffs[worst] <= TOLERANCE}

    print(f"{'method':58s} {'seconds':>9s} {'speed-up':>9s} {'peak MB':>9s} {'mAP':>12s} {'|diff| vs ref':>14s}")
    for name, s, m, v, diff in rows:
        print(f"{name:58s} {s:9.3f} {t_ref / s:9.1f} {m:9.1f} {v:12.8f} {'' if diff is None else f'{diff:.2e}':>14s}")
    print("# peak MB: growth of the process's resident memory during the call (CPU; includes memory the "
          "allocator keeps); |diff|: stable-tie mAP minus the reference" +
          ("" if n_ref == n_q else f", both over the first {n_ref} queries"))
    if device_check:
        print(f"# torch on {device_check['device']} against {device_check['against']}: "
              f"{device_check['metrics']} metrics, max |diff| {device_check['max_abs_diff']:.2e} "
              f"({device_check['worst_metric']})")
    bad = [name for name, _, _, _, diff in rows if diff is not None and diff > TOLERANCE]
    if device_check and not device_check["ok"]:
        bad.append(f"torch on {device_check['device']} against {device_check['against']}")
    if args.device is not None and device_check is None:
        bad.append(f"torch on {args.device}: no CPU backend ran to compare it with (--backends)")
    if args.json:
        save_json(args.json, {
            "queries": n_q, "database": n_db, "bits": args.bits, "classes": args.classes, "threads": args.threads,
            "ref_queries": n_ref, "rows": [{"method": name, "seconds": s, "peak_mb": m, "map": v, "diff": diff}
                                           for name, s, m, v, diff in rows],
            "device_check": device_check, "failed": bad, "load_average": os.getloadavg()[0],
            "summary": _summary(rows, device_check, n_q, n_db)})
    if bad:
        print(f"FAIL: differ from the reference by more than {TOLERANCE:g}:", ", ".join(bad))
        return 1
    return 0


def _metrics_of(a: dict, b: dict) -> dict[str, tuple[float, float]]:
    """The scalar metrics two retrieval reports share, as (a, b) pairs: mAP@all under both tie
    rules, mAP@k and P@N (what a device must reproduce)."""
    pairs = {key: (a[key], b[key]) for key in ("map_all_stable", "map_all_expected")}
    for group in ("map_at_k", "precision_at_n"):
        pairs.update({f"{group}/{k}": (a[group][k], b[group][k]) for k in a[group]})
    return {key: (float(x), float(y)) for key, (x, y) in pairs.items()}


def _summary(rows: list[tuple], device_check: dict | None, n_q: int, n_db: int) -> str:
    """One line for a table: the seconds of each retrieval report and the device agreement."""
    prefix, suffix = "retrieval_report ", " (all metrics)"
    times = ", ".join(f"{name[len(prefix):-len(suffix)]} {s:.2f} s" for name, s, *_ in rows if name.startswith(prefix))
    out = f"{n_q} x {n_db}: retrieval_report {times}"
    if device_check:
        out += (f"; {device_check['device']} vs {device_check['against']}: max |diff| "
                f"{device_check['max_abs_diff']:.1e} over {device_check['metrics']} metrics")
    return out


if __name__ == "__main__":
    sys.exit(main())
