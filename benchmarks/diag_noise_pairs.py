"""How much of the pairwise supervision each noise model corrupts, per dataset.

A pairwise-similarity learner (the DCMH-style baseline) trains on S_ij = [y_i . y_j > 0] over
the training rows. Every noise model in ``cmhash.noise`` (and, for MIRFlickr, the noisy labels
published with NRCH's code) corrupts floor(rate * N) training rows; how many similar pairs
that falsifies depends on the model and on the labels. ``nrch`` turns one positive label of a
row off and one negative on: on multi-label rows that rarely changes whether two rows share a
label, on single-label rows (Wikipedia) it replaces the row's only label, so every similarity
of that row is wrong. ``missing`` only removes labels (pairs are only lost); ``classcond``
moves a label to a class that co-occurs with it (or, single-label, looks like it), and
``instance`` to the class a classifier on the features finds most likely. For each dataset,
model and rate, over the training rows (the diagonal excluded):

* ``rows``: share of the rows whose labels changed;
* ``S+``: fraction of pairs similar under the clean labels;
* ``flipped``: fraction of pairs whose similarity the noise changes;
* ``false S+``: fraction of the noisy similar pairs that are not similar under clean labels;
* ``lost S+``: fraction of the clean similar pairs that the noisy labels call dissimilar.

    .venv/bin/python benchmarks/diag_noise_pairs.py      # MIRFlickr and Wikipedia rows need ../shared/data

Datasets. MIRFlickr: the real labels ``LAll`` of NRCH's training rows 2000..11999 (noise drawn
on all 10,000; pairs counted on the first ``--rows``, 3,000, to keep the pair matrix small);
the tag bag-of-words ``YAll`` serves as the features (no image features are shipped). The
embedded set: results/datasets/embedded when built (its image and text features), else
labels and tags drawn by ``cmhash.data.embedded.sample_rows`` (4,000 rows, seed 0, the tag
bag-of-words as the features). Wikipedia: ``cmhash.data.import_features('wikipedia', ...)``
from ../shared/data/wikipedia, its 2,173 training rows (SIFT BoW and LDA features).
``cmhash.noise.corrupt`` with seed 0; ``n/a`` where the model does not apply (``missing`` and
``dcgmh`` need rows with different label counts, which one-hot data lacks).

Measured 2026-12-02 (2 shared CPU cores, 228 s; embedded: generated labels and tags; ``rows``
is counted on the same first 3,000 rows as the pairs, so it scatters around the rate):

    dataset       model      rate  rows     S+  flipped  false S+  lost S+
    mirflickr25k  published   0.2 0.199  0.547    0.067     0.051    0.074
    mirflickr25k  published   0.5 0.497  0.547    0.150     0.119    0.160
    mirflickr25k  published   0.8 0.802  0.547    0.231     0.191    0.244
    mirflickr25k  nrch        0.2 0.188  0.547    0.060     0.045    0.065
    mirflickr25k  nrch        0.5 0.494  0.547    0.147     0.118    0.156
    mirflickr25k  nrch        0.8 0.803  0.547    0.231     0.188    0.247
    mirflickr25k  dcgmh       0.2 0.189  0.547    0.145     0.130    0.136
    mirflickr25k  dcgmh       0.5 0.490  0.547    0.317     0.292    0.284
    mirflickr25k  dcgmh       0.8 0.790  0.547    0.416     0.386    0.358
    mirflickr25k  sym         0.2 0.187  0.547    0.142     0.107    0.160
    mirflickr25k  sym         0.5 0.493  0.547    0.313     0.254    0.353
    mirflickr25k  sym         0.8 0.798  0.547    0.404     0.341    0.457
    mirflickr25k  missing     0.2 0.190  0.547    0.068     0.000    0.124
    mirflickr25k  missing     0.5 0.506  0.547    0.184     0.000    0.336
    mirflickr25k  missing     0.8 0.806  0.547    0.288     0.000    0.526
    mirflickr25k  classcond   0.2 0.188  0.547    0.063     0.063    0.052
    mirflickr25k  classcond   0.5 0.494  0.547    0.156     0.153    0.128
    mirflickr25k  classcond   0.8 0.803  0.547    0.235     0.225    0.197
    mirflickr25k  instance    0.2 0.198  0.547    0.076     0.095    0.037
    mirflickr25k  instance    0.5 0.499  0.547    0.168     0.194    0.088
    mirflickr25k  instance    0.8 0.793  0.547    0.248     0.264    0.148
    embedded      nrch        0.2 0.196  0.549    0.061     0.044    0.068
    embedded      nrch        0.5 0.510  0.549    0.156     0.118    0.174
    embedded      nrch        0.8 0.805  0.549    0.225     0.174    0.253
    embedded      dcgmh       0.2 0.201  0.549    0.148     0.124    0.148
    embedded      dcgmh       0.5 0.495  0.549    0.316     0.281    0.302
    embedded      dcgmh       0.8 0.792  0.549    0.406     0.369    0.370
    embedded      sym         0.2 0.190  0.549    0.139     0.098    0.163
    embedded      sym         0.5 0.495  0.549    0.303     0.235    0.353
    embedded      sym         0.8 0.784  0.549    0.387     0.315    0.452
    embedded      missing     0.2 0.198  0.549    0.074     0.000    0.135
    embedded      missing     0.5 0.495  0.549    0.185     0.000    0.336
    embedded      missing     0.8 0.791  0.549    0.291     0.000    0.531
    embedded      classcond   0.2 0.196  0.549    0.067     0.064    0.056
    embedded      classcond   0.5 0.510  0.549    0.159     0.146    0.144
    embedded      classcond   0.8 0.805  0.549    0.234     0.218    0.204
    embedded      instance    0.2 0.194  0.549    0.065     0.081    0.032
    embedded      instance    0.5 0.496  0.549    0.162     0.178    0.101
    embedded      instance    0.8 0.798  0.549    0.245     0.250    0.168
    wikipedia     nrch        0.2 0.200  0.107    0.074     0.340    0.358
    wikipedia     nrch        0.5 0.500  0.107    0.149     0.706    0.720
    wikipedia     nrch        0.8 0.800  0.107    0.184     0.881    0.889
    wikipedia     dcgmh       0.2   n/a
    wikipedia     dcgmh       0.5   n/a
    wikipedia     dcgmh       0.8   n/a
    wikipedia     sym         0.2 0.187  0.107    0.070     0.320    0.338
    wikipedia     sym         0.5 0.449  0.107    0.139     0.654    0.668
    wikipedia     sym         0.8 0.723  0.107    0.179     0.857    0.866
    wikipedia     missing     0.2   n/a
    wikipedia     missing     0.5   n/a
    wikipedia     missing     0.8   n/a
    wikipedia     classcond   0.2 0.200  0.107    0.071     0.327    0.342
    wikipedia     classcond   0.5 0.500  0.107    0.135     0.627    0.613
    wikipedia     classcond   0.8 0.800  0.107    0.150     0.670    0.613
    wikipedia     instance    0.2 0.200  0.107    0.062     0.292    0.288
    wikipedia     instance    0.5 0.500  0.107    0.114     0.530    0.532
    wikipedia     instance    0.8 0.800  0.107    0.157     0.706    0.666

Reading. Multi-label (MIRFlickr, and the embedded set within ~.02 of it): at the same rate the
models falsify very different shares of the supervision. ``sym`` and ``dcgmh`` rewrite whole
label sets (lost S+ .35/.28 at 0.5); ``missing`` only loses pairs (lost S+ .34, false S+ 0);
``nrch`` (.16) sits with ``classcond`` (.13), whose added class co-occurs with the removed one,
and ``instance`` loses the fewest (.09): the rows it picks are the ones whose features already
look like the wrong class, so their new label is often shared with neighbours, but it creates
the most false similar pairs (.19). Single-label (Wikipedia): every corrupted row's
similarities change, but ``classcond`` and ``instance`` send the rows of a class to the same few
look-alike classes, so corrupted rows stay similar among themselves: at 0.8, lost S+ .61/.67
against .89 for ``nrch``. ``sym`` changes fewer rows (it may redraw the true class: 0.45 at 0.5).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
from scipy.io import loadmat

from cmhash.data.canonical import read_dataset
from cmhash.errors import DataError
from cmhash.noise import NOISE_MODELS, corrupt

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MODELS = ("nrch", "dcgmh", "sym", "missing", "classcond", "instance")


def pair_stats(clean: np.ndarray, noisy: np.ndarray) -> tuple[float, float, float, float]:
    """(S+, flipped, false S+, lost S+) over the off-diagonal pairs (see the module docstring)."""
    c, n = clean.astype(np.float32), noisy.astype(np.float32)
    sc, sn = c @ c.T > 0, n @ n.T > 0
    np.fill_diagonal(sc, False)
    np.fill_diagonal(sn, False)
    off = sc.size - sc.shape[0]
    return (sc.sum() / off, (sc != sn).sum() / off, (sn & ~sc).sum() / max(sn.sum(), 1),
            (sc & ~sn).sum() / max(sc.sum(), 1))


def mirflickr(rows: int):
    """(labels, features, published noisy labels by rate) of NRCH's MIRFlickr training rows."""
    mir = SHARED / "mirflickr25k"
    if not (mir / "mirflickr25k-lall.mat").is_file():
        print(f"{mir}: not present, MIRFlickr rows skipped")
        return None
    labels = loadmat(mir / "mirflickr25k-lall.mat")["LAll"][2000:12000].astype(np.uint8)
    tags = loadmat(mir / "mirflickr25k-yall.mat")["YAll"][2000:12000]
    published = {}
    for path in sorted(mir.glob("mirflickr25k-lall-noise_*.h5")):
        with h5py.File(path, "r") as fh:
            published[float(path.stem.rsplit("_", 1)[1])] = fh["result"][:rows]
    return labels, (tags,), published


