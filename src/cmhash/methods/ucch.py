"""UCCH — Unsupervised Contrastive Cross-modal Hashing (Hu, Zhu, Lin, Peng, Zhao, Peng; IEEE TPAMI
45(3):3877-3889, 2023). A label-free method: it never reads a label (``reads_labels = False``),
so one run serves every noise model and rate of a (dataset, bits, seed, protocol).

Behaviour taken from the official code, penghu-cs/UCCH at commit
0c20e62b99875cd2ec9d7a496eae80b3ab8ba61b (29 Dec 2023), feature mode (``--data_name
mirflickr25k_fea``), read in full; ``file:line`` below refers to that commit. Nothing of it is
copied here; this is an independent implementation.

What UCCH is (paper §3, Eq. 2-15; UCCH.py:146-165)
------------------------------------------------------
1. Networks (nets/ImageNet.py:15-36, nets/TextNet.py:15-36, UCCH.py:94,100, README.md:16
   ``--num_hiden_layers 3 2``): image MLP d -> 8192 -> 8192 -> bits, text MLP d -> 8192 -> bits,
   ReLU between, PyTorch's default Linear init, output tanh then L2-normalised
   (:class:`~cmhash.methods.encoders.HashEncoder`). Codes at test time: sign(output).
2. Contrastive hashing loss ``Lc`` (paper Eq. 3-5; NCE/NCEAverage.py, NCE/NCECriterion.py) — a
   hashing memory bank ``v`` (one row per training row, bits wide). For a batch, each row i gets
   K + 1 binary keys: its own ``sign(v_i)`` first (the positive), then K keys ``sign(v_r)`` of rows
   r drawn uniformly WITH replacement from the whole bank (NCEAverage.py:12-13,42-44: an alias
   sampler over uniform weights; a draw may hit row i itself or a batch-mate). Logits are
   ``<key, h_i> / (T * sqrt(bits))`` (NCEAverage.py:17,54-62: the keys are +-1 and T is scaled by
   sqrt(bits), i.e. the cosine with the unit-norm key over T, as Eq. 4 with unit keys) and the
   loss is the (K+1)-way softmax cross-entropy with the positive as target, averaged over the
   batch (NCECriterion.py:10-11), once with the image outputs and once with the text outputs:
   ``Lc = L_image + L_text`` (UCCH.py:156-159). The keys carry no gradient (NCEAverage.py:52).
   After the loss, the bank rows of the batch get the momentum update
   ``v_i <- normalise(d * v_i + (1 - d) * normalise((h^x_i + h^y_i) / 2))`` (NCEAverage.py:81-88)
   — the "momentum optimiser" that makes the binary dictionary learnable: no relaxation, no
   quantisation term, no straight-through or greedy sign step; binarisation happens only in the
   keys' sign. (The bank logits are gathered from ``h @ sign(v)^T`` instead of building the
   official ``B x (K+1) x bits`` key tensor, :func:`bank_logits`; the same numbers.)
3. Warm-up (NCEAverage.py:36,46-50; UCCH.py:156; utils/config.py:33 ``--warmup_epoch 1``):
   while ``epoch < warmup_epochs`` the momentum is 0 and the keys come from the batch itself:
   row i's positive is ``sign((h^x_i + h^y_i) / 2)`` and its negatives the same of the other
   B - 1 batch rows (B-way softmax); the bank rows are overwritten with the current outputs.
4. Cross-modal ranking loss ``Lr`` (paper Eq. 8, 14; src/utils.py:57-70): ``S = h^x (h^y)^T``;
   per direction, entries with ``S_ij < S_ii - m`` are shifted down by ``xi`` (``shift``, a
   constant mask), then ``mean_i(-S_ii + kappa * log sum_j exp(S_ij / kappa) + m)`` over rows
   (image queries) plus the same down the columns (text queries), kappa = 1 (src/utils.py:42).
   Both directions use their own mask (no reused-matrix quirk as in NRCH).
5. Objective ``L = alpha * Lc + (1 - alpha) * Lr`` (paper Eq. 15 with beta = alpha; UCCH.py:161).
6. Optimisation: Adam (lr 1e-4, weight decay 1e-6) over both encoders (UCCH.py:102-107,
   utils/config.py:15-16,26), the gradient norm clipped at 1 before every step (UCCH.py:165),
   MultiStepLR(milestones 30/60/90/120, gamma 0.1) (UCCH.py:111; ``--ls`` default is not
   ``cos``, utils/config.py:24), batches of 256 drawn by a shuffling loader that drops the last
   short batch (UCCH.py:57-64), 20 epochs (README.md:16; paper §4.3.4 "the maximum epoch is set
   as 20 for our UCCH on all datasets"; utils/config.py:19 defaults to 100).

Published hyper-parameters
--------------------------
``defaults`` are utils/config.py's argument defaults except ``epochs`` (20: README and paper, on
all datasets). UCCH publishes one per-dataset setting, the README command for MIRFlickr features
at 128 bits (README.md:16): alpha 0.7, shift 0.1 (the defaults are alpha 0.9, shift 1), margin
0.2, batch 256, lr 1e-4, Adam, hidden layers 3/2, 20 epochs. The paper (§4.2.2) fixes
delta (momentum) 0.4, tau (T) 0.9, K 4096, m 0.2 and lr 1e-4 for all experiments and chooses
beta (alpha) per dataset on a validation set without printing the chosen values (Fig. 9 only
plots the curve for IAPR TC-12 and MS-COCO). So ``per_dataset`` holds ``mirflickr25k`` only;
every other family (nuswide21, nuswide10, mscoco, iaprtc12, wikipedia) borrows it, logged as
borrowed.

Quirks of the official code and the two protocols
-------------------------------------------------
Each quirk is a hyper-parameter whose default ``None`` means "by protocol": reproduced under
``paper``, fixed under ``sound``; ``True``/``False`` force it either way.

* ``biased_memory_init`` — the bank starts as ``normalise(sign(randn * 2s - s))`` with
  ``s = 1/sqrt(bits/3)`` (NCEAverage.py:18-20): ``randn`` where the uniform ``rand`` of the
  scheme it follows (a uniform draw in [-s, s]) was evidently meant, so every coordinate is -1
  with probability Phi(0.5) ~= 0.69 instead of 0.5. ``sound``: unbiased random signs. (Only rows
  not visited in the warm-up epoch keep their initial keys for long.)
* ``lr_schedule_lag`` — ``lr_schedu.step(start_epoch)`` before the loop and
  ``lr_schedu.step(epoch)`` after epoch ``epoch`` (UCCH.py:225,228): the closed-form rate of
  epoch e - 1 is used in epoch e, so every milestone (and the cosine) acts one epoch late.
  ``sound``: the standard one step per epoch. No effect at the published 20 epochs.
* ``drop_last`` — the loader drops the short last batch of every epoch (UCCH.py:63). Under
  ``paper`` :meth:`UCCH.loss` returns a constant zero (no update, no bank update) for a batch
  shorter than ``batch_size``; the trainer still counts it in the epoch's mean of the logged
  losses (``loss/rows`` = 0 marks it). ``sound`` trains on the short batch (every fitted row
  every epoch; at least two rows, the trainer skips one-row batches).
* Reproduced as-is under both (properties of the method, not flaws): negatives drawn with
  replacement over the whole bank, the row itself included (NCEAverage.py:43); the warm-up's
  in-batch keys; the normalised momentum update; the gradient clipping; kappa = 1.
* Not reproduced because they cannot change a number here: NCECriterion.py:10-11 takes
  ``softmax`` and then ``log`` (we use ``log_softmax``; the logits are bounded by
  ``1/T`` so nothing underflows); NCEAverage.py:17 stores ``T * sqrt(bits)`` in float32
  (relative error < 1e-7); ``sign(0) = 0`` at evaluation (UCCH.py:188-189; the trainer maps 0
  to +1, as the paper's Eq. 1 does).

Model selection (a protocol matter; hyper-parameter ``selection``)
------------------------------------------------------------------
The official code evaluates after every epoch (UCCH.py:226-229) on an evaluation split of its
own: the first 2,000 rows of the retrieval set — which is also its training set, see below —
queried against the same 2,000 rows, image->text and text->image (UCCH.py:199-201), with the
dataset's (clean) labels, mAP@all over Hamming ranking by an unstable ``argsort`` that skips
queries without a relevant item (UCCH.py:205-206,244-260). It keeps the epoch with the best
mean of the two mAPs (UCCH.py:208-222: checkpoint on a strict improvement; UCCH.py:231-235: the
weights actually reloaded are re-cloned whenever the mean EQUALS the best, so an exact tie goes to
the later epoch), reloads those weights and only then encodes the test (query) set
(UCCH.py:237-240). The 2,000 is fixed for every dataset. The paper (§4.2.2) instead says
"we randomly sample 2000 instances from the retrieval databases as the validation set".

The trainer evaluates at the start of every ``eval_every``-th epoch and after the last; under
``paper`` not the untrained model (``paper_scores_untrained = False``), so with
``eval_every = 1`` it scores the same 20 models as the official loop.

* ``sound``: ``selection = last`` — the last of the published 20 epochs, so the result of a
  label-free method cannot depend on any label (clean or noisy) or on the noise.
* ``paper``: ``selection = best`` on :data:`PAPER_SELECTION`, evaluated every epoch
  (``eval_every = 1``): the first 2,000 database rows (in this pipeline's ``paper`` splits the
  database starts with the training rows, so these are training rows, as in the official code)
  queried against themselves with their CLEAN labels; the trainer keeps the best i2t + t2i, a
  later epoch on an exact tie, and reloads it. Clean labels do not depend on the noise, so the
  cell still trains once for every noise model and rate.

Where the pipeline differs from the official run (not quirks of the method)
---------------------------------------------------------------------------
The official feature mode trains on the whole retrieval set (every row but the last
``test_size``; cmdataset.py:160-172, the ``train`` and ``retrieval`` partitions are the same rows)
and queries with the file's last ``test_size`` rows (2,000 MIRFlickr and IAPR TC-12, 2,100 NUS-WIDE,
5,000 MS-COCO; cmdataset.py:166,189,199,219; the paper: a random draw). Here UCCH trains on the
rows every cell of the protocol fits (``paper``: the training split; ``sound``: training minus
validation), so its numbers are comparable with the supervised rows of the same table. Seeds come
from the trainer (the official script fixes 123, UCCH.py:1-13).

Where paper and code differ
---------------------------
* Eq. 5 updates ``v`` by ``d v + (1 - d)(h^x + h^y)/2``; the code L2-normalises the mean and the
  updated row (NCEAverage.py:82-87). Implemented as the code does.
* Eq. 3 sums the log-likelihoods over the samples; the code averages them (NCECriterion.py:11).
* The warm-up epoch with in-batch keys, the gradient clipping, the weight decay, the biased bank
  initialisation and the value of xi (``shift``; 0.1 in the README, 1 by default) appear only in
  the code.
* Eq. 14 has a temperature kappa; the code fixes it at 1 (src/utils.py:42,69).
* Validation split: random 2,000 retrieval rows (paper) vs the first 2,000 retrieval rows queried
  against themselves (code, UCCH.py:200-201).
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from cmhash.errors import ConfigError
from cmhash.methods.base import (
    CROSSMODAL,
    SELECTIONS,
    Batch,
    HashingMethod,
    PaperSelection,
    Selection,
    TrainView,
)
from cmhash.methods.contrastive import masked_similarity
from cmhash.methods.encoders import HashEncoder
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["PAPER_SELECTION", "UCCH", "bank_contrastive_loss", "bank_logits", "contrastive_hashing_loss",
           "in_batch_keys", "init_memory_bank", "lr_factor", "memory_keys", "momentum_update", "nce_logits", "nce_loss",
           "ranking_loss", "ucch_objective"]

#: ``paper`` model selection (module docstring, "Model selection"): evaluated every epoch on the
#: first 2,000 database rows queried against themselves, both directions, clean labels, keep the
#: best i2t + t2i; an exact tie goes to the later epoch.
PAPER_SELECTION = PaperSelection(split="database_head", rows=2000, ties="later", source="UCCH.py:199-201,208-235")


# -- the hashing memory bank -----------------------------------------------------------------
def init_memory_bank(n: int, bits: int, biased: bool, device: torch.device | str | None = None) -> torch.Tensor:
    """The initial bank: ``n`` rows of random signs, L2-normalised (entries +-1/sqrt(bits)).

    ``biased`` reproduces NCEAverage.py:18-20, ``sign(randn * 2s - s)`` with ``s = 1/sqrt(bits/3)``
    (each entry is +1 with probability 1 - Phi(0.5) ~= 0.31); otherwise ``sign(rand * 2s - s)``,
    fair signs. Draws from the global torch generator (the trainer seeds it).
    """
    stdv = 1.0 / math.sqrt(bits / 3)
    if biased:  # published quirk: randn where a uniform draw was meant (NCEAverage.py:19)
        raw = torch.randn(n, bits, device=device)
    else:
        raw = torch.rand(n, bits, device=device)
    return F.normalize(raw.mul_(2 * stdv).add_(-stdv).sign(), dim=1)


def memory_keys(memory: torch.Tensor, index: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Binary keys ``(B, 1 + K, bits)``: ``sign(memory[index_i])`` (the positive) followed by
    ``sign(memory[negatives_i])`` (``negatives``: ``(B, K)`` bank rows). No gradient."""
    rows = torch.cat([index.view(-1, 1), negatives], dim=1)
    return memory[rows].detach().sign()


