"""Integration: each raw benchmark dataset goes from miniature archives in its published layout
to the canonical dataset folder through the real Snakemake rules: download_raw (the archives
found in ``download.data_root`` by their published names, verified and pinned in the lock file,
extracted; NUS-WIDE's images fetched from its URL list on a loopback server), prepare,
image_features (VGG19 fc7, untrained weights), text_features and assemble_dataset. The target
is ``results/datasets/<name>/labels.npy``, so nothing trains.

The expected row counts are computed here from how each miniature is built, not by the parsers.
NUS-WIDE-urls.rar and the three SAIAPR volumes are real RAR 4.x files (tests/archives.py); where
no RAR tool is installed a stand-in ``unrar`` that reads them is put first on PATH.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cmhash.data.archive import _rar_tool, extract_archive
from cmhash.data.embedded import generate_embedded
from cmhash.data.nuswide import MISSING_REPORT
from cmhash.data.sources_catalog import CATALOG
from tests.archives import (
    COCO_80,
    COCO_IMAGES,
    COCO_INSTANCES,
    IAPR_IDS,
    IAPR_NO_ANNOTATION,
    IAPR_REGIONS,
    NUS_MISSING,
    NUS_TOP,
    coco_payloads,
    iapr_description,
    iapr_payloads,
    install_fake_unrar,
    mirflickr_payloads,
    nus_payloads,
    nus_rows,
    rar_bytes,
    rar_tool_on_path,
    rar_volumes,
)
from tests.helpers import REPO
from tests.loopback_http import LoopbackServer

pytestmark = pytest.mark.integration

IMAGE_FEATURES = {"kind": "vgg19", "weights": "none", "image_size": 32, "batch_size": 16, "seed": 0}


@dataclass(frozen=True)
class Miniature:
    """The archives of one source and what its canonical form must hold."""

    archives: dict[str, bytes]
    n_rows: int
    n_classes: int
    text_dim: int
    dataset: dict[str, Any]  # datasets.<name> of the config, less image_features


# -- the four miniatures, with their expected counts ----------------------------------------------
def mirflickr(tmp: Path, srv: LoopbackServer) -> Miniature:
    gen = generate_embedded(tmp / "gen", n_images=40, seed=3, image_size=32)
    concept_files = [p for p in (gen / "mirflickr25k_annotations_v080").glob("*.txt")
                     if not p.stem.endswith("_r1") and p.stem != "README"]
    assert len(concept_files) == 24
    labelled = {int(line) for p in concept_files for line in p.read_text().split()}
    common = [line.split()[0] for line in (gen / "mirflickr/doc/common_tags.txt").read_text().splitlines() if line]
    tagged = {n for n in range(1, 41)
              if set((gen / f"mirflickr/meta/tags/tags{n}.txt").read_text().split()) & set(common)}
    assert len(set(range(1, 41)) - labelled) >= 1 and len(labelled - tagged) >= 1  # both drop rules exercised
    return Miniature(mirflickr_payloads(gen), n_rows=len(labelled & tagged), n_classes=24, text_dim=len(common),
                     dataset={"source": "mirflickr25k", "download": True,
                              "split": {"n_query": 5, "n_train": 20, "n_validation": 4, "seed": 1},
                              "text_features": {"kind": "bow"}})


def coco(tmp: Path, srv: LoopbackServer) -> Miniature:
    labelled = [i for ids in COCO_IMAGES.values() for i in ids if COCO_INSTANCES.get(i)]  # every image has captions
    return Miniature(coco_payloads(COCO_80), n_rows=len(labelled), n_classes=80, text_dim=8,
                     dataset={"source": "mscoco2014", "download": True,
                              "split": {"n_query": 2, "n_train": 4, "n_validation": 1, "seed": 0},
                              "text_features": {"kind": "doc2vec", "vector_size": 8, "epochs": 3, "min_count": 1,
                                                "seed": 0}})


def nuswide(tmp: Path, srv: LoopbackServer) -> Miniature:
    labels, _, _ = nus_rows()
    with_image = [r for r in range(len(labels)) if labels[r, NUS_TOP].any() and r not in NUS_MISSING]
    return Miniature(nus_payloads(srv, rar=True), n_rows=len(with_image), n_classes=21, text_dim=1000,
                     dataset={"source": "nuswide_tc21", "download": {"image_workers": 4},
                              "split": {"n_query": 5, "n_train": 20, "n_validation": 3, "seed": 2},
                              "text_features": {"kind": "bow"}})


def iapr(tmp: Path, srv: LoopbackServer) -> Miniature:
    kept = [i for i in IAPR_IDS if i in IAPR_REGIONS and i != IAPR_NO_ANNOTATION and iapr_description(i)]
    df: dict[str, int] = {}
    for i in kept:
        for token in set(re.findall(r"[a-z]+", iapr_description(i).lower())):
            df[token] = df.get(token, 0) + 1
    return Miniature(iapr_payloads(rar=True), n_rows=len(kept),
                     n_classes=len({lab for labs in IAPR_REGIONS.values() for lab in labs}),
                     text_dim=sum(1 for c in df.values() if c >= 2),
                     dataset={"source": "iapr_tc12", "download": True,
                              "options": {"min_df": 2, "drop_empty_description": True},
                              "split": {"n_query": 2, "n_train": 6, "n_validation": 2, "seed": 5},
                              "text_features": {"kind": "bow"}})


MINIATURES = {"mirflickr25k": mirflickr, "mscoco2014": coco, "nuswide_tc21": nuswide, "iapr_tc12": iapr}


# -- running the workflow -------------------------------------------------------------------------
def workflow_copy(work: Path, archives: dict[str, bytes]) -> None:
    """The workflow and this checkout's src/ (which its jobs import, workflow/rules/common.smk),
    the catalog there taking the miniatures' MD5s where the real files have a published one
    (a miniature cannot match those; the MD5 check itself still runs, as in test_datasets)."""
    for item in ("Snakefile", "workflow", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    shutil.copytree(REPO / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in archives.items()}
    with open(work / "src" / "cmhash" / "data" / "sources_catalog.py", "a") as handle:
        handle.write(f"""

