"""The interface every hashing method implements, and the data views the trainer hands it.

A method owns its networks, losses, optimiser and (optionally) a per-epoch hook that selects or
weights training samples from the whole training set (DESIGN.md, "Key interfaces"). The
trainer owns the loop, devices, seeding, evaluation, model selection, checkpoints and logging.
A method never sees the true corruption mask: the trainer compares the method's ``Selection``
against it to produce the diagnostics (``cmhash.diagnostics``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from cmhash.errors import ConfigError

CROSSMODAL = "crossmodal"  # image query -> text database and back (NRCH, SCBCH)
FUSED = "fused"  # one code per image-text pair (DCGMH)


@dataclass
class Batch:
    """One mini-batch of training rows (positions ``index`` within the training view)."""

    index: torch.Tensor
    image: torch.Tensor
    text: torch.Tensor
    labels: torch.Tensor  # noisy labels, float {0, 1}
    weight: torch.Tensor | None = None  # per-sample weight from this epoch's Selection


@dataclass
class TrainView:
    """The whole training set on the training device, for per-epoch hooks.

    ``clean_labels`` is set only when the method declares ``reads_clean_labels`` AND the
    protocol is ``paper`` (DCGMH's published correction reads them: a leak the ``sound``
    protocol removes); otherwise it is None and no clean training label reaches the method.
    """

    image: torch.Tensor
    text: torch.Tensor
    labels: torch.Tensor
    clean_labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Selection:
    """What a per-epoch hook decided about the training rows.

    kept: rows to train on this epoch (None = all).
    weights: per-row loss weights (None = 1).
    clean_score: a per-row score, higher = more likely clean, used for ``select/auc``.
    extra: method-specific scalars logged under ``select/<name>`` (e.g. mixture parameters).
    flagged: rows the method predicts to be noisy but still trains on (e.g. DCGMH relabels them
        or trains them without labels). Diagnostics only: unlike ``kept`` it does not restrict
        the batches. Scored as ``select/flagged_*`` and, when ``kept`` is None, the unflagged
        rows are scored as the kept (predicted-clean) set.
    corrected_labels: rows x classes, the label a row was corrected to; rows that were not
        corrected are NaN. Scored against the clean labels (which the method never sees) as
        ``select/correction_accuracy``.
    """

    kept: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    clean_score: torch.Tensor | None = None
    extra: dict[str, float] = field(default_factory=dict)
    flagged: torch.Tensor | None = None
    corrected_labels: torch.Tensor | None = None


class HashingMethod(nn.Module):
    """Base class of a registered method.

    Subclasses set ``name``, ``task``, ``defaults`` (the published hyper-parameters common to
    all datasets) and ``per_dataset`` (published per-dataset values; a dataset without an entry
    borrows the ``mirflickr25k`` one, and the trainer logs it as borrowed). A method that reads
    no label sets ``reads_labels = False`` and then trains once per (dataset, bits, seed,
    protocol), never once per noise model and rate.

    Hyper-parameters the trainer reads from ``hp``: ``epochs``, ``batch_size``,
    ``eval_every`` (evaluate at the start of every such epoch and after the last),
    ``selection`` (``best``: keep the epoch with the best summed mAP; ``last``: the final one).
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = CROSSMODAL
    defaults: ClassVar[dict[str, Any]] = {}
    per_dataset: ClassVar[dict[str, dict[str, Any]]] = {}
    reads_clean_labels: ClassVar[bool] = False
    #: Whether the method reads training labels at all (``Batch.labels``, ``TrainView.labels``).
    #: A method that reads no label (``False``: UCCH and the other unsupervised methods) gives the
    #: same result at every noise model and rate, so it trains once per (dataset, bits, seed,
    #: protocol) and its result fills every noise column; it must never touch the labels the
    #: trainer still hands it.
    reads_labels: ClassVar[bool] = True
    #: mAP denominator under the `paper` protocol: "skip" queries without relevant items (NRCH,
    #: SCBCH) or count them as 0 ("zero", DCGMH). The `sound` protocol always skips.
    paper_denominator: ClassVar[str] = "skip"

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__()
        self.image_dim, self.text_dim, self.n_classes, self.bits = image_dim, text_dim, n_classes, bits
        self.hp = dict(hp)
        self.protocol = protocol

    # -- to implement -------------------------------------------------------------------
    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, Any | None]:
        """Return (optimiser, scheduler or None); the scheduler is stepped once per epoch."""
        raise NotImplementedError

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        """Real-valued codes: ``{"image", "text"}`` for cross-modal methods, ``{"fused"}`` for
        fused ones. The trainer takes their sign for retrieval."""
        raise NotImplementedError

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of one batch and its logged parts."""
        raise NotImplementedError

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """Optional whole-training-set hook (sample selection or weighting)."""
        return None

    # -- helpers ------------------------------------------------------------------------
    def check_hparams(self, choices: dict[str, tuple[str, ...]] | None = None, unit: tuple[str, ...] = (),
                      positive: tuple[str, ...] = (), at_least_one: tuple[str, ...] = (),
                      non_negative: tuple[str, ...] = ()) -> None:
        """ConfigError naming ``methods.<name>.<key>`` for a missing hyper-parameter, a value
        outside its ``choices``, outside [0, 1] (``unit``), not > 0 (``positive``), not an
        integer >= 1 (``at_least_one``) or < 0 (``non_negative``)."""
        hp, where = self.hp, f"methods.{self.name}"
        missing = [key for key in self.defaults if key not in hp]
        if missing:
            raise ConfigError(f"{where}: hyper-parameters {missing} missing")
        for key, allowed in (choices or {}).items():
            if hp[key] not in allowed:
                raise ConfigError(f"{where}.{key}: unknown '{hp[key]}'; use one of {allowed}")
        rules = [(unit, lambda v: 0.0 <= float(v) <= 1.0, "must lie in [0, 1]"),
                 (positive, lambda v: float(v) > 0, "must be > 0"),
                 (at_least_one, lambda v: int(v) >= 1, "must be >= 1"),
                 (non_negative, lambda v: float(v) >= 0, "must be >= 0")]
        for keys, ok, what in rules:
            for key in keys:
                if not ok(hp[key]):
                    raise ConfigError(f"{where}.{key}: {hp[key]} {what}")

    def encode_all(self, image: torch.Tensor, text: torch.Tensor, chunk: int = 4096) -> dict[str, torch.Tensor]:
        """Encode many rows in chunks, in eval mode and without gradients; restores the mode."""
        was_training = self.training
        self.eval()
        parts: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            for start in range(0, image.shape[0], chunk):
                out = self.encode(image[start:start + chunk], text[start:start + chunk])
                for key, value in out.items():
                    parts.setdefault(key, []).append(value)
        self.train(was_training)
        return {key: torch.cat(values) for key, values in parts.items()}

    def directions(self) -> list[tuple[str, str, str]]:
        """Retrieval directions as (name, query code key, database code key)."""
        if self.task == FUSED:
            return [("fused", "fused", "fused")]
        return [("i2t", "image", "text"), ("t2i", "text", "image")]
