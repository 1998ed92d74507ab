"""RSHNL — Robust Self-paced Hashing for Cross-Modal Retrieval with Noisy Labels (Pu et al., AAAI 2025).

Reads like the method section. Official code read in full: perquisite/RSHNL @
34de1461382db360a9dbaca9048ed653104c6887 (``main.py``, ``model.py``, ``losses.py``,
``train_model.py``, ``load_data.py``, ``evaluate.py``, ``utils.py``, ``to_seed.py``); ``file:line``
citations below refer to that commit. The paper's own text was not available beyond its
abstract, whose summary of the weights (``w_i = max(0, 1 - l_i / gamma)``) matches the code; the
disagreements named below are the ones visible in the repository itself.

1. Networks (:class:`RSHNL`): an image and a text encoder, each ``d -> 4096 -> 4096 -> bits``
   with ReLU between, the last layer WITHOUT bias, then ``tanh`` and L2 normalisation
   (:func:`~cmhash.methods.encoders.hash_head`; model.py:40-86). Codes at test time are
   ``sign`` of the output (main.py:88-89). On the pipeline's fixed features these are the
   published networks unchanged (the official code also trains on precomputed features).
2. Hash centres (Center Aggregation Learning, CAL): a third network (``Embedding``,
   model.py:6-23), ``classes -> 4096 -> 4096 -> bits`` (last layer with bias) + tanh + L2
   normalisation, maps the identity matrix to one unit-norm centre per class,
   ``W = g(I_C)`` (C x bits), recomputed at every step (train_model.py:91; :class:`CentreNet`).
   Class probabilities ``P = softmax(u W^T)`` over the classes, per modality, with no
   temperature (train_model.py:93-94; :func:`class_probabilities`).
3. The robust centre loss (:func:`centre_loss`): with ``p_i = sum_c y_ic P_ic`` (the
   probability of the row's label) and the robust loss
   ``r_q(p) = (1 - q) (1 - p^q) / q + q (1 - p)`` (:func:`robust_q_loss`; a generalised cross
   entropy, ``-log p`` as ``q -> 0``, mixed with the mean absolute error ``1 - p``), the per-row
   loss is ``l_i = r_q(p_i^image) + r_q(p_i^text)`` (losses.py:40-43, 54).
4. Contrastive Hashing Learning (CHL, :func:`contrastive_q_loss`): over the ``2n`` codes of a
   batch (images then texts), ``p_a = exp(z_a . z_a' / tau) / sum_{b != a} exp(z_a . z_b / tau)``
   with ``a'`` the other modality of the same pair, and ``L_CHL = 2 mean_a r_q(p_a)``, the same
   ``r_q`` with the same ``q`` (losses.py:10-27, called at :74).
5. Noise-tolerance Self-paced Hashing (NSH, :func:`self_paced_weights`,
   :func:`self_paced_regulariser`): from epoch ``warmup_epochs`` on (``--tp``, the "turning
   point"), each row's loss is weighted by ``w_i = max(0, 1 - l_i / gamma)`` computed from the
   detached ``l_i`` (the linear self-paced regulariser; ``regulariser: hard`` gives
   ``w_i = [l_i < gamma]``), and the row's term becomes ``w_i l_i + gamma (w_i^2 / 2 - w_i)``
   (hard: ``w_i l_i - gamma w_i``; losses.py:56-70). A row with ``l_i >= gamma`` is
   treated as noisy and gets weight 0; the others are learnt easy-to-hard.
6. Total ``lambda_centre * mean_i(term_i) + alpha * L_CHL`` (losses.py:75), Adam over the three
   networks (main.py:77-79).

Published behaviour reproduced (hyper-parameter in brackets; defaults = the published code):

* Adam lr 1e-4 [``lr``] for both parameter groups (main.py:36, 77-79; one Adam over all
  parameters is the same update), no weight decay [``weight_decay`` = 0: main.py:61 sets it and
  never passes it]; batch 256 (main.py:34; the last, short batch is kept: load_data.py:174-175);
  150 epochs (main.py:33); [``q``] 0.01 (main.py:40); [``tau``] 1 (main.py:42);
  [``lambda_centre``] 1 (``--lamda``, main.py:32); [``warmup_epochs``] 5 (``--tp``, main.py:39);
  self-paced on, linear (main.py:43-44).
* Per dataset (main.py:28, 30-31: the comments list wiki, xmedia, INRIA-Websearch, xmedianet
  and beside them alpha 0.05 / 0.10 / 0.30 / 0.05 and gamma 3 / 5 / 8 / 9): the ``wikipedia``
  family takes wiki's alpha 0.05 and gamma 3. The ``defaults`` are the argument defaults,
  XMedia's 0.1 and 5 (main.py:30-31). RSHNL publishes no MIRFlickr, NUS-WIDE, MS-COCO or IAPR
  setting, so those datasets run at these defaults (provenance ``published``, citing the argument
  defaults).
* [``spl_weights`` = ``batch``] The published weights come from each batch's own forward pass,
  the one being optimised (``term1.detach()``, losses.py:60), so they move within an epoch.
  ``epoch`` instead fixes them per epoch, computed over the whole training set at its start (the
  alternating scheme of self-paced learning: fix the weights, fit the model, repeat); the trainer
  then passes them as ``Batch.weight``.
* Quirk: the second half of the published CHL (losses.py:23-26) normalises the same symmetric
  similarity matrix the same way as the first (:18-21), so it equals it exactly and the loss is
  twice one term (the factor 2 in :func:`contrastive_q_loss`).
* Quirk: CHL reuses the centre loss's ``q`` (``q=q``, losses.py:74): there is no separate
  contrastive ``q``. The other published centre losses (``--loss_type`` CE, GCE, RC,
  losses.py:44-53) leave ``q`` unbound, so the call at :74 fails; only ``RSHNL`` runs, and only
  it is offered.
* Quirk: the self-paced regulariser ``gamma (w^2 / 2 - w)`` (losses.py:64) is a constant for
  the gradient (``w`` is detached), so it changes only the loss value, which turns negative once
  the weighting starts (logged ``loss/total`` drops at ``warmup_epochs``).
* Quirk: the last layer of each encoder is initialised ``U(-1/sqrt(d), 1/sqrt(d))`` with ``d``
  the NETWORK's input width, not the layer's fan-in 4096 (model.py:51, 76); the centre network's
  with ``d`` = the number of classes (model.py:14). Every other layer has PyTorch's default init.
* Model selection: the published loop scores the model after every epoch (the train phase, then
  mAP, train_model.py:55, 132-150) and keeps the best mean of i2t and t2i (:157-159, loaded at
  :171); the untrained model is never scored (:meth:`RSHNL.is_candidate`), the final one is.
  [``eval_every`` = 1, ``selection`` = best]. The official selection split is a CLEAN-labelled
  validation slice of the test data that it then removes from the test set (wiki: the first 231
  test pairs, load_data.py:69, 80-86; XMedia 500, :88, 99-105), ranked against itself
  (query = database = that slice, :135-149). The pipeline has one split per dataset and no
  clean split besides the query set, so ``paper`` is the trainer's selection on the query set
  against the database with clean labels (one step more optimistic than the official, which at
  least keeps its selection rows out of the reported test), and ``sound`` the trainer's noisy
  validation split carved from the training rows. The official retrieval test also ranks the
  test pairs against themselves (main.py:98-101); the pipeline's query/database splits are used
  instead. mAP: queries without a relevant item are skipped (evaluate.py:40-45), the
  ``skip`` denominator; its ``argsort`` is unstable (:30), the trainer's ``ties`` decide.
* Not reproduced: the ``asym`` noise branch is empty (load_data.py:61-62: ``pass``), leaving a
  corrupted row all-zero; cmhash offers no such model (its ``sym`` is the published ``sym``,
  :mod:`cmhash.noise`). The per-row weight records split by the clean labels (train_model.py:36-42,
  102-116) and the clean-row accuracies (:123-128) are diagnostics; here the trainer scores the
  weights against the corruption mask instead (below). ``measure_noise_ratio`` (utils.py:25-94,
  a GMM noise-rate estimate) is imported by main.py:17 but never called. The published global
  seeding (to_seed.py, main.py:56) is replaced by the trainer's.

Multi-label rows (MIRFlickr, NUS-WIDE, MS-COCO, IAPR): the published code is written for one-hot
labels but its centre loss is the dot product ``p_i = sum_c y_ic P_ic`` (losses.py:42-43), and
its ``sym`` noise keeps a multi-label row's label count (load_data.py:57-60). On a multi-hot row
that dot product is the probability mass the softmax puts on the row's label SET, which is what
this implementation uses by default [``label_target`` = ``set``]: the published formula applied
unchanged. It stays in [0, 1], is 1 exactly when the predicted distribution lies on the row's
labels, and does not grow with the label count, so the self-paced threshold ``l_i >= gamma``
compares rows with one and with five labels on the same scale. ``label_target: normalised``
uses ``y / |y|`` instead (the mean probability of the row's labels, a cross-entropy against the
normalised multi-hot target): its smallest loss grows with the label count (``p_i <= 1 / |y_i|``),
so richly labelled rows look hard and lose weight; it is an option, not the default. CHL uses no
labels. A row without any label has ``p_i = 0`` and the loss's maximum ``2 ((1 - q) / q + q)``
with no gradient (the published ``0 ** q`` gives NaN gradients there, losses.py:42; avoided in
:func:`robust_q_loss`, the value is unchanged); after warm-up its weight is 0.

Per-epoch hook (:meth:`RSHNL.before_epoch`): every epoch (warm-up included, so ``select/auc``
is logged from epoch 0) it scores every training row, codes and centres in eval mode without
gradients, by its centre loss ``l_i`` and returns ``Selection(clean_score = -l_i, extra =
{spl_difficulty_mean, spl_start_weight_mean, spl_start_zero_fraction, warmup})``, the weights
being those the start-of-epoch model gives. Under ``spl_weights: epoch`` after warm-up it also
returns those weights as ``Selection.weights``, which the batches then use (scored as
``select/weight_clean`` / ``select/weight_noisy``). Under the published ``batch`` the weights
are recomputed in each batch, so the Selection carries none; the in-batch weights are logged
per epoch as ``loss/spl_weight_mean`` and ``loss/spl_zero_fraction``. [``row_scores`` = False]
skips the pass where training does not need it.

Ablations: [``self_paced`` = False] every row weight 1 at every epoch (main.py:43); [``alpha`` =
0] no CHL.

Protocols: ``paper`` and ``sound`` run the same method with the same defaults and read only the
noisy labels; what ``sound`` changes (selection on the noisy validation split) is the trainer's.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cmhash.methods.base import (
    CROSSMODAL,
    SELECTIONS,
    Batch,
    HashingMethod,
    Selection,
    TrainView,
)
from cmhash.methods.encoders import hash_head, mlp
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["RSHNL", "CentreNet", "RSHNLEncoder", "centre_loss", "class_probabilities", "contrastive_q_loss",
           "label_probability", "robust_q_loss", "rshnl_objective", "self_paced_regulariser", "self_paced_weights"]

REGULARISERS = ("linear", "hard")
LABEL_TARGETS = ("set", "normalised")
SPL_WEIGHTS = ("batch", "epoch")


# -- the robust loss ---------------------------------------------------------------------------
def robust_q_loss(p: torch.Tensor, q: float) -> torch.Tensor:
    """``r_q(p) = (1 - q) (1 - p^q) / q + q (1 - p)`` elementwise, for probabilities ``p`` in
    [0, 1] and ``0 < q <= 1`` (losses.py:21, 26, 42-43): 0 at ``p = 1``, ``(1 - q) / q + q`` at
    ``p = 0``. ``p^q`` is taken as 0 at ``p = 0`` without a gradient (``0 ** q`` back-propagates
    ``inf * 0 = NaN`` in the published code)."""
    tiny = torch.finfo(p.dtype).tiny
    pq = torch.where(p > 0, p.clamp(min=tiny) ** q, torch.zeros_like(p))
    return (1.0 - q) * (1.0 - pq) / q + q * (1.0 - p)


# -- CAL: hash centres and the centre loss ------------------------------------------------------
def class_probabilities(codes: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``softmax(codes centres^T)`` over the classes (n x C; train_model.py:93-94)."""
    return F.softmax(codes @ centres.T, dim=1)


