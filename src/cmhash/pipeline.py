"""The pipeline's stages as library calls: each reads its input files and writes its outputs
atomically. The Snakemake scripts and the ``cmhash`` command line are thin wrappers of these."""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from cmhash.cell import Cell
from cmhash.config import cell_settings, evaluate_params
from cmhash.data.canonical import Dataset, read_dataset, read_prepared, write_dataset
from cmhash.errors import ConfigError, DataError
from cmhash.io import atomic_path, load_json, load_npy, save_json, save_npy

log = logging.getLogger("cmhash")


# -- data -------------------------------------------------------------------------------
def stage_generate(ds_cfg: dict[str, Any], out_dir: str | Path) -> None:
    from cmhash.data.embedded import generate_embedded

    gen = ds_cfg.get("generate") or {}
    generate_embedded(out_dir, **gen)


def stage_prepare(ds_cfg: dict[str, Any], raw_dir: str | Path, out_dir: str | Path) -> None:
    from cmhash.data import prepare_raw

    split = ds_cfg["split"]
    for key in ("n_query", "n_train"):
        if key not in split:
            raise ConfigError(f"datasets.<name>.split.{key}: required for raw source '{ds_cfg['source']}'")
    prepare_raw(ds_cfg["source"], raw_dir, out_dir, n_query=split["n_query"], n_train=split["n_train"],
                n_validation=split.get("n_validation", 0), seed=split.get("seed", 0), options=ds_cfg.get("options"))


def stage_image_features(ds_cfg: dict[str, Any], prepared: str | Path, out_npy: str | Path, device: str = "auto",
                         progress: bool = True) -> None:
    from cmhash.features import extract_vgg19_fc7

    corpus, _ = read_prepared(prepared)
    opts = dict(ds_cfg.get("image_features") or {})
    opts.pop("normalize", None)  # applied when the dataset is assembled
    kind = opts.pop("kind", "vgg19")
    if kind != "vgg19":
        raise ConfigError(f"image_features.kind: unknown '{kind}'")
    features, meta = extract_vgg19_fc7(corpus.image_paths, device=device, progress=progress, **opts)
    save_npy(out_npy, features)
    save_json(Path(out_npy).with_suffix(".json"), meta)


def stage_text_features(ds_cfg: dict[str, Any], prepared: str | Path, out_npy: str | Path,
                        progress: bool = True) -> None:
    from cmhash.features import bag_of_words, doc2vec

    corpus, _ = read_prepared(prepared)
    opts = dict(ds_cfg.get("text_features") or {"kind": "bow"})
    opts.pop("normalize", None)  # applied when the dataset is assembled
    kind = opts.pop("kind", "bow")
    if kind == "bow":
        if not corpus.vocabulary:
            raise DataError(f"{prepared}/meta.json: no vocabulary for a bag-of-words; use text_features.kind: doc2vec")
        features, meta = bag_of_words(corpus.texts, corpus.vocabulary), {"kind": "bow", "vocabulary_size": len(corpus.vocabulary)}
    elif kind == "doc2vec":
        features, meta = doc2vec(corpus.texts, progress=progress, **opts)
    else:
        raise ConfigError(f"text_features.kind: unknown '{kind}'")
    save_npy(out_npy, features)
    save_json(Path(out_npy).with_suffix(".json"), meta)


