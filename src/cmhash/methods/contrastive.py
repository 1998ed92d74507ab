"""Margin/shift-masked cross-modal contrastive pieces shared by NRCH and SCBCH.

Pure functions of tensors. ``S`` is always a batch's cross-modal similarity matrix
``S = u v^T`` (rows: image codes, columns: text codes), so the diagonal holds the matched pairs.
Official code: LonganWANG-cs/NRCH @ b190e97 (``NRCH.py``) and Plke/SCBCH @ cfcc18c (``train.py``).

* :func:`label_overlap` — ``T = (Y Y^T > 0)``, optionally with a zero diagonal (METHODS.md, NRCH
  "RCH loss": "T = (Y Y^T > 0) with zero diagonal"; NRCH.py:78-79, 112-117).
* :func:`masked_similarity` — NRCH's hard-negative masking: "entries of S below (diagonal -
  margin) are shifted down by `shift`", per direction (SCBCH's BSCH reuses it, METHODS.md SCBCH
  "NRCH-style margin/shift masking per direction"; NRCH.py:82-98, SCBCH train.py:133-143).
* :func:`clamp_diagonal` — "diagonal clamped at >= 0" (NRCH.py:92-94, 103-105; SCBCH train.py:137-138, 142-143).
* :func:`rch_direction_loss` / :func:`rch_loss` — NRCH's per-sample robust contrastive loss
  ``loss_r = -diag + tau * logsumexp((S_masked / tau) * (1 - T)) + margin`` per direction (NRCH.py:107).
* :func:`quantisation_loss` — NRCH's ``Q = mean((|u| - 1/sqrt(bits))^2) + same for v`` (NRCH.py:108).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "clamp_diagonal",
    "label_overlap",
    "masked_similarity",
    "quantisation_loss",
    "rch_direction_loss",
    "rch_loss",
]


def label_overlap(labels_a: torch.Tensor, labels_b: torch.Tensor, zero_diagonal: bool = False) -> torch.Tensor:
    """``T_ij = 1`` where rows i and j share at least one label, else 0 (float, like ``labels_a``).

    ``zero_diagonal`` sets ``T_ii = 0`` (NRCH: a pair is never a "semantic positive" of itself, so
    the matched pair stays in the contrastive denominator). Needs a square result.
    """
    dtype = labels_a.dtype if labels_a.is_floating_point() else torch.float32
    t = (labels_a.to(dtype) @ labels_b.to(dtype).T > 0).to(dtype)
    if zero_diagonal:
        if t.shape[0] != t.shape[1]:
            raise ValueError(f"zero_diagonal needs square overlaps, got {tuple(t.shape)}")
        t = t * (1.0 - torch.eye(t.shape[0], dtype=t.dtype, device=t.device))
    return t


def masked_similarity(S: torch.Tensor, margin: float, shift: float, dim: int = 1) -> torch.Tensor:
    """Shift the easy negatives of ``S`` down by ``shift`` (NRCH "RCH loss").

    ``dim=1`` compares each entry with its row's diagonal (``S_ij < S_ii - margin``: image i
    against every text j, the softmax then runs along the row); ``dim=0`` with its column's
    diagonal (``S_ij < S_jj - margin``: text j against every image i, softmax down the column).
    Entries below that reference become ``S_ij - shift``, the others stay ``S_ij``. The mask is a
    constant (no gradient through the comparison), as published (``.detach()``: NRCH.py:86, 97;
    SCBCH train.py:135, 140). The diagonal itself is never
    shifted when ``margin >= 0``.
    """
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"masked_similarity needs a square similarity matrix, got {tuple(S.shape)}")
    if dim not in (0, 1):
        raise ValueError(f"dim must be 0 (columns) or 1 (rows), got {dim}")
    diag = S.diagonal()
    reference = diag.unsqueeze(1) if dim == 1 else diag.unsqueeze(0)
    hard = (S >= reference - margin).detach()
    return torch.where(hard, S, S - shift)


def clamp_diagonal(M: torch.Tensor, min_value: float = 0.0) -> torch.Tensor:
    """``M`` with its diagonal clamped at ``>= min_value`` and the off-diagonal untouched."""
    eye = torch.eye(M.shape[0], M.shape[1], dtype=torch.bool, device=M.device)
    return torch.where(eye, M.clamp(min=min_value), M)


def rch_direction_loss(S: torch.Tensor, T: torch.Tensor, margin: float, shift: float, tau: float,
                       dim: int = 1) -> torch.Tensor:
    """One direction of NRCH's robust contrastive loss, per sample (shape ``(N,)``).

    ``loss_r[i] = -S_ii + tau * log sum_j exp((M_ij / tau) * (1 - T_ij)) + margin`` where ``M``
    is :func:`masked_similarity` along ``dim`` with the diagonal clamped at >= 0, and the sum runs
    along ``dim`` (``dim=1``: over the row; ``dim=0``: down the column). As published, ``(1 - T)``
    multiplies the exponent, so a semantic positive (``T_ij = 1``) contributes ``exp(0) = 1`` to
    the sum rather than being removed from it; the leading ``-S_ii`` uses the unclamped diagonal
    (``cost_te.diag()``, NRCH.py:107).
    """
    masked = clamp_diagonal(masked_similarity(S, margin, shift, dim))
    lse = torch.logsumexp((masked / tau) * (1.0 - T), dim=dim)
    return -S.diagonal() + tau * lse + margin


def rch_loss(S: torch.Tensor, T: torch.Tensor, margin: float, shift: float, tau: float,
             quirk: bool = True) -> torch.Tensor:
    """NRCH's bidirectional robust contrastive loss per sample: row term + column term.

    ``quirk=True`` reproduces the published code, whose second (text-side, column) term reuses
    the first term's row-masked matrix ``cost_te_max`` and row-wise log-sum-exp (NRCH.py:107);
    since both diagonals equal ``S_ii`` the loss is then exactly twice the row term. ``quirk=False`` uses the column-masked
    matrix and sums down the columns, the symmetric loss the paper describes.
    """
    row = rch_direction_loss(S, T, margin, shift, tau, dim=1)
    if quirk:  # published quirk: 2nd direction reuses the 1st's masked matrix and row sums (NRCH.py:107)
        return row + row
    return row + rch_direction_loss(S, T, margin, shift, tau, dim=0)


def quantisation_loss(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-sample ``mean_k (|u_k| - 1/sqrt(bits))^2 + mean_k (|v_k| - 1/sqrt(bits))^2`` (NRCH Q):
    pulls every coordinate of the L2-normalised codes to the magnitude of a normalised binary code
    (NRCH.py:108; there ``u``, ``v`` are the re-tanh'd outputs, NRCH.py:76-77)."""
    target = 1.0 / math.sqrt(u.shape[1])
    return (u.abs() - target).pow(2).mean(dim=1) + (v.abs() - target).pow(2).mean(dim=1)