def label_probability(probs: torch.Tensor, labels: torch.Tensor, target: str = "set") -> torch.Tensor:
    """Per row, the probability of its label: ``sum_c y_c P_c`` (``set``, published: on a
    multi-hot row the mass on its label set, losses.py:42-43) or ``sum_c (y_c / |y|) P_c``
    (``normalised``: the mean probability of its labels; an empty row gives 0 either way)."""
    y = labels.to(probs.dtype)
    if target == "normalised":
        y = y / y.sum(dim=1, keepdim=True).clamp(min=1.0)
    elif target != "set":
        raise ValueError(f"label target {target!r} is not one of {LABEL_TARGETS}")
    return (y * probs).sum(dim=1)


def centre_loss(u: torch.Tensor, v: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor, q: float,
                target: str = "set") -> torch.Tensor:
    """Per-row centre loss ``l_i = r_q(p_i^image) + r_q(p_i^text)`` (``term1``, losses.py:40-43, 54),
    shape ``(n,)``."""
    p_u = label_probability(class_probabilities(u, centres), labels, target)
    p_v = label_probability(class_probabilities(v, centres), labels, target)
    return robust_q_loss(p_u, q) + robust_q_loss(p_v, q)


# -- CHL: the robust contrastive loss -----------------------------------------------------------
def contrastive_q_loss(u: torch.Tensor, v: torch.Tensor, tau: float, q: float) -> torch.Tensor:
    """CHL (``cross_modal_contrastive_ctriterion_q``, losses.py:10-27): the ``2n`` codes ``z`` =
    images then texts; for each anchor ``a``, ``p_a`` = the softmax probability of its pair's other
    modality among all ``2n - 1`` other codes of the batch (similarity ``z_a . z_b / tau``, the
    self-similarity excluded: :17); returns ``2 mean_a r_q(p_a)``. The factor 2 is the published
    second term (:23-26), which equals the first exactly (a quirk). Computed through
    ``logsumexp`` (the same value as the published ``exp`` then divide)."""
    n = u.shape[0]
    z = torch.cat([u, v])
    logits = z @ z.T / tau
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    rows = torch.arange(2 * n, device=z.device)
    partner = torch.cat([rows[n:], rows[:n]])
    p = torch.exp(logits[rows, partner] - torch.logsumexp(logits, dim=1))
    return 2.0 * robust_q_loss(p, q).mean()  # published quirk: the 2nd term duplicates the 1st (losses.py:23-27)


