"""NRCH against the noise-agnostic DCMH-style baseline on the embedded dataset, small preset.

    bash scripts/demo.sh                                   # builds results/datasets/embedded (once)
    .venv/bin/python benchmarks/bench_nrch_vs_baseline.py  # 3 rates x 3 seeds x 2 methods, 64 bits, sound
    .venv/bin/python benchmarks/bench_nrch_vs_baseline.py --rates 0.5 --seeds 0   # one cell per method
    .venv/bin/python benchmarks/bench_nrch_vs_baseline.py --build /tmp/embedded   # no demo run: build it here

Each run goes through ``cmhash.train.Trainer`` exactly as a workflow cell does: ``nrch`` noise
at the given rate seeded with the run's seed, the ``sound`` protocol (model selection on the
validation rows, with their noisy labels), then mAP@all on the query set against the database
with clean labels, stable ties, queries without a relevant item skipped.

Small preset (printed with the results): both encoders narrowed to ``--hidden`` (512) instead
of the published 8192, ``--epochs`` epochs instead of NRCH's 100, and NRCH's epoch-based
settings scaled by ``epochs / 100``: warm-up ``round(19 * s)`` epochs, evaluation every
``round(20 * s)`` epochs, ``num_gradual = round(100 * s)``. The baseline keeps its defaults
except the widths, the epochs and ``eval_every`` (scaled from 5 per 50 epochs). NRCH's
learning rate is the published 1e-5 unless ``--nrch-lr`` says otherwise; note that the
embedded training set has 900 fitting rows, so an epoch has ~8 steps instead of ~79.

For every rate: mean +- std over seeds per method and direction, and whether NRCH's mean
exceeds the baseline's by more than the pooled std ``sqrt((s_nrch^2 + s_base^2) / 2)``.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cmhash.data.canonical import read_dataset
from cmhash.evaluate import map_at_all
from cmhash.methods import resolve_hparams
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / "results" / "datasets" / "embedded"


def build_embedded(out: Path, config: Path) -> Path:
    """Build the embedded dataset with the pipeline's stage functions (what the demo's data rules
    run), into ``out`` (raw/, prepared/, features/, dataset/). Returns the dataset folder."""
    import yaml

    from cmhash import pipeline

    ds_cfg = yaml.safe_load(config.read_text())["datasets"]["embedded"]
    raw, prepared, feats, dataset = out / "raw", out / "prepared", out / "features", out / "dataset"
    if not (dataset / "splits.json").is_file():
        pipeline.stage_generate(ds_cfg, raw)
        pipeline.stage_prepare(ds_cfg, raw, prepared)
        pipeline.stage_image_features(ds_cfg, prepared, feats / "image.npy", progress=False)
        pipeline.stage_text_features(ds_cfg, prepared, feats / "text.npy", progress=False)
        pipeline.stage_assemble(ds_cfg, dataset, prepared, feats / "image.npy", feats / "text.npy")
    return dataset


def preset(method: str, epochs: int, hidden: int, nrch_lr: float | None) -> dict:
    """The small preset's overrides for ``method`` (see the module docstring)."""
    widths = {"image_hidden": [hidden, hidden], "text_hidden": [hidden]}
    scale = epochs / 100.0
    if method == "nrch":
        out = {**widths, "epochs": epochs, "warmup_epochs": round(19 * scale), "eval_every": max(1, round(20 * scale)),
               "num_gradual": max(1, round(100 * scale))}
        if nrch_lr is not None:
            out["lr"] = nrch_lr
        return out
    return {**widths, "epochs": epochs, "eval_every": max(1, round(5 * epochs / 50))}


