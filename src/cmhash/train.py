"""The one generic training loop: device, seeding, evaluation schedule, model selection by
protocol, checkpoint/resume and logging hooks. Methods plug in through ``HashingMethod``.

Protocols (DESIGN.md, "Protocols"):

* ``paper``: model selection as each method's official code does, with clean labels
  (:class:`cmhash.methods.base.PaperSelection`): by default on the QUERY set against the
  database, as the published NRCH/SCBCH code does (test-set selection, reproduced to compare
  with the papers: LonganWANG-cs/NRCH @ b190e97 NRCH.py:205-221, Plke/SCBCH @ cfcc18c
  train.py:302-369); UCCH on the first 2,000 database rows queried against themselves, a tie
  going to the later epoch (penghu-cs/UCCH UCCH.py:199-235); DGCPN on a labelled validation
  split against the database with early stopping (Atmegal/DGCPN train.py:22-30,
  train_div.py:201-223). DCGMH selects nothing and reports its final model
  (LiuJinyu1229/DCGMH @ f208cdb engine.py:249-252, 286).
* ``sound``: the validation rows (carved from the training rows, keeping their noisy labels)
  are held out of training and serve as queries against the remaining training rows, with
  relevance from the noisy labels; the query set is never looked at before the end.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cmhash import diagnostics
from cmhash.data.canonical import Dataset
from cmhash.errors import ConfigError, DataError
from cmhash.evaluate import map_at_all
from cmhash.io import atomic_path
from cmhash.methods import Batch, HashingMethod, PaperSelection, TrainView, get_method

PROTOCOLS = ("paper", "sound")
#: How ``sound`` keeps a candidate: a strict improvement, no early stopping (its split is the trainer's own).
SOUND_SELECTION = PaperSelection(source="ours")
log = logging.getLogger("cmhash")
MetricLogger = Callable[[dict[str, float], int], None]


@dataclass
class TrainSettings:
    """Everything that defines one training cell besides the data."""

    method: str
    hp: dict[str, Any]
    bits: int
    protocol: str
    seed: int
    device: str = "auto"
    checkpoint_every: int = 5
    ties: str = "stable"
    denominator: str = "skip"
    progress: bool = True
    noise_rate: float | None = None  # the cell's noise rate; reaches a method only if its needs() ask for it
    standardize: bool = False  # z-score features with the fitted rows' statistics (datasets.<name>.standardize_features)
    #: CPU only: flush subnormal floats (|x| < 1.2e-38) to zero. Training on real features makes
    #: some (tiny activations, gradients, optimiser moments), and x86 cores compute with them up
    #: to ~100x slower per operation; flushing changes values by less than 1.2e-38 and made
    #: cells up to 5x faster (benchmarks/bench_denormal.py). False: IEEE gradual underflow.
    flush_denormal: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol '{self.protocol}' unknown (config key grid.protocols); use one of {PROTOCOLS}")


@dataclass
class TrainResult:
    """What a finished training run leaves: final codes per split and a record of the run."""

    codes: dict[str, np.ndarray]  # e.g. query_image, database_text (int8, +-1)
    history: list[dict[str, float]]
    selected_epoch: int
    selection_score: float
    wall_seconds: float
    device: str
    resumed_from: int | None = None
    stopped_at: int | None = None  # the epoch early stopping ended training at (PaperSelection.patience)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_codes(real: torch.Tensor) -> np.ndarray:
    """Binary codes in {-1, +1} (int8) from real-valued outputs; sign(0) is taken as +1."""
    return np.where(real.detach().cpu().numpy() >= 0, 1, -1).astype(np.int8)


class Trainer:
    """Runs one cell: builds the method, trains it, selects the model by protocol."""

    def __init__(self, dataset: Dataset, noisy_train_labels: np.ndarray, corrupted: np.ndarray,
                 settings: TrainSettings, checkpoint_path: str | Path | None = None,
                 log_metrics: MetricLogger | None = None) -> None:
        splits = dataset.splits
        if noisy_train_labels.shape != (splits.train.size, dataset.n_classes):
            raise DataError(f"noisy labels of shape {noisy_train_labels.shape} do not match the "
                            f"{splits.train.size} training rows x {dataset.n_classes} classes")
        if corrupted.shape != (splits.train.size,):
            raise DataError(f"corruption mask of shape {corrupted.shape} does not match {splits.train.size} training rows")
        self.dataset, self.settings = dataset, settings
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self._checkpoint: dict[str, Any] | None = None
        self._checkpoint_checked = False  # the file is read (and a rejection warned about) once
        self.log_metrics = log_metrics or (lambda metrics, step: None)
        self.device = resolve_device(settings.device)
        if self.device.type == "cpu":  # process-wide; a training job runs one cell
            torch.set_flush_denormal(settings.flush_denormal)
        hp = settings.hp
        for key in ("epochs", "batch_size", "eval_every", "selection"):
            if key not in hp:
                raise ConfigError(f"methods.{settings.method}: hyper-parameter '{key}' missing")

        # Rows the method trains on: all training rows (paper) or training minus validation (sound).
        fit_mask = np.ones(splits.train.size, dtype=bool)
        if settings.protocol == "sound":
            if splits.validation.size == 0:
                raise DataError("protocol 'sound' needs a validation split (config key datasets.<name>.split.n_validation > 0)")
            fit_mask = ~np.isin(splits.train, splits.validation)
        self.fit_rows = splits.train[fit_mask]
        self.fit_noisy = noisy_train_labels[fit_mask]
        self.fit_corrupted = corrupted[fit_mask].astype(bool)
        noisy_by_row = dict(zip(splits.train.tolist(), range(splits.train.size)))
        self.validation_noisy = noisy_train_labels[[noisy_by_row[r] for r in splits.validation.tolist()]]

        dev = self.device
        self.scaling = self._feature_scaling() if settings.standardize else None
        self.view = TrainView(
            image=self._features(self.fit_rows, "image"), text=self._features(self.fit_rows, "text"),
            labels=torch.as_tensor(self.fit_noisy, dtype=torch.float32, device=dev))
        cls = get_method(settings.method)
        needs = cls.needs(settings.protocol)  # what the method declares it needs from the cell
        if needs.clean_labels:
            self.view.clean_labels = torch.as_tensor(dataset.labels[self.fit_rows], dtype=torch.float32, device=dev)
        if needs.true_noise_rate:
            self.view.true_noise_rate = settings.noise_rate

        torch.manual_seed(settings.seed)
        np.random.seed(settings.seed % (2**32))
        self.method: HashingMethod = cls(dataset.image.shape[1], dataset.text.shape[1], dataset.n_classes,
                                         settings.bits, hp, settings.protocol).to(dev)
        self.optimizer, self.scheduler = self.method.configure_optimizer()
        self.generator = torch.Generator(device="cpu").manual_seed(settings.seed)

    # -- features -----------------------------------------------------------------------
    def _feature_scaling(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-column mean and standard deviation of each modality over the rows the method is
        fitted on (never the query, database or validation rows), in float64 for accuracy.
        A constant column keeps its scale (std 1) instead of dividing by zero."""
        out = {}
        for modality in ("image", "text"):
            x = np.asarray(getattr(self.dataset, modality)[self.fit_rows], dtype=np.float64)
            mean, std = x.mean(axis=0), x.std(axis=0)
            std[std < 1e-12] = 1.0
            out[modality] = tuple(torch.as_tensor(a, dtype=torch.float32, device=self.device) for a in (mean, std))
        return out

    def _features(self, rows: np.ndarray, modality: str) -> torch.Tensor:
        """The features of ``rows`` on the device, standardised when the settings ask for it."""
        x = torch.as_tensor(getattr(self.dataset, modality)[rows], dtype=torch.float32, device=self.device)
        if self.scaling is None:
            return x
        mean, std = self.scaling[modality]
        return (x - mean) / std

    # -- evaluation ---------------------------------------------------------------------
    def _encode_rows(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return self.method.encode_all(self._features(rows, "image"), self._features(rows, "text"))

    def selection_scores(self) -> dict[str, float]:
        """mAP per direction on the protocol's model-selection split."""
        s, ds = self.settings, self.dataset
        if s.protocol == "paper":
            q_rows, db_rows = self.paper_selection_rows()
            q_labels, db_labels = ds.labels[q_rows], ds.labels[db_rows]
            q_codes = self._encode_rows(q_rows)
            db_codes = q_codes if db_rows is q_rows else self._encode_rows(db_rows)
        else:
            q_rows, db_rows = ds.splits.validation, self.fit_rows
            q_labels, db_labels = self.validation_noisy, self.fit_noisy
            q_codes, db_codes = self._encode_rows(q_rows), self.method.encode_all(self.view.image, self.view.text)
        out = {}
        for name, q_key, db_key in self.method.directions():
            out[name] = float(map_at_all(to_codes(q_codes[q_key]), to_codes(db_codes[db_key]), q_labels, db_labels,
                                         ties=s.ties, denominator=s.denominator))
        return out

    def paper_selection_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The (query, database) rows ``paper`` scores the candidates on (the method's
        :attr:`~cmhash.methods.base.HashingMethod.paper_selection`); the same array twice for a
        self-retrieval split."""
        splits, choice = self.dataset.splits, self.method.paper_selection
        if choice.split == "query":  # published quirk: model selection on the query set (NRCH.py:207-215, SCBCH train.py:304-347)
            return splits.query, splits.database
        if choice.split == "database_head":  # UCCH.py:199-201: the first rows of the retrieval set against themselves
            head = splits.database[:choice.rows]
            return head, head
        if splits.validation.size == 0:
            raise DataError(f"{self.settings.method}: its `paper` model selection scores a validation split "
                            f"({choice.source}); config key datasets.<name>.split.n_validation must be > 0")
        return splits.validation, splits.database

    # -- checkpoints --------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed: the method, its hyper-parameters, the
        cell and the data's shape. A checkpoint of another configuration is never resumed."""
        s, ds = self.settings, self.dataset
        key = {"method": s.method, "hp": s.hp, "bits": s.bits, "protocol": s.protocol, "seed": s.seed,
               "ties": s.ties, "denominator": s.denominator,
               # only when on: checkpoints written before the setting existed stay resumable
               **({"standardize": True} if s.standardize else {}),
               "rows": len(self.view), "classes": ds.n_classes,
               "dims": [int(ds.image.shape[1]), int(ds.text.shape[1])]}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def resumable_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint of an interrupted run of this very configuration, if there is one.

        A checkpoint of a finished run (``complete``) or of another configuration is ignored
        with a warning, so re-running a cell (e.g. ``--forcerun``) trains it afresh."""
        if self._checkpoint_checked:
            return self._checkpoint
        self._checkpoint_checked = True
        if self.checkpoint_path is None or not self.checkpoint_path.is_file():
            return None
        try:  # tensors and plain types only: unpickling anything else could run code from a shared results/
            payload = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise DataError(f"{self.checkpoint_path}: refused, the checkpoint holds objects other than tensors and plain "
                            f"types ({str(exc).splitlines()[0]}); loading it could run code. Delete it to train from "
                            "scratch") from exc
        except Exception as exc:  # a corrupt checkpoint must not be trusted
            raise DataError(f"{self.checkpoint_path}: unreadable checkpoint ({exc}); delete it to train from scratch") from exc
        if payload.get("complete") or payload.get("fingerprint") != self.fingerprint:
            log.warning("%s: %s; training from scratch", self.checkpoint_path,
                        "from a finished run" if payload.get("complete") else "from another configuration")
            return None
        self._checkpoint = payload
        return payload

    def _save_checkpoint(self, next_epoch: int, state: dict[str, Any], complete: bool = False) -> None:
        if self.checkpoint_path is None:
            return
        payload = {
            "fingerprint": self.fingerprint,
            "complete": complete,
            "next_epoch": next_epoch,
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy_rng": _numpy_rng_state(),
            **_plain(state),
        }
        with atomic_path(self.checkpoint_path, suffix=".pt") as tmp:
            torch.save(payload, tmp)

    def _load_checkpoint(self) -> dict[str, Any] | None:
        payload = self.resumable_checkpoint()
        if payload is None:
            return None
        self.method.load_state_dict(payload["method"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload["scheduler"] is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        self.generator.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        _set_numpy_rng_state(payload["numpy_rng"])
        return payload

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> TrainResult:
        s, hp = self.settings, self.settings.hp
        epochs, batch_size, eval_every = int(hp["epochs"]), int(hp["batch_size"]), int(hp["eval_every"])
        start = time.perf_counter()
        state: dict[str, Any] = {"history": [], "best_score": -np.inf, "best_epoch": -1, "best_state": None,
                                 "stale": 0, "stopped": None}
        resumed = self._load_checkpoint()
        start_epoch = 0
        if resumed is not None:
            start_epoch = resumed["next_epoch"]
            state = {k: resumed.get(k, state[k]) for k in state}  # checkpoints before early stopping lack the last two
        n = len(self.view)

        mode = self.method.selection_mode()
        if mode != hp["selection"]:
            log.info("%s: keeps its last epoch under %s (it reads no label; `selection: %s` applies to `paper`)",
                     s.method, s.protocol, hp["selection"])
        rule = self.method.paper_selection if s.protocol == "paper" else SOUND_SELECTION

        def consider(epoch: int, record: dict[str, float]) -> None:
            scores = self.selection_scores()
            total = sum(scores.values())
            record.update({f"select_map/{k}": v for k, v in scores.items()})
            if mode != "best":
                return
            improved = total > state["best_score"]
            if improved or (rule.ties == "later" and total == state["best_score"]):  # UCCH.py:231-235: a tie re-clones
                state.update(best_score=total, best_epoch=epoch,
                             best_state=copy.deepcopy({k: v.detach().cpu() for k, v in self.method.state_dict().items()}))
            state["stale"] = 0 if improved else state["stale"] + 1

        def stop_early() -> bool:  # DGCPN train.py:24-25: more than `patience` evaluations without improvement
            return mode == "best" and rule.patience is not None and state["stale"] > rule.patience

        progress = _progress(range(start_epoch, epochs), s.progress, f"{s.method} {s.protocol} {s.bits} bits", start_epoch, epochs)
        for epoch in progress:
            record: dict[str, float] = {"epoch": epoch}
            if self.method.is_candidate(epoch):  # scored at the start of the epoch, as NRCH/SCBCH do
                consider(epoch, record)
                if stop_early():
                    state["stopped"] = epoch
                    state["history"].append(record)
                    self.log_metrics({k: v for k, v in record.items() if k != "epoch"}, epoch)
                    log.info("%s: early stop at epoch %d: %d candidates in a row without improvement (%s)",
                             s.method, epoch, state["stale"], rule.source)
                    break
            self.method.train(self.method.training_mode(epoch))
            selection = self.method.before_epoch(self.view, epoch)
            rows = torch.arange(n)
            weights = None
            if selection is not None:
                kept = None if selection.kept is None else selection.kept.detach().cpu().numpy()
                w = None if selection.weights is None else selection.weights.detach().cpu().numpy()
                cs = None if selection.clean_score is None else selection.clean_score.detach().cpu().numpy()
                flagged = None if selection.flagged is None else selection.flagged.detach().cpu().numpy()
                corrected = None
                if selection.corrected_labels is not None:
                    corrected = selection.corrected_labels.detach().cpu().numpy()
                record.update(diagnostics.selection_diagnostics(
                    self.fit_corrupted, kept, w, cs, selection.extra, flagged=flagged, corrected_labels=corrected,
                    clean_labels=None if corrected is None else self.dataset.labels[self.fit_rows]))  # diagnostics only
                if selection.kept is not None:
                    rows = torch.nonzero(selection.kept.detach().cpu(), as_tuple=False).flatten()
                weights = selection.weights
            order = rows[torch.randperm(rows.numel(), generator=self.generator)].to(self.device)
            sums: dict[str, float] = {}
            n_batches = 0
            for b in range(0, order.numel(), batch_size):
                idx = order[b:b + batch_size]
                if idx.numel() < 2:  # a 1-row batch breaks pairwise losses and BatchNorm
                    continue
                batch = Batch(index=idx, image=self.view.image[idx], text=self.view.text[idx],
                              labels=self.view.labels[idx], weight=None if weights is None else weights[idx])
                loss, parts = self.method.loss(batch, epoch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{s.method}: non-finite loss at epoch {epoch}, batch {b // batch_size}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                n_batches += 1
                for key, value in {"loss": loss.item(), **parts}.items():
                    sums[key] = sums.get(key, 0.0) + value
            if self.scheduler is not None:
                self.scheduler.step()
            record.update({f"loss/{k}" if k != "loss" else "loss/total": v / max(n_batches, 1) for k, v in sums.items()})
            record["train/rows"] = float(rows.numel())
            state["history"].append(record)
            self.log_metrics({k: v for k, v in record.items() if k != "epoch"}, epoch)
            if hasattr(progress, "set_postfix"):
                progress.set_postfix(loss=f"{record.get('loss/total', float('nan')):.4f}")
            if s.checkpoint_every and (epoch + 1) % s.checkpoint_every == 0 and epoch + 1 < epochs:
                self._save_checkpoint(epoch + 1, state)

        if state["stopped"] is None and self.method.is_candidate(epochs):  # the final model (never under `paper` for NRCH/SCBCH)
            final: dict[str, float] = {"epoch": epochs}
            consider(epochs, final)
            state["history"].append(final)
            self.log_metrics({k: v for k, v in final.items() if k != "epoch"}, epochs)
        if mode == "best" and state["best_state"] is None:
            log.warning("%s: no candidate model was scored in %d epochs (eval_every %d); keeping the final one",
                        s.method, epochs, eval_every)
        if mode == "best" and state["best_state"] is not None:
            self.method.load_state_dict({k: v.to(self.device) for k, v in state["best_state"].items()})
            selected = state["best_epoch"]
        else:
            selected = epochs
        codes = {}
        ds = self.dataset
        for split, rows in (("query", ds.splits.query), ("database", ds.splits.database)):
            for key, value in self._encode_rows(rows).items():
                codes[f"{split}_{key}"] = to_codes(value)
        self._save_checkpoint(epochs, state, complete=True)
        return TrainResult(codes=codes, history=state["history"], selected_epoch=int(selected),
                           selection_score=float(state["best_score"]) if mode == "best" else float("nan"),
                           wall_seconds=time.perf_counter() - start, device=str(self.device),
                           resumed_from=start_epoch if resumed is not None else None, stopped_at=state["stopped"])


def _numpy_rng_state() -> dict[str, Any]:
    """numpy's global RNG state as a tensor and plain types (checkpoints load with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state((state["name"], state["keys"].cpu().numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python numbers, through dicts and lists (the
    history and scores a checkpoint stores), so it loads with ``weights_only=True``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _progress(iterable, enabled: bool, desc: str, initial: int, total: int):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, initial=initial, total=total, unit="epoch", mininterval=2.0)
