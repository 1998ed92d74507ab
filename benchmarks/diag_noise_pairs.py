"""How much of the pairwise supervision the ``nrch`` noise model corrupts, per dataset.

A pairwise-similarity learner (the DCMH-style baseline) trains on S_ij = [y_i . y_j > 0] over
the training rows. ``nrch`` noise turns one positive label of a corrupted row off and one
negative label on (METHODS.md, "Noise"). On multi-label rows that rarely changes whether two
rows share a label; on single-label rows (Wikipedia) it replaces the row's only label, so every
similarity of that row is wrong. This prints, for each dataset and rate, over the training
rows (the diagonal excluded):

* ``S+``: fraction of pairs similar under the clean labels;
* ``flipped``: fraction of pairs whose similarity the noise changes;
* ``false S+``: fraction of the noisy similar pairs that are not similar under clean labels;
* ``lost S+``: fraction of the clean similar pairs that the noisy labels call dissimilar.

    .venv/bin/python benchmarks/diag_noise_pairs.py    # after `bash scripts/demo.sh`; Wikipedia
                                                       # and MIRFlickr rows need ../shared/data

MIRFlickr uses the noisy labels published with NRCH's code (first 3,000 of the 10,000 training
rows, to keep the pair matrix small); the others use ``cmhash.noise.corrupt`` with seed 0.

Measured 2026-11-26:

    dataset                      rate     S+  flipped  false S+  lost S+
    mirflickr25k (published)      0.2  0.547    0.067     0.051    0.074
    mirflickr25k (published)      0.5  0.547    0.150     0.119    0.160
    mirflickr25k (published)      0.8  0.547    0.231     0.191    0.244
    embedded                      0.2  0.556    0.069     0.049    0.075
    embedded                      0.5  0.556    0.151     0.117    0.160
    embedded                      0.8  0.556    0.230     0.180    0.250
    wikipedia                     0.2  0.107    0.074     0.340    0.358
    wikipedia                     0.5  0.107    0.149     0.706    0.720
    wikipedia                     0.8  0.107    0.184     0.881    0.889

The embedded set reproduces the real MIRFlickr figures to within .01 (the generator mirrors its
label statistics). At 50% noise, 88% of the similar pairs a pairwise learner sees on MIRFlickr
are still right; on Wikipedia only 29% are.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from cmhash.data.canonical import read_dataset
from cmhash.noise import corrupt

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def pair_stats(clean: np.ndarray, noisy: np.ndarray) -> tuple[float, float, float, float]:
    """(S+, flipped, false S+, lost S+) over the off-diagonal pairs (see the module docstring)."""
    c, n = clean.astype(np.float32), noisy.astype(np.float32)
    sc, sn = c @ c.T > 0, n @ n.T > 0
    np.fill_diagonal(sc, False)
    np.fill_diagonal(sn, False)
    off = sc.size - sc.shape[0]
    return (sc.sum() / off, (sc != sn).sum() / off, (sn & ~sc).sum() / max(sn.sum(), 1),
            (sc & ~sn).sum() / max(sc.sum(), 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    ap.add_argument("--rows", type=int, default=3000, help="MIRFlickr training rows used (pair matrix size)")
    args = ap.parse_args()
    rows: list[tuple[str, float, tuple]] = []
    mir = SHARED / "mirflickr25k"
    for rate in args.rates:
        path = mir / f"mirflickr25k-lall-noise_{rate}.h5"
        if path.is_file():
            with h5py.File(path, "r") as fh:
                rows.append(("mirflickr25k (published)", rate,
                             pair_stats(fh["True"][: args.rows], fh["result"][: args.rows])))
        else:
            print(f"{path}: not present, MIRFlickr row skipped")
    for name in ("embedded", "wikipedia"):
        folder = REPO / "results" / "datasets" / name
        if not (folder / "splits.json").is_file():
            print(f"{folder}: not built (bash scripts/demo.sh builds embedded; "
                  f"snakemake --configfile config/wikipedia.yaml builds wikipedia), skipped")
            continue
        ds = read_dataset(folder)
        clean = ds.labels[ds.splits.train]
        for rate in args.rates:
            rows.append((name, rate, pair_stats(clean, corrupt(clean, "nrch", rate, 0).noisy)))
    print(f"{'dataset':<28} {'rate':>4} {'S+':>6} {'flipped':>8} {'false S+':>9} {'lost S+':>8}")
    for name, rate, (pos, flipped, false_pos, lost) in rows:
        print(f"{name:<28} {rate:>4} {pos:>6.3f} {flipped:>8.3f} {false_pos:>9.3f} {lost:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
