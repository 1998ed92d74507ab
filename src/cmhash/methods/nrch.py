"""NRCH — Robust Contrastive Cross-modal Hashing with Noisy Labels (Wang et al., ACM MM 2024).

Reads like the method section (METHODS.md, "NRCH" and "Shared by NRCH and SCBCH").
Official code: LonganWANG-cs/NRCH @ b190e97; ``file:line`` citations below refer to that commit.

1. Networks: image MLP 4096 -> 8192 -> 8192 -> bits, text MLP d -> 8192 -> bits, ReLU between,
   output tanh then L2-normalised (:class:`~cmhash.methods.encoders.HashEncoder`); codes at test
   time are sign(output) (network.py:29-80, NRCH.py:174-175; utils/tools.py:444). The hidden
   widths are the hyper-parameters ``image_hidden`` / ``text_hidden`` so a small preset can
   narrow them.
2. Robust contrastive hashing (RCH) on a batch: ``T = (Y Y^T > 0)`` with zero diagonal,
   ``S = u v^T``, entries below (diagonal - margin) shifted down by ``shift``, diagonal clamped
   at >= 0, ``loss_r = -diag + tau * logsumexp((S_masked / tau) * (1 - T)) + margin`` per direction
   (:func:`~cmhash.methods.contrastive.rch_loss`); quantisation
   ``Q = mean((|u| - 1/sqrt(bits))^2) + same for v``; contrastive part
   ``mean(lambda * loss_r + (1 - lambda) * Q)`` (NRCH.py:75-111).
3. Label regression: a classifier ``W`` (classes x bits, orthogonal init) scores
   ``u tanh(W)^T`` and is regressed by MSE on the labels mapped to +-1 with u, v detached, so
   that term trains only ``W`` (:func:`classifier_loss`). Total = contrastive part + that MSE
   (NRCH.py:176-180, 242-248).
4. Dynamic Noise Separator (:meth:`NRCH.before_epoch`): over the whole training view, the
   per-sample loss ``l_i = max over positive labels of (y+- - u tanh(W)^T)^2 + (y+- - v tanh(W)^T)^2``,
   min-max normalised, a 2-component GMM (max_iter 10, tol 0.5, reg_covar 5e-4), ``w_i`` = the
   posterior of the lower-mean component; after warm-up only rows with ``w_i >= threshold``
   are trained on (NRCH.py:124-167, 227-237).

Published behaviour reproduced (hyper-parameter in brackets; defaults = the published code):

* RMSprop lr 1e-5, weight decay 1e-5 over both encoders and ``W`` (NRCH.py:48-49, 180-184);
  batch 128 (NRCH.py:53); 100 epochs (:55); lambda 0.6 (:23), margin 0.2, shift 1, tau 1
  (:72-74), threshold 0.3 (:65).
* Warm-up [``warmup_epochs`` = 19]: the published code trains on every sample while
  ``epoch + 1 < 20`` (0-based epochs 0..18) and applies the threshold from epoch 19 on
  (NRCH.py:158-161).
* Candidate models [``eval_every`` = 20]: the published loop scores the model at the start of
  epoch index ``e`` iff ``(e + 1) % 20 == 0`` (NRCH.py:205; the models after 19, 39, 59, 79 and 99 epochs)
  and never scores the model after the last epoch (no evaluation after the loop, NRCH.py:196-258; ``eval_offset = 1``,
  ``paper_scores_final = False``); ``sound`` scores the same candidates plus the final model.
* The separator is fitted every epoch, warm-up included, as published (the code fits the GMM
  each epoch and then keeps everything during warm-up: NRCH.py:151-161, 227). During warm-up :meth:`before_epoch`
  therefore returns every row as kept together with ``clean_score = w``, so the AUC of the
  separator is logged from the first epoch; nothing is filtered.
* In-batch filtering [``batching`` = ``in_batch``]: the published loop draws batches of 128 from
  ALL training rows and drops the rows the separator rejects inside each batch, so the number
  of steps per epoch does not shrink and a batch holds about ``128 * kept_fraction`` rows. The
  hook then returns the decision as 0/1 ``weights`` (the trainer passes them as
  ``Batch.weight``; :meth:`NRCH.loss` drops rows of weight 0; a batch with no kept row makes no
  update, as published: NRCH.py:228-237). The rejected rows are also returned as ``flagged`` so the trainer's
  diagnostics score the kept set (``select/kept_fraction``, ``select/precision``,
  ``select/recall``) without restricting the batches. ``batching = subset`` instead returns
  ``kept`` so the trainer batches 128 kept rows at a time (fewer, fuller steps per epoch).
* [``rch_tanh`` = True] The published loss applies ``tanh`` once more to the encoder outputs
  (already tanh'd and L2-normalised) before ``S`` and ``Q`` (NRCH.py:76-77); the classifier
  and the separator use the outputs as they are (NRCH.py:244-245, 138-139).
* [``rch_quirk`` = True] The published second (text-side) RCH term reuses the first term's
  row-masked matrix and row sums, so ``loss_r`` is twice the image-side term
  (NRCH.py:107; :func:`~cmhash.methods.contrastive.rch_loss`); ``False`` gives the symmetric loss.
* The GMM of the published code is unseeded (NRCH.py:151); here its ``random_state`` is derived from
  (``separator_seed``, epoch), where ``separator_seed`` is drawn once from the trainer-seeded
  torch generator at construction and kept in ``state_dict`` (resume and best-state reloads keep
  it), so a run is reproducible.

Threshold schedule [``threshold_schedule``]: ``code`` (default, the published behaviour) uses
``threshold`` at every epoch after warm-up. ``paper`` uses the rising schedule the paper
describes and the published code builds but never reads (built at NRCH.py:186-187; :227 passes
the constant ``config["threshold_rate"]``): the threshold at epoch ``e`` (after
warm-up) is ``np.linspace(0, threshold, num_gradual)[e]``, i.e. ``threshold * e /
(num_gradual - 1)``, and ``threshold`` from epoch ``num_gradual - 1`` on (:func:`threshold_at`).

Ablation [``separator`` = False]: no separator, every row every epoch, ``before_epoch`` returns
None (no diagnostics, no extra pass over the data).

Protocols: ``sound`` and ``paper`` run the same method with the same defaults; what ``sound``
changes is the protocol (model selection on a validation split instead of the query set,
done by the trainer). The RCH and tanh quirks are properties of the published method, not
protocol flaws: fixing them under ``sound`` would mix a method change into the
protocol comparison, so they stay hyper-parameters (both default to the published behaviour)
and the symmetric loss is an ablation (``rch_quirk: false``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
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
from cmhash.methods.contrastive import label_overlap, quantisation_loss, rch_loss
from cmhash.methods.encoders import HashEncoder
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["NRCH", "SeparatorFit", "classifier_loss", "classifier_scores", "fit_noise_separator",
           "nrch_objective", "per_sample_label_loss", "signed_labels", "threshold_at"]


# -- losses -------------------------------------------------------------------------------
def signed_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels {0, 1} mapped to {-1, +1}."""
    return labels * 2.0 - 1.0