def run_one(ds, method: str, rate: float, seed: int, bits: int, protocol: str, overrides: dict) -> dict:
    noise = corrupt(ds.labels[ds.splits.train], "nrch", rate, seed)
    hp, _ = resolve_hparams(method, "embedded", overrides)
    settings = TrainSettings(method=method, hp=hp, bits=bits, protocol=protocol, seed=seed, device="auto",
                             progress=False, checkpoint_every=0)
    t0 = time.perf_counter()
    result = Trainer(ds, noise.noisy, noise.corrupted, settings).run()
    seconds = time.perf_counter() - t0
    q, db = ds.labels[ds.splits.query], ds.labels[ds.splits.database]
    c = result.codes
    row = {"method": method, "rate": rate, "seed": seed,
           "i2t": map_at_all(c["query_image"], c["database_text"], q, db),
           "t2i": map_at_all(c["query_text"], c["database_image"], q, db),
           "selected_epoch": result.selected_epoch, "seconds": seconds,
           # distinct query codes per modality: 1 means the encoder collapsed to a single code
           "distinct_image_codes": len(np.unique(c["query_image"], axis=0)),
           "distinct_text_codes": len(np.unique(c["query_text"], axis=0))}
    row["avg"] = (row["i2t"] + row["t2i"]) / 2
    last = [r for r in result.history if "select/auc" in r]
    if last:
        for key in ("select/auc", "select/weight_clean", "select/weight_noisy", "select/precision", "select/kept_fraction"):
            if key in last[-1]:
                row[key] = last[-1][key]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset-dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--build", type=Path, default=None, help="build the embedded dataset under this folder first")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--protocol", default="sound", choices=["sound", "paper"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--nrch-lr", type=float, default=None, help="NRCH learning rate (default: published 1e-5)")
    ap.add_argument("--methods", nargs="+", default=["nrch", "baseline"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csv", type=Path, default=None, help="also write every run to this CSV")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dataset_dir = build_embedded(args.build, args.config) if args.build else args.dataset_dir
    if not (dataset_dir / "splits.json").is_file():
        print(f"{dataset_dir}: no dataset there. Run `bash scripts/demo.sh` first (it builds "
              f"results/datasets/embedded), or pass --build DIR to build it here with cmhash.pipeline's stages.",
              file=sys.stderr)
        return 2
    ds = read_dataset(dataset_dir)
    presets = {m: preset(m, args.epochs, args.hidden, args.nrch_lr) for m in args.methods}
    print(f"dataset {dataset_dir}: {ds.labels.shape[0]} rows, train {ds.splits.train.size} "
          f"(validation {ds.splits.validation.size}), query {ds.splits.query.size}, database {ds.splits.database.size}, "
          f"{ds.n_classes} classes; {args.bits} bits, protocol {args.protocol}, seeds {args.seeds}")
    for m, o in presets.items():
        hp, _ = resolve_hparams(m, "embedded", o)
        print(f"preset {m}: " + ", ".join(f"{k}={hp[k]}" for k in sorted(o)) + f" (lr={hp['lr']})")

    runs: list[dict] = []
    for rate in args.rates:
        for seed in args.seeds:
            for m in args.methods:
                row = run_one(ds, m, rate, seed, args.bits, args.protocol, presets[m])
                runs.append(row)
                extra = "  ".join(f"{k[7:]}={row[k]:.3f}" for k in row if k.startswith("select/"))
                print(f"  rate {rate} seed {seed} {m:>8}: i2t {row['i2t']:.4f} t2i {row['t2i']:.4f} "
                      f"(epoch {row['selected_epoch']}, {row['seconds']:.0f} s, distinct query codes "
                      f"{row['distinct_image_codes']}/{row['distinct_text_codes']}) {extra}", flush=True)
    if args.csv:
        keys = sorted({k for r in runs for k in r})
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(runs)

    print()
    print(f"{'rate':>5} {'method':>9} {'i2t':>15} {'t2i':>15} {'avg':>15}")
    for rate in args.rates:
        stats = {}
        for m in args.methods:
            cell = [r for r in runs if r["rate"] == rate and r["method"] == m]
            stats[m] = {d: (np.mean([r[d] for r in cell]), np.std([r[d] for r in cell], ddof=1) if len(cell) > 1 else 0.0)
                        for d in ("i2t", "t2i", "avg")}
            print(f"{rate:>5} {m:>9} " + " ".join(f"{stats[m][d][0]:.4f}±{stats[m][d][1]:.4f}".rjust(15)
                                                   for d in ("i2t", "t2i", "avg")))
        if "nrch" in stats and "baseline" in stats:
            verdicts = []
            for d in ("i2t", "t2i", "avg"):
                (mn, sn), (mb, sb) = stats["nrch"][d], stats["baseline"][d]
                pooled = float(np.sqrt((sn**2 + sb**2) / 2))
                verdicts.append(f"{d} {mn - mb:+.4f} (pooled std {pooled:.4f}: "
                                f"{'NRCH better' if mn - mb > pooled else 'not better'})")
            print(f"{'':>5} {'nrch-base':>9} " + "; ".join(verdicts))
    if len(args.seeds) < 2:
        print("(one seed: std is 0, the comparison is indicative only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
