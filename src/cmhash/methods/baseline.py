"""A noise-agnostic supervised baseline: DCMH-style pairwise likelihood on the noisy labels.

DCMH (Jiang & Li, CVPR 2017) maximises the likelihood of the pairwise similarities
S_ij = [y_i . y_j > 0] under p(S_ij = 1) = sigmoid(Theta_ij), Theta_ij = 1/2 F_i . G_j
(its Eq. 1-2), with a quantisation term gamma ||B - F||^2 + gamma ||B - G||^2, B = sign(F + G)
(Eq. 3), and a bit-balance term eta ||F 1 + G 1||^2. Here it is trained end to end on
mini-batches over two MLP encoders (the NRCH/SCBCH widths, tanh outputs) instead of DCMH's CNN
and alternating optimisation over the whole set, with each term averaged (over pairs, code
entries and bits) rather than summed; the labels are used as given (noisy), which is what makes
it the noise-agnostic reference in the papers' tables. Official code read for the settings:
jiangqy/DCMH-CVPR2017 @ 67d0e84 (``DCMH_matlab/DCMH_matlab/DCMH_demo.m``).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from cmhash.methods.base import CROSSMODAL, SELECTIONS, Batch, HashingMethod
from cmhash.methods.encoders import mlp
from cmhash.methods.hparams import Choice, Float, HParam, Int, Ints
from cmhash.methods.registry import register


def pairwise_similarity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """S_ij = 1 if rows i and j share at least one label, else 0 (DCMH Eq. 1)."""
    return (labels_a @ labels_b.T > 0).to(labels_a.dtype)


def pairwise_likelihood_loss(f: torch.Tensor, g: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of DCMH Eq. 2, averaged over pairs:
    mean(log(1 + exp(Theta)) - S * Theta), Theta = 1/2 f g^T (softplus for stability)."""
    theta = 0.5 * f @ g.T
    return (F.softplus(theta) - similarity * theta).mean()


@register
class DCMHBaseline(HashingMethod):
    """DCMH-style pairwise-likelihood hashing on the (noisy) labels; no noise handling."""

    name: ClassVar[str] = "baseline"
    task: ClassVar[str] = CROSSMODAL
    #: The official code the ``file:line`` citations of ``hyperparameters`` refer to.
    reference: ClassVar[str] = "jiangqy/DCMH-CVPR2017 @ 67d0e84"
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 50, "ours (a mini-batch MLP baseline; DCMH's 500 outer iterations, DCMH_demo.m:19, "
            "are tied to its CNN)", minimum=1),
        Int("batch_size", 128, "DCMH_demo.m:24", minimum=1),
        Int("eval_every", 5, "ours: candidate models every 5 epochs", minimum=1),
        Choice("selection", "best", SELECTIONS, "ours: the best-scoring candidate (by protocol)"),
        # Adam; DCMH's own schedule (lr logspace(-1.5, -3), DCMH_demo.m:20-21) is tied to its CNN
        # and not reused. Chosen on the 256-wide preset; at the 8192 widths on Wikipedia it
        # collapses the codes and 1e-4 learns (config/wikipedia.yaml), so check it when the
        # widths change.
        Float("lr", 1e-3, "ours (Adam, chosen on the 256-wide preset; DCMH_demo.m:20-21's logspace is tied "
              "to its CNN)", minimum=0, exclusive_minimum=True),
        Float("weight_decay", 1e-5, "ours (as NRCH/SCBCH)", minimum=0),
        # DCMH publishes gamma = eta = 1 for its CNN trained 500 epochs (DCMH_demo.m:19, 22-23);
        # over MLPs trained tens of epochs that pins the codes to their random initial signs
        # (embedded set, 64 bits: mAP 0.57 at 1 against 0.70 at 0.1, 30 epochs), so this
        # baseline uses 0.1 for both.
        Float("gamma", 0.1, "ours; DCMH publishes 1 for its CNN (DCMH_demo.m:22), which pins MLP codes",
              minimum=0, doc="quantisation weight"),
        Float("eta", 0.1, "ours; DCMH publishes 1 (DCMH_demo.m:23)", minimum=0, doc="bit-balance weight"),
        Ints("image_hidden", [8192, 8192], "NRCH/SCBCH encoder widths (METHODS.md \"Networks\")", minimum=1),
        Ints("text_hidden", [8192], "NRCH/SCBCH encoder widths (METHODS.md \"Networks\")", minimum=1),
    )
    published_families: ClassVar[tuple[str, ...]] = ("mirflickr25k",)

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)
        self.image_net = mlp(image_dim, self.hp["image_hidden"], bits, final_activation=torch.nn.Tanh())
        self.text_net = mlp(text_dim, self.hp["text_hidden"], bits, final_activation=torch.nn.Tanh())

    def configure_optimizer(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hp["lr"], weight_decay=self.hp["weight_decay"])
        return opt, None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image_net(image), "text": self.text_net(text)}

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        codes = self.encode(batch.image, batch.text)
        f, g = codes["image"], codes["text"]
        s = pairwise_similarity(batch.labels, batch.labels)
        likelihood = pairwise_likelihood_loss(f, g, s)
        b = torch.sign(f + g).detach()
        quant = ((b - f) ** 2).mean() + ((b - g) ** 2).mean()
        balance = ((f.mean(0) + g.mean(0)) ** 2).mean()
        total = likelihood + self.hp["gamma"] * quant + self.hp["eta"] * balance
        return total, {"likelihood": likelihood.item(), "quantisation": quant.item(), "balance": balance.item()}
