# Helpers, config validation and wildcard constraints shared by every rule.
import json
import os

from snakemake.utils import validate

from cmhash.config import cells, check_config, format_rate
from cmhash.data import SOURCES

validate(config, schema="../schemas/config.schema.yaml")
check_config(config)

# Same seed, same hashing in every Python job (gensim's Doc2Vec hashes strings).
HASHSEED = "0"
MLFLOW_DB = "results/mlflow.db"
CELLS = cells(config)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    method=r"[A-Za-z0-9_\-]+",
    noise_model=r"[A-Za-z0-9_]+",
    rate=r"[0-9]+\.[0-9]+",
    bits=r"[0-9]+",
    seed=r"[0-9]+",
    protocol=r"paper|sound",


def ds_cfg(wildcards):
    return config["datasets"][wildcards.dataset]


def is_raw(dataset):
    return SOURCES[config["datasets"][dataset]["source"]].kind == "raw"


def raw_input(wildcards):
    """The raw folder of a raw source: generated for `embedded`, else the configured raw_dir."""
    cfg = config["datasets"][wildcards.dataset]
    if cfg["source"] == "embedded":
        return f"results/raw/{wildcards.dataset}"
    if not cfg.get("raw_dir"):
        raise ValueError(f"datasets.{wildcards.dataset}.raw_dir: required for source '{cfg['source']}'")
    return cfg["raw_dir"]


def assemble_input(wildcards):
    if not is_raw(wildcards.dataset):
        return []
    base = f"results/features/{wildcards.dataset}"
    return {
        "prepared": f"results/prepared/{wildcards.dataset}/splits.json",
        "image": f"{base}/image.npy",
        "text": f"{base}/text.npy",
    }


def tracking_uri():
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.abspath(MLFLOW_DB)}"


def run_dir(c):
    return c.run_dir


def metrics_files():
    return [f"{c.run_dir}/metrics.json" for c in CELLS]
