"""Training on the CPU with subnormal floats flushed to zero or not, side by side.

    .venv/bin/python benchmarks/bench_denormal.py --dataset-dir results/datasets/wikipedia
    .venv/bin/python benchmarks/bench_denormal.py --dataset-dir results/datasets/embedded --methods dcgmh

Each method of ``--config`` (default config/robustness.yaml, its small preset and its
``standardize_features`` for the dataset) trains one cell (``--noise-model`` sym at ``--rate``
0.2, seed 0, ``sound``, 64 bits, one torch thread) twice: with ``TrainSettings.flush_denormal``
off (IEEE gradual underflow, what torch does by default) and on (the trainer's default on the
CPU: ``torch.set_flush_denormal(True)``, flush-to-zero and denormals-are-zero). Printed: the
training seconds of each, the speed-up, and the mean of i2t and t2i mAP (DCGMH: fused) of each,
which should agree to about the third decimal (flushing changes values below 1.2e-38; the
trajectories then part as any rounding change makes them).

Why: a profile of the robustness study showed DCGMH's 128-wide nets taking ~150 ms a step on
Wikipedia, where the same network on random inputs takes ~1 ms; part of the time went to
BatchNorm and matrix kernels working on subnormal numbers (tiny activations, gradients and
optimiser moments made during training), which x86 cores process in microcode, up to ~100x
slower each. Run it alone: it sizes nothing but torch's own pool.

Measured 2026-12-02 on the 2-core machine, quiet, Wikipedia (2,173 training rows, standardised),
the robustness preset, training loop only:

       method    off s     on s  speed-up  mAP off   mAP on
     baseline      3.5      0.7     5.14x    0.323    0.323
         nrch      1.9      0.9     2.08x    0.295    0.295
        scbch      2.0      1.8     1.11x    0.293    0.293
         ucch      3.1      3.1     1.02x    0.358    0.358
        dcgmh      3.1      1.5     2.09x    0.530    0.530

The mAP agrees to the third decimal in every row. Run by hand side by side (benchmarks/run_cell.py,
outside Snakemake), two of the DCGMH cells above took 151 s each against 2.0 s alone: OpenMP and
OpenBLAS pools of one thread per core in each process, spin-waiting against each other; with
the pools at one thread (cmhash.threads) the pair took 10 s each. Snakemake's script jobs get
those variables from Snakemake already (snakemake/shell.py:281-286).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from common import train_cell  # benchmarks/common.py

from cmhash.config import load_and_check
from cmhash.data.canonical import read_dataset
from cmhash.evaluate import map_at_all
from cmhash.methods import get_method

REPO = Path(__file__).resolve().parents[1]


def score(ds, result) -> float:
    """The mean mAP@all of the cell's directions on query vs database, clean labels."""
    q, db = ds.labels[ds.splits.query], ds.labels[ds.splits.database]
    c = result.codes
    if "query_fused" in c:
        return map_at_all(c["query_fused"], c["database_fused"], q, db)
    return (map_at_all(c["query_image"], c["database_text"], q, db)
            + map_at_all(c["query_text"], c["database_image"], q, db)) / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset-dir", type=Path, required=True, help="an assembled dataset (results/datasets/<name>)")
    ap.add_argument("--dataset", default=None, help="its name in --config (default: the folder's name)")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "robustness.yaml")
    ap.add_argument("--methods", nargs="+", default=["baseline", "nrch", "scbch", "ucch", "dcgmh"])
    ap.add_argument("--noise-model", default="sym")
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    if not (args.dataset_dir / "splits.json").is_file():
        print(f"{args.dataset_dir}: no assembled dataset there (run the workflow first)", file=sys.stderr)
        return 2
    cfg = load_and_check(args.config)
    name = args.dataset or args.dataset_dir.name
    if name not in cfg["datasets"]:
        print(f"dataset '{name}' is not in {args.config}; pass --dataset", file=sys.stderr)
        return 2
    standardize = bool(cfg["datasets"][name].get("standardize_features", False))
    torch.set_num_threads(1)
    ds = read_dataset(args.dataset_dir)
    print(f"{args.dataset_dir}: {ds.splits.train.size} training rows; {args.noise_model} {args.rate}, seed "
          f"{args.seed}, sound, 64 bits, 1 thread, standardised {standardize}, preset of {args.config.name}")
    print(f"{'method':>9}  {'off s':>7}  {'on s':>7}  {'speed-up':>8}  {'mAP off':>7}  {'mAP on':>7}")
    for method in args.methods:
        overrides = dict((cfg.get("methods") or {}).get(method) or {})
        label_free = not get_method(method).needs("sound").labels
        rate = 0.0 if label_free else args.rate
        row = {}
        for flush in (False, True):
            start = time.perf_counter()
            _, result, _ = train_cell(ds, method, args.noise_model, rate, args.seed, 64, "sound", overrides,
                                      standardize=standardize, flush_denormal=flush)
            row[flush] = (time.perf_counter() - start, score(ds, result))
        torch.set_flush_denormal(False)
        (off, map_off), (on, map_on) = row[False], row[True]
        print(f"{method:>9}  {off:>7.1f}  {on:>7.1f}  {off / on:>7.2f}x  {map_off:>7.3f}  {map_on:>7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
