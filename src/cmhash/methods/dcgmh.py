"""DCGMH — Distribution-Consistency-Guided Multi-modal Hashing (Liu et al., AAAI 2025, arXiv 2412.11216).

A multi-modal FUSION method (METHODS.md, "DCGMH"): one code per image-text pair; a fused query
code ranks fused database codes (``task = FUSED``, one mAP). Reads like the method section.
Official code: LiuJinyu1229/DCGMH @ f208cdb; ``file:line`` citations below refer to that commit.

1. Network (:class:`FusionHashNet`): image MLP ``d -> 4096 -> 128*bits`` and text MLP
   ``d -> 4096 -> 128*bits``, every layer Linear + BatchNorm + ReLU (the last one included, as
   published); fusion = sum; hash layer Linear(128*bits -> bits) + BatchNorm + tanh. The widths are
   hyper-parameters (``image_hidden``, ``text_hidden``, ``fusion_per_bit``) so that a small preset
   can narrow them (model/fusion.py:6-43, engine.py:66-71, main.py:23-24). Category centres: a
   parameter (classes x bits), standard normal init (model/fusion.py:36).
2. Losses, as pure functions of tensors (``L`` = bits, ``C`` = centres, ``h`` = tanh code):
   :func:`code_to_centre_loss` (pointwise, softmax-like against the negative classes),
   :func:`centre_separation_loss`, :func:`quantisation_loss` ``MSE(h, sign h)``,
   :func:`pairwise_reconstruction_loss` ``MSE(cos(h_i, h_j), 2 sigmoid(y_i . y_j) - 1)`` and
   :func:`augmentation_contrastive_loss` over an augmented view (:func:`augment_image`,
   :func:`augment_text`) (engine.py:83-120, utils.py:52-57, data_loader.py:20-93).
3. Warm-up (``warmup`` epochs): code-to-centre on the noisy labels + alpha quant + gamma centre
   (engine.py:183-188).
4. After warm-up, per batch (:meth:`DCGMH.loss`): consistency
   ``s_i = sum_c y_ic cos(h_i, C_c) / |y_i|`` (:func:`consistency_scores`); the lowest
   ``int(B * rate)`` rows of the batch are flagged (:func:`flag_lowest`; engine.py:122-130, 196).
   Every training row keeps a stored profile of its centre similarities (set for the batch's
   unflagged rows, zeroed for its flagged ones: engine.py:197-198) and a flag that, once set,
   stays set (``flagged`` buffer; the published ``noisy_or_not``, engine.py:164, 199).
   Correction (:func:`neighbour_correction`): the 2 training rows whose stored profiles have
   the largest dot product with a flagged row's similarities; if both were never flagged and
   their labels agree, the flagged row adopts the nearest one's label (pairwise reconstruction
   loss), otherwise it is unlabelled (contrastive loss on an augmented view) (engine.py:132-156,
   202-232). Objective: code-to-centre on the batch's unflagged rows + eta reconstruction
   + beta contrastive + alpha quant + gamma centre (engine.py:234).

Published behaviour reproduced (hyper-parameter in brackets; defaults = the published values):

* SGD momentum 0.9, weight decay 1e-5 (engine.py:72), StepLR(step 100, gamma 0.1) (engine.py:73,
  main.py:29); 150 epochs (main.py:11); batch 48 (main.py:15); margin 0.7 (main.py:30). Per
  dataset (warmup, lr, alpha, beta, gamma, eta), lines 5, 7 and 11-14 of train_mir.sh,
  train_nus.sh, train_coco.sh: MIRFlickr (5, 0.005, 1, 0.15, 5, 1), NUS-WIDE (5, 0.001, 1, 0.05,
  5, 1.5), MS-COCO (30, 0.01, 1, 0.2, 5, 1.2); main.py:12-13, 25-28 default to MIRFlickr's.
  Evaluation after every 5th epoch and after the last (engine.py:249-252); the reported number
  is the final one, no selection (engine.py:286-287; ``selection = last``).
* [``lr_step_at_epoch_start`` = True] The published loop steps the scheduler at the START of
  each epoch (engine.py:166), so the learning rate drops one epoch early (epochs 99.. at 0.1
  lr); our trainer steps after each epoch, so the factor is ``decay ** ((epoch + 1) // step)``.
* Which flags drive the loss: the batch's own flagging (the published ``identify``) decides
  which rows of THIS batch are supervised, corrected or unlabelled (engine.py:196, 202-227); the
  remembered flag only decides which rows may serve as neighbours (the published
  ``noisy_or_not``, engine.py:137, 199). A remembered row that lands among a later batch's
  unflagged rows is supervised again and its profile is refreshed, as published (engine.py:197,
  206-208).
* [``frozen_batchnorm`` = True, ``paper`` only] BatchNorm frozen after the first evaluation:
  the published ``engine.py`` calls ``hash_net.train()`` once before its loop and its
  ``evaluate()`` sets ``hash_net.eval()``, which nothing undoes. Its first evaluation ends epoch
  index ``eval_every - 1`` (4), so from epoch index ``eval_every`` on every training forward
  pass, the augmented ones included, normalises with the running statistics and never updates
  them (all of training after warm-up on MIRFlickr and NUS-WIDE; epochs 5-29 of COCO's warm-up).
  :meth:`DCGMH.training_mode` reproduces it; our own evaluation at epoch 0, before any
  training, does not count. ``sound`` keeps train mode (the published behaviour is a bug).
* Profiles start as standard normal draws (the published ``torch.randn`` buffer,
  engine.py:163), so a row not yet visited after warm-up has a random profile.
* The neighbour search runs over every fitting row's stored profile (the flagged row's own,
  just zeroed, included; it is never eligible: engine.py:133-137, 198-199). A corrected row
  takes the label of its nearest neighbour (engine.py:145); a neighbour label with no positive
  class leaves the row unlabelled (engine.py:148-150).
* :func:`centre_separation_loss` averages the upper triangle over all ``K*K`` entries of the
  distance matrix (published ``torch.mean(torch.triu(D, 1))``, engine.py:114-116), and the
  contrastive negative term averages over all ``B*B`` entries with the diagonal zeroed
  (engine.py:104-110).
* Augmentations (published ``data_loader.py:81-93``): image ``x + N(0, 0.1)``, contrast scaled by one
  factor ``U(0.8, 1.2)`` around the mean of the whole batch tensor, ``+ N(0, 0.05)``; text
  ``x + N(0, 0.1)``, 5 swaps of two random feature columns (the same columns for all rows),
  each entry zeroed with probability 0.1 (data_loader.py:20-70). Every draw comes from torch's
  global RNG (CUDA's on a GPU), which the trainer seeds and checkpoints (the published code
  mixes torch, numpy and random: data_loader.py:27, 37, 55).

Deviations where the published code crashes or yields NaN (documented, not quirks): a row with
no positive label has consistency -1 (flagged first) and is left out of the code-to-centre mean
(published: 0/0, engine.py:88, 125); the contrastive term is skipped when a batch has fewer
than 2 unlabelled rows (BatchNorm in train mode raises on a 1-row batch). The published code
always computes it (``numel() > -1``, engine.py:221), with BatchNorm by then in eval mode
(engine.py:256), so 1 row works there and 0 rows give a NaN mean.

Protocols (METHODS.md, DCGMH "Flaws"):

* ``paper``: the flagged fraction is the TRUE noise rate (engine.py:127, 196; main.py:21), read
  from ``TrainView.true_noise_rate`` (the cell's rate; ``hp["oracle_noise_rate"]`` overrides it),
  and the correction decides "labels agree" on the neighbours' CLEAN label vectors
  (engine.py:140-143, flags of the clean labels: data_loader.py:160-163, 184)
  (``TrainView.clean_labels``); the trainer sets both because :meth:`DCGMH.needs` asks for them
  under ``paper``, while the adopted label is the nearest
  neighbour's noisy one (engine.py:48, 139, 145). The mAP counts queries without a relevant item
  as 0 (utils.py:110; ``paper_denominator = "zero"``, applied by the pipeline/trainer).
* ``sound``: no oracle, no clean label. At the start of every epoch after warm-up the
  consistency scores of all fitting rows are computed (network in eval mode) and a 2-component
  Gaussian mixture (sklearn, ``random_state = gmm_seed``) is fitted to them; the estimated noisy
  fraction is the weight of the lower-mean component. It is logged as
  ``select/noise_rate_estimate`` beside the trainer's ``select/noise_rate_true``. The
  correction compares the neighbours' noisy labels; ``TrainView.clean_labels`` is never read.
  ``oracle_noise_rate`` is ignored.

Ablations [``variant``]: ``full`` (filtering + correction), ``filter_only`` (flagged rows are all
unlabelled: no correction, no reconstruction term), ``no_filtering`` (every row supervised by its
noisy label every epoch: the warm-up objective throughout).

Diagnostics (:meth:`DCGMH.before_epoch`, scored by the trainer against the truth): the
``Selection`` of epoch ``e`` describes the decisions made during epoch ``e - 1`` (each row's
flag at its latest visit): ``flagged`` (-> ``select/flagged_precision``: flagged rows truly
corrupted; ``select/flagged_recall``: corrupted rows flagged; and the unflagged rows as the kept
set -> ``select/precision``, ``select/recall``, ``select/kept_fraction``), ``corrected_labels``
(-> ``select/corrected_fraction``, ``select/correction_accuracy``), ``clean_score`` = this
epoch's consistency (-> ``select/auc``), and extras ``flag_rate`` (rate used this epoch),
``ever_flagged_fraction`` (the remembered set), ``unlabelled_fraction`` and, under ``sound``,
``noise_rate_estimate``.
"""
from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from torch import nn