def embedded(n_images: int = 4000):
    """(labels, features, source) of the embedded set: the built one, else generated labels and tags."""
    folder = REPO / "results" / "datasets" / "embedded"
    if (folder / "splits.json").is_file():
        ds = read_dataset(folder)
        train = ds.splits.train
        return ds.labels[train], (ds.image[train], ds.text[train]), str(folder)
    from cmhash.data.embedded import default_min_tag_count, sample_rows

    sampled = sample_rows(n_images, seed=0)
    counts = Counter(t for tags in sampled.tags for t in set(tags))
    vocab = sorted(t for t, c in counts.items() if c >= default_min_tag_count(n_images))
    col = {t: j for j, t in enumerate(vocab)}
    bow = np.zeros((n_images, len(vocab)), np.uint8)
    for i, tags in enumerate(sampled.tags):
        bow[i, [col[t] for t in tags if t in col]] = 1
    return sampled.labels, (bow,), f"generated by sample_rows({n_images}, seed=0), tag BoW features"


def wikipedia():
    path = SHARED / "wikipedia"
    if not (path / "raw_features.mat").is_file():
        print(f"{path}: not present, Wikipedia rows skipped")
        return None
    from cmhash.data import import_features

    with tempfile.TemporaryDirectory() as tmp:
        ds = import_features("wikipedia", path, Path(tmp) / "wikipedia", n_validation=0, seed=0)
    train = ds.splits.train
    return ds.labels[train], (ds.image[train], ds.text[train])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    ap.add_argument("--rows", type=int, default=3000, help="training rows the pairs are counted on")
    args = ap.parse_args()
    assert set(MODELS) == set(NOISE_MODELS), "a noise model is missing from this benchmark"
    start = time.time()
    table: list[tuple[str, str, float, tuple | None]] = []

    def add(name: str, labels: np.ndarray, features) -> None:
        clean = labels[: args.rows]
        for model in MODELS:
            for rate in args.rates:
                try:
                    noisy = corrupt(labels, model, rate, 0, features=features).noisy[: args.rows]
                except DataError:
                    table.append((name, model, rate, None))
                    continue
                changed = float((noisy != clean).any(1).mean())
                table.append((name, model, rate, (changed, *pair_stats(clean, noisy))))

    mir = mirflickr(args.rows)
    if mir is not None:
        labels, features, published = mir
        for rate in args.rates:
            if rate in published:
                clean, noisy = labels[: args.rows], published[rate]
                table.append(("mirflickr25k", "published", rate,
                              (float((noisy != clean).any(1).mean()), *pair_stats(clean, noisy))))
        add("mirflickr25k", labels, features)
    labels, features, source = embedded()
    print(f"embedded: {source}")
    add("embedded", labels, features)
    wiki = wikipedia()
    if wiki is not None:
        add("wikipedia", *wiki)
    print(f"{'dataset':<13} {'model':<10} {'rate':>4} {'rows':>5} {'S+':>6} {'flipped':>8} {'false S+':>9} {'lost S+':>8}")
    for name, model, rate, values in table:
        if values is None:
            print(f"{name:<13} {model:<10} {rate:>4} {'n/a':>5}")
            continue
        changed, pos, flipped, false_pos, lost = values
        print(f"{name:<13} {model:<10} {rate:>4} {changed:>5.3f} {pos:>6.3f} {flipped:>8.3f} {false_pos:>9.3f} {lost:>8.3f}")
    print(f"({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