def in_batch_keys(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Warm-up keys ``(B, B, bits)``: for row i, ``c_i`` first, then ``c_j`` for every j != i in
    batch order, where ``c = sign((u + v) / 2)`` (NCEAverage.py:46-50, 54). No gradient (sign's
    gradient is zero; detached here)."""
    B = u.shape[0]
    codes = ((u + v) / 2).detach().sign()
    others = torch.arange(B, device=u.device).repeat(B, 1)
    off_diagonal = ~torch.eye(B, dtype=torch.bool, device=u.device)
    order = torch.cat([torch.arange(B, device=u.device).view(-1, 1), others[off_diagonal].view(B, B - 1)], dim=1)
    return codes[order]


def nce_logits(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """``(B, M)`` logits ``<key_bm, q_b> / (temperature * sqrt(bits))``: with +-1 keys, the cosine
    with the unit-norm key over ``temperature`` for unit-norm queries (NCEAverage.py:17, 55-60)."""
    bits = queries.shape[1]
    return torch.einsum("bmk,bk->bm", keys, queries) / (temperature * math.sqrt(bits))


def nce_loss(logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-log softmax(logits)[:, 0]``: the positive is column 0
    (NCECriterion.py:10-11, which takes softmax then log; the same value here)."""
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def contrastive_hashing_loss(u: torch.Tensor, v: torch.Tensor, keys: torch.Tensor, temperature: float
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_image, L_text)`` of paper Eq. 3: both modalities' outputs against the same keys
    ``(B, M, bits)``, the positive first (the warm-up's :func:`in_batch_keys`, or
    :func:`memory_keys`)."""
    return nce_loss(nce_logits(u, keys, temperature)), nce_loss(nce_logits(v, keys, temperature))


def bank_logits(queries: torch.Tensor, memory: torch.Tensor, rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """The logits of ``nce_logits(queries, memory_keys(memory, rows[:, 0], rows[:, 1:]), T)``
    computed as ``(queries @ sign(memory)^T)`` gathered at ``rows`` ``(B, 1 + K)``: the same
    numbers without the ``B x (1 + K) x bits`` key tensor the official code builds
    (NCEAverage.py:52-57; 0.5 GB at B 256, K 4096, 128 bits)."""
    bits = queries.shape[1]
    scores = queries @ memory.detach().sign().to(queries.dtype).T
    return scores.gather(1, rows) / (temperature * math.sqrt(bits))


def bank_contrastive_loss(u: torch.Tensor, v: torch.Tensor, memory: torch.Tensor, rows: torch.Tensor,
                          temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`contrastive_hashing_loss` against the bank keys of ``rows`` (column 0: each row's
    own bank row, then its K negatives), through :func:`bank_logits`."""
    return (nce_loss(bank_logits(u, memory, rows, temperature)),
            nce_loss(bank_logits(v, memory, rows, temperature)))


@torch.no_grad()
def momentum_update(memory: torch.Tensor, index: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                    momentum: float) -> None:
    """In place: ``memory[i] <- normalise(d * memory[i] + (1 - d) * normalise((u_i + v_i) / 2))``
    for the batch rows ``index`` (paper Eq. 5 with the code's normalisations, NCEAverage.py:81-88)."""
    target = F.normalize((u.detach() + v.detach()) / 2, dim=1)
    mixed = memory[index] * momentum + target.to(memory.dtype) * (1.0 - momentum)
    memory.index_copy_(0, index, F.normalize(mixed, dim=1))


# -- the cross-modal ranking loss ------------------------------------------------------------
def ranking_loss(u: torch.Tensor, v: torch.Tensor, margin: float, shift: float, tau: float = 1.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L^xy_r, L^yx_r)`` of paper Eq. 14 (src/utils.py:57-70).

    ``S = u v^T``; rows (image queries): entries ``S_ij < S_ii - margin`` become ``S_ij - shift``
    (Eq. 8), then ``mean_i(-M_ii + tau * log sum_j exp(M_ij / tau) + margin)``; columns (text
    queries) the same with ``S_jj`` and the sum down each column. The masks are constants.
    """
    S = u @ v.T
    rows = masked_similarity(S, margin, shift, dim=1)
    cols = masked_similarity(S, margin, shift, dim=0)
    xy = (-rows.diagonal() + tau * torch.logsumexp(rows / tau, dim=1) + margin).mean()
    yx = (-cols.diagonal() + tau * torch.logsumexp(cols / tau, dim=0) + margin).mean()
    return xy, yx


def ucch_objective(u: torch.Tensor, v: torch.Tensor, contrastive: tuple[torch.Tensor, torch.Tensor], *,
                   alpha: float, margin: float, shift: float, tau: float = 1.0
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """``alpha * (L_image + L_text) + (1 - alpha) * (L^xy_r + L^yx_r)`` (Eq. 15, UCCH.py:161) and
    its parts; ``contrastive`` is ``(L_image, L_text)`` (:func:`contrastive_hashing_loss` or
    :func:`bank_contrastive_loss`)."""
    c_image, c_text = contrastive
    r_xy, r_yx = ranking_loss(u, v, margin, shift, tau)
    total = alpha * (c_image + c_text) + (1.0 - alpha) * (r_xy + r_yx)
    parts = {"contrastive_image": float(c_image.detach()), "contrastive_text": float(c_text.detach()),
             "ranking_i2t": float(r_xy.detach()), "ranking_t2i": float(r_yx.detach())}
    return total, parts


# -- schedule ----------------------------------------------------------------------------------
def lr_factor(epoch: int, schedule: str, milestones: list[int], gamma: float, epochs: int, lag: bool) -> float:
    """The learning-rate factor of 0-based ``epoch``.

    ``multistep``: ``gamma ** #(milestones <= e)`` (MultiStepLR, UCCH.py:111); ``cos``:
    ``(1 + cos(pi * e / epochs)) / 2`` (CosineAnnealingLR to 0 over ``epochs``, UCCH.py:109).
    ``lag`` uses ``e = max(epoch - 1, 0)``: the official ``step(epoch)`` after each epoch
    (UCCH.py:225,228) hands epoch e the closed form of epoch e - 1.
    """
    e = max(epoch - 1, 0) if lag else epoch  # published quirk: step(epoch) after epoch -> one epoch late (UCCH.py:228)
    if schedule == "multistep":
        return float(gamma) ** bisect_right(sorted(milestones), e)
    if schedule == "cos":
        return (1.0 + math.cos(math.pi * e / epochs)) / 2.0
    raise ConfigError(f"methods.ucch.lr_schedule: unknown '{schedule}'; use 'multistep' or 'cos'")


# -- the method ----------------------------------------------------------------------------------
@register
class UCCH(HashingMethod):
    """UCCH: contrastive hashing against a momentum-updated binary memory bank + cross-modal
    ranking. Reads no label."""

    name: ClassVar[str] = "ucch"
    view_buffers: ClassVar[tuple[str, ...]] = ("memory",)  # the bank, sized at the first epoch
    task: ClassVar[str] = CROSSMODAL
    reads_labels: ClassVar[bool] = False
    paper_denominator: ClassVar[str] = "skip"  # queries without a relevant item are skipped (UCCH.py:255)
    paper_selection: ClassVar[PaperSelection] = PAPER_SELECTION
    paper_scores_untrained: ClassVar[bool] = False  # the official loop evaluates after each epoch (UCCH.py:226-229)
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "penghu-cs/UCCH @ 0c20e62"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 20, "README.md:16, paper §4.3.4 (all datasets); utils/config.py:19 says 100", minimum=1),
        Int("batch_size", 256, "utils/config.py:17, README.md:16", minimum=1),
        Int("eval_every", 1, "UCCH.py:226-229 (evaluated after every epoch)", minimum=1),
        # under `sound` a label-free method keeps its last epoch whatever this says (HashingMethod.selection_mode)
        Choice("selection", "best", SELECTIONS, "UCCH.py:208-235 (best epoch on PAPER_SELECTION, reloaded)"),
        Choice("optimizer", "adam", ("adam", "sgd"), "utils/config.py:26; sgd: SGD momentum 0.9 (UCCH.py:105)"),
        Float("lr", 1e-4, "utils/config.py:15, paper §4.2.2", minimum=0, exclusive_minimum=True),
        Float("weight_decay", 1e-6, "utils/config.py:16", minimum=0),
        Choice("lr_schedule", "multistep", ("multistep", "cos"), "utils/config.py:24 (--ls) -> MultiStepLR "
               "(UCCH.py:111)"),
        Ints("milestones", [30, 60, 90, 120], "UCCH.py:111", minimum=0),
        Float("gamma", 0.1, "UCCH.py:111", minimum=0, exclusive_minimum=True, doc="learning-rate decay"),
        Float("max_grad_norm", 1.0, "UCCH.py:165; null: no clipping", minimum=0, exclusive_minimum=True,
              nullable=True),
        Float("alpha", 0.9, "utils/config.py:27 (beta of Eq. 15)", minimum=0, maximum=1,
              per_family={"mirflickr25k": 0.7}, family_source="README.md:16 (the MIRFlickr command)"),
        Int("negatives", 4096, "utils/config.py:29, paper §4.2.2 (K)", minimum=1),
        Float("temperature", 0.9, "utils/config.py:30, paper §4.2.2 (T, tau of Eq. 4)", minimum=0,
              exclusive_minimum=True),
        # the bank would never move at momentum 1
        Float("momentum", 0.4, "utils/config.py:28, paper §4.2.2 (delta of Eq. 5)", minimum=0, maximum=1,
              exclusive_maximum=True),
        Float("margin", 0.2, "utils/config.py:32, paper §4.2.2 (m)", minimum=0),
        Float("shift", 1.0, "utils/config.py:31 (xi of Eq. 8)", minimum=0, per_family={"mirflickr25k": 0.1},
              family_source="README.md:16 (the MIRFlickr command)"),
        Float("tau", 1.0, "src/utils.py:42 (kappa of Eq. 14, fixed in the code)", minimum=0, exclusive_minimum=True),
        Int("warmup_epochs", 1, "utils/config.py:33 (in-batch keys, momentum 0)", minimum=0),
        Ints("image_hidden", [8192, 8192], "README.md:16, utils/config.py:23 (--num_hiden_layers 3)", minimum=1),
        Ints("text_hidden", [8192], "README.md:16 (--num_hiden_layers ... 2)", minimum=1),
        # quirks: None = by protocol (paper: reproduced, sound: fixed); True/False force them
        Bool("biased_memory_init", None, "NCEAverage.py:19; null: by protocol (paper: on, sound: off)", nullable=True),
        Bool("lr_schedule_lag", None, "UCCH.py:225,228; null: by protocol (paper: on, sound: off)", nullable=True),
        Bool("drop_last", None, "UCCH.py:63; null: by protocol (paper: on, sound: off)", nullable=True),
    )
    QUIRKS: ClassVar[tuple[str, ...]] = ("biased_memory_init", "lr_schedule_lag", "drop_last")

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = HashEncoder(image_dim, self.hp["image_hidden"], bits)
        self.text_net = HashEncoder(text_dim, self.hp["text_hidden"], bits)
        #: The hashing memory bank, one row per training row; sized by :meth:`init_memory` (the
        #: trainer's first :meth:`before_epoch`) or by :meth:`load_state_dict`.
        self.register_buffer("memory", torch.zeros(0, bits))

    def quirk(self, key: str) -> bool:
        """Whether the published quirk ``key`` is on: the hyper-parameter if set, else the protocol."""
        value = self.hp[key]
        return self.protocol == "paper" if value is None else bool(value)

    # -- optimiser and schedule ------------------------------------------------------------------
    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Adam (or SGD, momentum 0.9) over both encoders with weight decay, the gradient norm
        clipped at ``max_grad_norm`` before every step (UCCH.py:102-107,165), and a per-epoch
        schedule (:func:`lr_factor`; the trainer steps it once per epoch)."""
        hp = self.hp
        params = list(self.parameters())
        if hp["optimizer"] == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        else:
            opt = torch.optim.SGD(params, lr=hp["lr"], momentum=0.9, weight_decay=hp["weight_decay"])
        if hp["max_grad_norm"] is not None:
            max_norm = float(hp["max_grad_norm"])
            opt.register_step_pre_hook(_clip_hook(params, max_norm))
        schedule, milestones, gamma = hp["lr_schedule"], list(hp["milestones"]), float(hp["gamma"])
        epochs, lag = int(hp["epochs"]), self.quirk("lr_schedule_lag")

        def factor(epoch: int) -> float:
            return lr_factor(epoch, schedule, milestones, gamma, epochs, lag)

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)

    # -- the bank ------------------------------------------------------------------------------
    def init_memory(self, n: int) -> None:
        """Allocate and initialise the bank for ``n`` training rows (:func:`init_memory_bank`)."""
        self.memory = init_memory_bank(n, self.bits, self.quirk("biased_memory_init"), device=self.memory.device)

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """Size the bank on the first epoch; no selection (every row, every epoch). Reads only
        the number of rows of the view, never its labels."""
        n = int(view.image.shape[0])
        if self.memory.shape[0] == 0:
            self.init_memory(n)
        elif self.memory.shape[0] != n:
            raise ValueError(f"ucch: the memory bank has {self.memory.shape[0]} rows, the training view {n}")
        return None

    # -- networks and loss ------------------------------------------------------------------------
    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 15 on one batch, then the bank's momentum update. Never reads ``batch.labels``."""
        hp, index = self.hp, batch.index
        if self.memory.shape[0] == 0:
            raise RuntimeError("ucch: memory bank not initialised; the trainer's before_epoch (or init_memory) sizes it")
        B = int(index.numel())
        if self.quirk("drop_last") and B < int(hp["batch_size"]):  # published quirk: the loader drops the short last batch (UCCH.py:63)
            return torch.zeros((), device=self.memory.device, requires_grad=True), {"rows": 0.0}
        codes = self.encode(batch.image, batch.text)
        u, v = codes["image"], codes["text"]
        momentum = 0.0 if epoch < int(hp["warmup_epochs"]) else float(hp["momentum"])
        temperature = float(hp["temperature"])
        if momentum <= 0:  # warm-up (or momentum 0): keys from the batch itself (NCEAverage.py:46-50)
            contrastive = contrastive_hashing_loss(u, v, in_batch_keys(u, v), temperature)
        else:  # 1 + K bank keys: the row's own, then K uniform draws with replacement (NCEAverage.py:42-44)
            negatives = torch.randint(0, self.memory.shape[0], (B, int(hp["negatives"])), device=self.memory.device)
            rows = torch.cat([index.to(self.memory.device).view(-1, 1), negatives], dim=1)
            contrastive = bank_contrastive_loss(u, v, self.memory, rows.to(u.device), temperature)
        total, parts = ucch_objective(u, v, contrastive, alpha=float(hp["alpha"]), margin=float(hp["margin"]),
                                      shift=float(hp["shift"]), tau=float(hp["tau"]))
        momentum_update(self.memory, index.to(self.memory.device), u, v, momentum)
        parts["rows"] = float(B)
        return total, parts


def _clip_hook(params: list[torch.nn.Parameter], max_norm: float) -> Callable[..., None]:
    """An optimiser step pre-hook clipping the total gradient norm of ``params`` (UCCH.py:165)."""
    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_norm)
    return hook