from cmhash.errors import ConfigError
from cmhash.methods.base import (
    FUSED,
    SELECTIONS,
    Batch,
    CellNeeds,
    HashingMethod,
    Selection,
    TrainView,
)
from cmhash.methods.encoders import mlp
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

VARIANTS = ("full", "filter_only", "no_filtering")

# Published augmentation settings (data_loader.py:81-93: image_augmentations / text_augmentations).
IMAGE_NOISE_STD = 0.1
IMAGE_CONTRAST = 0.2  # factor drawn from U(1 - 0.2, 1 + 0.2)
IMAGE_PERTURBATION_STD = 0.05
TEXT_NOISE_STD = 0.1
TEXT_SWAPS = 5
TEXT_DELETION = 0.1


# -- losses and scores (pure functions of tensors) -------------------------------------------
def code_to_centre_loss(h: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor,
                        eps: float = 1e-5) -> torch.Tensor:
    """Pointwise code-to-centre loss (METHODS.md DCGMH "Losses"): with ``z_ic = h_i . C_c / L``,
    ``-log(exp z_ic / (sum_{c' negative} exp z_ic' + exp z_ic + eps) + eps)`` averaged over the
    positive classes ``c`` of row ``i``, then over rows (engine.py:83-90). Rows without a positive
    label are left out (0 when none is left)."""
    bits = h.shape[1]
    e = torch.exp(h @ centres.T / bits)
    pos = e * labels
    negatives = (e * (1 - labels)).sum(1, keepdim=True)
    per_class = -torch.log(pos / (negatives + pos + eps) + eps) * labels
    count = labels.sum(1)
    has = count > 0
    if not bool(has.any()):
        return h.sum() * 0.0
    return (per_class.sum(1)[has] / count[has]).mean()


