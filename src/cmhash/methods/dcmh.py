"""DCMH — Deep Cross-Modal Hashing (Jiang & Li, CVPR 2017), as published.

Official code read in full: github.com/jiangqy/DCMH-CVPR2017 at commit
67d0e84c0425fdac3fad30d67d5a2beb5e345cea (MATLAB/MatConvNet under ``DCMH_matlab/DCMH_matlab/``,
TensorFlow 1 under ``DCMH_tensorflow/DCMH_tensorflow/``). Both READMEs recommend the MATLAB
version (README.md:10, the TF readme.txt:7), so ``paper`` follows the MATLAB files; where the TF
port differs it is said below. File:line references are to that commit. Unlike ``baseline``
(an end-to-end mini-batch loss), this is the published algorithm: per-row code buffers over the
whole training set and an alternating optimisation.

The method section (the paper's Eq. 3 and Algorithm 1):

1. Similarity ``S_ij = [l_i . l_j > 0]`` over ALL training rows, from the (here: noisy)
   training labels (process_DCMH.m:6).
2. Real-valued outputs ``F_i = f(x_i)`` of the image network and ``G_j = g(y_j)`` of the text
   network, kept for every training row in buffers ``F``, ``G`` (rows x bits; the official
   stores bits x rows), and a shared binary code matrix ``B`` (rows x bits).
3. The objective, summed (not averaged) over all ``N^2`` pairs and all entries
   (:func:`dcmh_objective`, = ``calc_loss`` of process_DCMH.m:118-124)::

       J = sum_ij [log(1 + exp(Theta_ij)) - S_ij Theta_ij]          Theta_ij = 1/2 F_i . G_j
           + gamma (||F - B||^2 + ||G - B||^2) + eta (||F^T 1||^2 + ||G^T 1||^2)

4. Alternating optimisation: one network is trained with the other network's buffer and ``B``
   fixed, then the other network, then ``B = sign(gamma (F + G))`` (the paper's Eq. 6,
   :func:`update_codes`). For a batch of text rows ``j`` the published gradient
   (process_DCMH.m:42-44) is ``dJ/dG_j = 1/2 sum_i F_i (sigmoid(Theta_ij) - S_ij)
   + 2 gamma (G_j - B_j) + 2 eta G^T 1``, with the batch's fresh outputs written into ``G``
   first (process_DCMH.m:40), back-propagated and scaled by ``1 / (batch_size * N)``
   (update_net.m:5-8). :func:`batch_objective` is the function whose autograd gradient is
   exactly that: the part of ``J`` that depends on the batch's outputs, divided by
   ``batch_size * N``.

How the alternation maps onto the trainer's single batch loop
-------------------------------------------------------------
The trainer runs epochs of batches and calls ``before_epoch`` then ``loss`` per batch. A DCMH
outer iteration is two full passes over the training set (one per network) followed by the
``B`` update, so **one trainer epoch = one network's pass**: the trainer epoch ``2k`` trains the
first network of outer iteration ``k`` and ``2k + 1`` the second (``first_modality``, text by
default, as published), and ``before_epoch`` of every even epoch sets
``B = sign(gamma (F + G))`` from the buffers the previous two passes left. ``loss`` builds only
the current network's graph (the other network's output enters through its detached buffer),
so the trainer's one optimiser step moves only that network; SGD skips parameters without a
gradient, so the weight decay too acts only on the trained network, as in update_net.m. This is
the published Gauss-Seidel order exactly (the second pass sees every column the first one
wrote); a per-batch mapping that updated both networks on each batch would turn it into a
simultaneous (Jacobi) update. Consequently ``epochs`` counts passes: 1000 = 2 x the published
500 outer iterations (``maxIter``, DCMH_demo.m:19) and must be even, and ``eval_every`` counts
passes too. The learning rate of outer iteration ``k`` (both passes) is
``logspace(-1.5, -3, epochs / 2)[k]`` (DCMH_demo.m:20-21), set by the scheduler
:meth:`DCMH.configure_optimizer` returns (the trainer steps it once per epoch).

Networks on the pipeline's fixed features
-----------------------------------------
* Image: the official image network is CNN-F (imagenet-vgg-f) up to fc7 (+ relu7) with its
  fc8 replaced by a hash layer ``4096 -> bits`` (net_structure_img.m:11-17; the TF layer list
  net_structure_img.py:9-11), the WHOLE CNN fine-tuned at the same rate (update_net.m loops
  over every layer). The pipeline's image features are fixed VGG19 fc7 activations after their
  ReLU, so the image network here is the layers after fc7: the hash layer alone, a linear map
  (``image_hidden = []``; hidden widths can be added for experiments). No CNN is fine-tuned;
  this is the one structural difference from the paper and it is not a quirk but a consequence
  of the pipeline's features (the image-side mean subtraction, process_DCMH.m:58, belongs to
  the CNN input and has no counterpart).
* Text: bag-of-words ``-> 8192 -> ReLU -> bits`` (net_structure_txt.m:2-21), linear output.
* Both networks: every weight and bias drawn from ``N(0, 0.01^2)`` (``init_std``;
  net_structure_txt.m:2-3, 19-20, net_structure_img.m:15-16). Outputs are unbounded (no tanh);
  codes are ``sign`` of them (process_DCMH.m:137, 151).
* Optimiser: plain SGD (no momentum) with weight decay 5e-4 on the trained network
  (update_net.m:2-8); learning rates as above.

Published behaviour reproduced (hyper-parameter in brackets; defaults = the published values)
-----------------------------------------------------------------------------------------------
* gamma = eta = 1, batch 128, 500 outer iterations, lr logspace(-1.5, -3) (DCMH_demo.m:19-24).
* [``first_modality`` = text] The MATLAB loop trains the text network first, then the image
  network (process_DCMH.m:33-52 then 54-75); the paper's Algorithm 1 and the TF port
  (DCMH_demo.py:238-241) train the image network first. ``image`` gives the paper's order.
* [``buffer_init`` = zeros] ``F`` and ``G`` start at 0 (process_DCMH.m:18-19), so the first
  ``B = sign(0) = 0`` (process_DCMH.m:31 with ``e_sign``, :157-161): during the first outer
  iteration the quantisation term pulls the outputs to 0, not to +-1. The TF port starts from
  ``randn`` buffers (DCMH_demo.py:187-189): ``normal``.
* [``text_zero_mean`` = True] The text features are centred per column (normZeroMean,
  DCMH_demo.m:27). The official mean is over ALL rows (query and database included); a method
  here sees only its training rows, so the mean is the training view's (stored in the
  ``text_mean`` buffer; a no-op when the pipeline standardises the features). The trainer's
  evaluation at the start of epoch 0 runs before the first ``before_epoch`` and so encodes
  uncentred text; every later evaluation uses the stored mean.
* The loss normalisation divides by the configured ``batch_size`` times ``N``
  (update_net.m:6; TF DCMH_demo.py:212), so a short last batch takes a proportionally smaller
  step, as every row does in the published code.
* ``selection = last``: the official code evaluates only the final networks
  (process_DCMH.m:83-112); no test-set model selection.
* mAP: calcMapTopkMapTopkPreTopkRecLabel.m skips queries without a relevant item in the sum
  (:33-35) but divides by all queries (:57), i.e. counts them as 0
  (``paper_denominator = "zero"``); its MATLAB ``sort`` is stable (ties by database index).
* ``log(1 + exp(Theta))`` is computed as softplus (same value; the literal form overflows in
  single precision for ``Theta`` > 88).

Where paper, MATLAB and TF code differ (beyond the order and initialisation above)
---------------------------------------------------------------------------------
* Batches: the official code draws every batch afresh (``randperm`` then the first 128,
  process_DCMH.m:34-35, 55-56; ``ceil(N/128)`` of them per pass), so a pass sees some rows
  twice and others not at all. The trainer owns batching and partitions one permutation per
  epoch (each row exactly once); not reproduced.
* Logged objective: MATLAB prints ``calc_loss`` after the image pass with the ``B`` of that
  iteration (process_DCMH.m:77); TF after the ``B`` update (DCMH_demo.py:244-247). Here
  ``select/objective`` is ``J`` at the start of every epoch, after that epoch's ``B`` update
  (TF's value at even epochs) [``log_objective``].
* The TF port uses ``linspace(10^-1.5, 1e-6)`` rates (DCMH_demo.py:182; logspace is commented
  out at :181), no weight decay, and ``floor(N/128)`` batches; not offered.

Scale: ``J`` sums the likelihood over ``N^2`` pairs but the quantisation and balance terms over
``N`` rows, so the published gamma = eta = 1 weigh relatively ``N`` times less at N = 10,000
than on a small set; and with zero buffers the first passes start at the saddle ``F = G = 0``
(the likelihood gradient of one network is proportional to the other's buffer), which the
published 500 iterations leave slowly. The balance term's curvature in the hash layer grows
with the squared mean of the input features (fc7 features are non-negative), so the published
rates were chosen for CNN-F activations; check them on the pipeline's features.

Protocols: ``paper`` and ``sound`` run the same method; ``sound`` differs only in what the
trainer and the evaluation do (fitted on training minus validation rows, skip denominator).
Noise: DCMH has no noise handling; it sees the noisy labels only through ``S``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
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
from cmhash.methods.baseline import pairwise_similarity
from cmhash.methods.encoders import mlp
from cmhash.methods.hparams import Bool, Choice, Float, Floats, HParam, Int, Ints
from cmhash.methods.registry import register

__all__ = ["DCMH", "LogspaceByIteration", "batch_objective", "dcmh_objective", "negative_log_likelihood",
           "update_codes"]

MODALITIES = ("image", "text")
BUFFER_INITS = ("zeros", "normal")


# -- the objective (pure functions of tensors) ----------------------------------------------
def negative_log_likelihood(f: torch.Tensor, g: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """``sum_ij log(1 + exp(Theta_ij)) - S_ij Theta_ij`` with ``Theta = 1/2 f g^T`` (the paper's
    Eq. 2 negated; ``f``: n x bits, ``g``: m x bits, ``similarity``: n x m), summed."""
    theta = 0.5 * f @ g.T
    return (F.softplus(theta) - similarity * theta).sum()


def update_codes(f: torch.Tensor, g: torch.Tensor, gamma: float) -> torch.Tensor:
    """``B = sign(gamma (F + G))`` (the paper's Eq. 6); 0 where ``F + G = 0`` (``e_sign``,
    process_DCMH.m:157-161)."""
    return torch.sign(gamma * (f + g))


def dcmh_objective(labels: torch.Tensor, f: torch.Tensor, g: torch.Tensor, b: torch.Tensor, gamma: float,
                   eta: float, chunk: int = 2048) -> dict[str, float]:
    """The whole-set objective ``J`` (``calc_loss``, process_DCMH.m:118-124) and its three terms,
    in float64. ``labels``: N x classes; ``f``, ``g``, ``b``: N x bits. ``S`` is built in row
    chunks so that no N x N matrix is held."""
    labels, f, g, b = (t.double() for t in (labels, f, g, b))
    likelihood = 0.0
    for start in range(0, f.shape[0], chunk):
        rows = slice(start, start + chunk)
        likelihood += float(negative_log_likelihood(f[rows], g, pairwise_similarity(labels[rows], labels)))
    quantisation = float(((f - b) ** 2).sum() + ((g - b) ** 2).sum())
    balance = float((f.sum(0) ** 2).sum() + (g.sum(0) ** 2).sum())
    total = likelihood + gamma * quantisation + eta * balance
    return {"objective": total, "objective_likelihood": likelihood, "objective_quantisation": quantisation,
            "objective_balance": balance}


def batch_objective(out: torch.Tensor, index: torch.Tensor, own: torch.Tensor, other: torch.Tensor,
                    codes: torch.Tensor, similarity: torch.Tensor, gamma: float, eta: float, scale: float
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """The part of ``J`` that depends on one batch of one network's outputs, times ``scale``.

    out: the batch's fresh outputs (b x bits, with gradient); index: their rows; own: that
    network's buffer (N x bits) AFTER ``own[index] = out`` was written (process_DCMH.m:40, 64);
    other: the other network's buffer (N x bits, fixed); codes: ``B`` (N x bits); similarity:
    ``S[:, index]`` (N x b). Terms: ``sum_{i, j in batch} [softplus(Theta_ij) - S_ij Theta_ij]``
    with ``Theta_ij = 1/2 other_i . out_j``; ``gamma ||out - B[index]||^2``; ``eta ||own^T 1||^2``
    with the batch's rows of the column sum taken from ``out``. Its gradient with respect to
    ``out_j`` is the published ``dJdGb`` / ``dJdFb`` (process_DCMH.m:42-45, 66-69) times ``scale``
    (published ``1 / (batch_size * N)``, update_net.m:6). Returns (scaled total, scaled parts).
    """
    likelihood = negative_log_likelihood(other, out, similarity)
    quantisation = gamma * ((out - codes[index]) ** 2).sum()
    column_sum = own.sum(0) - own[index].sum(0) + out.sum(0)
    balance = eta * (column_sum ** 2).sum()
    total = (likelihood + quantisation + balance) * scale
    return total, {"likelihood": likelihood.item() * scale, "quantisation": quantisation.item() * scale,
                   "balance": balance.item() * scale}


# -- the learning-rate schedule --------------------------------------------------------------
class LogspaceByIteration:
    """LR of trainer epoch ``e`` = ``logspace(start, stop, iterations)[e // 2]``: one value per
    outer iteration (two trainer epochs), held at the last value after the end. Used as a
    ``LambdaLR`` factor on a base rate of 1 (picklable, so the scheduler's state saves it)."""

    def __init__(self, start: float, stop: float, iterations: int) -> None:
        self.rates = np.logspace(float(start), float(stop), int(iterations)).tolist()

    def __call__(self, epoch: int) -> float:
        return self.rates[min(epoch // 2, len(self.rates) - 1)]


#: Buffers sized by the training view (allocated at the first ``before_epoch``).
_VIEW_BUFFERS = ("F", "G", "B")


def _init_normal(net: nn.Module, std: float) -> None:
    """Every Linear weight and bias from N(0, std^2) (net_structure_txt.m, net_structure_img.m)."""
    for layer in net.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.normal_(layer.bias, 0.0, std)


@register
class DCMH(HashingMethod):
    """DCMH with per-row buffers F, G, B and the published alternating optimisation; see the
    module docstring for the mapping onto the trainer and every published quirk."""

    name: ClassVar[str] = "dcmh"
    view_buffers: ClassVar[tuple[str, ...]] = _VIEW_BUFFERS
    task: ClassVar[str] = CROSSMODAL
    paper_denominator: ClassVar[str] = "zero"  # calcMapTopkMapTopkPreTopkRecLabel.m:33-35,57: / all queries
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "jiangqy/DCMH-CVPR2017 @ 67d0e84"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        # trainer epochs = passes: 2 x maxIter = 500 outer iterations (DCMH_demo.m:19)
        Int("epochs", 1000, "DCMH_demo.m:19 (2 x 500 outer iterations)", minimum=2, multiple_of=2,
            doc="a DCMH outer iteration is two trainer epochs, one pass per network"),
        Int("batch_size", 128, "DCMH_demo.m:24", minimum=1),
        # logging only: the official code evaluates the final nets (process_DCMH.m:83-112)
        Int("eval_every", 50, "ours (logging only; process_DCMH.m:83-112 evaluates the final nets)", minimum=1),
        Choice("selection", "last", SELECTIONS, "process_DCMH.m:83-112 (no model selection)"),
        Floats("lr_log10", [-1.5, -3.0], "DCMH_demo.m:20-21 (logspace(-1.5, -3, maxIter) for both nets)",
               length=2, doc="[start, stop] exponents of the logspace"),
        Float("weight_decay", 5e-4, "update_net.m:2", minimum=0),
        Float("gamma", 1.0, "DCMH_demo.m:22", minimum=0, doc="quantisation weight"),
        Float("eta", 1.0, "DCMH_demo.m:23", minimum=0, doc="bit-balance weight"),
        # quirk: text pass before image pass (process_DCMH.m:33-75); paper: image
        Choice("first_modality", "text", MODALITIES, "process_DCMH.m:33-75 (text first); the paper's Algorithm 1: "
               "image"),
        # quirk: F = G = 0 (process_DCMH.m:18-19), so the first B is 0; TF: normal
        Choice("buffer_init", "zeros", BUFFER_INITS, "process_DCMH.m:18-19 (zeros); the TF port: normal "
               "(DCMH_demo.py:187-189)"),
        Bool("text_zero_mean", True, "DCMH_demo.m:27 (normZeroMean(YAll)), here over the training rows"),
        Float("init_std", 0.01, "net_structure_txt.m:2-20, net_structure_img.m:15-16", minimum=0,
              exclusive_minimum=True),
        # the layers after fc7: the hash layer 4096 -> bits (net_structure_img.m:11-17)
        Ints("image_hidden", [], "net_structure_img.m:11-17 (the hash layer on fc7)", minimum=1),
        Ints("text_hidden", [8192], "net_structure_txt.m:2,19", minimum=1),
        Bool("log_objective", True, "process_DCMH.m:118-124 (calc_loss, logged at each epoch start)"),
    )
    # The official code publishes one setting (the MIRFlickr demo, DCMH_demo.m:3,19-24) and uses
    # no per-dataset values; its data readme also covers NUS-WIDE top-21 / top-10 (readme.txt:16-21)
    # and the paper IAPR TC-12 (README.md:11), with the same code. MS-COCO and Wikipedia are not
    # DCMH datasets: they take the same values.
    published_families: ClassVar[tuple[str, ...]] = (
        "mirflickr25k", "nuswide21", "nuswide10", "iaprtc12", "mscoco", "wikipedia")

    #: Rows per chunk when the whole-set objective is computed.
    objective_chunk: ClassVar[int] = 2048

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = mlp(image_dim, list(self.hp["image_hidden"]), bits)
        self.text_net = mlp(text_dim, list(self.hp["text_hidden"]), bits)
        _init_normal(self.image_net, float(self.hp["init_std"]))
        _init_normal(self.text_net, float(self.hp["init_std"]))
        self.register_buffer("text_mean", torch.zeros(text_dim))
        for name in _VIEW_BUFFERS:
            self.register_buffer(name, torch.zeros(0, bits))
        self._labels: torch.Tensor | None = None

    # -- optimiser -----------------------------------------------------------------------
    def configure_optimizer(self):
        """Plain SGD over both networks (only the one trained in a pass gets gradients) with the
        published weight decay, and the per-iteration logspace as a LambdaLR on base rate 1."""
        hp = self.hp
        opt = torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.0, weight_decay=float(hp["weight_decay"]))
        start, stop = hp["lr_log10"]
        sched = torch.optim.lr_scheduler.LambdaLR(opt, LogspaceByIteration(start, stop, int(hp["epochs"]) // 2))
        return opt, sched

    # -- networks ------------------------------------------------------------------------
    def _text_input(self, text: torch.Tensor) -> torch.Tensor:
        return text - self.text_mean if self.hp["text_zero_mean"] else text

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(self._text_input(text))}

    def modality_at(self, epoch: int) -> str:
        """The network trained in trainer epoch ``epoch``: ``first_modality`` on even epochs."""
        first = self.hp["first_modality"]
        return first if epoch % 2 == 0 else ("image" if first == "text" else "text")

    # -- state over the training view ----------------------------------------------------
    def _allocate(self, n: int, device: torch.device) -> None:
        """Fresh buffers: F, G zeros (published) or standard normal (TF port); B = 0 until the
        first update."""
        shape = (n, self.bits)
        if self.hp["buffer_init"] == "zeros":
            self.F, self.G = torch.zeros(shape, device=device), torch.zeros(shape, device=device)
        else:
            self.F, self.G = torch.randn(shape).to(device), torch.randn(shape).to(device)
        self.B = torch.zeros(shape, device=device)

    # -- the per-epoch hook ----------------------------------------------------------------
    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """At the start of every outer iteration (even epochs) ``B = sign(gamma (F + G))``
        (process_DCMH.m:31); keeps the view's labels for ``S`` and its text mean; logs ``J``."""
        n = len(view)
        if self.F.shape[0] != n:
            self._allocate(n, view.labels.device)
        self._labels = view.labels
        if self.hp["text_zero_mean"]:
            self.text_mean = view.text.mean(0).to(self.text_mean)
        if epoch % 2 == 0:
            self.B = update_codes(self.F, self.G, float(self.hp["gamma"]))
        if not self.hp["log_objective"]:
            return None
        extra = dcmh_objective(view.labels, self.F, self.G, self.B, float(self.hp["gamma"]), float(self.hp["eta"]),
                               self.objective_chunk)
        extra["zero_code_fraction"] = float((self.B == 0).float().mean())
        return Selection(extra=extra)

    # -- the batch loss ------------------------------------------------------------------
    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        if self._labels is None or self.F.shape[0] == 0:
            raise RuntimeError("dcmh: loss() needs before_epoch() to have run (it sizes the F, G, B buffers)")
        hp = self.hp
        modality = self.modality_at(epoch)
        idx = batch.index.to(self.F.device)
        if modality == "image":
            out, own, other = self.image_net(batch.image), self.F, self.G
        else:
            out, own, other = self.text_net(self._text_input(batch.text)), self.G, self.F
        own[idx] = out.detach().to(own.dtype)  # the batch's fresh outputs enter the buffer first (process_DCMH.m:40, 64)
        similarity = pairwise_similarity(self._labels, batch.labels.to(self._labels))  # S(:, index)
        scale = 1.0 / (int(hp["batch_size"]) * own.shape[0])  # dzdw / (batch_size * N) (update_net.m:6)
        total, parts = batch_objective(out, idx, own, other, self.B, similarity, float(hp["gamma"]), float(hp["eta"]),
                                       scale)
        parts["image_pass"] = float(modality == "image")
        return total, parts
