"""SCBCH — Semantic-Consistent Bidirectional Contrastive Hashing for Noisy Multi-Label
Cross-Modal Retrieval (Peng et al., arXiv 2511.07780).

Reads like the method section (METHODS.md, "SCBCH" and "Shared by NRCH and SCBCH").
Official code: Plke/SCBCH @ cfcc18c; ``file:line`` citations below refer to that commit.

1. Networks as NRCH (:class:`~cmhash.methods.encoders.HashEncoder`: image MLP 4096 -> 8192 ->
   8192 -> bits, text MLP d -> 8192 -> bits, ReLU between, tanh then L2 normalisation; codes
   at test time are sign(output)), plus two classifiers ``W_u``, ``W_v`` (bits x classes,
   orthogonal init) with ``p = sigmoid(code @ W)`` (network.py:33-107, train.py:236-250,
   413-414). Hidden widths are the hyper-parameters ``image_hidden`` / ``text_hidden`` so a
   small preset can narrow them.
2. Cross-modal Semantic-Consistent Classification (CSCC, :func:`cscc_weights`), each epoch
   ``>= warmup_epochs`` over the whole training set: ``sim = (cos(U, U) + cos(V, V)) / 2`` with
   a zero diagonal, the ``k`` most similar rows, their similarities normalised to sum 1
   (``w / (sum w + 1e-8)``), the soft label ``p_i = sum_j w_ij y_j``, and the reliability
   weight ``weight_i = gamma + (1 - gamma) * cos(y_i, p_i)``. Computed ``cscc_block`` rows at a
   time, so memory is ``block x N`` rather than ``N x N`` (published: train.py:183-226, run at
   :401-402).
3. Bidirectional Soft Contrastive Hashing (BSCH, :func:`bsch_loss`) on a batch: ``R`` =
   Jaccard similarity of the noisy labels (:func:`label_jaccard`), ``S = u v^T``, NRCH's
   margin/shift masking in each direction with the diagonal clamped at >= 0
   (:func:`~cmhash.methods.contrastive.masked_similarity`,
   :func:`~cmhash.methods.contrastive.clamp_diagonal`), then
   ``mean(tau exp(M_row / tau * (1 - R)) + tau exp(M_col / tau * (1 - R)))``
   ``+ mean(pos * exp(shift - S)) - mean(diag S)`` with ``pos = (R - I) > 0`` (train.py:119-153).
4. Quantisation ``mean|u - sign u| + mean|v - sign v|`` (:func:`sign_quantisation_loss`) and
   classification ``mean_i w_i (BCE_i(p_u) + BCE_i(p_v)) / 2`` against the noisy labels, BCE
   averaged over classes, ``w_i`` the CSCC weight after warm-up and 1 before
   (:func:`weighted_classification_loss`; train.py:155-175, 416-425).
5. Total ``alpha * BSCH + beta * quantisation + 1.0 * classification``
   (:func:`scbch_objective`; train.py:177-181, 260).

Published behaviour reproduced (hyper-parameter in brackets; defaults = the published code):

* Adam lr 1e-4, weight decay 1e-5 (train.py:70-77; the code keeps one Adam per modality,
  :253-258; Adam is per-parameter, so one Adam over both is the same update); batch 128 (:81);
  50 epochs (:83); warm-up 5 (:401, :416); tau 1 (:108); gamma 0.5 (:183); classification
  weight 1.0 [``lambda_class``] (:107). (k, margin, shift) per dataset (train.py:501-531):
  NUS-WIDE (20, 0.2, 1.0), MIRFlickr (20, 0.15, 0.8), MS-COCO (20, 0.3, 1.1), IAPR TC-12 (20,
  0.3, 1.2); the ``defaults`` hold the code's argument defaults (20, 0.2, 1.0; train.py:36-38)
  but every dataset takes its published entry (an unlisted one borrows MIRFlickr's, logged by
  the registry).
* [``alpha``, ``beta``] = 0.7 / 0.3 as the published README runs it (readme.md:31); the code's
  argument defaults are 0.3 / 0.7 (train.py:39-40; :data:`CODE_ARGUMENT_WEIGHTS`), selectable by
  overriding both.
* [``eval_every`` = 1, ``selection`` = best]: the code evaluates before training each epoch
  index 0..49 (train.py:302) and keeps the best t2i + i2t (:347); the model after the last epoch
  is never scored (:436-438; ``paper_scores_final = False``; ``sound`` scores it too). Query-set
  selection under ``paper``, validation under ``sound``, both done by the trainer.
* [``bsch_start`` = ``code``]: the code applies the BSCH term from epoch 0 (train.py:177-181,
  419-425) and the CSCC weights from ``warmup_epochs`` on (:401-402, :416-417). ``paper``
  follows the paper's description instead: classification (with quantisation) alone during
  warm-up, then CSCC and BSCH together. The ``paper`` protocol is meant to run with ``code``
  (the published behaviour); the switch is a method option, not tied to the protocol.
* [``cscc_similarity`` = ``within``]: the code averages the WITHIN-modality cosine matrices
  (train.py:209-215) although the paper speaks of cross-modal neighbours (a quirk); ``cross``
  uses ``cos(U, V)`` (rows: images, columns: texts) with the same zero diagonal.
* CSCC quirks kept: the diagonal is set to 0 rather than excluded, so a row whose other
  similarities are mostly negative can count itself among its ``k`` neighbours; neighbour
  similarities may be negative and are normalised by their plain sum (+1e-8) (train.py:210-218).
  A row without any positive label gets cosine 0, i.e. weight ``gamma`` (:222-224).
* The code computes CSCC with the networks in eval mode and leaves them there for the epoch
  (train.py:190-191 run after the ``train()`` of :397-398, epochs >= 5); these encoders have
  no dropout or batch norm, so the mode changes nothing.
* The classifier logits are bounded (unit-norm code, orthonormal-init ``W``), so
  ``binary_cross_entropy_with_logits`` equals the code's ``binary_cross_entropy(sigmoid(.))``
  (train.py:162-163, 413-414).

Per-epoch hook (:meth:`SCBCH.before_epoch`): during warm-up it returns None (nothing is
computed, as published: every classification weight is 1, train.py:401, 422-425, and no
diagnostics are logged). From ``warmup_epochs`` on it returns
``Selection(weights=w, clean_score=w, extra=...)``; the trainer passes ``w`` to the batches (``Batch.weight``) and scores it against the true corruption mask
(``select/weight_clean``, ``select/weight_noisy``, ``select/auc``). ``extra`` logs the weights'
mean / min / max and the mean cosine, under ``select/cscc_*``.

Ablations: [``cscc`` = False] every weight 1 and no CSCC pass (the hook returns None);
[``bsch`` = False] no contrastive term (quantisation and classification only).

Protocols: ``sound`` and ``paper`` run the same method with the same defaults; what ``sound``
changes (model selection on a validation split) is done by the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cmhash.errors import ConfigError
from cmhash.methods.base import (
    CROSSMODAL,
    SELECTIONS,
    Batch,
    HashingMethod,
    Selection,
    TrainView,
)
from cmhash.methods.contrastive import clamp_diagonal, masked_similarity
from cmhash.methods.encoders import HashEncoder
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["CODE_ARGUMENT_WEIGHTS", "SCBCH", "CSCCResult", "bsch_loss", "cscc_weights", "label_jaccard",
           "scbch_objective", "sign_quantisation_loss", "weighted_classification_loss"]

#: The published code's argument defaults for (alpha, beta) (train.py:39-40); its README runs 0.7 / 0.3 (readme.md:31).
CODE_ARGUMENT_WEIGHTS: dict[str, float] = {"alpha": 0.3, "beta": 0.7}


# -- BSCH ---------------------------------------------------------------------------------------
def label_jaccard(labels_a: torch.Tensor, labels_b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Soft pairwise semantics ``R_ij = |y_i & y_j| / (|y_i| + |y_j| - |y_i & y_j| + eps)``
    (METHODS.md, SCBCH "R = Jaccard(Y)"; eps 1e-8 as published, train.py:119-126, so two empty
    rows give 0)."""
    a, b = labels_a.float(), labels_b.float()
    inter = a @ b.T
    union = a.sum(dim=1, keepdim=True) + b.sum(dim=1, keepdim=True).T - inter
    return inter / (union + eps)