def centre_separation_loss(centres: torch.Tensor) -> torch.Tensor:
    """``D = cdist(C, C) / L``; ``-(mean of triu(D, 1)) - (smallest off-diagonal distance)``.
    Published quirk: the mean runs over all ``K*K`` entries of ``triu(D, 1)`` (zeros included),
    i.e. ``sum_{i<j} D_ij / K^2`` (engine.py:113-120)."""
    k, bits = centres.shape
    d = torch.cdist(centres, centres, p=2, compute_mode="donot_use_mm_for_euclid_dist") / bits
    upper = torch.triu(d, diagonal=1)
    off = torch.triu(torch.ones(k, k, dtype=torch.bool, device=centres.device), diagonal=1)
    return -upper.mean() - d[off].min()  # published quirk: mean over K*K entries, not K(K-1)/2 (engine.py:116)


def quantisation_loss(h: torch.Tensor) -> torch.Tensor:
    """``MSE(h, sign h)``, mean over all entries (engine.py:184-185)."""
    return F.mse_loss(h, torch.sign(h).detach())


def centre_similarity(h: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every code to every centre (rows x classes; engine.py:177-181)."""
    return F.normalize(h, dim=1) @ F.normalize(centres, dim=1).T


def consistency_scores(similarity: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``s_i = sum_c y_ic cos(h_i, C_c) / |y_i|`` (METHODS.md DCGMH; engine.py:125); -1 (the lowest possible)
    for a row without a positive label."""
    count = labels.sum(1)
    total = (labels * similarity).sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, -1.0))


