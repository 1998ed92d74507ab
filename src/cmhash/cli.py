"""``cmhash <verb>``: every pipeline stage as a shell command (the rules call the same library).

Run ``cmhash <verb> --help`` for a verb's arguments. Errors on bad input exit with status 2 and a
message naming the file or key at fault.
"""
from __future__ import annotations

import argparse
import json
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
    from cmhash.config import cells

    cfg = _config(args)
    print(f"{args.config}: valid; {len(cells(cfg))} cells")


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
    from cmhash.config import Cell
    from cmhash.pipeline import stage_train
    from cmhash.tracking import tracking_uri

    cfg = _config(args)
    cell = Cell(args.dataset, args.method, args.noise_model, args.rate, args.bits, args.seed, args.protocol)
    noise = Path("results/noise") / args.dataset / f"{args.noise_model}-{cell.rate_str}" / f"seed{args.seed}"
    record = stage_train(cfg, cell, Path("results/datasets") / args.dataset, noise, cell.run_dir,
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmhash", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name, fn, help_):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(fn=fn)
        return sp

    sp = verb("validate-config", cmd_validate, "check a config against the schema and the registries")
    sp.add_argument("config")
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