# -- NSH: self-paced weighting ------------------------------------------------------------------
def self_paced_weights(losses: torch.Tensor, gamma: float, regulariser: str = "linear") -> torch.Tensor:
    """``max(0, 1 - l / gamma)`` (``linear``) or ``[l < gamma]`` (``hard``), from the losses
    detached (losses.py:59-67)."""
    losses = losses.detach()
    if regulariser == "linear":
        return (1.0 - losses / gamma).clamp(min=0.0)
    if regulariser == "hard":
        return (losses < gamma).to(losses.dtype)
    raise ValueError(f"self-paced regulariser {regulariser!r} is not one of {REGULARISERS}")


def self_paced_regulariser(weights: torch.Tensor, gamma: float, regulariser: str = "linear") -> torch.Tensor:
    """The regulariser's value per row: ``gamma (w^2 / 2 - w)`` (``linear``, losses.py:64) or
    ``-gamma w`` (``hard``, :67). A constant for the gradient: ``w`` is detached."""
    if regulariser == "linear":
        return gamma * (0.5 * weights ** 2 - weights)
    if regulariser == "hard":
        return -gamma * weights
    raise ValueError(f"self-paced regulariser {regulariser!r} is not one of {REGULARISERS}")


def rshnl_objective(u: torch.Tensor, v: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor, *, q: float,
                    tau: float, alpha: float, lambda_centre: float, gamma: float, self_paced: bool,
                    regulariser: str = "linear", target: str = "set", weight: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """``lambda_centre * mean_i(term_i) + alpha * L_CHL`` and its parts (losses.py:36-75).

    ``term_i`` is the centre loss ``l_i``, or, when ``self_paced``, ``w_i l_i + R(w_i)`` with
    ``w_i`` = ``weight`` if given (``spl_weights: epoch``) or else computed from this batch's own
    detached ``l_i`` (published, losses.py:60). Parts: ``centre`` (mean ``l_i``), ``contrastive``
    (``L_CHL``) and, when self-paced, ``spl_weight_mean``, ``spl_zero_fraction``.
    """
    per_row = centre_loss(u, v, centres, labels, q, target)
    chl = contrastive_q_loss(u, v, tau, q)  # published: CHL shares the centre loss's q (losses.py:74)
    parts = {"centre": float(per_row.detach().mean()), "contrastive": float(chl.detach())}
    term = per_row
    if self_paced:
        w = self_paced_weights(per_row, gamma, regulariser) if weight is None else weight.to(per_row.dtype)
        term = w * per_row + self_paced_regulariser(w, gamma, regulariser)
        parts.update(spl_weight_mean=float(w.mean()), spl_zero_fraction=float((w == 0).to(w.dtype).mean()))
    return lambda_centre * term.mean() + alpha * chl, parts


# -- the networks -------------------------------------------------------------------------------
def _uniform_last_layer(net: nn.Sequential, width: int) -> None:
    """Published init of the last Linear's weight: ``U(-1/sqrt(width), 1/sqrt(width))`` with
    ``width`` the network's INPUT width (a quirk: not the layer's fan-in; model.py:14, 51, 76)."""
    bound = 1.0 / math.sqrt(float(width))
    nn.init.uniform_(net[-1].weight, -bound, bound)


class RSHNLEncoder(nn.Module):
    """``ImgNN`` / ``TextNN`` (model.py:40-86): :func:`~cmhash.methods.encoders.mlp` without a
    bias on its last layer, the published last-layer init, then tanh and L2 normalisation."""

    def __init__(self, in_dim: int, hidden: list[int], bits: int) -> None:
        super().__init__()
        self.net = mlp(in_dim, list(hidden), bits, final_bias=False)
        _uniform_last_layer(self.net, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hash_head(self.net(x))


class CentreNet(nn.Module):
    """The hash-centre network ``Embedding`` (model.py:6-23): ``classes -> hidden -> bits`` (last
    layer with bias, published init) + tanh + L2 normalisation, applied to the identity matrix,
    so row ``c`` of :meth:`forward` is class ``c``'s unit-norm centre (train_model.py:91)."""

    def __init__(self, n_classes: int, hidden: list[int], bits: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = mlp(n_classes, list(hidden), bits)
        _uniform_last_layer(self.net, n_classes)

    def forward(self) -> torch.Tensor:
        weight = self.net[0].weight
        eye = torch.eye(self.n_classes, dtype=weight.dtype, device=weight.device)
        return hash_head(self.net(eye))


# -- the method ---------------------------------------------------------------------------------
@register
class RSHNL(HashingMethod):
    """RSHNL: robust centre loss on learnt hash centres + robust contrastive loss, self-paced
    row weights after warm-up; see the module docstring for every published quirk."""

    name: ClassVar[str] = "rshnl"
    task: ClassVar[str] = CROSSMODAL
    paper_denominator: ClassVar[str] = "skip"  # evaluate.py:40-45: queries without a relevant item skipped
    eval_offset: ClassVar[int] = 0
    paper_scores_final: ClassVar[bool] = True  # published: the model after the last epoch is scored (train_model.py:132-159)
    published_families: ClassVar[tuple[str, ...]] = ("wikipedia",)
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "perquisite/RSHNL @ 34de146"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 150, "main.py:33 (--MAX_EPOCH)", minimum=1),
        Int("batch_size", 256, "main.py:34", minimum=2),
        Int("eval_every", 1, "train_model.py:132-159 (mAP after every epoch)", minimum=1),
        Choice("selection", "best", SELECTIONS, "train_model.py:157-159, 171 (best mean of i2t and t2i)"),
        Float("lr", 1e-4, "main.py:36, 77-79 (Adam)", minimum=0, exclusive_minimum=True),
        Float("weight_decay", 0.0, "main.py:61, 77-79 (set to 0, never passed; Adam's default)", minimum=0),
        Float("alpha", 0.1, "main.py:30 (argument default = XMedia's value)", minimum=0,
              per_family={"wikipedia": 0.05}, family_source="main.py:28, 30 (comment: wiki 0.05)",
              doc="contrastive (CHL) weight"),
        Float("gamma", 5.0, "main.py:31 (argument default = XMedia's value)", minimum=0, exclusive_minimum=True,
              per_family={"wikipedia": 3.0}, family_source="main.py:28, 31 (comment: wiki 3)",
              doc="self-paced pace: rows with centre loss >= gamma get weight 0"),
        Float("lambda_centre", 1.0, "main.py:32 (--lamda)", minimum=0, doc="centre (CAL) loss weight"),
        Float("q", 0.01, "main.py:40", minimum=0, maximum=1, exclusive_minimum=True,
              doc="robust loss exponent, shared by CAL and CHL (losses.py:74)"),
        Float("tau", 1.0, "main.py:42", minimum=0, exclusive_minimum=True, doc="CHL temperature"),
        Int("warmup_epochs", 5, "main.py:39 (--tp, the turning point; losses.py:56)", minimum=0),
        Bool("self_paced", True, "main.py:43; false: ablation, every weight 1"),
        Choice("regulariser", "linear", REGULARISERS, "main.py:44 (--linear True; losses.py:59-67)"),
        Choice("spl_weights", "batch", SPL_WEIGHTS, "losses.py:60 (batch: from each batch's own pass); epoch: fixed "
               "per epoch from the whole training set"),
        Choice("label_target", "set", LABEL_TARGETS, "losses.py:42-43 (set: the published dot product, on a "
               "multi-hot row the mass on its label set); normalised: y / |y|"),
        Bool("row_scores", True, "ours: score every training row each epoch for the diagnostics"),
        Ints("image_hidden", [4096, 4096], "model.py:44-48", minimum=1),
        Ints("text_hidden", [4096, 4096], "model.py:69-73", minimum=1),
        Ints("centre_hidden", [4096, 4096], "model.py:9-12", minimum=1),
    )

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = RSHNLEncoder(image_dim, self.hp["image_hidden"], bits)
        self.text_net = RSHNLEncoder(text_dim, self.hp["text_hidden"], bits)
        self.centre_net = CentreNet(n_classes, self.hp["centre_hidden"], bits)

    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        opt = torch.optim.Adam(self.parameters(), lr=self.hp["lr"], weight_decay=self.hp["weight_decay"])
        return opt, None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def centres(self) -> torch.Tensor:
        """The class centres ``W = g(I_C)`` (C x bits, unit rows)."""
        return self.centre_net()

    def is_candidate(self, epoch: int) -> bool:
        """As the base class, but never the untrained model: the published loop scores the model
        after each epoch's training (train_model.py:55, 132-150)."""
        return epoch > 0 and super().is_candidate(epoch)

    def self_paced_active(self, epoch: int) -> bool:
        """Whether rows are weighted at ``epoch`` (losses.py:56)."""
        return bool(self.hp["self_paced"]) and epoch >= int(self.hp["warmup_epochs"])

    def _objective(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, epoch: int,
                   weight: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        hp = self.hp
        codes = self.encode(image, text)
        return rshnl_objective(codes["image"], codes["text"], self.centres(), labels, q=float(hp["q"]),
                               tau=float(hp["tau"]), alpha=float(hp["alpha"]),
                               lambda_centre=float(hp["lambda_centre"]), gamma=float(hp["gamma"]),
                               self_paced=self.self_paced_active(epoch), regulariser=hp["regulariser"],
                               target=hp["label_target"], weight=weight)

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        # `batch`: the published in-batch weights, so any Batch.weight is not used (the hook sets none then)
        weight = batch.weight if self.hp["spl_weights"] == "epoch" else None
        return self._objective(batch.image, batch.text, batch.labels, epoch, weight)

    # -- the per-epoch hook -------------------------------------------------------------------
    def row_difficulty(self, view: TrainView, chunk: int = 4096) -> torch.Tensor:
        """Every training row's centre loss ``l_i`` with the current networks (eval mode, no
        gradients), shape ``(N,)``."""
        codes = self.encode_all(view.image, view.text, chunk=chunk)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = centre_loss(codes["image"], codes["text"], self.centres(), view.labels, float(self.hp["q"]),
                              self.hp["label_target"])
        self.train(was_training)
        return out

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        hp = self.hp
        active = self.self_paced_active(epoch)
        fixed = active and hp["spl_weights"] == "epoch"
        if not (fixed or hp["row_scores"]):
            return None
        difficulty = self.row_difficulty(view)
        gamma = float(hp["gamma"])
        w = self_paced_weights(difficulty, gamma, hp["regulariser"])
        extra = {"spl_difficulty_mean": float(difficulty.mean()), "spl_start_weight_mean": float(w.mean()),
                 "spl_start_zero_fraction": float((w == 0).float().mean()), "warmup": 0.0 if active else 1.0}
        return Selection(weights=w if fixed else None, clean_score=-difficulty, extra=extra)
