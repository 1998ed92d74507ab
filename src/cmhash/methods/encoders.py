"""Encoders shared by the methods.

Official code: LonganWANG-cs/NRCH @ b190e97 and Plke/SCBCH @ cfcc18c (``network.py``),
LiuJinyu1229/DCGMH @ f208cdb (``model/fusion.py``), Atmegal/DGCPN @ 9f62c56 (``models.py``),
rongchengtu1/DCHUC @ 2cf46ed (``utils/txt_module.py``) and perquisite/RSHNL @ 34de146 (``model.py``).
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, *, batch_norm: bool = False,
        final_activation: nn.Module | None = None, final_bias: bool = True) -> nn.Sequential:
    """Linear layers ``in_dim -> hidden... -> out_dim`` with ReLU between (and BatchNorm before
    each ReLU when ``batch_norm``), as in the NRCH/SCBCH encoders (METHODS.md, "Networks":
    image 4096 -> 8192 -> 8192 -> bits, text d -> 8192 -> bits; NRCH network.py:29-45, 56-72 with
    NRCH.py:174-175), DCGMH's branches (model/fusion.py:6-21) and RSHNL's encoders, whose last
    layer has no bias (``final_bias=False``; RSHNL model.py:50, 75)."""
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in pairwise(dims):
        layers.append(nn.Linear(a, b))
        if batch_norm:
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Linear(dims[-1], out_dim, bias=final_bias))
    if final_activation is not None:
        layers.append(final_activation)
    return nn.Sequential(*layers)


def hash_head(x: torch.Tensor) -> torch.Tensor:
    """``tanh`` then L2 normalisation per row (METHODS.md, NRCH/SCBCH "Networks": "output tanh
    then L2-normalised"; NRCH network.py:48-53, SCBCH network.py:62-69). Signs are unchanged, so
    the binary code is ``sign`` of either."""
    return F.normalize(torch.tanh(x), dim=1)


class HashEncoder(nn.Module):
    """The NRCH/SCBCH encoder: :func:`mlp` (ReLU between, PyTorch's default Linear init, as
    published: the ``weights_init`` call is commented out, NRCH network.py:46, SCBCH network.py:59)
    followed by :func:`hash_head`."""

    def __init__(self, in_dim: int, hidden: Sequence[int], bits: int) -> None:
        super().__init__()
        self.net = mlp(in_dim, list(hidden), bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hash_head(self.net(x))


class DropoutHashNet(nn.Module):
    """``fc1 -> ReLU -> Dropout(p) -> fc_encode -> tanh``: DGCPN's image and text networks
    (DGCPN models.py:9-55) and DCHUC's text network (its two full-width convolutions are these two
    linear layers, DCHUC utils/txt_module.py:24-39). ``encode_std`` draws ``fc_encode.weight``
    from N(0, std^2) (DGCPN's text net, models.py:44); None keeps the default init (a method may
    re-initialise the layers itself, as DCHUC does)."""

    def __init__(self, in_dim: int, hidden: int, bits: int, dropout: float, encode_std: float | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc_encode = nn.Linear(hidden, bits)
        self.dropout = nn.Dropout(p=dropout)
        if encode_std is not None:
            nn.init.normal_(self.fc_encode.weight, mean=0.0, std=encode_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc_encode(self.dropout(F.relu(self.fc1(x)))))