def classifier_scores(codes: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Class scores ``codes @ tanh(W)^T`` (N x classes)."""
    return codes @ torch.tanh(W).T


def classifier_loss(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``mean((y+- - u tanh(W)^T)^2 + (y+- - v tanh(W)^T)^2)`` over rows and classes, with ``u``
    and ``v`` detached: this term trains only ``W`` (METHODS.md, NRCH "Classifier"; NRCH.py:243-248)."""
    y = signed_labels(labels)
    return ((y - classifier_scores(u.detach(), W)) ** 2 + (y - classifier_scores(v.detach(), W)) ** 2).mean()


def per_sample_label_loss(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """The separator's per-sample loss ``max_c y_c * [(y+-_c - s^u_c)^2 + (y+-_c - s^v_c)^2]``: the
    worst-fitted positive label of each row (0 for a row without positive label, as published:
    NRCH.py:137-142)."""
    y = signed_labels(labels)
    per_class = (y - classifier_scores(u, W)) ** 2 + (y - classifier_scores(v, W)) ** 2
    return (per_class * labels).max(dim=1).values


def nrch_objective(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, W: torch.Tensor, *, lam: float,
                   margin: float, shift: float, tau: float, quirk: bool = True, loss_tanh: bool = True
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """The NRCH batch loss ``mean(lam * loss_r + (1 - lam) * Q) + classifier MSE`` and its parts.

    ``u``, ``v`` are the encoder outputs (tanh, L2-normalised). ``loss_tanh`` applies tanh again
    before the RCH and quantisation terms, as the published loss does (NRCH.py:76-77).
    """
    cu, cv = (torch.tanh(u), torch.tanh(v)) if loss_tanh else (u, v)  # published quirk: tanh applied a second time (NRCH.py:76-77)
    T = label_overlap(labels, labels, zero_diagonal=True)
    r = rch_loss(cu @ cv.T, T, margin, shift, tau, quirk=quirk)
    q = quantisation_loss(cu, cv)
    contrastive = (lam * r + (1.0 - lam) * q).mean()
    cls = classifier_loss(u, v, labels, W)
    parts = {"rch": float(r.detach().mean()), "quantisation": float(q.detach().mean()), "classifier": float(cls.detach())}
    return contrastive + cls, parts


# -- the Dynamic Noise Separator ------------------------------------------------------------
@dataclass(frozen=True)
class SeparatorFit:
    """A fitted separator: per-row clean probability and the mixture's parameters."""

    clean_probability: np.ndarray  # posterior of the lower-mean component, per row
    normalised_loss: np.ndarray
    mean_clean: float
    mean_noisy: float
    var_clean: float
    var_noisy: float
    weight_clean: float
    converged: bool


def fit_noise_separator(losses: np.ndarray, seed: int, max_iter: int = 10, tol: float = 0.5,
                        reg_covar: float = 5e-4) -> SeparatorFit:
    """Min-max normalise the per-sample losses (``(l - min + 1e-8) / (max - min + 1e-8)``, as
    published: NRCH.py:149), fit a 2-component GMM and return the posterior of the lower-mean
    component (NRCH.py:151-157).

    ``seed`` is the GMM's ``random_state`` (its k-means initialisation). If every loss is equal
    there is nothing to separate: every row gets probability 1.
    """
    x = np.asarray(losses, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("fit_noise_separator: no losses")
    lo, hi = float(x.min()), float(x.max())
    norm = (x - lo + 1e-8) / (hi - lo + 1e-8)
    if hi - lo <= 0.0 or x.size < 2:
        m = float(norm.mean())
        return SeparatorFit(np.ones_like(norm), norm, m, m, 0.0, 0.0, 1.0, True)
    gmm = GaussianMixture(n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=seed)
    with warnings.catch_warnings():  # 10 iterations at tol 0.5 are the published setting (NRCH.py:151), not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(norm.reshape(-1, 1))
        posterior = gmm.predict_proba(norm.reshape(-1, 1))
    means = gmm.means_.reshape(-1)
    variances = gmm.covariances_.reshape(-1)
    clean, noisy = int(means.argmin()), int(means.argmax())
    if clean == noisy:  # equal means: argmin/argmax both pick 0
        noisy = 1 - clean
    return SeparatorFit(posterior[:, clean], norm, float(means[clean]), float(means[noisy]), float(variances[clean]),
                        float(variances[noisy]), float(gmm.weights_[clean]), bool(gmm.converged_))


def threshold_at(epoch: int, threshold: float, warmup_epochs: int, schedule: str = "code",
                 num_gradual: int = 100) -> float:
    """The clean-probability threshold at 0-based ``epoch`` (0 = keep everything).

    Warm-up: 0 while ``epoch < warmup_epochs`` (published: ``epoch + 1 < 20``, NRCH.py:158-161). ``code``: then
    ``threshold``. ``paper``: then ``np.linspace(0, threshold, num_gradual)[epoch]``, and
    ``threshold`` once ``epoch >= num_gradual - 1``.
    """
    if epoch < warmup_epochs:
        return 0.0
    if schedule == "code":
        return float(threshold)
    if schedule == "paper":
        if num_gradual <= 1:
            return float(threshold)
        return float(threshold) * min(epoch, num_gradual - 1) / (num_gradual - 1)
    raise ConfigError(f"methods.nrch.threshold_schedule: unknown '{schedule}'; use 'code' or 'paper'")


# -- the method ------------------------------------------------------------------------------
@register
class NRCH(HashingMethod):
    """NRCH: robust contrastive hashing + label regression + a GMM noise separator."""

    name: ClassVar[str] = "nrch"
    task: ClassVar[str] = CROSSMODAL
    paper_denominator: ClassVar[str] = "skip"
    eval_offset: ClassVar[int] = 1  # published: scored at the start of epoch e iff (e + 1) % 20 == 0 (NRCH.py:205)
    paper_scores_final: ClassVar[bool] = False  # published: no evaluation after the loop (NRCH.py:196-258)
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "LonganWANG-cs/NRCH @ b190e97"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 100, "NRCH.py:55", minimum=1),
        Int("batch_size", 128, "NRCH.py:53", minimum=1),
        # published: candidates after 19, 39, 59, 79, 99 epochs, best t2i + i2t (NRCH.py:205, 215)
        Int("eval_every", 20, "NRCH.py:205 (scored iff (e + 1) % 20 == 0)", minimum=1),
        Choice("selection", "best", SELECTIONS, "NRCH.py:215 (best t2i + i2t)"),
        Float("lr", 1e-5, "NRCH.py:48-49 (RMSprop)", minimum=0, exclusive_minimum=True),
        # not published: None = lr (published, NRCH.py:180-183); a faster rate for W only
        Float("classifier_lr", None, "not published: null = lr, as NRCH.py:180-183 (one rate for all)",
              minimum=0, exclusive_minimum=True, nullable=True, doc="the classifier W's own RMSprop rate"),
        Float("weight_decay", 1e-5, "NRCH.py:48-49", minimum=0),
        Float("lambda", 0.6, "NRCH.py:23", minimum=0, maximum=1, doc="RCH vs quantisation weight"),
        Float("margin", 0.2, "NRCH.py:72", minimum=0),
        Float("shift", 1.0, "NRCH.py:73", minimum=0),
        Float("tau", 1.0, "NRCH.py:74", minimum=0, exclusive_minimum=True),
        Float("threshold", 0.3, "NRCH.py:65 (threshold_rate)", minimum=0, maximum=1,
              doc="GMM clean-probability threshold (xi)"),
        Int("warmup_epochs", 19, "NRCH.py:158 (every sample while epoch + 1 < 20)", minimum=0),
        Choice("threshold_schedule", "code", ("code", "paper"), "NRCH.py:227 (code: constant); paper: the "
               "rising schedule built at NRCH.py:186-187 but never read"),
        Int("num_gradual", 100, "NRCH.py:186-187 (paper schedule only)", minimum=1),
        Bool("separator", True, "NRCH.py:151-161; false: ablation, every sample every epoch"),
        Choice("batching", "in_batch", ("in_batch", "subset"), "NRCH.py:228-237 (in_batch)"),
        Bool("rch_quirk", True, "NRCH.py:107 (second RCH term reuses the first's matrix)"),
        Bool("rch_tanh", True, "NRCH.py:76-77 (tanh applied again inside the loss)"),
        Int("gmm_max_iter", 10, "NRCH.py:151", minimum=1),
        Float("gmm_tol", 0.5, "NRCH.py:151", minimum=0, exclusive_minimum=True),
        Float("gmm_reg_covar", 5e-4, "NRCH.py:151", minimum=0),
        Ints("image_hidden", [8192, 8192], "network.py:29-80", minimum=1),
        Ints("text_hidden", [8192], "network.py:29-80", minimum=1),
    )
    # The published code uses the same settings on every dataset (NRCH.py:46-74; only train_size varies, :34-41).
    published_families: ClassVar[tuple[str, ...]] = ("mirflickr25k", "nuswide21", "mscoco", "iaprtc12")

    #: Rows per forward pass when the separator scores the whole training view.
    separator_chunk: ClassVar[int] = 2048

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = HashEncoder(image_dim, self.hp["image_hidden"], bits)
        self.text_net = HashEncoder(text_dim, self.hp["text_hidden"], bits)
        self.W = nn.Parameter(nn.init.orthogonal_(torch.empty(n_classes, bits), gain=1.0))
        # Seed of the separator's GMM, drawn from the (trainer-seeded) torch generator.
        self.register_buffer("separator_seed", torch.randint(0, 2**31 - 1, (), dtype=torch.int64))

    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        """RMSprop over every parameter at ``lr`` (published: NRCH.py:48-49, 180-184). ``classifier_lr`` (an extension,
        off by default) gives the classifier ``W`` its own rate: RMSprop moves each entry by
        about ``lr`` per step, so at NRCH's rates ``W`` stays close to its initialisation and the
        separator's per-sample loss ranks rows almost at random (benchmarks/diag_nrch_separator.py)."""
        hp = self.hp
        encoders = [p for name, p in self.named_parameters() if name != "W"]
        w_lr = hp["lr"] if hp["classifier_lr"] is None else hp["classifier_lr"]
        opt = torch.optim.RMSprop([{"params": encoders}, {"params": [self.W], "lr": float(w_lr)}],
                                  lr=hp["lr"], weight_decay=hp["weight_decay"])
        return opt, None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        image, text, labels = batch.image, batch.text, batch.labels
        if batch.weight is not None:  # in-batch filtering: rows of weight 0 were rejected by the separator
            keep = batch.weight > 0
            if not bool(keep.all()):
                if not bool(keep.any()):  # published: a batch without a kept row makes no update (NRCH.py:232)
                    return torch.zeros((), device=labels.device, requires_grad=True), {"rows": 0.0}
                image, text, labels = image[keep], text[keep], labels[keep]
        codes = self.encode(image, text)
        hp = self.hp
        total, parts = nrch_objective(codes["image"], codes["text"], labels, self.W, lam=float(hp["lambda"]),
                                      margin=float(hp["margin"]), shift=float(hp["shift"]), tau=float(hp["tau"]),
                                      quirk=bool(hp["rch_quirk"]), loss_tanh=bool(hp["rch_tanh"]))
        parts["rows"] = float(labels.shape[0])
        return total, parts

    # -- Dynamic Noise Separator ------------------------------------------------------------
    def sample_losses(self, view: TrainView) -> torch.Tensor:
        """The separator's per-sample loss over the whole view (chunked, no gradients)."""
        codes = self.encode_all(view.image, view.text, chunk=self.separator_chunk)
        with torch.no_grad():
            return per_sample_label_loss(codes["image"], codes["text"], view.labels, self.W)

    def gmm_seed(self, epoch: int) -> int:
        """The GMM's random_state at ``epoch``, derived from ``separator_seed``."""
        return int(np.random.SeedSequence([int(self.separator_seed), int(epoch)]).generate_state(1)[0])

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        hp = self.hp
        if not hp["separator"]:
            return None
        losses = self.sample_losses(view).double().cpu().numpy()
        fit = fit_noise_separator(losses, self.gmm_seed(epoch), max_iter=int(hp["gmm_max_iter"]),
                                  tol=float(hp["gmm_tol"]), reg_covar=float(hp["gmm_reg_covar"]))
        threshold = threshold_at(epoch, float(hp["threshold"]), int(hp["warmup_epochs"]),
                                 hp["threshold_schedule"], int(hp["num_gradual"]))
        warm = epoch < int(hp["warmup_epochs"])
        w = torch.as_tensor(fit.clean_probability, dtype=torch.float32, device=view.labels.device)
        kept = torch.ones_like(w, dtype=torch.bool) if warm else w >= threshold
        extra = {"gmm_mean_clean": fit.mean_clean, "gmm_mean_noisy": fit.mean_noisy,
                 "gmm_var_clean": fit.var_clean, "gmm_var_noisy": fit.var_noisy,
                 "gmm_weight_clean": fit.weight_clean, "gmm_converged": float(fit.converged),
                 "threshold": threshold, "warmup": float(warm)}
        if hp["batching"] == "in_batch":  # every row is batched; rejected rows get weight 0 and are dropped in loss()
            return Selection(weights=kept.float(), flagged=~kept, clean_score=w, extra=extra)
        return Selection(kept=kept, clean_score=w, extra=extra)