def stage_assemble(ds_cfg: dict[str, Any], out_dir: str | Path, prepared: str | Path | None = None,
                   image_npy: str | Path | None = None, text_npy: str | Path | None = None) -> None:
    """Write the dataset folder: from a prepared folder plus feature files (raw sources) or by
    importing published feature files (feature sources)."""
    from cmhash.data import SOURCES, import_features

    spec = SOURCES[ds_cfg["source"]]
    split = ds_cfg["split"]
    if spec.kind == "features":
        if not ds_cfg.get("path"):
            raise ConfigError(f"datasets.<name>.path: required for feature source '{ds_cfg['source']}'")
        import_features(ds_cfg["source"], ds_cfg["path"], out_dir, n_validation=split.get("n_validation", 0),
                        seed=split.get("seed", 0), options=ds_cfg.get("options"))
        return
    corpus, splits = read_prepared(prepared)
    from cmhash.features.scaling import scale_features

    image, image_scaling = scale_features(load_npy(image_npy, ndim=2), splits.train,
                                          (ds_cfg.get("image_features") or {}).get("normalize", "none"))
    text, text_scaling = scale_features(load_npy(text_npy, ndim=2), splits.train,
                                        (ds_cfg.get("text_features") or {}).get("normalize", "none"))
    meta = {"source": ds_cfg["source"], "classes": corpus.classes, "prepared": str(prepared),
            "image_features": {**load_json(Path(image_npy).with_suffix(".json")), **image_scaling},
            "text_features": {**load_json(Path(text_npy).with_suffix(".json")), **text_scaling}, **corpus.meta}
    write_dataset(out_dir, Dataset(image=image, text=text, labels=corpus.labels, splits=splits, meta=meta))


def stage_noise(dataset_dir: str | Path, model: str, rate: float, seed: int, out_dir: str | Path,
                published_file: str | Path | None = None) -> None:
    """Corrupt the training labels (only those: query/database labels stay clean). The noise
    model ``published`` reads ``published_file`` instead (NRCH's published noisy labels of the
    same training rows; ``seed`` is then unused, recorded as given). A model that reads features
    on these labels (:meth:`cmhash.noise.NoiseModel.reads_features`) gets the training rows of
    the dataset's ``image.npy`` and ``text.npy`` (the workflow declares them as the job's inputs).
    noise.json records the realised statistics (:func:`cmhash.noise.noise_statistics`)."""
    from cmhash.data.published import checksum_record, published_noise
    from cmhash.noise import NOISE_MODELS, PUBLISHED, corrupt, noise_statistics

    dataset_dir = Path(dataset_dir)
    labels = load_npy(dataset_dir / "labels.npy", ndim=2)
    splits = read_dataset_splits(dataset_dir)
    clean = labels[splits.train]
    source: dict[str, Any] = {}
    if model == PUBLISHED and float(rate) == 0:
        noisy, corrupted = clean.copy(), np.zeros(len(clean), dtype=bool)
    elif model == PUBLISHED:
        if published_file is None:
            raise ConfigError("noise model 'published': no file given (datasets.<name>.published_noise)")
        noisy, corrupted = published_noise(published_file, clean)
        source = {"file": str(published_file), "checksum": checksum_record(published_file)}
    else:
        features = None
        spec = NOISE_MODELS.get(model)
        if spec is not None and spec.reads_features(clean):
            names = ("image.npy", "text.npy")
            features = [load_npy(dataset_dir / name, ndim=2, mmap=True)[splits.train] for name in names]
            source = {"features": [str(dataset_dir / name) for name in names]}
        result = corrupt(clean, model, rate, seed, features=features)
        noisy, corrupted = result.noisy, result.corrupted
    meta_path = dataset_dir / "meta.json"
    classes = load_json(meta_path).get("classes") if meta_path.is_file() else None
    if classes is not None and len(classes) != clean.shape[1]:
        classes = None
    out = Path(out_dir)
    save_npy(out / "noisy_labels.npy", noisy)
    save_npy(out / "corrupted.npy", corrupted)
    save_json(out / "noise.json", {"model": model, "rate": rate, "seed": seed, "n_train": int(splits.train.size),
                                   "n_corrupted": int(corrupted.sum()),
                                   "label_changes": int((noisy != clean).sum()), **source,
                                   "statistics": noise_statistics(clean, noisy, classes)})


def read_dataset_splits(dataset_dir: str | Path):
    from cmhash.data.canonical import Splits

    path = Path(dataset_dir) / "splits.json"
    return Splits.from_json(load_json(path), str(path))


