"""``cmhash <verb>``: every pipeline stage as a shell command (the rules call the same library).

Run ``cmhash <verb> --help`` for a verb's arguments. Errors on bad input exit with status 2 and a
message naming the file or key at fault.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cmhash.errors import CmhashError


def _config(args) -> dict:
    from cmhash.config import load_and_check

    return load_and_check(args.config)


def _dataset_cfg(cfg: dict, name: str) -> dict:
    from cmhash.errors import ConfigError

    if name not in cfg["datasets"]:
        raise ConfigError(f"datasets.{name}: not in the config (known: {sorted(cfg['datasets'])})")
    return cfg["datasets"][name]


def cmd_validate(args) -> None:
    from cmhash.config import cells, resolved_hparams

    cfg = _config(args)
    print(f"{args.config}: valid; {len(cells(cfg))} cells")
    if args.show:
        from cmhash.methods import get_method
        from cmhash.methods.hparams import _md

        for entry in resolved_hparams(cfg):
            runs = f" (variant of {entry['runs']})" if entry["runs"] != entry["method"] else ""
            ref = get_method(entry["runs"]).reference
            print(f"\nmethods.{entry['method']}{runs} on {entry['dataset']} (benchmark family "
                  f"{entry['family'] or 'none'}{f'; sources cite {ref}' if ref else ''}):")
            width = max(len(key) for key, *_ in entry["rows"])
            for key, value, provenance, source in entry["rows"]:
                print(f"  {key:<{width}}  {_md(value):<16} {provenance:<24} {source}")


def cmd_hparams(args) -> None:
    from cmhash.methods import METHODS
    from cmhash.methods.hparams import hparams_markdown

    names = args.methods or sorted(METHODS)
    for name in names:
        if name not in METHODS:
            from cmhash.methods import get_method

            get_method(name)  # the error naming the method (or its broken entry point)
    print(hparams_markdown([METHODS[n] for n in names]))


def cmd_generate(args) -> None:
    from cmhash.data.embedded import generate_embedded

    generate_embedded(args.out, n_images=args.n_images, seed=args.seed)


def cmd_prepare(args) -> None:
    from cmhash.pipeline import stage_prepare

    stage_prepare(_dataset_cfg(_config(args), args.dataset), args.raw, args.out)


def cmd_image_features(args) -> None:
    from cmhash.pipeline import stage_image_features

    cfg = _config(args)
    stage_image_features(_dataset_cfg(cfg, args.dataset), args.prepared, args.out, device=cfg.get("device", "auto"))


def cmd_text_features(args) -> None:
    from cmhash.pipeline import stage_text_features

    stage_text_features({"text_features": json.loads(args.options)}, args.prepared, args.out)


def cmd_noise(args) -> None:
    from cmhash.pipeline import stage_noise

    stage_noise(args.dataset_dir, args.model, args.rate, args.seed, args.out)


def cmd_train(args) -> None:
    from cmhash.cell import Cell
    from cmhash.pipeline import stage_train
    from cmhash.tracking import tracking_uri

    cfg = _config(args)
    cell = Cell.from_wildcards(vars(args))
    record = stage_train(cfg, cell, cell.dataset_dir, cell.noise_dir, cell.run_dir,
                         tracking_uri=None if args.no_tracking else tracking_uri("results/mlflow.db"))
    print(json.dumps(record, indent=2))


def cmd_evaluate(args) -> None:
    from cmhash.pipeline import stage_evaluate

    metrics = stage_evaluate(_config(args), args.dataset_dir, args.run_dir)
    print(json.dumps(metrics["directions"], indent=2))


def cmd_report(args) -> None:
    from cmhash.report import write_report

    out = Path(args.out)
    write_report(args.metrics, out / "results.csv", out / "tables.tex", out / "map_vs_noise.pdf", out / "map_vs_noise.png")


def _load_ids(path: str, n_rows: int) -> list:
    """Database ids: a 1-d .npy, a JSON list (or splits.json: its "database" list), else one id per line."""
    from cmhash.errors import DataError
    from cmhash.io import load_json, load_npy

    if path.endswith(".npy"):
        ids = load_npy(path, ndim=1).tolist()
    elif path.endswith(".json"):
        ids = load_json(path)
        if isinstance(ids, dict):
            if "database" not in ids:
                raise DataError(f"{path}: a JSON object needs a 'database' list (the splits.json form)")
            ids = ids["database"]
        if not isinstance(ids, list):
            raise DataError(f"{path}: expected a JSON list of ids")
    else:
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found")
        ids = Path(path).read_text().splitlines()
    if len(ids) != n_rows:
        raise DataError(f"{path}: {len(ids)} ids but the database codes have {n_rows} rows")
    return ids


def cmd_search(args) -> None:
    from cmhash.errors import ConfigError, DataError
    from cmhash.io import atomic_path, load_npy
    from cmhash.search import codes_as_bits, write_search_csv

    q = codes_as_bits(load_npy(args.query_codes, ndim=2), args.query_codes)
    db = codes_as_bits(load_npy(args.database_codes, ndim=2), args.database_codes)
    if q.shape[1] != db.shape[1]:
        raise DataError(f"{args.query_codes}: {q.shape[1]}-bit codes, but {args.database_codes} "
                        f"holds {db.shape[1]}-bit codes")
    if not 1 <= args.k <= db.shape[0]:
        raise ConfigError(f"-k {args.k}: must be in [1, {db.shape[0]}], the rows of {args.database_codes}")
    labels = {}
    for key, path, rows, codes in (("db_labels", args.database_labels, db.shape[0], args.database_codes),
                                   ("query_labels", args.query_labels, q.shape[0], args.query_codes)):
        if path is not None:
            labels[key] = load_npy(path, ndim=2)
            if labels[key].shape[0] != rows:
                raise DataError(f"{path}: {labels[key].shape[0]} rows but {codes} has {rows}")
    if "query_labels" in labels and "db_labels" not in labels:
        raise ConfigError("--query-labels: needs --database-labels (a row is relevant when they share a class)")
    if len(labels) == 2 and labels["query_labels"].shape[1] != labels["db_labels"].shape[1]:
        raise DataError(f"{args.query_labels}: {labels['query_labels'].shape[1]} classes but "
                        f"{args.database_labels} has {labels['db_labels'].shape[1]}")
    ids = _load_ids(args.database_ids, db.shape[0]) if args.database_ids else None
    kw = dict(db_ids=ids, backend=args.backend, progress=True, **labels)
    if args.out:
        with atomic_path(args.out, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
            write_search_csv(f, q, db, args.k, **kw)
    else:
        try:
            write_search_csv(sys.stdout, q, db, args.k, **kw)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (`| head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmhash", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name, fn, help_):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(fn=fn)
        return sp

    sp = verb("validate-config", cmd_validate, "check a config against the schema and the registries")
    sp.add_argument("config")
    sp.add_argument("--show", action="store_true",
                    help="list every grid method's resolved hyper-parameters per dataset, with their provenance")
    sp = verb("hparams", cmd_hparams, "the declared hyper-parameters of the methods (README tables)")
    sp.add_argument("methods", nargs="*", help="methods to list (default: every registered one)")
    sp.add_argument("--markdown", action="store_true", help="Markdown tables (the only format so far)")
    sp = verb("generate", cmd_generate, "write the embedded dataset in MIRFlickr-25K's raw layout")
    sp.add_argument("--out", required=True)
    sp.add_argument("--n-images", type=int, default=1500)
    sp.add_argument("--seed", type=int, default=0)
    sp = verb("prepare", cmd_prepare, "parse a raw layout into the prepared form")
    for a in ("--config", "--dataset", "--raw", "--out"):
        sp.add_argument(a, required=True)
    sp = verb("image-features", cmd_image_features, "VGG19 fc7 features of a prepared dataset")
    for a in ("--config", "--dataset", "--prepared", "--out"):
        sp.add_argument(a, required=True)
    sp = verb("text-features", cmd_text_features, "bag-of-words or Doc2Vec features (set PYTHONHASHSEED)")
    for a in ("--prepared", "--out"):
        sp.add_argument(a, required=True)
    sp.add_argument("--options", default='{"kind": "bow"}', help="JSON of the text_features config block")
    sp = verb("noise", cmd_noise, "seeded label noise on the training rows")
    sp.add_argument("--dataset-dir", required=True)
    sp.add_argument("--model", required=True)
    sp.add_argument("--rate", type=float, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--out", required=True)
    sp = verb("train", cmd_train, "train one cell (inputs under results/)")
    for a in ("--config", "--dataset", "--method", "--noise-model", "--protocol"):
        sp.add_argument(a, required=True)
    sp.add_argument("--rate", type=float, required=True)
    sp.add_argument("--bits", type=int, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--no-tracking", action="store_true")
    sp = verb("evaluate", cmd_evaluate, "retrieval metrics of a trained cell")
    for a in ("--config", "--dataset-dir", "--run-dir"):
        sp.add_argument(a, required=True)
    sp = verb("search", cmd_search, "the k nearest database items of each query by Hamming distance (CSV)")
    sp.add_argument("--query-codes", required=True,
                    help=".npy, queries x bits (+-1 or 0/1), e.g. codes/query_image.npy")
    sp.add_argument("--database-codes", required=True, help=".npy, items x bits, e.g. codes/database_text.npy")
    sp.add_argument("-k", type=int, required=True, help="neighbours per query (ties by database index)")
    sp.add_argument("--out", help="CSV file (default: standard output)")
    sp.add_argument("--database-ids", help="ids to print per item: 1-d .npy, JSON list or splits.json, or text lines")
    sp.add_argument("--database-labels", help=".npy, items x classes: print each item's classes")
    sp.add_argument("--query-labels", help=".npy, queries x classes: print whether each item is relevant")
    sp.add_argument("--backend", default="auto", choices=("auto", "numba", "numpy", "faiss"))
    sp = verb("report", cmd_report, "tables and figures from metrics.json files")
    sp.add_argument("--out", required=True)
    sp.add_argument("metrics", nargs="+")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cmhash.logs import setup_logging

    setup_logging()
    try:
        args.fn(args)
    except CmhashError as exc:
        print(f"cmhash {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
