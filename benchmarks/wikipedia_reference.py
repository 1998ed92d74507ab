"""The Wikipedia reference table (issue 14): NRCH and SCBCH (both alpha/beta settings) at the
published settings, from the runs ``config/wikipedia_reference.yaml`` makes through Snakemake.

    snakemake --cores 2 --configfile config/wikipedia_reference.yaml     # ~15-30 min a run here
    .venv/bin/python benchmarks/wikipedia_reference.py                   # the table
    .venv/bin/python benchmarks/wikipedia_reference.py --record          # + keep the finished runs

Each finished cell (``metrics.json`` and ``train.json`` under ``results/runs/...``) gives one row:
i2t and t2i mAP@all of the kept model, the epoch kept, seconds per epoch. ``--record`` writes that
row, with the run's hyper-parameters and the commit, to
``benchmarks/records/wikipedia_reference/<run dir>.json``: a run takes up to half an hour on 2 cores,
so the nine runs are recorded as they finish (possibly over several sessions) and the table is
printed from the records and the runs present (a run present wins over its record). Printed per
method: n, mean +- std (ddof 1) of i2t and t2i, the epochs kept, seconds per epoch; then the
alpha/beta decision: the code's values (``scbch_code_weights``) replace the README's (``scbch``)
only if they win on the mean of i2t and t2i by more than the pooled std.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from cmhash.cell import Cell
from cmhash.config import load_and_check, training_cells
from cmhash.io import atomic_path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "wikipedia_reference.yaml"
RECORDS = REPO / "benchmarks" / "records" / "wikipedia_reference"


def run_row(cell: Cell, root: Path) -> dict | None:
    """The row of a finished run under ``root`` (None if it has not finished)."""
    run = root / cell.run_dir
    if not (run / "metrics.json").is_file():
        return None
    metrics = json.loads((run / "metrics.json").read_text())
    train = json.loads((run / "train.json").read_text())
    config = json.loads((run / "config.json").read_text())
    epochs = int(config["hparams"]["epochs"])
    return {"cell": cell.name, "method": cell.method, "seed": cell.seed,
            "i2t": metrics["directions"]["i2t"]["map"], "t2i": metrics["directions"]["t2i"]["map"],
            "selected_epoch": train["selected_epoch"], "epochs": epochs,
            # a resumed run's wall time covers only the epochs after its checkpoint
            "seconds_per_epoch": train["wall_seconds"] / (epochs - int(train.get("resumed_from") or 0)),
            "resumed_from": train.get("resumed_from"), "hparams": config["hparams"],
            "commit": run_commit(config)}


def run_commit(config: dict) -> str:
    """The commit the run's code came from (its config.json), not the recording checkout's."""
    recorded = str(config.get("git_commit") or "unknown")
    if recorded != "unknown":
        return recorded[:7]
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    return (out.stdout.strip() or "unknown") + " (recording checkout; the run did not record its own)"


def mean_std(values: list[float]) -> str:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return f"{np.mean(values):.3f} ± {std:.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=REPO, help="the folder holding results/ (default: the checkout)")
    ap.add_argument("--record", action="store_true", help=f"write each finished run's row under {RECORDS}")
    args = ap.parse_args()
    cfg = load_and_check(CONFIG)
    rows = []
    for cell in training_cells(cfg):
        row = run_row(cell, args.results)
        record = RECORDS / (cell.run_dir.removeprefix("results/runs/").replace("/", "_") + ".json")
        if row is not None and args.record:
            RECORDS.mkdir(parents=True, exist_ok=True)
            with atomic_path(record, suffix=".json") as tmp:
                Path(tmp).write_text(json.dumps(row, indent=1) + "\n")
        if row is None and record.is_file():
            row = json.loads(record.read_text())
        if row is not None:
            rows.append(row)
    print(f"{'method':>20} {'n':>2} {'i2t':>15} {'t2i':>15} {'epochs kept':>14} {'s/epoch':>8}")
    means = {}
    for method in cfg["grid"]["methods"]:
        got = sorted((r for r in rows if r["method"] == method), key=lambda r: r["seed"])
        if not got:
            print(f"{method:>20}  0   (no finished run)")
            continue
        means[method] = [(r["i2t"] + r["t2i"]) / 2 for r in got]
        kept = ",".join(str(r["selected_epoch"]) for r in got)
        print(f"{method:>20} {len(got):>2} {mean_std([r['i2t'] for r in got]):>15} {mean_std([r['t2i'] for r in got]):>15}"
              f" {kept:>14} {np.mean([r['seconds_per_epoch'] for r in got]):>8.1f}   seeds {[r['seed'] for r in got]}")
        for r in got:
            if "note" in r:  # a record whose run files were not kept says where its figures come from
                print(f"{'':>20}    seed {r['seed']}: {r['note']}")
    if len(means.get("scbch", [])) > 1 and len(means.get("scbch_code_weights", [])) > 1:
        a, b = means["scbch"], means["scbch_code_weights"]
        pooled = float(np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2))
        gain = float(np.mean(b) - np.mean(a))
        print(f"alpha/beta: code values 0.3/0.7 minus README values 0.7/0.3 = {gain:+.3f} (mean of i2t and t2i; "
              f"pooled std {pooled:.3f}): {'switch the default' if gain > pooled else 'the default stays 0.7/0.3'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