# -- training ---------------------------------------------------------------------------
def stage_train(cfg: dict[str, Any], cell: Cell, dataset_dir: str | Path, noise_dir: str | Path | None,
                out_dir: str | Path, tracking_uri: str | None = None) -> dict[str, Any]:
    """Train one cell and write ``codes/*.npy``, ``history.csv``, ``config.json`` and
    ``train.json``; mirror parameters, per-epoch metrics and the config to MLflow.

    ``noise_dir`` None: a label-free cell (``cell.label_free``; its method reads no label). The
    trainer is then handed the clean training labels with an empty corruption mask, which the
    method never reads (its ``needs().labels`` is False); they reach only the trainer's logged
    validation mAP, and a label-free method keeps its last epoch, so its result cannot depend
    on any label."""
    import torch

    from cmhash.data import source_family
    from cmhash.methods import get_method, resolve_hparams
    from cmhash.tracking import RunTracker, git_commit
    from cmhash.train import Trainer, TrainSettings

    torch.set_num_threads(int(cfg.get("threads", 1)))
    out = Path(out_dir)
    dataset = read_dataset(dataset_dir)
    if noise_dir is None:
        noisy = dataset.labels[dataset.splits.train]
        corrupted = np.zeros(dataset.splits.train.size, dtype=bool)
        noise_record: dict[str, Any] = {"model": cell.noise_model, "note": "label-free: no label is read"}
    else:
        noisy = load_npy(Path(noise_dir) / "noisy_labels.npy", ndim=2)
        corrupted = load_npy(Path(noise_dir) / "corrupted.npy", ndim=1)
        noise_record = load_json(Path(noise_dir) / "noise.json")
    chosen = cell_settings(cfg, cell.method, cell.dataset)
    standardize = chosen["standardize_features"]
    family = source_family(cfg["datasets"][cell.dataset]["source"])
    method = chosen.get("variant_of", cell.method)  # a named variant runs its registered method
    hp, provenance = resolve_hparams(method, family, chosen["methods"])
    borrowed = sorted(k for k, v in provenance.items() if v.startswith("borrowed"))
    if borrowed:
        log.warning("%s on %s (benchmark family %s): hyper-parameters %s not published for it, borrowed from %s",
                    cell.method, cell.dataset, family or "none", borrowed, get_method(method).fallback_family)
    cls = get_method(method)
    if cls.needs(cell.protocol).labels == cell.label_free:
        raise ConfigError(f"{cell.method} {'reads' if cell.label_free else 'reads no'} labels under {cell.protocol}: "
                          f"its training cell must {'' if cell.label_free else 'not '}depend on the noise")
    denominator = cls.paper_denominator if cell.protocol == "paper" else "skip"
    training = cfg.get("training") or {}
    settings = TrainSettings(method=method, hp=hp, noise_rate=cell.rate, bits=cell.bits, protocol=cell.protocol, seed=cell.seed,
                             device=cfg.get("device", "auto"), checkpoint_every=training.get("checkpoint_every", 5),
                             ties=evaluate_params(cfg)["ties"], denominator=denominator,
                             progress=training.get("progress", True), standardize=standardize)
    resolved = {"cell": cell.as_dict(), "needs": dataclasses.asdict(cls.needs(cell.protocol)), "variant_of": chosen.get("variant_of"), "family": family, "hparams": hp, "hparam_source": provenance, "borrowed": borrowed,
                "denominator": denominator, "dataset": {"dir": str(dataset_dir), **_dataset_summary(dataset)},
                "noise": noise_record, "settings": {
                    "device": settings.device, "checkpoint_every": settings.checkpoint_every, "ties": settings.ties,
                    "standardize_features": standardize, "flush_denormal": settings.flush_denormal},
                "experiment": cfg["experiment"], "git_commit": git_commit()}
    save_json(out / "config.json", resolved)

    trainer = Trainer(dataset, noisy, corrupted, settings, checkpoint_path=out / "checkpoint.pt")
    run_file = out / "mlflow_run.json"
    resuming = trainer.resumable_checkpoint() is not None
    # A resumed job continues its MLflow run; a fresh one (first or forced re-run) opens a new run.
    previous = load_json(run_file).get("run_id") if resuming and run_file.is_file() else None
    tracker = None
    if tracking_uri:
        tracker = RunTracker(tracking_uri, cfg["experiment"], run_name=cell.name, run_id=previous)
        if tracker.run_id and previous is None:
            tracker.log_params({**{k: v for k, v in cell.as_dict().items()}, **{f"hp.{k}": v for k, v in hp.items()},
                                "borrowed": ",".join(borrowed) or "none", "standardize_features": standardize,
                                "family": family or "none", "variant_of": chosen.get("variant_of", "none"), "input_checksums": _checksum_summary(dataset.meta, resolved["noise"])})
            tracker.set_tags({**cell.as_dict(), "git_commit": resolved["git_commit"], "task": cls.task})
            tracker.log_dataset(**_dataset_input(cell, dataset, noisy, dataset_dir, noise_dir))
            tracker.log_artifact(out / "config.json")
        if tracker.run_id:
            save_json(run_file, {"run_id": tracker.run_id, "tracking_uri": tracking_uri})

    if tracker:
        trainer.log_metrics = tracker.log_metrics
    result = trainer.run()
    for name, codes in result.codes.items():
        save_npy(out / "codes" / f"{name}.npy", codes)
    _write_history(out / "history.csv", result.history)
    record = {"selected_epoch": result.selected_epoch,
              "selection_score": result.selection_score if np.isfinite(result.selection_score) else None,
              "wall_seconds": round(result.wall_seconds, 3), "device": result.device,
              # the physical GPU(s) this job could see (set by cmhash.gpu_slots or SLURM), and where it ran
              "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "host": socket.gethostname(),
              "resumed_from": result.resumed_from, "stopped_at": result.stopped_at, "task": cls.task,
              "directions": [list(d) for d in trainer.method.directions()], "denominator": denominator,
              "mlflow_run_id": tracker.run_id if tracker else None}
    save_json(out / "train.json", record)
    if tracker:
        tracker.set_tags({"device": result.device, "visible_devices": record["visible_devices"] or "none",
                          "host": record["host"]})
        tracker.log_metrics({"train/wall_seconds": result.wall_seconds, "train/selected_epoch": result.selected_epoch})
        tracker.log_artifact(out / "history.csv")
    return record


