"""Encoders shared by the methods."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, *, batch_norm: bool = False,
        final_activation: nn.Module | None = None) -> nn.Sequential:
    """Linear layers ``in_dim -> hidden... -> out_dim`` with ReLU between (and BatchNorm before
    each ReLU when ``batch_norm``), as in the NRCH/SCBCH encoders (METHODS.md, "Networks":
    image 4096 -> 8192 -> 8192 -> bits, text d -> 8192 -> bits) and DCGMH's branches."""
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers.append(nn.Linear(a, b))
        if batch_norm:
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Linear(dims[-1], out_dim))
    if final_activation is not None:
        layers.append(final_activation)
    return nn.Sequential(*layers)