def flag_lowest(consistency: torch.Tensor, rate: float) -> torch.Tensor:
    """Flag the ``int(B * rate)`` rows of lowest consistency (published ``identify``,
    engine.py:122-130); ties are broken by position (stable sort; the published ``torch.sort``,
    engine.py:126, is not stable)."""
    n_flag = int(consistency.numel() * rate)
    order = torch.sort(consistency, stable=True).indices
    flagged = torch.zeros(consistency.numel(), dtype=torch.bool, device=consistency.device)
    flagged[order[:n_flag]] = True
    return flagged


def neighbour_correction(query: torch.Tensor, profiles: torch.Tensor, eligible: torch.Tensor,
                         agree_labels: torch.Tensor, adopt_labels: torch.Tensor, k: int = 2
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Correct flagged rows from their ``k`` nearest stored profiles (published ``reconstruct``,
    engine.py:132-156).

    query: flagged rows' centre similarities (f x classes); profiles: every training row's
    stored profile (N x classes); eligible: rows never flagged (N); agree_labels: the label
    vectors compared for agreement (clean under ``paper``, noisy under ``sound``); adopt_labels:
    the labels adopted (noisy). A row is corrected when all ``k`` neighbours (largest dot
    product) are eligible and their ``agree_labels`` are identical; it then takes the nearest
    neighbour's ``adopt_labels`` row (an empty one leaves it uncorrected).
    Returns (corrected mask (f), labels (f x classes), neighbour indices (f x k)).
    """
    neighbours = torch.topk(query @ profiles.T, k=k, dim=1).indices
    all_eligible = eligible[neighbours].all(1)
    agree = (agree_labels[neighbours] == agree_labels[neighbours[:, :1]]).all(2).all(1)
    labels = adopt_labels[neighbours[:, 0]]
    corrected = all_eligible & agree & (labels.sum(1) > 0)
    return corrected, labels, neighbours


def label_affinity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """``2 sigmoid(y_i . y_j) - 1`` (published ``label_similarity``, utils.py:52-57)."""
    return 2 * torch.sigmoid(labels_a @ labels_b.T) - 1


def pairwise_reconstruction_loss(h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``MSE(cos(h_i, h_j), 2 sigmoid(y_i . y_j) - 1)`` over all pairs of corrected rows
    (diagonal included, as published: engine.py:213-216)."""
    u = F.normalize(h, dim=1)
    return F.mse_loss(u @ u.T, label_affinity(labels, labels))


def augmentation_contrastive_loss(h_aug: torch.Tensor, h: torch.Tensor, margin: float = 0.7) -> torch.Tensor:
    """``mean_i (1 - cos(h_aug_i, h_i)) + mean_{i,j} [i != j] relu(cos(h_aug_i, h_j) - margin)``;
    the second mean divides by all ``B*B`` entries (diagonal zeroed), as published
    (engine.py:97-111)."""
    s = F.normalize(h_aug, dim=1) @ F.normalize(h, dim=1).T
    off = ~torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    return (1 - torch.diagonal(s)).mean() + (F.relu(s - margin) * off).mean()  # quirk: / B*B, not B(B-1) (engine.py:108-110)


def augment_image(x: torch.Tensor) -> torch.Tensor:
    """Image-feature view: ``+ N(0, 0.1)``, contrast scaled by ``U(0.8, 1.2)`` around the batch
    mean, ``+ N(0, 0.05)`` (torch's global RNG; published data_loader.py:81-86)."""
    x = x + torch.randn_like(x) * IMAGE_NOISE_STD
    factor = 1.0 + (torch.rand(()).item() * 2 - 1) * IMAGE_CONTRAST
    mean = x.mean()
    x = (x - mean) * factor + mean
    return x + torch.randn_like(x) * IMAGE_PERTURBATION_STD


def augment_text(x: torch.Tensor) -> torch.Tensor:
    """Text-feature view: ``+ N(0, 0.1)``, 5 swaps of two random columns, 10% of entries zeroed
    (torch's global RNG; published data_loader.py:88-93)."""
    x = x + torch.randn_like(x) * TEXT_NOISE_STD
    for _ in range(TEXT_SWAPS):
        a, b = torch.randperm(x.shape[1])[:2].tolist()
        x[:, [a, b]] = x[:, [b, a]]
    return x * (torch.rand_like(x) > TEXT_DELETION).to(x.dtype)


def estimate_noise_rate(consistency: np.ndarray, random_state: int = 0) -> tuple[float, dict[str, float]]:
    """The ``sound`` protocol's noisy-fraction estimate: the weight of the lower-mean component
    of a 2-component Gaussian mixture fitted to the consistency scores. Returns (estimate,
    mixture parameters for the log)."""
    x = np.asarray(consistency, dtype=np.float64).reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(x)
    means = gmm.means_.ravel()
    low = int(np.argmin(means))
    return float(gmm.weights_[low]), {"gmm_mean_low": float(means[low]), "gmm_mean_high": float(means[1 - low])}


# -- the network ---------------------------------------------------------------------------
def _branch(in_dim: int, hidden: list[int], out_dim: int) -> nn.Sequential:
    """Linear + BatchNorm + ReLU for every layer, the last included (published ``MLP``,
    model/fusion.py:6-21)."""
    return nn.Sequential(*mlp(in_dim, hidden, out_dim, batch_norm=True), nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True))