def bsch_loss(u: torch.Tensor, v: torch.Tensor, R: torch.Tensor, margin: float, shift: float,
              tau: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The BSCH contrastive loss of a batch (METHODS.md, SCBCH "BSCH contrastive"; train.py:128-153).

    ``S = u v^T``; ``M_row`` / ``M_col`` = ``S`` with the entries below the row's / column's
    diagonal minus ``margin`` shifted down by ``shift``, diagonal clamped at >= 0. Returns
    ``mean(tau exp(M_row / tau (1 - R)) + tau exp(M_col / tau (1 - R))) + mean(pos exp(shift - S))
    - mean(diag S)`` with ``pos = (R - I) > 0``; every mean runs over all N x N entries (or the N
    diagonal entries). The parts are logged as ``soft_contrast``, ``separation``, ``alignment``.
    """
    S = u @ v.T
    keep = 1.0 - R
    row = clamp_diagonal(masked_similarity(S, margin, shift, dim=1))  # image i against every text j
    col = clamp_diagonal(masked_similarity(S, margin, shift, dim=0))  # text j against every image i
    soft = (tau * torch.exp(row / tau * keep) + tau * torch.exp(col / tau * keep)).mean()
    eye = torch.eye(R.shape[0], dtype=R.dtype, device=R.device)
    pos = ((R - eye) > 0).to(S.dtype)
    separation = (pos * torch.exp(shift - S)).mean()
    alignment = S.diagonal().mean()
    parts = {"soft_contrast": float(soft.detach()), "separation": float(separation.detach()),
             "alignment": float(alignment.detach())}
    return soft + separation - alignment, parts


def sign_quantisation_loss(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``mean|u - sign u| + mean|v - sign v|`` (METHODS.md, SCBCH "Quantisation"; train.py:155-158)."""
    return (u - u.sign()).abs().mean() + (v - v.sign()).abs().mean()


def weighted_classification_loss(logits_u: torch.Tensor, logits_v: torch.Tensor, labels: torch.Tensor,
                                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """``mean_i w_i (BCE_i(p_u) + BCE_i(p_v)) / 2`` with each BCE averaged over classes, against
    the noisy ``labels`` (METHODS.md, SCBCH "Classification"). ``weight`` None = all 1. As
    published the weighted mean divides by the batch size, not by the sum of the weights
    (train.py:160-175)."""
    bce_u = F.binary_cross_entropy_with_logits(logits_u, labels, reduction="none").mean(dim=1)
    bce_v = F.binary_cross_entropy_with_logits(logits_v, labels, reduction="none").mean(dim=1)
    per_sample = (bce_u + bce_v) / 2.0
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()


def scbch_objective(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, W_u: torch.Tensor, W_v: torch.Tensor,
                    weight: torch.Tensor | None, *, alpha: float, beta: float, lambda_class: float, margin: float,
                    shift: float, tau: float, contrastive: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """``alpha * BSCH + beta * quantisation + lambda_class * classification`` and its parts.
    ``contrastive=False`` leaves BSCH out (the ``bsch: false`` ablation, or warm-up under
    ``bsch_start: paper``)."""
    q = sign_quantisation_loss(u, v)
    cls = weighted_classification_loss(u @ W_u, v @ W_v, labels, weight)
    total = beta * q + lambda_class * cls
    parts = {"quantisation": float(q.detach()), "classification": float(cls.detach())}
    if contrastive:
        b, b_parts = bsch_loss(u, v, label_jaccard(labels, labels), margin, shift, tau)
        total = total + alpha * b
        parts.update({"bsch": float(b.detach()), **b_parts})
    return total, parts


# -- CSCC -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CSCCResult:
    """CSCC over a training set: per-row weight, soft label and label cosine."""

    weights: torch.Tensor  # gamma + (1 - gamma) * cosine, (N,)
    cosine: torch.Tensor  # cos(y_i, p_i), (N,)
    soft_labels: torch.Tensor  # p_i = sum_j w_ij y_j, (N, classes)


def cscc_weights(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, k: int, gamma: float = 0.5,
                 similarity: str = "within", block: int = 2048) -> CSCCResult:
    """Cross-modal Semantic-Consistent Classification weights (METHODS.md, SCBCH "CSCC weights";
    published ``select_clean_sample``, train.py:183-226).

    ``similarity='within'`` (published, train.py:209-215): ``sim = (cos(U, U) + cos(V, V)) / 2``; ``'cross'``:
    ``sim = cos(U, V)``; either with a zero diagonal. For each row, its ``k`` largest
    similarities (the zeroed self-similarity is a candidate, as published: train.py:213, 217), normalised to sum 1
    (``/ (sum + 1e-8)``), give the soft label ``p_i = sum_j w_ij y_j`` and
    ``weight_i = gamma + (1 - gamma) * cos(y_i, p_i)`` (``F.cosine_similarity``, eps 1e-8).

    Rows are processed ``block`` at a time: peak memory ``block x N`` similarities plus
    ``block x k x classes`` gathered labels, never ``N x N`` when ``block < N``. The result does
    not depend on ``block`` (up to float rounding of the matrix products).
    """
    n = u.shape[0]
    if not 1 <= k <= n:
        raise ConfigError(f"methods.scbch.k: {k} neighbours need at least {k} training rows (have {n}); "
                          f"lower k")
    if similarity not in ("within", "cross"):
        raise ConfigError(f"methods.scbch.cscc_similarity: unknown '{similarity}'; use 'within' or 'cross'")
    if block < 1:
        raise ConfigError(f"methods.scbch.cscc_block: {block} must be >= 1")
    un, vn = F.normalize(u.float(), dim=1), F.normalize(v.float(), dim=1)
    y = labels.float()
    weights, cosines, soft_labels = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        if similarity == "within":  # published quirk: within-modality similarities averaged (train.py:215)
            sim = (un[start:stop] @ un.T + vn[start:stop] @ vn.T) / 2
        else:
            sim = un[start:stop] @ vn.T
        local = torch.arange(stop - start, device=sim.device)
        sim[local, local + start] = 0.0  # published: the diagonal is zeroed, not excluded (train.py:210, 213)
        top, idx = torch.topk(sim, k=k, dim=1)
        w = top / (top.sum(dim=1, keepdim=True) + 1e-8)
        soft = torch.einsum("bk,bkc->bc", w, y[idx])
        cos = F.cosine_similarity(y[start:stop], soft, dim=1)
        weights.append(gamma + (1.0 - gamma) * cos)
        cosines.append(cos)
        soft_labels.append(soft)
    return CSCCResult(torch.cat(weights), torch.cat(cosines), torch.cat(soft_labels))


# -- the method ---------------------------------------------------------------------------------
@register
class SCBCH(HashingMethod):
    """SCBCH: BSCH contrastive hashing + quantisation + CSCC-weighted classification."""

    name: ClassVar[str] = "scbch"
    task: ClassVar[str] = CROSSMODAL
    paper_denominator: ClassVar[str] = "skip"
    eval_offset: ClassVar[int] = 1  # published: scored at the start of every epoch index 0..49 (train.py:302)
    paper_scores_final: ClassVar[bool] = False  # published: nothing evaluated after the loop (train.py:436-438)
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "Plke/SCBCH @ cfcc18c"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 50, "train.py:83", minimum=1),
        Int("batch_size", 128, "train.py:81", minimum=1),
        # published: mAP before training every epoch, best t2i + i2t kept (train.py:302, 347)
        Int("eval_every", 1, "train.py:302", minimum=1),
        Choice("selection", "best", SELECTIONS, "train.py:347 (best t2i + i2t)"),
        Float("lr", 1e-4, "train.py:70-77 (Adam)", minimum=0, exclusive_minimum=True),
        Float("weight_decay", 1e-5, "train.py:70-77", minimum=0),
        Int("warmup_epochs", 5, "train.py:401, 416 (CSCC weights from epoch 5 on)", minimum=0),
        # code argument defaults (train.py:36-38); every dataset takes its per-family entry (:501-531)
        Int("k", 20, "train.py:36 (argument default)", minimum=1,
            per_family={"mirflickr25k": 20, "nuswide21": 20, "mscoco": 20, "iaprtc12": 20},
            family_source="train.py:501-531", doc="CSCC neighbours"),
        Float("margin", 0.2, "train.py:37 (argument default)", minimum=0,
              per_family={"mirflickr25k": 0.15, "nuswide21": 0.2, "mscoco": 0.3, "iaprtc12": 0.3},
              family_source="train.py:501-531"),
        Float("shift", 1.0, "train.py:38 (argument default)", minimum=0,
              per_family={"mirflickr25k": 0.8, "nuswide21": 1.0, "mscoco": 1.1, "iaprtc12": 1.2},
              family_source="train.py:501-531"),
        Float("alpha", 0.7, "readme.md:31 (the code's argument default is 0.3, train.py:39)", minimum=0,
              doc="BSCH weight"),
        Float("beta", 0.3, "readme.md:31 (the code's argument default is 0.7, train.py:40)", minimum=0,
              doc="quantisation weight"),
        Float("lambda_class", 1.0, "train.py:107", minimum=0, doc="classification weight"),
        Float("tau", 1.0, "train.py:108", minimum=0, exclusive_minimum=True),
        Float("gamma", 0.5, "train.py:183", minimum=0, maximum=1, doc="CSCC weight floor"),
        Bool("cscc", True, "train.py:401-402; false: ablation, all weights 1"),
        Bool("bsch", True, "train.py:177-181; false: ablation, no contrastive term"),
        Choice("bsch_start", "code", ("code", "paper"), "train.py:181 (code: from epoch 0); paper: with CSCC "
               "after warm-up, as the paper describes"),
        Choice("cscc_similarity", "within", ("within", "cross"), "train.py:215 (within); cross: cos(U, V), as "
               "the paper describes"),
        Int("cscc_block", 2048, "ours: rows per CSCC block (memory block x N)", minimum=1),
        Ints("image_hidden", [8192, 8192], "network.py:33-107", minimum=1),
        Ints("text_hidden", [8192], "network.py:33-107", minimum=1),
    )

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = HashEncoder(image_dim, self.hp["image_hidden"], bits)
        self.text_net = HashEncoder(text_dim, self.hp["text_hidden"], bits)
        self.W_u = nn.Parameter(nn.init.orthogonal_(torch.empty(bits, n_classes), gain=1.0))
        self.W_v = nn.Parameter(nn.init.orthogonal_(torch.empty(bits, n_classes), gain=1.0))

    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        opt = torch.optim.Adam(self.parameters(), lr=self.hp["lr"], weight_decay=self.hp["weight_decay"])
        return opt, None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def contrastive_active(self, epoch: int) -> bool:
        """Whether the BSCH term is in the loss at ``epoch`` (ablation and ``bsch_start``)."""
        if not self.hp["bsch"]:
            return False
        return self.hp["bsch_start"] == "code" or epoch >= int(self.hp["warmup_epochs"])

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        codes = self.encode(batch.image, batch.text)
        hp = self.hp
        total, parts = scbch_objective(codes["image"], codes["text"], batch.labels, self.W_u, self.W_v, batch.weight,
                                       alpha=float(hp["alpha"]), beta=float(hp["beta"]),
                                       lambda_class=float(hp["lambda_class"]), margin=float(hp["margin"]),
                                       shift=float(hp["shift"]), tau=float(hp["tau"]),
                                       contrastive=self.contrastive_active(epoch))
        return total, parts

    # -- CSCC -------------------------------------------------------------------------------
    def cscc(self, view: TrainView) -> CSCCResult:
        """CSCC over the whole training view (codes in eval mode, no gradients)."""
        hp = self.hp
        codes = self.encode_all(view.image, view.text, chunk=int(hp["cscc_block"]))
        with torch.no_grad():
            return cscc_weights(codes["image"], codes["text"], view.labels, int(hp["k"]), float(hp["gamma"]),
                                hp["cscc_similarity"], int(hp["cscc_block"]))

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        hp = self.hp
        if not hp["cscc"] or epoch < int(hp["warmup_epochs"]):  # published: no weights during warm-up (train.py:401, 422-425)
            return None
        result = self.cscc(view)
        w = result.weights
        extra = {"cscc_weight_mean": float(w.mean()), "cscc_weight_min": float(w.min()),
                 "cscc_weight_max": float(w.max()), "cscc_cosine_mean": float(result.cosine.mean()),
                 "warmup": 0.0}
        return Selection(weights=w, clean_score=w, extra=extra)
