"""DJSRH — Deep Joint-Semantics Reconstructing Hashing for Large-Scale Unsupervised Cross-Modal
Retrieval (Su, Zhong, Zhang; ICCV 2019). A label-free method: it never reads a label
(``reads_labels = False``), so one run serves every noise model and rate of a (dataset, bits,
seed, protocol).

Behaviour taken from the official code, zs-zhong/DJSRH at commit
6041c2df810723dd0052e2e5b7c6bd33033f0f21 (27 Nov 2019; python 2.7, pytorch 0.3.1), read in full
(settings.py, train.py, models.py, datasets.py, metric.py, README.md); ``file:line`` below refers
to that commit. Nothing of it is copied here; this is an independent implementation.

What DJSRH is (train.py:87-119, models.py)
-------------------------------------------
1. Networks. Image: the official ``ImgNet`` is an ImageNet-pretrained AlexNet cut after fc7
   (its classifier's first six modules: Dropout, fc6, ReLU, Dropout, fc7, ReLU; models.py:11-12)
   followed by the hash layer ``fc_encode = Linear(4096, bits)`` (models.py:13), fine-tuned end to
   end on raw images. Text: ``Linear(d, 4096) -> ReLU -> Linear(4096, bits)`` (models.py:33-38).
   Both output ``tanh(alpha * h)`` with ``alpha = sqrt(epoch + 1)`` set at the start of every
   (0-based) epoch (models.py:22,27,40,44; train.py:73-74), a continuation that sharpens tanh
   towards sign. Codes at test time: ``sign`` of the output (metric.py:60-66).
2. Joint-semantics affinity of a batch of m pairs (train.py:92-110): ``S_I = 2 cos(F_I, F_I) - 1``
   from the image features, ``S_T = 2 cos(F_T, F_T) - 1`` from the raw text features,
   ``S~ = beta S_I + (1 - beta) S_T``, ``S = mu ((1 - eta) S~ + eta S~ S~^T / m)``
   (:func:`joint_semantics_affinity`). The image features ``F_I`` are the fc7 output of a SECOND,
   frozen pretrained AlexNet in eval mode (``FeatNet_I``, train.py:53,70,87), so the affinity does
   not move while the hash network is fine-tuned. (The code writes ``S~.mm(S~)``; ``S~`` is
   symmetric, so that is ``S~ S~^T``.)
3. Reconstruction (train.py:101-115): ``B_I``, ``B_T`` = the L2-normalised outputs; the loss is
   ``lambda1 MSE(B_I B_I^T, S) + MSE(B_I B_T^T, S) + lambda2 MSE(B_T B_T^T, S)``, each MSE the
   mean over the m x m entries (:func:`reconstruction_loss`). No quantisation term.
4. Optimisation: two SGD optimisers, momentum 0.9, weight decay 5e-4, one per modality at its
   own rate (``lr_image``, ``lr_text``; train.py:59-66, settings.py:62-63), stepped after every
   batch; no schedule. Batches of 32 (settings.py:56) from a shuffling loader that drops the
   short last batch (train.py:36-40). The official script seeds torch with 1 (train.py:16); here
   the trainer seeds.

Here the image branch runs on the pipeline's FIXED image features (no fine-tuning, no raw
images): the image network is the hash layer alone, ``Linear(image_dim, bits)``
(``image_hidden = []``), and the affinity's ``F_I`` is the batch's image features. On datasets
with VGG features that is VGG19 fc7 (4096-d) in place of AlexNet fc7: the same layer of a
different network, so the affinity ``S_I`` differs from the official one. On Wikipedia the image
features are the published 128-d SIFT bag of visual words, so ``S_I`` (and through it the whole
joint-semantics matrix) is built from SIFT histograms instead of CNN features: the affinity, and
therefore what the codes are trained to reconstruct, changes in kind there, not only in degree.
Likewise with ``standardize_features`` the cosines are those of z-scored features, which are
no longer non-negative, so ``2 cos - 1`` then spans [-3, 1] instead of [-1, 1]. Two things of the official image
branch cannot be reproduced on fixed features: the fine-tuning of fc6/fc7 (on WIKI only the
classifier and the hash layer are optimised, train.py:59-61; on MIRFlickr/NUS-WIDE every AlexNet
parameter, train.py:63-64) and the two Dropout layers active inside it during training
(models.py:12, train.py:69).

Published hyper-parameters (settings.py)
----------------------------------------
Common (settings.py:56-63): batch 32, mu 1.5, eta 0.4, SGD momentum 0.9, weight decay 5e-4
(``CODE_LEN = 64`` is the cell's bits here). Per dataset (beta, lambda1, lambda2, epochs, lr_image,
lr_text, evaluation interval):

* ``wikipedia`` (WIKI, settings.py:18-24): 0.3, 0.3, 0.3, 200, 0.01, 0.01, 100;
* ``mirflickr25k`` (settings.py:33-39): 0.9, 0.1, 0.1, 80, 0.001, 0.01, 40;
* ``nuswide10`` (NUS-WIDE TC-10, settings.py:47-53): 0.6, 0.1, 0.1, 80, 0.001, 0.01, 40.

``defaults`` are the MIRFlickr values (settings.py:9 selects MIRFlickr); NUS-WIDE TC-21, MS-COCO
and IAPR TC-12 are not published and borrow the MIRFlickr values, logged as borrowed. The
README's ablations (README.md:59-71) are settings of these keys: ``S = S_I`` is ``beta = 1``,
``S = S_T`` is ``beta = 0``, no second-order term ``eta = 0``, no scaling ``mu = 1``, no
intra-modal terms ``lambda1 = lambda2 = 0``, and "-(alpha = 1)" is ``alpha_schedule = constant``.

Model selection and evaluation of the official code
---------------------------------------------------
The official loop evaluates after every ``EVAL_INTERVAL``-th epoch (train.py:184-185: 40 and 80
on MIRFlickr/NUS-WIDE, 100 and 200 on WIKI) only to log the mAP, and saves the model after the
last epoch (train.py:187-188); ``EVAL = True`` reloads that last checkpoint (train.py:175-177).
It never selects: the reported model is the last epoch's. So ``selection = last`` under both
protocols (under ``sound`` a label-free method must keep its last epoch anyway), and
``eval_every`` is the official interval (the trainer's evaluation at the start of epoch 40 is
the official one after 40 epochs; the extra one at epoch 0 changes nothing with ``last``).

Its metric is mAP@50 (train.py:139-140, metric.py:130-156) over Hamming ranking by an unstable
``np.argsort`` (metric.py:144), dividing by ALL queries, so a query without a relevant item in
its top 50 counts 0 (metric.py:149-155): ``paper_denominator = "zero"``. The pipeline reports
mAP@all (and its other metrics) for every method; the @50 cut-off is not a method property.
Its splits are its own, drawn with the unseeded ``np.random`` (datasets.py:108-139,206-229):
MIRFlickr 2,000 queries / 5,000 training rows sampled per class (160 + 80 per further class /
400 + 200, topped up at random to 5,000), NUS-WIDE TC-10 200 / 500 per class (2,000 / 5,000),
the database every non-query row (training rows included); WIKI the published 693 / 2,173 split
with the training pairs as the database (datasets.py:12-54). Here DJSRH trains on the rows every
cell of the protocol fits (``paper``: the training split, ``sound``: training minus validation),
so its numbers are comparable with the other rows of the same table.

Quirks of the official code and the two protocols
-------------------------------------------------
Each is a hyper-parameter whose default ``None`` means "by protocol": reproduced under
``paper``, fixed under ``sound``; ``True``/``False`` force it.

* ``drop_last`` — the loader drops the short last batch of every epoch (train.py:40). Under
  ``paper`` :meth:`DJSRH.loss` returns a constant zero (no update) for a batch shorter than
  ``batch_size``; the trainer still counts it in the epoch's mean of the logged losses
  (``loss/rows`` = 0 marks it). ``sound`` trains on every fitted row every epoch. The code
  divides ``S~ S~^T`` by the constant ``BATCH_SIZE`` (train.py:109); with ``drop_last`` that is
  the batch's row count m, which is what :func:`joint_semantics_affinity` divides by (so a short
  batch under ``sound`` gets the mean the formula means).

Reproduced as-is under both (properties of the method, not protocol flaws): ``2 cos - 1``
mapping of the feature cosines, the second-order term, ``mu``, the mean (not summed) squared
errors, the ``sqrt(epoch + 1)`` tanh scale, the two learning rates, no quantisation term.
Not reproduced because they cannot change a number here or do not apply: ``loss.data[0]`` in the
logging line (train.py:124, an IndexError on modern torch), ``Variable``/``.cuda()``,
``F.tanh`` (deprecated alias of ``torch.tanh``).

Where paper and code differ
---------------------------
* The paper writes the objective with squared Frobenius norms, ``||mu S - cos(B_I, B_T)||_F^2 +
  lambda1 ||mu S - cos(B_I, B_I)||_F^2 + lambda2 ||mu S - cos(B_T, B_T)||_F^2``; the code takes
  means (``F.mse_loss``, train.py:112-114), a factor 1/m^2 that SGD's rates absorb. Implemented as
  the code does.
* The paper learns the image features by fine-tuning; see above for what fixed features change.
* The mapping ``2 cos - 1`` and the per-dataset learning rates appear only in the code.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from cmhash.methods.base import (
    CROSSMODAL,
    SELECTIONS,
    Batch,
    HashingMethod,
    Selection,
    TrainView,
)
from cmhash.methods.encoders import mlp
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["DJSRH", "alpha_at", "cosine_affinity", "djsrh_objective", "joint_semantics_affinity",
           "reconstruction_loss"]


# -- the joint-semantics affinity ------------------------------------------------------------
def cosine_affinity(features: torch.Tensor) -> torch.Tensor:
    """``2 cos(F, F) - 1`` over the rows of ``features`` (train.py:92-98): cosines of non-negative
    features (fc7 after ReLU, bag of words) lie in [0, 1] and are mapped to [-1, 1]. A zero row
    has cosine 0 with everything (``F.normalize`` divides by max(norm, 1e-12), as published)."""
    unit = F.normalize(features, dim=1)
    return unit @ unit.T * 2.0 - 1.0


def joint_semantics_affinity(image_features: torch.Tensor, text_features: torch.Tensor, *, beta: float,
                             eta: float, mu: float) -> torch.Tensor:
    """``S = mu ((1 - eta) S~ + eta S~ S~^T / m)`` with ``S~ = beta S_I + (1 - beta) S_T`` over a
    batch of m pairs (train.py:108-110; :func:`cosine_affinity` for ``S_I``, ``S_T``). A constant
    of the batch: features carry no gradient."""
    s_tilde = beta * cosine_affinity(image_features) + (1.0 - beta) * cosine_affinity(text_features)
    m = s_tilde.shape[0]
    return mu * ((1.0 - eta) * s_tilde + eta * (s_tilde @ s_tilde.T) / m)


# -- the reconstruction loss -------------------------------------------------------------------
def reconstruction_loss(code_image: torch.Tensor, code_text: torch.Tensor, S: torch.Tensor, *,
                        lambda1: float, lambda2: float) -> tuple[torch.Tensor, dict[str, float]]:
    """``lambda1 MSE(B_I B_I^T, S) + MSE(B_I B_T^T, S) + lambda2 MSE(B_T B_T^T, S)`` with ``B`` the
    L2-normalised codes (so the products are cosines) and each MSE the mean over the m x m
    entries (train.py:101-115). Parts logged as ``image_image``, ``image_text``, ``text_text``."""
    b_i, b_t = F.normalize(code_image, dim=1), F.normalize(code_text, dim=1)
    ii = F.mse_loss(b_i @ b_i.T, S)
    it = F.mse_loss(b_i @ b_t.T, S)
    tt = F.mse_loss(b_t @ b_t.T, S)
    total = lambda1 * ii + it + lambda2 * tt
    parts = {"image_image": float(ii.detach()), "image_text": float(it.detach()), "text_text": float(tt.detach())}
    return total, parts


def djsrh_objective(code_image: torch.Tensor, code_text: torch.Tensor, image_features: torch.Tensor,
                    text_features: torch.Tensor, *, beta: float, eta: float, mu: float, lambda1: float,
                    lambda2: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The DJSRH batch loss: the affinity of the batch's features reconstructed by its codes."""
    S = joint_semantics_affinity(image_features.detach(), text_features.detach(), beta=beta, eta=eta, mu=mu)
    return reconstruction_loss(code_image, code_text, S, lambda1=lambda1, lambda2=lambda2)