def _checksum_summary(meta: dict[str, Any], noise: dict[str, Any]) -> str:
    """``name:status`` for every published input file of a cell (the dataset's source files and
    a published noise file; :func:`cmhash.data.published.checksum_record`), or ``none``."""
    records = dict(meta.get("checksums") or {})
    if noise.get("checksum"):
        records[Path(noise["file"]).name] = noise["checksum"]
    return ",".join(f"{name}:{r['status']}" for name, r in sorted(records.items())) or "none"


def _dataset_input(cell: Cell, ds: Dataset, noisy: np.ndarray, dataset_dir: str | Path,
                   noise_dir: str | Path | None) -> dict[str, Any]:
    """What a cell trains on, as RunTracker.log_dataset takes it: the training rows' features,
    their noisy labels (whose file's checksum is the digest) and the source files' checksums."""
    train = ds.splits.train
    noise = cell.noise_model if cell.label_free else f"{cell.noise_model}-{cell.rate_str}"
    return {"name": f"{cell.dataset}/{noise}/seed{cell.seed}", "source": dataset_dir,
            "features": {"image": ds.image[train], "text": ds.text[train]}, "targets": noisy,
            "targets_file": None if noise_dir is None else Path(noise_dir) / "noisy_labels.npy", "source_files": ds.meta.get("source_files") or {}}


def _dataset_summary(ds: Dataset) -> dict[str, Any]:
    return {"n_rows": int(ds.labels.shape[0]), "image_dim": int(ds.image.shape[1]), "text_dim": int(ds.text.shape[1]),
            "n_classes": ds.n_classes, **{f"n_{k}": int(getattr(ds.splits, k).size) for k in ("query", "train", "database", "validation")},
            "image_features": ds.meta.get("image_features"), "text_features": ds.meta.get("text_features")}


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


