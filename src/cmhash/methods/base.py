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

from cmhash.families import FALLBACK_FAMILY
from cmhash.methods.hparams import (
    HParam,
    check_hparams,
    defaults_of,
    per_dataset_of,
    undeclared,
)

CROSSMODAL = "crossmodal"  # image query -> text database and back (NRCH, SCBCH)
FUSED = "fused"  # one code per image-text pair (DCGMH)
#: The trainer's model selection (hyper-parameter ``selection``): the best-scoring candidate or the last model.
SELECTIONS = ("best", "last")
#: Where ``paper`` scores the candidate models (:class:`PaperSelection`).
SELECTION_SPLITS = ("query", "database_head", "validation")


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

    ``clean_labels`` and ``true_noise_rate`` are set only when the method's :meth:`HashingMethod.needs`
    asks for them under the cell's protocol (DCGMH's published correction reads clean labels,
    DCGMH engine.py:140-143 @ f208cdb, and its filter the true rate, engine.py:127: leaks the
    ``sound`` protocol removes); otherwise they are None and neither reaches the method.
    """

    image: torch.Tensor
    text: torch.Tensor
    labels: torch.Tensor
    clean_labels: torch.Tensor | None = None
    true_noise_rate: float | None = None  # the cell's noise rate, as configured

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class CellNeeds:
    """What a method needs from its cell beyond the features and the noisy training labels,
    under one protocol (:meth:`HashingMethod.needs`). The trainer and the workflow read this,
    never a method's name.

    labels: reads training labels at all. False: a label-free method, trained once per
        (dataset, bits, seed, protocol) whatever the noise.
    clean_labels: the clean training labels (``TrainView.clean_labels``).
    true_noise_rate: the cell's true noise rate (``TrainView.true_noise_rate``).
    """

    labels: bool = True
    clean_labels: bool = False
    true_noise_rate: bool = False


@dataclass(frozen=True)
class PaperSelection:
    """Where and how the trainer scores the candidate models under ``paper``, as the method's
    official code does (:attr:`HashingMethod.paper_selection`). Relevance always comes from the
    dataset's clean labels, as in every official loop; ``sound`` never uses this (it scores the
    validation rows against the fitted rows with their noisy labels).

    split: ``query``: the query set against the database (the published NRCH/SCBCH loops:
        test-set selection); ``database_head``: the first ``rows`` database rows queried against
        themselves (UCCH); ``validation``: the dataset's validation rows against the database
        (DGCPN's labelled validation split).
    rows: the number of database rows of ``database_head``.
    ties: the candidate an exact tie of the summed mAP keeps: the ``earlier`` (a strict
        improvement replaces the best) or the ``later`` one.
    patience: early stopping: training ends once more than ``patience`` candidates in a row
        brought no strict improvement (None: never).
    source: the official code's file:line this follows.
    """

    split: str = "query"
    rows: int | None = None
    ties: str = "earlier"
    patience: int | None = None
    source: str = "NRCH.py:205-221, SCBCH train.py:302-369"

    def __post_init__(self) -> None:
        if self.split not in SELECTION_SPLITS:
            raise ValueError(f"PaperSelection.split: '{self.split}' is not one of {SELECTION_SPLITS}")
        if (self.split == "database_head") != (self.rows is not None and self.rows > 0):
            raise ValueError("PaperSelection.rows: a positive row count for 'database_head', and only for it")
        if self.ties not in ("earlier", "later"):
            raise ValueError(f"PaperSelection.ties: '{self.ties}'; use 'earlier' or 'later'")
        if self.patience is not None and self.patience < 0:
            raise ValueError("PaperSelection.patience: must be >= 0 or None")


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

    Subclasses set ``name``, ``task`` and ``hyperparameters``: the declaration of every
    hyper-parameter (:class:`~cmhash.methods.hparams.HParam`: type, allowed range or choices,
    published default, per-benchmark values and their sources), plus ``published_families``,
    the benchmarks the method publishes a setting for even where no value differs. From them the
    class derives ``defaults`` (the published values common to all datasets) and ``per_dataset``
    (published per-benchmark values; a dataset without an entry borrows the ``fallback_family``
    one, ``mirflickr25k`` unless the class says otherwise, and the trainer logs it as borrowed), and :meth:`__init__` checks ``hp`` against the
    declaration. (A class that sets only ``defaults`` / ``per_dataset`` still works; its
    hyper-parameters are then undeclared and unchecked.) A method that reads
    no label sets ``reads_labels = False`` (read by the default :meth:`needs`) and then trains
    once per (dataset, bits, seed, protocol), never once per noise model and rate.

    Hyper-parameters the trainer reads from ``hp``: ``epochs``, ``batch_size``,
    ``eval_every`` (the candidate models: see :meth:`is_candidate`), ``selection`` (``best``:
    keep the candidate with the best summed mAP; ``last``: the final model; see
    :meth:`selection_mode` for the one exception).
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = CROSSMODAL
    #: The declaration of every hyper-parameter (the one place they are written down).
    hyperparameters: ClassVar[tuple[HParam, ...]] = ()
    #: Benchmark families the method publishes a setting for (besides those with ``per_family``
    #: values), so that they read as ``published:<family>`` rather than borrowed.
    published_families: ClassVar[tuple[str, ...]] = ()
    #: The family whose published values a dataset of any other (or no) family borrows, logged as
    #: borrowed: MIRFlickr-25K, unless the official code publishes a setting for another benchmark
    #: only (DCHUC: NUS-WIDE).
    fallback_family: ClassVar[str] = FALLBACK_FAMILY
    #: The official code (``owner/repo @ commit``) the hyper-parameters' ``file:line`` sources cite.
    reference: ClassVar[str] = ""
    #: Derived from ``hyperparameters`` (read by benchmarks and tests).
    defaults: ClassVar[dict[str, Any]] = {}
    per_dataset: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Whether the method reads training labels at all (``Batch.labels``, ``TrainView.labels``).
    #: A method that reads no label (``False``: UCCH and the other unsupervised methods) gives the
    #: same result at every noise model and rate, so it trains once per (dataset, bits, seed,
    #: protocol) and its result fills every noise column; it must never touch the labels the
    #: trainer still hands it.
    reads_labels: ClassVar[bool] = True
    #: Buffers sized by the training view (allocated at the first ``before_epoch``, so empty in a
    #: fresh method): loading a state dict first takes the saved shapes, so a resumed run works.
    view_buffers: ClassVar[tuple[str, ...]] = ()
    #: mAP denominator under the `paper` protocol: "skip" queries without relevant items (NRCH,
    #: SCBCH: utils/tools.py:493-495, 505 / 559-561, 571) or count them as 0 ("zero", DCGMH:
    #: utils.py:110). The `sound` protocol always skips.
    paper_denominator: ClassVar[str] = "skip"
    #: Candidate models: the model at the start of epoch e is scored iff
    #: ``(e + eval_offset) % eval_every == 0``. 0: epochs 0, k, 2k, ... (ours); 1: the models after
    #: k - 1, 2k - 1, ... epochs, as NRCH/SCBCH's official loops test at the start of an epoch
    #: (NRCH.py:205, SCBCH train.py:302).
    eval_offset: ClassVar[int] = 0
    #: Whether the model after the last epoch is a candidate under ``paper`` (always under
    #: ``sound``, where it is the published epoch count). The official NRCH/SCBCH loops never
    #: score it (NRCH.py:196-258, SCBCH train.py:436-438).
    paper_scores_final: ClassVar[bool] = True
    #: Whether the untrained model (the start of epoch 0) is a candidate under ``paper``. UCCH's
    #: and DGCPN's official loops evaluate only after an epoch (UCCH.py:226-229, DGCPN train.py:43).
    paper_scores_untrained: ClassVar[bool] = True
    #: Where ``paper`` scores the candidates (:class:`PaperSelection`); the default is the query
    #: set, the published NRCH/SCBCH flaw.
    paper_selection: ClassVar[PaperSelection] = PaperSelection()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "hyperparameters" in own:
            params = tuple(own["hyperparameters"])
            names = [p.name for p in params]
            duplicated = sorted({n for n in names if names.count(n) > 1})
            if duplicated:
                raise ValueError(f"{cls.__name__}.hyperparameters: {duplicated} declared twice")
            cls.hyperparameters = params
            cls.defaults = defaults_of(params)
            cls.per_dataset = per_dataset_of(params, cls.published_families)
        elif "defaults" in own:  # a class giving only the values: undeclared, unchecked
            cls.hyperparameters = undeclared(own["defaults"])

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__()
        self.image_dim, self.text_dim, self.n_classes, self.bits = image_dim, text_dim, n_classes, bits
        self.hp = dict(hp)
        self.protocol = protocol
        check_hparams(self.hyperparameters, self.hp, f"methods.{self.name}")

    @classmethod
    def needs(cls, protocol: str) -> CellNeeds:
        """What this method needs from its cell under ``protocol`` (see :class:`CellNeeds`): the
        one hook through which a method declares it, read by the trainer and the workflow.
        Default: the noisy labels, unless the class sets ``reads_labels = False``."""
        return CellNeeds(labels=cls.reads_labels)

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

    def training_mode(self, epoch: int) -> bool:
        """The module mode (``train()`` if True, ``eval()`` if False) the trainer sets before
        epoch ``epoch``'s hook and batches. Train mode unless a method reproduces otherwise."""
        return True

    # -- the candidate models -------------------------------------------------------------
    def selection_mode(self) -> str:
        """The model the trainer keeps: ``hp["selection"]``, except that a method reading no
        label keeps its last epoch under ``sound`` whatever ``selection`` says: every selection
        split of ``sound`` is scored with labels, which would bring them back (and the noise
        with them) into a result that must not depend on them. Under ``paper`` it selects as
        its official code does (:attr:`paper_selection`, with the dataset's clean labels)."""
        if self.protocol == "sound" and not self.needs("sound").labels:
            return "last"
        return str(self.hp["selection"])

    def is_candidate(self, epoch: int) -> bool:
        """Whether the trainer scores the model at the start of ``epoch`` (``epoch`` ==
        ``epochs``: the final model) on the protocol's selection split."""
        epochs, every = int(self.hp["epochs"]), int(self.hp["eval_every"])
        if epoch >= epochs:
            return self.protocol == "sound" or self.paper_scores_final or self.selection_mode() == "last"
        if epoch == 0 and self.protocol == "paper" and not self.paper_scores_untrained:
            return False
        return (epoch + self.eval_offset) % every == 0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.view_buffers:
            key = prefix + name
            if key in state_dict and state_dict[key].shape != self._buffers[name].shape:
                self._buffers[name] = torch.empty_like(state_dict[key], device=self._buffers[name].device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- helpers ------------------------------------------------------------------------
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