class FusionHashNet(nn.Module):
    """Image and text branches summed, then Linear + BatchNorm + tanh to ``bits`` (model/fusion.py:32-43)."""

    def __init__(self, image_dim: int, text_dim: int, bits: int, image_hidden: list[int],
                 text_hidden: list[int], fusion_dim: int) -> None:
        super().__init__()
        self.image = _branch(image_dim, list(image_hidden), fusion_dim)
        self.text = _branch(text_dim, list(text_hidden), fusion_dim)
        self.hash = nn.Sequential(nn.Linear(fusion_dim, bits), nn.BatchNorm1d(bits), nn.Tanh())

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.hash(self.image(image) + self.text(text))


class _StepAtEpochStart:
    """LR factor ``decay ** ((epoch + shift) // step)`` (shift 1 = the published step-first loop,
    engine.py:166)."""

    def __init__(self, step: int, decay: float, shift: int) -> None:
        self.step, self.decay, self.shift = step, decay, shift

    def __call__(self, epoch: int) -> float:
        return self.decay ** ((epoch + self.shift) // self.step)


#: Buffers sized by the training view (allocated at the first ``before_epoch``).
#: Where the per-benchmark values come from.
FAMILY_SOURCE = "train_mir.sh, train_nus.sh, train_coco.sh lines 5, 7, 11-14"
_VIEW_BUFFERS = ("profiles", "flagged", "visit_state", "corrected_labels")
UNSEEN, UNFLAGGED, CORRECTED, UNLABELLED = -1, 0, 1, 2


@register
class DCGMH(HashingMethod):
    """DCGMH; see the module docstring for the published behaviour and the protocols."""

    name: ClassVar[str] = "dcgmh"
    view_buffers: ClassVar[tuple[str, ...]] = _VIEW_BUFFERS
    task: ClassVar[str] = FUSED
    paper_denominator: ClassVar[str] = "zero"  # published mAP counts queries with no relevant item as 0 (utils.py:110)
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "LiuJinyu1229/DCGMH @ f208cdb"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 150, "main.py:11", minimum=1),
        Int("batch_size", 48, "main.py:15", minimum=1),
        # published: after every 5th epoch and after the last (engine.py:249-252)
        Int("eval_every", 5, "engine.py:249-252", minimum=1),
        Choice("selection", "last", SELECTIONS, "engine.py:286 (the reported number is the final one)"),
        Float("momentum", 0.9, "engine.py:72 (SGD)", minimum=0, maximum=1, exclusive_maximum=True),
        Float("weight_decay", 1e-5, "engine.py:72", minimum=0),
        Int("lr_step_size", 100, "engine.py:73, main.py:29 (StepLR)", minimum=1),
        Float("lr_decay", 0.1, "engine.py:73, main.py:29 (StepLR gamma)", minimum=0, exclusive_minimum=True),
        # published quirk: scheduler.step() before each epoch (engine.py:166)
        Bool("lr_step_at_epoch_start", True, "engine.py:166 (scheduler stepped at the start of an epoch)"),
        Float("margin", 0.7, "main.py:30", minimum=0),
        Int("neighbours", 2, "engine.py:133-145", minimum=1),
        Ints("image_hidden", [4096], "FusionHashNet (models)", minimum=1),
        Ints("text_hidden", [4096], "FusionHashNet (models)", minimum=1),
        Int("fusion_per_bit", 128, "branch output width = 128 * bits", minimum=1),
        Choice("variant", "full", VARIANTS, "full: the published method; filter_only / no_filtering: ablations"),
        Float("oracle_noise_rate", None, "paper only: the flagged fraction; null = the cell's true noise rate "
              "(engine.py:127, main.py:21)", minimum=0, maximum=1, exclusive_maximum=True, nullable=True),
        Int("gmm_seed", 0, "ours (sound only): random_state of the noise-rate mixture", minimum=0),
        Bool("frozen_batchnorm", True, "paper only: eval mode after the first official evaluation (engine.py "
             "evaluate() sets eval(), never undone)"),
        # per-dataset values (MIRFlickr's by default, main.py:12-13, 25-28)
        Int("warmup", 5, "main.py:12", minimum=0, per_family={"mirflickr25k": 5, "nuswide21": 5, "mscoco": 30},
            family_source=FAMILY_SOURCE),
        Float("lr", 0.005, "main.py:13", minimum=0, exclusive_minimum=True,
              per_family={"mirflickr25k": 0.005, "nuswide21": 0.001, "mscoco": 0.01}, family_source=FAMILY_SOURCE),
        Float("alpha", 1.0, "main.py:25", minimum=0, per_family={"mirflickr25k": 1.0, "nuswide21": 1.0, "mscoco": 1.0},
              family_source=FAMILY_SOURCE, doc="quantisation weight"),
        Float("beta", 0.15, "main.py:26", minimum=0,
              per_family={"mirflickr25k": 0.15, "nuswide21": 0.05, "mscoco": 0.2}, family_source=FAMILY_SOURCE,
              doc="contrastive weight"),
        Float("gamma", 5.0, "main.py:27", minimum=0, per_family={"mirflickr25k": 5.0, "nuswide21": 5.0, "mscoco": 5.0},
              family_source=FAMILY_SOURCE, doc="centre separation weight"),
        Float("eta", 1.0, "main.py:28", minimum=0, per_family={"mirflickr25k": 1.0, "nuswide21": 1.5, "mscoco": 1.2},
              family_source=FAMILY_SOURCE, doc="reconstruction weight"),
    )

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.variant: str = self.hp["variant"]
        self.net = FusionHashNet(image_dim, text_dim, bits, self.hp["image_hidden"], self.hp["text_hidden"],
                                 int(self.hp["fusion_per_bit"]) * bits)
        self.centres = nn.Parameter(torch.randn(n_classes, bits))
        self.register_buffer("profiles", torch.zeros(0, n_classes))
        self.register_buffer("flagged", torch.zeros(0, dtype=torch.bool))  # remembered: once flagged, always
        self.register_buffer("visit_state", torch.zeros(0, dtype=torch.int8))  # decision at the latest visit
        self.register_buffer("corrected_labels", torch.zeros(0, n_classes))  # NaN rows = not corrected
        self._noisy: torch.Tensor | None = None
        self._agree: torch.Tensor | None = None
        self._rate: float | None = None

    def training_mode(self, epoch: int) -> bool:
        """Train mode, except under ``paper`` from epoch index ``eval_every`` on (the end of the
        official first evaluation), when the published loop trains in eval mode."""
        # published quirk: train() once (engine.py:160); evaluate() at (epoch+1) % 5 == 0 (:249) sets eval() for good (:256)
        frozen = self.protocol == "paper" and bool(self.hp["frozen_batchnorm"]) and epoch >= int(self.hp["eval_every"])
        return not frozen

    @classmethod
    def needs(cls, protocol: str) -> CellNeeds:
        """Under ``paper``, the published oracle (the cell's TRUE noise rate, engine.py:127) and
        the published leak (CLEAN labels in the correction, engine.py:140-143); neither under ``sound``."""
        paper = protocol == "paper"
        return CellNeeds(clean_labels=paper, true_noise_rate=paper)

    # -- optimiser -----------------------------------------------------------------------
    def configure_optimizer(self):
        hp = self.hp
        opt = torch.optim.SGD(self.parameters(), lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
        shift = 1 if hp["lr_step_at_epoch_start"] else 0
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _StepAtEpochStart(int(hp["lr_step_size"]), hp["lr_decay"], shift))
        return opt, sched

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"fused": self.net(image, text)}

    # -- state over the training view ----------------------------------------------------
    def _allocate(self, n: int, device: torch.device) -> None:
        """Fresh per-row state: random-normal profiles (published, engine.py:163), nothing flagged or corrected."""
        c = self.n_classes
        self.profiles = torch.randn(n, c).to(device)  # published quirk: unvisited rows hold random profiles (engine.py:163)
        self.flagged = torch.zeros(n, dtype=torch.bool, device=device)
        self.visit_state = torch.full((n,), UNSEEN, dtype=torch.int8, device=device)
        self.corrected_labels = torch.full((n, c), float("nan"), device=device)

    # -- the per-epoch hook ----------------------------------------------------------------
    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """Prepare the epoch (labels used by the correction, the flag rate) and report the
        previous epoch's decisions for the diagnostics (see the module docstring)."""
        n = len(view)
        if self.profiles.shape[0] != n:
            self._allocate(n, view.labels.device)
        self._noisy = view.labels
        self._agree = view.labels
        if self.protocol == "paper" and self.variant == "full":
            if view.clean_labels is None:
                raise ConfigError("dcgmh under `paper`: the training view carries no clean labels (the published "
                                  "correction compares them); the trainer sets them as DCGMH.needs asks")
            self._agree = view.clean_labels  # published leak: "labels agree" is decided on CLEAN labels (engine.py:140-143)
        if epoch < int(self.hp["warmup"]) and self.variant != "no_filtering":
            return None
        consistency = consistency_scores(
            centre_similarity(self.encode_all(view.image, view.text)["fused"], self.centres.detach()), view.labels)
        extra: dict[str, float] = {}
        if self.variant == "no_filtering":
            return Selection(clean_score=consistency, extra=extra)
        if self.protocol == "paper":
            rate = self.hp["oracle_noise_rate"] if self.hp["oracle_noise_rate"] is not None else view.true_noise_rate
            if rate is None:
                raise ConfigError("dcgmh under `paper`: the published filter flags the cell's TRUE noise rate, and "
                                  "the training view carries none (set methods.dcgmh.oracle_noise_rate, or use `sound`)")
            self._rate = float(rate)  # published oracle: the TRUE noise rate (engine.py:127)
        else:
            self._rate, params = estimate_noise_rate(consistency.cpu().numpy(), int(self.hp["gmm_seed"]))
            extra.update({"noise_rate_estimate": self._rate, **params})
        extra["flag_rate"] = self._rate
        extra["ever_flagged_fraction"] = float(self.flagged.float().mean())
        seen = self.visit_state != UNSEEN
        if not bool(seen.any()):  # no decision made yet (first epoch after warm-up)
            return Selection(clean_score=consistency, extra=extra)
        extra["unlabelled_fraction"] = float((self.visit_state == UNLABELLED).float().mean())
        return Selection(clean_score=consistency, extra=extra, flagged=self.visit_state >= CORRECTED,
                         corrected_labels=self.corrected_labels.clone())

    # -- the batch loss ------------------------------------------------------------------
    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        hp = self.hp
        h = self.net(batch.image, batch.text)
        y = batch.labels
        quant = quantisation_loss(h)
        centre = centre_separation_loss(self.centres)
        base = hp["alpha"] * quant + hp["gamma"] * centre
        if self.variant == "no_filtering" or epoch < int(hp["warmup"]):
            sup = code_to_centre_loss(h, self.centres, y)
            return sup + base, {"code_centre": sup.item(), "quantisation": quant.item(), "centre": centre.item()}
        if self._rate is None or self._noisy is None or self.profiles.shape[0] == 0:
            raise RuntimeError("dcgmh: loss() after warm-up needs before_epoch() to have run this epoch")

        sim = centre_similarity(h, self.centres)
        idx = batch.index.to(self.profiles.device)
        with torch.no_grad():
            flag = flag_lowest(consistency_scores(sim.detach(), y), self._rate)
            full = self.variant == "full"
            if full:  # stored profiles: refreshed for the unflagged rows, zeroed for the flagged (engine.py:197-198)
                self.profiles[idx[~flag]] = sim.detach()[~flag].to(self.profiles.dtype)
                self.profiles[idx[flag]] = 0.0
            self.flagged[idx[flag]] = True
            self.visit_state[idx[~flag]] = UNFLAGGED
            self.corrected_labels[idx] = float("nan")
            corrected = torch.zeros(int(flag.sum()), dtype=torch.bool, device=h.device)
            new_labels = torch.zeros(int(flag.sum()), y.shape[1], device=h.device)
            if full and bool(flag.any()):
                corrected, new_labels, _ = neighbour_correction(
                    sim.detach()[flag], self.profiles, ~self.flagged, self._agree, self._noisy, int(hp["neighbours"]))
                corrected, new_labels = corrected.to(h.device), new_labels.to(h.device, h.dtype)
            flagged_rows = idx[flag]
            self.visit_state[flagged_rows] = torch.where(corrected.to(idx.device), CORRECTED, UNLABELLED).to(torch.int8)
            self.corrected_labels[flagged_rows[corrected.to(idx.device)]] = new_labels[corrected].to(self.corrected_labels.dtype)

        zero = h.sum() * 0.0
        keep = ~flag
        sup = code_to_centre_loss(h[keep], self.centres, y[keep]) if bool(keep.any()) else zero
        h_flag = h[flag]
        recon = pairwise_reconstruction_loss(h_flag[corrected], new_labels[corrected]) if bool(corrected.any()) else zero
        unlabelled = ~corrected
        if int(unlabelled.sum()) >= 2:
            rows = torch.nonzero(flag, as_tuple=False).flatten()[unlabelled]
            h_aug = self.net(augment_image(batch.image[rows]), augment_text(batch.text[rows]))
            contrast = augmentation_contrastive_loss(h_aug, h_flag[unlabelled], float(hp["margin"]))
        else:
            contrast = zero
        total = sup + hp["eta"] * recon + hp["beta"] * contrast + base
        return total, {"code_centre": sup.item(), "reconstruction": recon.item(), "contrastive": contrast.item(),
                       "quantisation": quant.item(), "centre": centre.item(), "flagged": float(flag.sum()),
                       "corrected": float(corrected.sum()), "unlabelled": float(unlabelled.sum())}