# -- evaluation -------------------------------------------------------------------------
def stage_evaluate(cfg: dict[str, Any], dataset_dir: str | Path, run_dir: str | Path) -> dict[str, Any]:
    """Final retrieval metrics of a trained cell (query -> database, clean labels)."""
    from cmhash.evaluate import retrieval_report
    from cmhash.tracking import RunTracker

    run = Path(run_dir)
    train = load_json(run / "train.json")
    labels = load_npy(Path(dataset_dir) / "labels.npy", ndim=2)
    splits = read_dataset_splits(dataset_dir)
    q_labels, db_labels = labels[splits.query], labels[splits.database]
    ev = evaluate_params(cfg)
    metrics: dict[str, Any] = {"selected_epoch": train["selected_epoch"], "wall_seconds": train["wall_seconds"],
                               "device": train["device"], "denominator": train["denominator"], "directions": {}}
    curves: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    headline = [int(n) for n in ev["precision_at"]]
    for name, q_key, db_key in train["directions"]:
        q = load_npy(run / "codes" / f"query_{q_key}.npy", ndim=2)
        db = load_npy(run / "codes" / f"database_{db_key}.npy", ndim=2)
        n_db = db.shape[0]
        curve_ns = sorted({n for n in (*range(1, 11), *range(20, 101, 10), *range(200, 1001, 100)) if n <= n_db})
        rep = retrieval_report(q, db, q_labels, db_labels, ties=ev["ties"],
                               denominator=train["denominator"], ks=[k for k in (100, 500, 1000) if k <= n_db],
                               ns=sorted(set(curve_ns) | {n for n in headline if n <= n_db}))
        pn = rep.pop("precision_at_n")
        curves[f"{name}/precision_at_n/n"] = np.array(curve_ns)
        curves[f"{name}/precision_at_n/precision"] = np.array([pn[str(n)] for n in curve_ns])
        for key, value in rep["pr_curve"].items():
            curves[f"{name}/pr/{key}"] = np.asarray(value)
        rep["precision_at_n"] = {str(n): pn[str(n)] for n in headline if str(n) in pn}
        metrics["directions"][name] = {"map": rep["map_all"], **rep}
    metrics["eval_seconds"] = round(time.perf_counter() - start, 3)
    with atomic_path(run / "curves.npz", suffix=".npz") as tmp:
        np.savez(tmp, **curves)
    save_json(run / "metrics.json", metrics)
    run_file = run / "mlflow_run.json"
    if run_file.is_file():
        info = load_json(run_file)
        tracker = RunTracker(os.environ.get("MLFLOW_TRACKING_URI") or info["tracking_uri"], cfg["experiment"], "", run_id=info["run_id"])
        flat = {f"{d}/{k}": v for d, m in metrics["directions"].items() for k, v in m.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        flat.update({f"{d}/precision_at_{n}": v for d, m in metrics["directions"].items()
                     for n, v in m["precision_at_n"].items()})
        tracker.log_metrics(flat)
        tracker.log_artifact(run / "metrics.json")
        tracker.finish()
    return metrics


def collect_results(metric_files: list[str | Path], grid: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per (cell, direction) from the runs' ``metrics.json`` + ``config.json``; a
    label-free run gives a row for every cell of ``grid`` it serves (:func:`cmhash.cell.served_cells`)."""
    from cmhash.cell import served_cells

    rows = []
    for path in metric_files:
        path = Path(path)
        metrics, config = load_json(path), load_json(path.parent / "config.json")
        for direction, values in metrics["directions"].items():
            scalars = {k: v for k, v in values.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
            scalars.update({f"p@{n}": v for n, v in values.get("precision_at_n", {}).items()})
            rows += [{**cell, "direction": direction, **scalars} for cell in served_cells(config["cell"], grid)]
    return rows


__all__ = [
    "collect_results",
    "stage_assemble",
    "stage_evaluate",
    "stage_generate",
    "stage_image_features",
    "stage_noise",
    "stage_prepare",
    "stage_text_features",
    "stage_train",
]