# -- appended by tests/test_datasets_workflow.py: the miniature archives' MD5s --------------------
_MINIATURE_MD5 = {md5!r}
CATALOG = MappingProxyType({{
    key: dataclasses.replace(spec, files=tuple(
        dataclasses.replace(f, md5=_MINIATURE_MD5[f.name]) if f.md5 and f.name in _MINIATURE_MD5 else f
        for f in spec.files))
    for key, spec in CATALOG.items()}})
""")


def write_config(work: Path, name: str, dataset: dict[str, Any], data_root: Path) -> Path:
    cfg = {"experiment": f"cmhash-datasets-{name}", "device": "cpu", "threads": 1,
           "download": {"archive_dir": "data/archives", "lock_file": "data/checksums.lock.json",
                        "data_root": str(data_root), "retries": 0},
           "datasets": {name: {**dataset, "image_features": IMAGE_FEATURES}},
           "grid": {"datasets": [name], "methods": ["baseline"], "noise_models": ["nrch"], "noise_rates": [0.0],
                    "bits": [16], "seeds": [0], "protocols": ["sound"]}}
    path = work / "config" / "datasets.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_snakemake(work: Path, config: Path, target: str, archives: dict[str, bytes]) -> subprocess.CompletedProcess:
    path = [str(Path(sys.executable).parent), os.environ["PATH"]]
    if any(_rar_tool(Path(name)) is None for name in archives if name.endswith(".rar")):
        path.insert(0, str(install_fake_unrar(work / "fake-bin").parent))  # no tool here reads these RARs
    env = dict(os.environ, PATH=os.pathsep.join(path))
    env.pop("MLFLOW_TRACKING_URI", None)
    # the target first: --configfile takes every value after it
    proc = subprocess.run([sys.executable, "-m", "snakemake", target, "--cores", "2", "--resources", "gpu=1",
                           "--configfile", str(config.relative_to(work))], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        logs = "\n".join(f"== {p.relative_to(work)}\n{p.read_text()[-3000:]}"
                         for p in sorted((work / "results" / "logs").rglob("*.log")))
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{logs}")
    return proc


@pytest.mark.parametrize("name", list(MINIATURES))
def test_archives_to_canonical_dataset_through_the_rules(name: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with LoopbackServer({}, lifetime=600) as srv:
        mini = MINIATURES[name](tmp_path, srv)
        workflow_copy(work, mini.archives)
        data_root = tmp_path / "have"  # the archives a user already has, under their published names
        data_root.mkdir()
        for file_name, data in mini.archives.items():
            (data_root / file_name).write_bytes(data)
        assert sorted(mini.archives) == sorted(f.name for f in CATALOG[name].files)
        config = write_config(work, name, mini.dataset, data_root)
        run_snakemake(work, config, f"results/datasets/{name}/labels.npy", mini.archives)

    out = work / "results" / "datasets" / name
    labels = np.load(out / "labels.npy")
    image, text = np.load(out / "image.npy"), np.load(out / "text.npy")
    assert labels.dtype == np.uint8 and labels.shape == (mini.n_rows, mini.n_classes)
    assert labels.sum(axis=1).min() >= 1  # every kept row has a label
    assert image.dtype == np.float32 and image.shape == (mini.n_rows, 4096) and np.isfinite(image).all()
    assert text.dtype == np.float32 and text.shape == (mini.n_rows, mini.text_dim) and np.isfinite(text).all()
    split = mini.dataset["split"]
    splits = {k: np.asarray(v) for k, v in json.loads((out / "splits.json").read_text()).items()
              if k in ("query", "train", "database", "validation")}
    assert len(splits["query"]) == split["n_query"] and len(splits["train"]) == split["n_train"]
    assert len(splits["validation"]) == split["n_validation"]
    assert len(splits["database"]) == mini.n_rows - split["n_query"]
    assert not set(splits["query"]) & set(splits["database"])
    assert set(splits["train"]) <= set(splits["database"]) and set(splits["validation"]) <= set(splits["train"])
    assert set(splits["query"]) | set(splits["database"]) == set(range(mini.n_rows))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["source"] == name and len(meta["classes"]) == mini.n_classes
    assert meta["image_features"]["weights"] == "none"
    text_meta = meta["text_features"]  # bow records "kind", Doc2Vec "extractor"
    assert text_meta.get("kind", text_meta.get("extractor")) == mini.dataset["text_features"]["kind"]

    # the archives were used where they lie (nothing downloaded) and their SHA-256s pinned
    lock = json.loads((work / "data" / "checksums.lock.json").read_text())["files"]
    assert {url: record["sha256"] for url, record in lock.items()} == {
        f.url: hashlib.sha256((data_root / f.name).read_bytes()).hexdigest() for f in CATALOG[name].files}
    assert not (work / "data" / "archives").exists() or not any((work / "data" / "archives").iterdir())
    assert not (work / "results" / "runs").exists()  # the target stops at the dataset: nothing trained
    if name == "nuswide_tc21":  # images fetched from the URL list on the loopback server, missing ones reported
        report = json.loads((work / "results" / "downloads" / name / MISSING_REPORT).read_text())
        assert report["n_missing"] == len(NUS_MISSING) and meta["dropped_missing_image"] == len(NUS_MISSING)
        assert sum(1 for r in srv.requests if r["path"].startswith("/flickr/")) == report["n_wanted"]


def test_rar_miniatures_open_with_the_rar_tool_here(tmp_path: Path) -> None:
    """The RAR 4.x files of tests/archives.py are read by the real tool cmhash uses, where one is
    installed (the workflow test above then uses it instead of the stand-in)."""
    single = tmp_path / "NUS-WIDE-urls.rar"
    single.write_bytes(rar_bytes({"NUS-WIDE-urls/NUS-WIDE-urls.txt": b"header\r\nrow\r\n"}))
    for k, data in enumerate(rar_volumes([{"a/one.txt": b"1"}, {"a/two.txt": b"2"}]), start=1):
        (tmp_path / f"set.part{k}.rar").write_bytes(data)
    if _rar_tool(single) is None:
        pytest.skip("no RAR tool (unrar, 7z, 7za, bsdtar) on PATH; the workflow test uses tests.archives.fake_unrar")
    extract_archive(single, tmp_path / "raw")
    assert (tmp_path / "raw/NUS-WIDE-urls/NUS-WIDE-urls.txt").read_bytes() == b"header\r\nrow\r\n"
    if _rar_tool(tmp_path / "set.part1.rar") is None:
        pytest.skip(f"{rar_tool_on_path()} cannot follow RAR volumes; unrar or 7z can")
    extract_archive(tmp_path / "set.part1.rar", tmp_path / "vol")
    assert (tmp_path / "vol/a/one.txt").read_bytes() == b"1" and (tmp_path / "vol/a/two.txt").read_bytes() == b"2"
