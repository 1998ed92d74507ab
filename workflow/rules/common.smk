# Helpers, config validation and wildcard constraints shared by every rule.
import json
import os
import sys
from urllib.parse import quote

from snakemake.utils import validate

# Jobs import cmhash from this checkout's src/ (also under --sdm conda, where the package is
# not installed into the environment); an installed cmhash is used when src/ is absent.
def use_checkout_sources(src):
    if os.path.isdir(src):
        sys.path.insert(0, src)
        # Set (not required from the user), so jobs started by this process import the same code.
        os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p))


use_checkout_sources(os.path.join(workflow.basedir, "src"))

import cmhash.cell as layout
from cmhash.cell import Cell
from cmhash.config import (
    TRAINING_ONLY_DATASET_KEYS,
    cells,
    check_config,
    evaluate_params,
    robustness_datasets,
    robustness_settings,
    training_cells,
)
from cmhash.config import train_params as cell_train_params
from cmhash.data import SOURCES
from cmhash.data.published import configured_noise_file
from cmhash.noise import NOISE_MODELS
from cmhash.tracking import tracking_uri as default_tracking_uri

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
    rate=r"[0-9]+\.[0-9]+",  # cmhash.cell.format_rate
    bits=r"[0-9]+",
    seed=r"[0-9]+",
    protocol=r"paper|sound",


def ds_cfg(wildcards):
    return config["datasets"][wildcards.dataset]


def data_cfg(wildcards):
    """The dataset's config as the data and feature rules see it (their params): without the
    keys only training reads, so changing one of those reruns no data or feature job."""
    return {k: v for k, v in ds_cfg(wildcards).items() if k not in TRAINING_ONLY_DATASET_KEYS}


def train_params(wildcards):
    """The train rule's params: every setting that changes the cell's result
    (cmhash.config.train_params); Snakemake reruns a cell when they change."""
    return cell_train_params(config, wildcards.method, wildcards.dataset)


def published_noise_input(wildcards):
    """The published noise file when the cell's noise model is `published` (else nothing)."""
    if wildcards.noise_model != "published" or float(wildcards.rate) == 0:
        return []
    return str(configured_noise_file(wildcards.dataset, ds_cfg(wildcards), float(wildcards.rate)))


def noise_features_input(wildcards):
    """The dataset's feature files when the cell's noise model may read them
    (cmhash.noise.NoiseModel.may_read_features: `instance`, `classcond` on single-label data),
    else nothing: the other models' noise jobs do not depend on the features."""
    model = NOISE_MODELS.get(wildcards.noise_model)
    if model is None or not model.may_read_features:
        return {}
    dataset = layout.fill(layout.DATASET, dataset=wildcards.dataset)
    return {"image": f"{dataset}/image.npy", "text": f"{dataset}/text.npy"}


def is_raw(dataset):
    return SOURCES[config["datasets"][dataset]["source"]].kind == "raw"


def raw_input(wildcards):
    """The raw folder of a raw source: generated for `embedded`, else the configured raw_dir."""
    cfg = config["datasets"][wildcards.dataset]
    if cfg["source"] == "embedded":
        return f"results/raw/{wildcards.dataset}"
    if cfg.get("download"):
        return f"results/downloads/{wildcards.dataset}"
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


def experiment_record(folder="results/mlflow/experiments", suffix=".json"):
    """The file that marks the config's MLflow experiment as created (and, with another folder
    and suffix, its log): one per experiment name, so running another config (another
    experiment) in the same results/ reruns no training job."""
    return f"{folder}/{quote(config['experiment'], safe='')}{suffix}"


def tracking_uri():
    return default_tracking_uri(MLFLOW_DB)


def metrics_files():
    """One metrics file per training job: a label-free method's one run serves every noise
    model and rate of the grid (the report expands it over CELLS)."""
    return [f"{c.run_dir}/metrics.json" for c in training_cells(config)]


def robustness_metrics(wildcards):
    """The metrics file of every training job of the robustness job's dataset (a label-free
    run once: the report expands it over the dataset's cells)."""
    return [f"{c.run_dir}/metrics.json" for c in training_cells(config) if c.dataset == wildcards.dataset]
