"""Train and evaluate one cell of a config through the pipeline's own stages, outside Snakemake.

    .venv/bin/python benchmarks/run_cell.py --method nrch --out results/cell_nrch      # config/wikipedia.yaml
    .venv/bin/python benchmarks/run_cell.py --method scbch --data /path/to/wikipedia --json scbch.json
    .venv/bin/python benchmarks/run_cell.py --method nrch --set '{"epochs": 2}'        # a quick look

The same calls as the workflow's rules, in order: ``stage_assemble`` (the published feature
files of a feature source, e.g. Wikipedia, into a dataset folder), ``stage_noise``,
``stage_train`` and ``stage_evaluate`` (``cmhash.pipeline``), with the config's settings for
the cell (``cmhash.config.cell_settings``: ``methods.<method>``, ``standardize_features``).
Everything lands under ``--out``: ``dataset/``, ``noise/`` and ``run/`` (codes, history.csv,
config.json, train.json, metrics.json). Three things differ from a workflow cell, all for a
timed check: no MLflow run, no checkpoints (``training.checkpoint_every: 0``: at the published
widths each one is hundreds of MB) and no progress bar. ``--set`` adds hyper-parameter
overrides on top of the config's (``benchmarks/gpu_check.sh --dry`` narrows and shortens the
run with it); the run's ``config.json`` records them. Relative dataset paths in the config are
read from the repository root, as Snakemake reads them.

Used by ``benchmarks/gpu_check.sh`` for the published NRCH and SCBCH runs on Wikipedia.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cmhash.config import Cell, load_and_check
from cmhash.errors import CmhashError, ConfigError
from cmhash.io import save_json
from cmhash.pipeline import stage_assemble, stage_evaluate, stage_noise, stage_train

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "config" / "wikipedia.yaml")
    ap.add_argument("--dataset", default="wikipedia", help="a dataset of the config with a feature source")
    ap.add_argument("--data", type=Path, default=None, help="the dataset's files (default: the config's path)")
    ap.add_argument("--method", required=True)
    ap.add_argument("--noise-model", default="nrch")
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocol", default="sound", choices=["sound", "paper"])
    ap.add_argument("--n-validation", type=int, default=None, help="validation rows (default: the config's)")
    ap.add_argument("--set", default="{}", help="JSON of hyper-parameter overrides on top of the config's")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None, help="also write the cell's numbers to this JSON file")
    args = ap.parse_args(argv)
    try:
        record = run(args)
    except CmhashError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2))
    if args.json:
        save_json(args.json, record)
    return 0


def run(args: argparse.Namespace) -> dict:
    cfg = load_and_check(args.config)
    if args.dataset not in cfg["datasets"]:
        raise ConfigError(f"{args.config}: datasets.{args.dataset} not in the config")
    ds_cfg = dict(cfg["datasets"][args.dataset])
    if not ds_cfg.get("path") and args.data is None:
        raise ConfigError(f"{args.config}: datasets.{args.dataset}.path: this script runs feature sources only")
    data = args.data or Path(ds_cfg["path"])
    ds_cfg["path"] = str(data if data.is_absolute() else REPO / data)
    if args.n_validation is not None:
        ds_cfg["split"] = {**ds_cfg.get("split", {}), "n_validation": args.n_validation}
    cfg["datasets"] = {**cfg["datasets"], args.dataset: ds_cfg}
    overrides = json.loads(args.set)
    cfg["methods"] = {**(cfg.get("methods") or {}),
                      args.method: {**((cfg.get("methods") or {}).get(args.method) or {}), **overrides}}
    cfg["training"] = {**(cfg.get("training") or {}), "checkpoint_every": 0, "progress": False}

    out = args.out
    cell = Cell(args.dataset, args.method, args.noise_model, args.rate, args.bits, args.seed, args.protocol)
    t0 = time.perf_counter()
    stage_assemble(ds_cfg, out / "dataset")
    stage_noise(out / "dataset", args.noise_model, args.rate, args.seed, out / "noise")
    t1 = time.perf_counter()
    train = stage_train(cfg, cell, out / "dataset", out / "noise", out / "run", tracking_uri=None)
    metrics = stage_evaluate(cfg, out / "dataset", out / "run")
    hp = json.loads((out / "run" / "config.json").read_text())["hparams"]
    maps = {name: d["map"] for name, d in metrics["directions"].items()}
    return {"cell": cell.as_dict(), "data": ds_cfg["path"], "overrides": overrides, "device": train["device"],
            "epochs": hp.get("epochs"), "image_hidden": hp.get("image_hidden"), "text_hidden": hp.get("text_hidden"),
            "selected_epoch": train["selected_epoch"], "train_seconds": train["wall_seconds"],
            "eval_seconds": metrics["eval_seconds"], "data_seconds": round(t1 - t0, 3), "map": maps,
            "run_dir": str(out / "run"),
            "summary": " ".join(f"{name} {value:.4f}" for name, value in maps.items())
                       + f" (mAP@all, {args.protocol}, rate {args.rate}, {args.bits} bits; epoch "
                         f"{train['selected_epoch']} of {hp.get('epochs')} kept; widths {hp.get('image_hidden')}/"
                         f"{hp.get('text_hidden')}; train {train['wall_seconds']:.1f} s on {train['device']})"}


if __name__ == "__main__":
    sys.exit(main())
