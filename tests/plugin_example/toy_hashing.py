"""A complete cmhash method living in its own package: two linear hash layers trained so that an
image and a text code agree when their rows share a label (a pairwise inner-product loss), plus
a quantisation term. It needs no fork of cmhash: the package declares it under the entry-point
group ``cmhash.methods`` and cmhash finds it at start-up."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cmhash.methods import Batch, HashingMethod
from cmhash.methods.hparams import Choice, Float, HParam, Int


class ToyHashing(HashingMethod):
    """Linear hash layers + pairwise code agreement on the (noisy) labels."""

    name: ClassVar[str] = "toyhash"  # the entry point's name
    reference: ClassVar[str] = "the cmhash README example"
    # Declared once: validate-config, the workflow's start-up check and __init__ read this.
    hyperparameters: ClassVar[tuple[HParam, ...]] = (
        Int("epochs", 10, "example", minimum=1),  # the trainer reads epochs, batch_size,
        Int("batch_size", 64, "example", minimum=1),  # eval_every and selection
        Int("eval_every", 5, "example", minimum=1),
        Choice("selection", "best", ("best", "last"), "example"),
        Float("lr", 1e-3, "example (Adam)", minimum=0, exclusive_minimum=True),
        Float("quantisation", 0.1, "example", minimum=0, maximum=1,
              per_family={"mirflickr25k": 0.1}, family_source="example"),
    )

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, bits: int,
                 hp: dict[str, Any], protocol: str) -> None:
        super().__init__(image_dim, text_dim, n_classes, bits, hp, protocol)  # checks hp
        self.image_net = nn.Linear(image_dim, bits)
        self.text_net = nn.Linear(text_dim, bits)

    def configure_optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(self.parameters(), lr=self.hp["lr"]), None

    def encode(self, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": torch.tanh(self.image_net(image)), "text": torch.tanh(self.text_net(text))}

    def loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        codes = self.encode(batch.image, batch.text)
        u, v = codes["image"], codes["text"]
        target = (batch.labels @ batch.labels.T > 0).float() * 2 - 1  # +1: the rows share a label
        pairwise = ((u @ v.T / self.bits - target) ** 2).mean()
        quantisation = ((u.abs() - 1) ** 2).mean() + ((v.abs() - 1) ** 2).mean()
        total = pairwise + self.hp["quantisation"] * quantisation
        return total, {"pairwise": pairwise.item(), "quantisation": quantisation.item()}
