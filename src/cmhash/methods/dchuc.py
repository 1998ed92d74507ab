"""DCHUC — Deep Cross-Modal Hashing with Hashing Functions and Unified Hash Codes Jointly
Learning (Tu, Mao, Ma, Hu, Yan, Wei, Huang; TKDE 2022, arXiv 1907.12490), as published.

Official code read in full: github.com/rongchengtu1/DCHUC at commit
2cf46ed07d89ed7e062343287765f668d4d07607 (20 Nov 2022; PyTorch 0.3/0.4 idioms): the one training
script ``DCHUC_NUS_WIDE.py`` and ``utils/`` (``dchuc_loss.py``, ``cnn_model.py``,
``txt_module.py``, ``data_processing.py``, ``subset_sampler.py``, ``calc_hr.py``); ``file:line``
without a file name below refers to DCHUC_NUS_WIDE.py. Nothing of it is copied here; this is an
independent implementation. The paper's full text was not at hand while this was written (only
its abstract), so the disagreements named below are those between the code's own objective and
its own update steps; each is a hyper-parameter whose default is the code's behaviour.

The method section
------------------
DCHUC learns, jointly and by alternation, (i) one binary code ``V_j`` in {-1, +1}^c per training
("database") image-text pair j, the *unified* code shared by both modalities, (ii) a hash
function per modality, ``u = f(x)`` for images and ``g = h(y)`` for texts (tanh outputs), and
(iii) a linear label regressor ``W`` (c x classes). With N training rows, c bits, labels L and a
sample Omega of ``num_samples`` rows drawn afresh for every outer iteration:

1. Similarity (``calc_sim``, :101-105; :215-216): ``S = [L_Omega L^T > 0]`` rescaled so that
   similar pairs are 1 and dissimilar pairs ``-r``, ``r = #similar / #dissimilar`` of that very
   matrix (:func:`dchuc_similarity`), which balances the two kinds of pair. ``Sim`` is Omega x N;
   ``S1`` (Omega x Omega, its own r) enters only the logged objective.
2. The objective the code optimises (the network loss of utils/dchuc_loss.py:14-26 together with
   the closed-form steps below), with U, G the Omega x c outputs of the two networks::

       ||U V^T - c Sim||^2 + ||G V^T - c Sim||^2 + mu ||U G^T - c S_OmegaOmega||^2
       + gamma ||V_Omega - (U + G) / 2||^2 + alpha ||U W - L_Omega||^2 + alpha ||G W - L_Omega||^2
       + beta ||V W - L||^2 + eta ||W||^2

3. Hash-function step (:219-257): ``U`` and ``G`` start at 0 in every outer iteration
   (:217-218). For ``inner_epochs`` (3) epochs, a pass of the image network over Omega in
   batches of 64, then a pass of the text network; each batch's outputs overwrite their rows of
   U (or G) first (:230, 250), and the batch loss (:func:`network_loss`,
   utils/dchuc_loss.py:21-25) is ``[sum (u V^T - c S)^2 + mu sum (u g^T - c S_1)^2
   + alpha sum (u W - l)^2 + gamma sum (V_b - (u + g)/2)^2] / (N * b)`` with ``g`` the OTHER
   network's stored outputs of the batch's rows (so 0 in the first image pass of an iteration),
   ``S = Sim`` of the batch's rows (b x N), ``V_b`` the batch's unified codes and ``b`` the
   actual batch size (:222, dchuc_loss.py:15,25).
4. Discrete step (:263-279, :func:`update_unified_codes`): with ``Q = -2c Sim^T (U + G)
   - gamma (Ubar + Gbar) - 2 beta L W^T`` (N x c; ``Ubar``, ``Gbar``: U, G scattered to the rows
   of Omega, 0 elsewhere), one sweep of bitwise discrete cyclic coordinate descent over all N rows,
   ``V_k = -sign(Q_k + 2 V_{-k} (U_{-k}^T U_k + 2 G_{-k}^T G_k + 2 beta W_{-k} W_k^T))`` with the
   columns already updated in this sweep (V starts at 0, :193).
5. Regressor step (:281-286, :func:`update_classifier`): ``W = (alpha U^T U + alpha G^T G +
   beta V^T V + eta I)^+ (alpha U^T L_Omega + alpha G^T L_Omega + beta V^T L)`` (pseudo-inverse),
   the exact minimiser of the W terms of 2. ``W`` starts at N(0, 0.01^2) (:194).
6. 30 outer iterations (:197); then queries are encoded by sign of the networks in eval mode and
   the database codes are ``V`` itself for both directions (:296-303).

How the iterations map onto the trainer
---------------------------------------
**One trainer epoch = one network's pass over Omega**, as :mod:`cmhash.methods.dcmh` does: an
outer iteration is ``2 * inner_epochs`` trainer epochs (image, text, image, text, image, text),
so ``epochs`` = 30 x 3 x 2 = 180. ``before_epoch`` of the first epoch of an iteration runs the
discrete and regressor steps of the previous iteration (from the U, G it left), logs the
official per-iteration loss, then draws the new Omega (from the trainer-seeded torch RNG), resets
U and G and builds ``Sim``; every epoch it returns Omega as ``Selection.kept``, so the trainer's
batches are drawn from Omega only. (The kept rows are a random sample, not a noise selection:
the ``select/precision`` diagnostics of this method read as chance.) ``loss`` builds only the
current network's graph (the other's outputs enter through its buffer), so the trainer's one
optimiser step moves only that network and SGD's weight decay acts only on it, as with the two
optimisers of :190-191. The learning rates are divided by ``lr_divisor`` after the iterations in
``lr_milestones`` (``adjusting_learning_rate``, :131-141, :258-259; 36 is never reached in 30
iterations), by a per-epoch ``LambdaLR``.

Networks on the pipeline's fixed features
-----------------------------------------
* Image: the official image network is a whole ImageNet CNN (AlexNet by default, ``--arch``,
  :24; VGG19 offered, utils/cnn_model.py:31-53) fine-tuned at ``lr_image``, with its last layer
  replaced by a hash layer ``Linear(4096, c)`` and ``tanh``. The pipeline's image features are
  fixed VGG19 fc7 activations after their ReLU, so the image network here is the layers after
  VGG19 fc7 in the official ``vgg19`` branch: ``Dropout(0.5) -> Linear(4096, c) -> tanh``
  (cnn_model.py:48-51), PyTorch's default init of the hash layer. No CNN is fine-tuned. (After
  AlexNet's fc7 there is no dropout, cnn_model.py:24-27: ``image_dropout = 0``.)
* Text: ``Linear(d, 10240) -> ReLU -> Dropout(0.5) -> Linear(10240, c) -> tanh``
  (utils/txt_module.py:5, 24-39: two full-width convolutions, the first with a (d, 1) kernel),
  the shared :class:`~cmhash.methods.encoders.DropoutHashNet`. Init (txt_module.py:8-11, 26):
  Xavier-uniform weights, biases 0.01; the first layer is a convolution whose kernel spans the d
  inputs, so Xavier's fan-out is ``10240 d`` and the bound ``sqrt(6 / (d + 10240 d))``, about
  30 times smaller than a linear layer's at d = 1000 (reproduced, :func:`init_text_net`).
* Both networks stay in train mode (dropout on) while training (:195; the text net is never
  switched) and are evaluated in eval mode (:296-297); the stored U, G are the dropout outputs.
* Optimiser: plain SGD (no momentum), weight decay 5e-4, rate 1e-4 (image) and 0.004 (text)
  (:45-48, 156, 190-191).

Published behaviour reproduced (hyper-parameter in brackets; defaults = the published values)
-----------------------------------------------------------------------------------------------
* gamma 200, alpha 50, beta 1, eta (``yita``) 50, mu 50, 2000 samples per iteration, batch 64,
  3 inner epochs, 30 iterations (the argument defaults, :26-48). The script covers NUS-WIDE only
  (``path = '/data/nus'``, :164; ``y_dim`` 1000, :49), so these are the ``nuswide21`` values and
  every other benchmark borrows them (``fallback_family``), logged as borrowed.
* [``intra_similarity`` = code] The batch's cross-modal term takes ``S_1 = Sim[u_ind][:, u_ind]``
  (:228-229, 248-249): ``u_ind`` are the batch's POSITIONS in Omega, but Sim's columns are
  database rows, so the target of ``u_b . g_b'`` is the similarity of row b to the database row
  whose index equals b''s position in the sample, not to row b'. ``sampled`` takes the
  similarity within Omega (``S1`` of calc_loss, :216, 288), what the objective says.
* [``code_update`` = code] The bitwise update doubles the G and W couplings relative to the U
  one (:278-279: ``U_^T U_k + 2 G_^T G_k + 2 beta W_^T W_k``) while its ``Q`` and the objective
  weigh U and G alike; ``derived`` uses ``U_^T U_k + G_^T G_k + beta W_^T W_k``, the exact
  coordinate minimiser of 2.
* The logged loss (``calc_loss``, :107-118, 288) is the code's: its label term is
  ``alpha sum(U W - L_Omega)`` NOT squared (so it can be negative), it omits the G and V label
  terms, uses ``S1`` for the intra term and divides by ``num_samples * N``. Logged as
  ``select/objective`` (and its parts) at the first epoch of each iteration from the second on.
* sign(0) = 0 in the discrete step (numpy), so a zero code entry is possible (logged as
  ``select/zero_code_fraction``); the first iteration trains against V = 0 and random W.
* ``selection = last``: the official code evaluates only the final networks (:292-304).
* mAP (calc_hr.py:9-35): queries without a relevant item are skipped in the sum (:21-22) but the
  sum is divided by all queries (:32), i.e. counted as 0 (``paper_denominator = "zero"``); its
  ``np.argsort`` is unstable (ties by the trainer's ``ties`` setting).

Not reproduced (the trainer owns these, or the pipeline's splits forbid them)
-----------------------------------------------------------------------------
* Database codes: the official database is the training set and its codes are ``V``
  (:301-303) in both directions. The pipeline's database holds rows the method never trains on
  (train is inside database) and the trainer encodes the database with the networks, as for
  every method; ``V`` shapes training only.
* Batch order: the official loader walks Omega in its sampled order, the same 64-row batches in
  every pass (subset_sampler.py, :203-210); the trainer reshuffles Omega every epoch.
* The last iteration's discrete and regressor steps (after the final epoch, there is no hook):
  they change only V and W, i.e. the official database codes and the last logged loss.
* Seeds: the official sample and W come from numpy's unseeded global RNG (:194, 201); here from
  torch's, seeded by the trainer.
* ``num_samples`` larger than the training set takes every row (the official would break).

Protocols: ``paper`` and ``sound`` run the same method (DCHUC reads no oracle); ``sound`` differs
in what the trainer and the evaluation do. Noise: DCHUC has no noise handling; it sees the noisy
labels through ``Sim``, the label regression and W.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
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
from cmhash.methods.encoders import DropoutHashNet
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["DCHUC", "MilestoneDivisor", "dchuc_similarity", "init_text_net", "network_loss", "official_objective",
           "update_classifier", "update_unified_codes"]

INTRA_SIMILARITIES = ("code", "sampled")
CODE_UPDATES = ("code", "derived")


# -- the pieces of the objective (pure functions of tensors) --------------------------------------
def dchuc_similarity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """``calc_sim`` (:101-105): ``s = [a . b > 0]``, then ``s (1 + r) - r`` with ``r`` = #similar /
    #dissimilar entries of ``s``: similar pairs 1, dissimilar ``-r``. (Without a dissimilar pair
    the official ``r`` is infinite and the matrix NaN; here ``r`` is then 0.)"""
    s = (labels_a @ labels_b.T > 0).to(labels_a.dtype if labels_a.is_floating_point() else torch.float32)
    dissimilar = (1 - s).sum()
    r = s.sum() / dissimilar if dissimilar > 0 else torch.zeros((), dtype=s.dtype, device=s.device)
    return s * (1 + r) - r


def network_loss(out: torch.Tensor, other: torch.Tensor, codes: torch.Tensor, batch_codes: torch.Tensor,
                 similarity: torch.Tensor, pair_similarity: torch.Tensor, classifier: torch.Tensor,
                 labels: torch.Tensor, *, bits: int, gamma: float, alpha: float, mu: float, n_database: int
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """One batch's loss of one network (``DCHUCLoss.forward``, utils/dchuc_loss.py:14-26).

    out: the batch's outputs (b x c, with gradient); other: the other network's stored outputs
    of the same rows (b x c, fixed); codes: V (N x c); batch_codes: V of the batch's rows;
    similarity: Sim of the batch's rows (b x N); pair_similarity: the target of ``out other^T``
    (b x b); classifier: W (c x classes); labels: the batch's labels. Returns
    ``(pairwise + quantisation + label + intra) / (n_database * b)`` and those parts, scaled alike.
    """
    scale = 1.0 / (n_database * out.shape[0])
    pairwise = ((out @ codes.T - bits * similarity) ** 2).sum()
    intra = mu * ((out @ other.T - bits * pair_similarity) ** 2).sum()
    label = alpha * ((out @ classifier - labels) ** 2).sum()
    quantisation = gamma * ((batch_codes - 0.5 * (out + other)) ** 2).sum()
    total = (pairwise + quantisation + label + intra) * scale
    parts = {"pairwise": pairwise.item() * scale, "intra": intra.item() * scale, "label": label.item() * scale,
             "quantisation": quantisation.item() * scale}
    return total, parts


def update_unified_codes(codes: torch.Tensor, u: torch.Tensor, g: torch.Tensor, classifier: torch.Tensor,
                         similarity: torch.Tensor, sample: torch.Tensor, labels: torch.Tensor, *, bits: int,
                         gamma: float, beta: float, doubled: bool = True) -> torch.Tensor:
    """One sweep of the bitwise discrete update of V (:263-279), in float64.

    codes: V (N x c, the sweep starts from it); u, g: Omega x c; classifier: W (c x classes);
    similarity: Sim (Omega x N); sample: Omega's rows; labels: L (N x classes).
    ``Q = -2c Sim^T (u + g) - gamma (ubar + gbar) - 2 beta L W^T``, then for each bit k in turn
    ``V_k = -sign(Q_k + 2 V_{-k} (u_{-k}^T u_k + m_g g_{-k}^T g_k + m_w beta W_{-k} W_k^T))``
    with ``m_g = m_w = 2`` as published (``doubled``) or 1 (the exact coordinate minimiser).
    """
    v = codes.double().clone()
    u, g, w = u.double(), g.double(), classifier.double()
    sim, lab = similarity.double(), labels.double()
    scattered = torch.zeros_like(v)
    scattered[sample] = u + g
    q = -2.0 * bits * sim.T @ (u + g) - gamma * scattered - 2.0 * beta * lab @ w.T
    m = 2.0 if doubled else 1.0  # quirk: the G and W couplings doubled (:278-279)
    coupling = u.T @ u + m * (g.T @ g) + m * beta * (w @ w.T)  # c x c; column k holds the couplings of bit k
    for k in range(bits):
        rest = torch.arange(bits, device=v.device) != k
        v[:, k] = -torch.sign(q[:, k] + 2.0 * v[:, rest] @ coupling[rest, k])  # sign(0) = 0, as numpy's (:278)
    return v


def update_classifier(u: torch.Tensor, g: torch.Tensor, codes: torch.Tensor, sample: torch.Tensor,
                      labels: torch.Tensor, *, alpha: float, beta: float, eta: float) -> torch.Tensor:
    """``W = (alpha u^T u + alpha g^T g + beta V^T V + eta I)^+ (alpha u^T L_Omega + alpha g^T L_Omega
    + beta V^T L)`` (:281-286; ``^+`` the pseudo-inverse), in float64."""
    u, g, v, lab = u.double(), g.double(), codes.double(), labels.double()
    eye = torch.eye(u.shape[1], dtype=torch.float64, device=u.device)
    p = alpha * (u.T @ u) + alpha * (g.T @ g) + beta * (v.T @ v) + eta * eye
    rhs = alpha * (u.T @ lab[sample]) + alpha * (g.T @ lab[sample]) + beta * (v.T @ lab)
    return torch.linalg.pinv(p) @ rhs


def official_objective(u: torch.Tensor, g: torch.Tensor, codes: torch.Tensor, classifier: torch.Tensor,
                       similarity: torch.Tensor, sample_similarity: torch.Tensor, sample: torch.Tensor,
                       labels: torch.Tensor, *, bits: int, gamma: float, alpha: float, mu: float, eta: float,
                       num_samples: int) -> dict[str, float]:
    """The loss the official script prints per iteration (``calc_loss``, :107-118), in float64,
    and its parts (unweighted sums): ``(pairwise + gamma quantisation + alpha label + mu intra +
    eta l2) / (num_samples * N)``. Quirk reproduced: ``label`` is ``sum(u W - L_Omega)``, not
    squared (:114)."""
    u, g, v, w = u.double(), g.double(), codes.double(), classifier.double()
    sim, sim1, lab = similarity.double(), sample_similarity.double(), labels.double()
    pairwise = float(((u @ v.T - bits * sim) ** 2).sum() + ((g @ v.T - bits * sim) ** 2).sum())
    intra = float(((u @ g.T - bits * sim1) ** 2).sum())
    quantisation = float(((0.5 * (u + g) - v[sample]) ** 2).sum())
    label = float((u @ w - lab[sample]).sum())  # quirk: not squared (:114)
    l2 = float((w * w).sum())
    total = (pairwise + gamma * quantisation + alpha * label + mu * intra + eta * l2) / (num_samples * v.shape[0])
    return {"objective": total, "objective_pairwise": pairwise, "objective_intra": intra,
            "objective_quantisation": quantisation, "objective_label": label, "objective_l2": l2}


# -- networks and schedule ----------------------------------------------------------------------
def init_text_net(net: DropoutHashNet) -> None:
    """The official text init (``weights_init``, txt_module.py:8-11, 26): Xavier-uniform weights
    and biases 0.01 on both layers. The first layer is a convolution with a (d, 1) kernel, whose
    Xavier fan-out is ``hidden * d`` (bound ``sqrt(6 / (d + hidden d))``, not a linear layer's
    ``sqrt(6 / (d + hidden))``); the second a 1x1 convolution, as a linear layer."""
    d, hidden = net.fc1.in_features, net.fc1.out_features
    bound = math.sqrt(6.0 / (d + hidden * d))  # quirk: conv1's kernel spans the input (txt_module.py:24)
    with torch.no_grad():
        net.fc1.weight.uniform_(-bound, bound)
        nn.init.xavier_uniform_(net.fc_encode.weight)
        net.fc1.bias.fill_(0.01)
        net.fc_encode.bias.fill_(0.01)


class MilestoneDivisor:
    """LR factor of trainer epoch ``e``: ``1 / divisor ** #(milestones m < iteration)`` with
    ``iteration = e // epochs_per_iteration``, i.e. the rates are divided after each milestone
    iteration (``adjusting_learning_rate`` after iteration ``iter``, :131-141, 258-259). A
    ``LambdaLR`` factor on the base rates (picklable, plain attributes: the scheduler saves them)."""

    def __init__(self, milestones: list[int], divisor: float, epochs_per_iteration: int) -> None:
        self.milestones = [int(m) for m in milestones]
        self.divisor = float(divisor)
        self.epochs_per_iteration = int(epochs_per_iteration)

    def __call__(self, epoch: int) -> float:
        iteration = epoch // self.epochs_per_iteration
        return self.divisor ** -sum(1 for m in self.milestones if m < iteration)


#: Buffers sized by the training view (allocated at the first ``before_epoch``).
_VIEW_BUFFERS = ("V", "U", "G", "sample")
#: The NUS-WIDE script's argument defaults: the only published setting.
FAMILY_SOURCE = "DCHUC_NUS_WIDE.py:19-49 (the NUS-WIDE script, path /data/nus :164)"


@register
class DCHUC(HashingMethod):
    """DCHUC with the unified codes V, the sample's outputs U, G, the regressor W and the published
    alternation; see the module docstring for the mapping onto the trainer and every quirk."""

    name: ClassVar[str] = "dchuc"
    task: ClassVar[str] = CROSSMODAL
    view_buffers: ClassVar[tuple[str, ...]] = _VIEW_BUFFERS
    paper_denominator: ClassVar[str] = "zero"  # calc_hr.py:21-22, 32: skipped queries count 0
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "rongchengtu1/DCHUC @ 2cf46ed"
    published_families: ClassVar[tuple[str, ...]] = ("nuswide21",)
    #: The script covers NUS-WIDE only (:164): every other benchmark borrows its values.
    fallback_family: ClassVar[str] = "nuswide21"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        # trainer epochs = passes: 30 iterations x 3 epochs x 2 networks (:26-29, 197, 219-257)
        Int("epochs", 180, "DCHUC_NUS_WIDE.py:26-29 (30 iterations x 3 epochs x 2 passes)", minimum=2,
            multiple_of=2, per_family={"nuswide21": 180}, family_source=FAMILY_SOURCE,
            doc="one trainer epoch is one network's pass over the sample; a multiple of 2 x inner_epochs"),
        Int("inner_epochs", 3, "DCHUC_NUS_WIDE.py:28-29, 219 (--epochs)", minimum=1,
            per_family={"nuswide21": 3}, family_source=FAMILY_SOURCE,
            doc="epochs of both networks over one sample"),
        Int("batch_size", 64, "DCHUC_NUS_WIDE.py:30-31", minimum=2, per_family={"nuswide21": 64},
            family_source=FAMILY_SOURCE),
        # logging only: the official code evaluates the final nets (:292-304)
        Int("eval_every", 6, "ours (logging only, once per iteration; DCHUC_NUS_WIDE.py:292-304 evaluates the "
            "final nets)", minimum=1),
        Choice("selection", "last", SELECTIONS, "DCHUC_NUS_WIDE.py:292-304 (no model selection)"),
        Int("num_samples", 2000, "DCHUC_NUS_WIDE.py:33-34, 201", minimum=2, per_family={"nuswide21": 2000},
            family_source=FAMILY_SOURCE, doc="rows sampled per iteration (all rows if fewer)"),
        Float("gamma", 200.0, "DCHUC_NUS_WIDE.py:35-36", minimum=0, per_family={"nuswide21": 200.0},
              family_source=FAMILY_SOURCE, doc="quantisation weight"),
        Float("alpha", 50.0, "DCHUC_NUS_WIDE.py:39-40", minimum=0, per_family={"nuswide21": 50.0},
              family_source=FAMILY_SOURCE, doc="label regression weight of the network outputs"),
        Float("beta", 1.0, "DCHUC_NUS_WIDE.py:37-38", minimum=0, per_family={"nuswide21": 1.0},
              family_source=FAMILY_SOURCE, doc="label regression weight of the unified codes"),
        Float("eta", 50.0, "yita, DCHUC_NUS_WIDE.py:41-42", minimum=0,
              per_family={"nuswide21": 50.0}, family_source=FAMILY_SOURCE, doc="ridge weight of W"),
        Float("mu", 50.0, "DCHUC_NUS_WIDE.py:43-44", minimum=0, per_family={"nuswide21": 50.0},
              family_source=FAMILY_SOURCE, doc="weight of the within-sample cross-modal term"),
        Float("lr_image", 1e-4, "DCHUC_NUS_WIDE.py:45-46, 190", minimum=0, exclusive_minimum=True,
              per_family={"nuswide21": 1e-4}, family_source=FAMILY_SOURCE),
        Float("lr_text", 0.004, "DCHUC_NUS_WIDE.py:47-48, 191", minimum=0, exclusive_minimum=True,
              per_family={"nuswide21": 0.004}, family_source=FAMILY_SOURCE),
        Float("weight_decay", 5e-4, "DCHUC_NUS_WIDE.py:156", minimum=0),
        Ints("lr_milestones", [10, 20, 36], "DCHUC_NUS_WIDE.py:131-141 (36 is never reached in 30 iterations)",
             minimum=0, doc="iterations after which both rates are divided"),
        Float("lr_divisor", 1.5, "DCHUC_NUS_WIDE.py:136, 141", minimum=1),
        # the layers after VGG19 fc7 (+ReLU) of the vgg19 branch; --arch alexnet (:24) has no dropout there
        Float("image_dropout", 0.5, "utils/cnn_model.py:48-51 (vgg19: Dropout after fc7); the default AlexNet "
              "(DCHUC_NUS_WIDE.py:24, cnn_model.py:24-27): 0", minimum=0, maximum=1, exclusive_maximum=True),
        Int("text_hidden", 10240, "utils/txt_module.py:5 (LAYER1_NODE)", minimum=1),
        Float("text_dropout", 0.5, "utils/txt_module.py:30", minimum=0, maximum=1, exclusive_maximum=True),
        Float("classifier_init_std", 0.01, "DCHUC_NUS_WIDE.py:194", minimum=0),
        # quirk: S_1 = Sim[u_ind][:, u_ind], sample positions used as database columns (:228-229, 248-249)
        Choice("intra_similarity", "code", INTRA_SIMILARITIES, "DCHUC_NUS_WIDE.py:228-229, 248-249 (code); "
               "sampled: the similarity within the sample, S1 of calc_loss (:216, 288)"),
        # quirk: the G and W couplings doubled in the bitwise update (:278-279)
        Choice("code_update", "code", CODE_UPDATES, "DCHUC_NUS_WIDE.py:278-279 (code: G and W couplings doubled); "
               "derived: the exact coordinate minimiser"),
        Bool("log_objective", True, "DCHUC_NUS_WIDE.py:288-290 (calc_loss, printed per iteration)"),
    )

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        hp = self.hp
        per_iteration = 2 * int(hp["inner_epochs"])
        if int(hp["epochs"]) % per_iteration:
            raise ConfigError(f"methods.{self.name}.epochs: {hp['epochs']} is not a multiple of 2 x inner_epochs = "
                              f"{per_iteration} (an outer iteration is one pass of each network per inner epoch)")
        self.epochs_per_iteration = per_iteration
        self.image_net = nn.Sequential(nn.Dropout(float(hp["image_dropout"])), nn.Linear(image_dim, bits), nn.Tanh())
        self.text_net = DropoutHashNet(text_dim, int(hp["text_hidden"]), bits, float(hp["text_dropout"]))
        init_text_net(self.text_net)
        self.register_buffer("W", torch.randn(bits, n_classes, dtype=torch.float64) * float(hp["classifier_init_std"]))
        for name in ("V", "U", "G"):
            self.register_buffer(name, torch.zeros(0, bits))
        self.register_buffer("sample", torch.zeros(0, dtype=torch.long))
        # derived from ``sample`` and the labels (rebuilt after a resume), never saved
        self.register_buffer("similarity", torch.zeros(0, 0), persistent=False)
        self.register_buffer("sample_similarity", torch.zeros(0, 0), persistent=False)
        self.register_buffer("position", torch.zeros(0, dtype=torch.long), persistent=False)
        self._labels: torch.Tensor | None = None

    # -- optimiser -----------------------------------------------------------------------
    def configure_optimizer(self):
        """Plain SGD, one group per network at its rate (:190-191; only the network trained in a
        pass gets gradients), weight decay 5e-4, and the milestone division as a LambdaLR."""
        hp = self.hp
        opt = torch.optim.SGD([{"params": self.image_net.parameters(), "lr": float(hp["lr_image"])},
                               {"params": self.text_net.parameters(), "lr": float(hp["lr_text"])}],
                              lr=float(hp["lr_image"]), momentum=0.0, weight_decay=float(hp["weight_decay"]))
        factor = MilestoneDivisor(list(hp["lr_milestones"]), float(hp["lr_divisor"]), self.epochs_per_iteration)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)

    # -- networks ------------------------------------------------------------------------
    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def modality_at(self, epoch: int) -> str:
        """The network trained in trainer epoch ``epoch``: each inner epoch is an image pass then a
        text pass (:221-257)."""
        return "image" if (epoch % self.epochs_per_iteration) % 2 == 0 else "text"

    # -- state over the training view ----------------------------------------------------
    def _similarities(self) -> None:
        """``Sim`` (Omega x N), ``S1`` (Omega x Omega) and each row's position in Omega, from the
        sample and the view's labels (:214-216)."""
        labels = self._labels
        sampled = labels[self.sample]
        self.similarity = dchuc_similarity(sampled, labels)
        self.sample_similarity = dchuc_similarity(sampled, sampled)
        position = torch.full((labels.shape[0],), -1, dtype=torch.long, device=labels.device)
        position[self.sample] = torch.arange(self.sample.numel(), device=labels.device)
        self.position = position

    def _draw_sample(self, n: int, device: torch.device) -> None:
        """A new Omega (:201) and U = G = 0 (:217-218)."""
        size = min(int(self.hp["num_samples"]), n)
        self.sample = torch.randperm(n)[:size].to(device)
        self.U = torch.zeros(size, self.bits, device=device)
        self.G = torch.zeros(size, self.bits, device=device)
        self._similarities()

    def _discrete_step(self) -> dict[str, float]:
        """The V and W updates of the iteration that just ended (:263-286) and its logged loss."""
        hp = self.hp
        old = self.V.clone()
        v = update_unified_codes(self.V, self.U, self.G, self.W, self.similarity, self.sample, self._labels,
                                 bits=self.bits, gamma=float(hp["gamma"]), beta=float(hp["beta"]),
                                 doubled=hp["code_update"] == "code")
        self.W = update_classifier(self.U, self.G, v, self.sample, self._labels, alpha=float(hp["alpha"]),
                                   beta=float(hp["beta"]), eta=float(hp["eta"]))
        self.V = v.to(self.V.dtype)
        extra = {"zero_code_fraction": float((self.V == 0).float().mean()),
                 "code_change_fraction": float((self.V != old).float().mean())}
        if hp["log_objective"]:
            extra.update(official_objective(self.U, self.G, self.V, self.W, self.similarity, self.sample_similarity,
                                            self.sample, self._labels, bits=self.bits, gamma=float(hp["gamma"]),
                                            alpha=float(hp["alpha"]), mu=float(hp["mu"]), eta=float(hp["eta"]),
                                            num_samples=int(self.sample.numel())))
        return extra

    # -- the per-epoch hook ----------------------------------------------------------------
    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """At the first epoch of an outer iteration: the previous iteration's V and W steps, then
        a new sample; every epoch: the sample as the rows to train on."""
        n = len(view)
        device = view.labels.device
        self._labels = view.labels
        if self.V.shape[0] != n:
            self.V = torch.zeros(n, self.bits, device=device)  # V starts at 0 (:193)
        if self.sample.numel() and self.similarity.shape[0] != self.sample.numel():
            self._similarities()  # after a resume: rebuilt from the saved sample
        extra: dict[str, float] = {}
        if epoch % self.epochs_per_iteration == 0:
            if self.sample.numel():
                extra = self._discrete_step()
            self._draw_sample(n, device)
        kept = torch.zeros(n, dtype=torch.bool, device=device)
        kept[self.sample] = True
        return Selection(kept=kept, extra=extra)

    # -- the batch loss ------------------------------------------------------------------
    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        if self._labels is None or self.sample.numel() == 0:
            raise RuntimeError("dchuc: loss() needs before_epoch() to have run (it draws the sample and sizes V)")
        hp = self.hp
        idx = batch.index.to(self.V.device)
        pos = self.position[idx]
        if bool((pos < 0).any()):
            raise RuntimeError("dchuc: a batch row is outside this iteration's sample (train on Selection.kept)")
        modality = self.modality_at(epoch)
        if modality == "image":
            out, own, other = self.image_net(batch.image), self.U, self.G
        else:
            out, own, other = self.text_net(batch.text), self.G, self.U
        own[pos] = out.detach().to(own.dtype)  # the batch's outputs enter U (or G) (:230, 250)
        similarity = self.similarity[pos]
        if hp["intra_similarity"] == "code":
            pair_similarity = similarity[:, pos]  # quirk: sample positions taken as database columns (:228-229)
        else:
            pair_similarity = self.sample_similarity[pos][:, pos]
        total, parts = network_loss(out, other[pos], self.V, self.V[idx], similarity, pair_similarity,
                                    self.W.to(out.dtype), batch.labels.to(out.dtype), bits=self.bits,
                                    gamma=float(hp["gamma"]), alpha=float(hp["alpha"]), mu=float(hp["mu"]),
                                    n_database=self.V.shape[0])
        parts["image_pass"] = float(modality == "image")
        return total, parts