def alpha_at(epoch: int, schedule: str = "sqrt") -> float:
    """The tanh scale of 0-based ``epoch``: ``sqrt(epoch + 1)`` (models.py:27,44), or 1
    (``constant``: the README's "-(alpha = 1)" ablation, README.md:71)."""
    return math.sqrt(epoch + 1.0) if schedule == "sqrt" else 1.0


#: Where the per-benchmark values come from (WIKI, MIRFlickr, NUS-WIDE TC-10 blocks of settings.py).
FAMILY_SOURCE = "settings.py:18-24 (wikipedia), 33-39 (mirflickr25k), 47-53 (nuswide10)"


# -- the method ----------------------------------------------------------------------------------
@register
class DJSRH(HashingMethod):
    """DJSRH: hash codes whose cosines reconstruct a joint-semantics affinity of the batch's
    features. Reads no label."""

    name: ClassVar[str] = "djsrh"
    task: ClassVar[str] = CROSSMODAL
    reads_labels: ClassVar[bool] = False
    paper_denominator: ClassVar[str] = "zero"  # metric.py:149-155: skipped queries still count in num_query
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "zs-zhong/DJSRH @ 6041c2d"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 80, "NUM_EPOCH, settings.py:36 (MIRFlickr)", minimum=1, per_family={"wikipedia": 200, "mirflickr25k": 80, "nuswide10": 80}, family_source=FAMILY_SOURCE),
        Int("batch_size", 32, "settings.py:56", minimum=1),
        # EVAL_INTERVAL; logging only (train.py:184-185)
        Int("eval_every", 40, "EVAL_INTERVAL, settings.py:39 (logging only, train.py:184-185)", minimum=1,
            per_family={"wikipedia": 100, "mirflickr25k": 40, "nuswide10": 40}, family_source=FAMILY_SOURCE),
        Choice("selection", "last", SELECTIONS, "train.py:187-188 (the last epoch is saved and reported)"),
        Float("lr_image", 0.001, "LR_IMG, settings.py:37", minimum=0, exclusive_minimum=True,
              per_family={"wikipedia": 0.01, "mirflickr25k": 0.001, "nuswide10": 0.001}, family_source=FAMILY_SOURCE),
        Float("lr_text", 0.01, "LR_TXT, settings.py:38", minimum=0, exclusive_minimum=True, per_family={"wikipedia": 0.01, "mirflickr25k": 0.01, "nuswide10": 0.01}, family_source=FAMILY_SOURCE),
        Float("momentum", 0.9, "settings.py:62", minimum=0, maximum=1),
        Float("weight_decay", 5e-4, "settings.py:63", minimum=0),
        Float("beta", 0.9, "settings.py:33", minimum=0, maximum=1, per_family={"wikipedia": 0.3, "mirflickr25k": 0.9, "nuswide10": 0.6}, family_source=FAMILY_SOURCE),
        Float("eta", 0.4, "settings.py:59", minimum=0, maximum=1),
        Float("mu", 1.5, "settings.py:58", minimum=0, exclusive_minimum=True),
        Float("lambda1", 0.1, "settings.py:34", minimum=0, per_family={"wikipedia": 0.3, "mirflickr25k": 0.1, "nuswide10": 0.1}, family_source=FAMILY_SOURCE),
        Float("lambda2", 0.1, "settings.py:35", minimum=0, per_family={"wikipedia": 0.3, "mirflickr25k": 0.1, "nuswide10": 0.1}, family_source=FAMILY_SOURCE),
        Choice("alpha_schedule", "sqrt", ("sqrt", "constant"), "models.py:27 (sqrt); constant: the README.md:71 "
               "ablation"),
        Ints("image_hidden", [], "models.py:13 (the hash layer on fixed fc7-like features)", minimum=1),
        Ints("text_hidden", [4096], "models.py:33", minimum=1),
        # quirks: None = by protocol (paper: reproduced, sound: fixed); True/False force them
        Bool("drop_last", None, "train.py:40; null: by protocol (paper: on, sound: off)", nullable=True),
    )
    QUIRKS: ClassVar[tuple[str, ...]] = ("drop_last",)

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = mlp(image_dim, list(self.hp["image_hidden"]), bits)
        self.text_net = mlp(text_dim, list(self.hp["text_hidden"]), bits)
        #: The tanh scale of the epoch being trained (the official nets keep it as an attribute,
        #: so evaluation uses the last epoch's); a buffer so checkpoints carry it.
        self.register_buffer("alpha", torch.tensor(1.0))

    def quirk(self, key: str) -> bool:
        """Whether the published quirk ``key`` is on: the hyper-parameter if set, else the protocol."""
        value = self.hp[key]
        return self.protocol == "paper" if value is None else bool(value)

    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        """SGD (momentum 0.9, weight decay 5e-4) with the image network at ``lr_image`` and the
        text network at ``lr_text`` (train.py:63-66; the two official optimisers step together
        after every batch, so one SGD with two parameter groups is the same update). No schedule."""
        hp = self.hp
        opt = torch.optim.SGD([{"params": self.image_net.parameters(), "lr": float(hp["lr_image"])},
                               {"params": self.text_net.parameters(), "lr": float(hp["lr_text"])}],
                              lr=float(hp["lr_image"]), momentum=float(hp["momentum"]),
                              weight_decay=float(hp["weight_decay"]))
        return opt, None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        """``tanh(alpha * h)`` per modality (models.py:22,40); the trainer takes the sign."""
        alpha = self.alpha.to(image.dtype)
        return {"image": torch.tanh(alpha * self.image_net(image)), "text": torch.tanh(alpha * self.text_net(text))}

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """Set the epoch's tanh scale (train.py:73-74). Reads nothing of the view; no selection."""
        self.alpha.fill_(alpha_at(epoch, self.hp["alpha_schedule"]))
        return None

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The DJSRH objective of one batch from its features alone. Never reads ``batch.labels``."""
        hp = self.hp
        rows = int(batch.image.shape[0])
        if self.quirk("drop_last") and rows < int(hp["batch_size"]):  # published quirk: the loader drops the short last batch (train.py:40)
            return torch.zeros((), device=batch.image.device, requires_grad=True), {"rows": 0.0}
        self.alpha.fill_(alpha_at(epoch, hp["alpha_schedule"]))
        codes = self.encode(batch.image, batch.text)
        total, parts = djsrh_objective(codes["image"], codes["text"], batch.image, batch.text, beta=float(hp["beta"]),
                                       eta=float(hp["eta"]), mu=float(hp["mu"]), lambda1=float(hp["lambda1"]),
                                       lambda2=float(hp["lambda2"]))
        parts["rows"] = float(rows)
        parts["alpha"] = float(self.alpha)
        return total, parts
