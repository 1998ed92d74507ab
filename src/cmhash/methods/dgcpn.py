"""DGCPN — Deep Graph-neighbor Coherence Preserving Network for Unsupervised Cross-modal Hashing
(Yu, Zhou, Zhang, Wang, Xu; AAAI 2021). A label-free method: it never reads a label
(``reads_labels = False``), so one run serves every noise model and rate of a (dataset, bits,
seed, protocol).

Behaviour taken from the official code, Atmegal/DGCPN at commit
9f62c56e037c0c399451d0f02db05b8666d439ed (9 Dec 2020), read in full (train.py, train_div.py,
models.py, load_data.py, metric.py, README.md); ``file:line`` below refers to that commit. Nothing
of it is copied here; this is an independent implementation. (rky815/DGCPN is an unrelated
project.) The official code already runs on fixed features: 4096-d VGG19 features per image
(load_data.py:111) and the dataset's tag vectors (load_data.py:112), as this pipeline does.

What DGCPN is
-------------
1. Networks (models.py:9-55): image ``Linear(4096, 4096) -> ReLU -> Dropout(0.5) -> Linear(4096,
   bits) -> tanh``; text ``Linear(d, 4096) -> ReLU -> Dropout(0.5) -> Linear(4096, bits) -> tanh``,
   the text hash layer's weight drawn from N(0, 0.3^2) (models.py:44), everything else PyTorch's
   default init. The nets have a tanh scale ``alpha`` but its schedule is commented out
   (train_div.py:138-139), so it stays 1. Codes at test time: sign of the output (metric.py:17,22),
   with the nets in eval mode (dropout off, train_div.py:199-200).
2. Graph-neighbour affinity, once, over the WHOLE training set (train_div.py:45-49,78-103;
   :func:`graph_neighbour_affinity`): with L2-normalised features,
   ``S_pair = a1 cos(T, T) + (1 - a1) cos(I, I)``; each row of a copy ``P`` of ``S_pair`` keeps its
   k largest entries (the code zeroes its ``knn_number`` smallest, see below) and then loses its
   single largest one (normally the row itself), and is normalised to sum 1; the second-order
   "graph-neighbour coherence" is ``scale * P P^T`` (how much two rows' neighbourhoods overlap);
   ``S = 2 ((1 - a2) S_pair + a2 scale P P^T) - 1``. A batch takes the rows and columns of its
   members (train_div.py:152).
3. Loss of a batch (train_div.py:105-131; :func:`dgcpn_loss`), with ``B_I``, ``B_T`` the
   L2-normalised codes and every MSE a mean over all entries:
   ``MSE(diag(B_I B_T^T), K)`` (K = 1.5 > 1: the matched pair's cosine is pushed past its maximum)
   ``+ dw [MSE(B_T B_T^T o (1 - I), S o (1 - I)) + MSE(B_I B_T^T o (1 - I), S o (1 - I))
   + MSE(B_I B_I^T o (1 - I), S o (1 - I))]`` (diagonal masked to 0 on both sides, still counted in
   the mean) ``+ cw [MSE(B_I B_T^T, B_I B_I^T) + MSE(B_I B_T^T, B_T B_T^T) + MSE(B_I B_I^T,
   B_T B_T^T) + MSE(B_I B_T^T, B_T B_I^T)]`` (the intra/inter-modal coherence terms).
4. Three updates per batch (train_div.py:143-172; [``alternating`` = True]): (a) the loss above,
   both networks stepped; (b) a fresh forward pass (new dropout masks), the loss with the text
   codes replaced by their detached sign, only the image network stepped; (c) the loss of the same
   forward pass's real text codes against the detached sign of its image codes (computed before
   step b), only the text network stepped. So each network takes two SGD steps per batch and
   learns against the other's binary codes. ``alternating = False`` (an ablation) keeps step (a).
5. Optimisation: SGD lr 0.005, momentum 0.9, weight decay 5e-4, one optimiser per network
   (train_div.py:61-65; here one SGD with a parameter group per network: a step in which one
   network has no gradient leaves it, its momentum and its weight decay untouched, as the separate
   official optimiser would); batches of 32 from a shuffling loader that keeps the short last
   batch (load_data.py:162); 100 epochs (train.py:37); no schedule.

How steps (b) and (c) fit the trainer: the trainer makes one optimiser step per :meth:`DGCPN.loss`.
With ``alternating`` the method takes all three steps itself inside :meth:`DGCPN.loss`, with the
optimiser :meth:`DGCPN.configure_optimizer` built (the same object the trainer holds and
checkpoints), and returns the value of step (a)'s loss as a detached leaf, so the trainer's own
step finds no gradient and changes nothing. The trainer skips one-row batches; the official loader
would train on a 1-row last batch.

The neighbourhood size
----------------------
The code's argument ``--knn_number`` (default 3000) is the number of LEAST similar entries zeroed
per row; train.py:55-60 says the paper's k (neighbours kept) is ``5000 - knn_number`` on MIRFlickr
and NUS-WIDE (5,000 training rows) and ``2100 - knn_number`` on Wikipedia. The pipeline's training
sets have other sizes, so the hyper-parameter here is the paper's k, ``neighbours`` (default 2000
= 5000 - 3000): each row keeps its ``neighbours`` largest entries, then drops the largest, exactly
the official rows on a 5,000-row training set. (``scale`` = 4000 is calibrated to rows of about
k entries of 1/k, so keeping k rather than ``knn_number`` also keeps ``scale`` meaningful.) Ties at
the k-th entry may be broken differently from the official unstable ``sort``.

Published hyper-parameters
--------------------------
Only the argument defaults of train.py:35-64 are published (the default run is ``--data_name
flickr``): lr 0.005, weight decay 5e-4, momentum 0.9, batch 32, 100 epochs, K 1.5, dw 1, cw 1,
a1 0.01, a2 0.3, knn_number 3000 (k = 2000), scale 4000, 64 bits. No per-dataset values (the
Wikipedia k is not given), so ``per_dataset`` holds ``mirflickr25k`` (k = 2000, train.py:55-61)
and every other family borrows it, logged as borrowed.

Model selection and evaluation of the official code
---------------------------------------------------
After every epoch (``EVAL_INTERVAL`` 1, train.py:22,43) it encodes a labelled VALIDATION split
(``val_num.npy``, rows apart from the training, query and database rows, load_data.py:115-133; on
Wikipedia the first 231 test pairs, load_data.py:82-87) against the database (its first 10,000
rows on NUS-WIDE, load_data.py:143-146), computes mAP@all with the datasets' clean labels
(train_div.py:201-208), checkpoints on a strict improvement of i2t + t2i (train_div.py:217-221),
and stops once more than 10 evaluations in a row brought none (train_div.py:222-223, train.py:24-25).
It then reloads the best checkpoint and reports the query set (train.py:27-30, train_div.py:224-240).
Reading labels for selection is the one thing of DGCPN a label-free cell must not do under
``sound``, so there it keeps its last epoch (the last of the published 100;
``HashingMethod.selection_mode``). Under ``paper`` the trainer does what the official loop does
(:data:`PAPER_SELECTION`, ``selection = best``): every epoch it scores the dataset's validation
rows against the database with the clean labels, keeps a strict improvement of i2t + t2i, and
stops once more than 10 candidates in a row brought none. One difference from the official
split: this pipeline's validation rows are carved from the training rows, which ``paper`` fits
(every cell of a protocol fits the same rows), while DGCPN's ``val_num.npy`` rows are apart
from its training rows.
Its mAP divides by all queries
(metric.py:131-146: a query with no relevant item counts 0): ``paper_denominator = "zero"``. The
final log's "MAP@50" is computed at top 5 (train_div.py:227-228,238); the pipeline's metrics are
its own. The training loop also scores the affinity against the batch's labels for its log
(train_div.py:176, ``calc_dis``): a label read for a log line only, not reproduced.

Protocols: ``paper`` and ``sound`` run the same method; no quirk of the official training is a
protocol flaw (the short last batch is trained, as published, under both). What differs is the
rows fitted and the selection split, both the trainer's.

Where paper and code differ
---------------------------
* The neighbourhood size: the code's ``knn_number`` is the complement of the paper's k (above).
* ``K = 1.5`` in the pair term asks a cosine for 1.5; ``alpha`` is fixed at 1 (its epoch schedule
  is commented out, train_div.py:138-139).
* The affinity is built from L2-normalised features; feature standardisation in this pipeline
  (``standardize_features``) makes cosines, and so ``P``'s entries, possibly negative, which the
  published (non-negative VGG/tag) features never give.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from cmhash.methods.base import (
    CROSSMODAL,
    SELECTIONS,
    Batch,
    HashingMethod,
    PaperSelection,
    Selection,
    TrainView,
)
from cmhash.methods.encoders import DropoutHashNet
from cmhash.methods.hparams import Bool, Choice, Float, HParam, Int
from cmhash.methods.registry import register

__all__ = ["DGCPN", "PAPER_SELECTION", "dgcpn_loss", "graph_neighbour_affinity", "neighbour_distribution"]

#: ``paper`` model selection (module docstring): every epoch, the labelled validation split against
#: the database, clean labels, mAP@all i2t + t2i, keep a strict improvement, stop after more than
#: 10 evaluations without one.
PAPER_SELECTION = PaperSelection(split="validation", ties="earlier", patience=10,
                                 source="train.py:22-30, train_div.py:201-223, load_data.py:115-146")


# -- the graph-neighbour affinity ------------------------------------------------------------------
def neighbour_distribution(similarity: torch.Tensor, neighbours: int, block: int = 2048) -> torch.Tensor:
    """``P``: each row of ``similarity`` keeps its ``neighbours`` largest entries, then loses the
    largest of them (normally the row itself), and is normalised to sum 1 (train_div.py:88-96, with
    the code's ``knn_number`` = rows - ``neighbours`` smallest entries zeroed). Rows are processed
    ``block`` at a time so the index memory stays ``block x neighbours``."""
    n = similarity.shape[0]
    keep = min(int(neighbours), similarity.shape[1])
    out = torch.zeros_like(similarity)
    for start in range(0, n, block):
        rows = similarity[start:start + block]
        values, index = rows.topk(keep, dim=1)  # sorted, largest first
        out[start:start + block].scatter_(1, index[:, 1:], values[:, 1:])  # the largest is zeroed (train_div.py:94-95)
    return out / out.sum(dim=1, keepdim=True)


def graph_neighbour_affinity(image: torch.Tensor, text: torch.Tensor, *, a1: float, a2: float, neighbours: int,
                             scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(S, S_pair, scale P P^T)`` over the rows given (train_div.py:78-103):
    ``S_pair = a1 cos(T, T) + (1 - a1) cos(I, I)``, ``P`` = :func:`neighbour_distribution` of
    ``S_pair``, ``S = 2 ((1 - a2) S_pair + a2 scale P P^T) - 1``. No gradient flows."""
    with torch.no_grad():
        fi, ft = F.normalize(image, dim=1), F.normalize(text, dim=1)
        s_pair = a1 * (ft @ ft.T) + (1.0 - a1) * (fi @ fi.T)
        p = neighbour_distribution(s_pair, neighbours)
        coherence = (p @ p.T) * scale
        del p
        S = (s_pair * (1.0 - a2) + coherence * a2) * 2.0 - 1.0
    return S, s_pair, coherence


# -- the loss ------------------------------------------------------------------------------------------
def dgcpn_loss(code_image: torch.Tensor, code_text: torch.Tensor, S: torch.Tensor, *, K: float, dw: float,
               cw: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The DGCPN batch loss (train_div.py:105-131): ``pair + dw (dis_tt + dis_it + dis_ii) + cw cons``.

    ``pair = MSE(diag(B_I B_T^T), K)``; ``dis_xy = MSE(B_x B_y^T o (1 - I), S o (1 - I))`` (diagonal
    zeroed on both sides, the mean still over all m^2 entries); ``cons`` = the sum of
    ``MSE(B_I B_T^T, B_I B_I^T)``, ``MSE(B_I B_T^T, B_T B_T^T)``, ``MSE(B_I B_I^T, B_T B_T^T)`` and
    ``MSE(B_I B_T^T, (B_I B_T^T)^T)``. ``B`` are the L2-normalised codes."""
    b_i, b_t = F.normalize(code_image, dim=1), F.normalize(code_text, dim=1)
    ii, tt, it = b_i @ b_i.T, b_t @ b_t.T, b_i @ b_t.T
    off = 1.0 - torch.eye(S.shape[0], dtype=S.dtype, device=S.device)
    pair = F.mse_loss(it.diagonal(), torch.full_like(it.diagonal(), K))
    target = S * off
    dis_tt, dis_it, dis_ii = F.mse_loss(tt * off, target), F.mse_loss(it * off, target), F.mse_loss(ii * off, target)
    cons = F.mse_loss(it, ii) + F.mse_loss(it, tt) + F.mse_loss(ii, tt) + F.mse_loss(it, it.T)
    total = pair + (dis_tt + dis_it + dis_ii) * dw + cons * cw
    parts = {"pair": float(pair.detach()), "affinity_tt": float(dis_tt.detach()), "affinity_it": float(dis_it.detach()),
             "affinity_ii": float(dis_ii.detach()), "coherence": float(cons.detach())}
    return total, parts


# -- the method --------------------------------------------------------------------------------------
@register
class DGCPN(HashingMethod):
    """DGCPN: codes reconstructing a first- plus second-order (graph-neighbour) affinity of the whole
    training set, with alternating updates against the other modality's binary codes. Reads no label."""

    name: ClassVar[str] = "dgcpn"
    task: ClassVar[str] = CROSSMODAL
    reads_labels: ClassVar[bool] = False
    paper_denominator: ClassVar[str] = "zero"  # metric.py:131-146: skipped queries still count in num_query
    paper_selection: ClassVar[PaperSelection] = PAPER_SELECTION
    paper_scores_untrained: ClassVar[bool] = False  # the official loop evaluates after each epoch (train.py:43)
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "Atmegal/DGCPN @ 9f62c56"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 100, "train.py:37", minimum=1),
        Int("batch_size", 32, "train.py:38", minimum=1),
        Int("eval_every", 1, "EVAL_INTERVAL, train.py:43", minimum=1),
        # under `sound` a label-free method keeps its last epoch whatever this says (HashingMethod.selection_mode)
        Choice("selection", "best", SELECTIONS, "train_div.py:201-223 (best epoch on PAPER_SELECTION, reloaded)"),
        Float("lr", 0.005, "train.py:39", minimum=0, exclusive_minimum=True),
        Float("weight_decay", 5e-4, "train.py:40", minimum=0),
        Float("momentum", 0.9, "train.py:41", minimum=0, maximum=1),
        Float("K", 1.5, "train.py:50", minimum=0),
        Float("dw", 1.0, "train.py:47", minimum=0),
        Float("cw", 1.0, "train.py:48", minimum=0),
        Float("a1", 0.01, "train.py:52", minimum=0, maximum=1),
        Float("a2", 0.3, "train.py:53", minimum=0, maximum=1),
        # the paper's k = 5000 - knn_number (train.py:55-61); the largest entry is dropped, so >= 2
        Int("neighbours", 2000, "train.py:55-61 (the paper's k = 5000 - knn_number 3000)", minimum=2,
            per_family={"mirflickr25k": 2000}, family_source="train.py:35, 55-61 (--data_name flickr)"),
        Float("scale", 4000.0, "train.py:63", minimum=0, exclusive_minimum=True),
        Float("dropout", 0.5, "models.py:16,42", minimum=0, maximum=1),
        Int("image_hidden", 4096, "models.py:12", minimum=1),
        Int("text_hidden", 4096, "models.py:38", minimum=1),
        Float("text_encode_std", 0.3, "models.py:44; null: PyTorch's default init", minimum=0, nullable=True),
        # the three updates per batch (train_div.py:143-172); False: step (a) only
        Bool("alternating", True, "train_div.py:143-172 (three updates per batch); false: step (a) only"),
    )

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        hp = self.hp
        self.image_net = DropoutHashNet(image_dim, int(hp["image_hidden"]), bits, float(hp["dropout"]))
        self.text_net = DropoutHashNet(text_dim, int(hp["text_hidden"]), bits, float(hp["dropout"]),
                                       encode_std=hp["text_encode_std"])
        #: The training set's affinity ``S`` (rows x rows), built by the first :meth:`before_epoch`
        #: from the view's features; not saved (deterministic, and rows^2 floats): a resumed or
        #: reloaded method rebuilds it.
        self.register_buffer("affinity", torch.zeros(0, 0), persistent=False)
        self._optimizer: torch.optim.Optimizer | None = None

    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        """SGD (lr 0.005, momentum 0.9, weight decay 5e-4) with one parameter group per network
        (train_div.py:61-65). Kept by the method too: with ``alternating`` it steps it itself."""
        hp = self.hp
        self._optimizer = torch.optim.SGD([{"params": self.image_net.parameters()},
                                           {"params": self.text_net.parameters()}],
                                          lr=float(hp["lr"]), momentum=float(hp["momentum"]),
                                          weight_decay=float(hp["weight_decay"]))
        return self._optimizer, None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def build_affinity(self, view: TrainView) -> None:
        """The whole training set's :func:`graph_neighbour_affinity` (train_div.py:45-49). Reads the
        view's features only."""
        hp = self.hp
        self.affinity, _, _ = graph_neighbour_affinity(view.image, view.text, a1=float(hp["a1"]), a2=float(hp["a2"]),
                                                        neighbours=int(hp["neighbours"]), scale=float(hp["scale"]))

    def before_epoch(self, view: TrainView, epoch: int) -> Selection | None:
        """Build the affinity on the first epoch (or after a resume); no selection."""
        n = int(view.image.shape[0])
        if tuple(self.affinity.shape) != (n, n):
            self.build_affinity(view)
        return None

    def _batch_loss(self, u: torch.Tensor, v: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        hp = self.hp
        return dgcpn_loss(u, v, S, K=float(hp["K"]), dw=float(hp["dw"]), cw=float(hp["cw"]))

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Step (a)'s loss; with ``alternating`` all three official updates are taken here and the
        value comes back as a detached leaf (module docstring). Never reads ``batch.labels``."""
        if self.affinity.shape[0] == 0:
            raise RuntimeError("dgcpn: affinity not built; the trainer's before_epoch (or build_affinity) builds it")
        idx = batch.index.to(self.affinity.device)
        S = self.affinity[idx][:, idx].to(batch.image.dtype)
        codes = self.encode(batch.image, batch.text)
        total, parts = self._batch_loss(codes["image"], codes["text"], S)
        parts["rows"] = float(idx.numel())
        if not self.hp["alternating"]:
            return total, parts
        opt = self._optimizer
        if opt is None:
            raise RuntimeError("dgcpn: alternating updates need configure_optimizer() first")
        opt.zero_grad(set_to_none=True)  # (a) both networks (train_div.py:154-159)
        total.backward()
        opt.step()
        codes = self.encode(batch.image, batch.text)  # a fresh forward pass (train_div.py:161-162)
        u, v = codes["image"], codes["text"]
        u_sign = u.detach().sign()  # the image codes before step (b), used by step (c) (train_div.py:169)
        loss_image, _ = self._batch_loss(u, v.detach().sign(), S)  # (b) image network only (train_div.py:164-167)
        opt.zero_grad(set_to_none=True)
        loss_image.backward()
        opt.step()
        loss_text, _ = self._batch_loss(u_sign, v, S)  # (c) text network only (train_div.py:169-172)
        opt.zero_grad(set_to_none=True)
        loss_text.backward()
        opt.step()
        parts.update(image_step=float(loss_image.detach()), text_step=float(loss_text.detach()))
        return total.detach().requires_grad_(), parts  # the trainer's own step finds no gradient
