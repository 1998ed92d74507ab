"""Hash codes and their Hamming distances: how codes are read and checked, packed into words,
and popcounted -- the one reading shared by the metrics (:mod:`cmhash.evaluate`) and the
top-k search (:mod:`cmhash.search`), so that both rank the same items the same way.

* Codes are ±1 (or real-valued, binarised by sign with ``x >= 0 -> +1``; bool or unsigned
  {0, 1} arrays are read as bits, 0 -> -1). Hamming distance d = (bits - q.x) / 2, the number
  of differing bits.
* :func:`check_2d` validates any input matrix (codes or labels): a non-empty 2-d numeric
  numpy array or tensor without NaN/inf.
* :func:`pack_bits` packs rows of bits little-endian into uint64 words; :func:`numpy_popcount`
  and the numba :func:`popcount64` count the set bits of XORed words, and
  :func:`packed_distances` gives the distances of a query chunk to a word-major database.
* ``numba`` is the optional numba module, or None when it is not installed
  (:func:`numba_available`); the compiled kernels of both users are built on it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cmhash.errors import DataError

__all__ = [
    "check_2d",
    "codes_as_bits",
    "hamming_distances",
    "is_tensor",
    "numba",
    "numba_available",
    "numpy_popcount",
    "pack_bits",
    "packed_distances",
    "popcount64",
    "to_bits",
    "to_pm1",
]

ArrayLike = Any  # numpy array or torch tensor

try:  # optional accelerator; the numpy and torch paths cover every case without it
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None


def numba_available() -> bool:
    """True when the optional numba backend can be used (numba importable)."""
    return numba is not None


# =========================================================================== reading codes

def is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def check_2d(x: Any, name: str) -> Any:
    """``x`` as a numpy array (or a detached tensor); DataError naming ``name`` unless it is a
    non-empty 2-d numeric (or bool) array without NaN or infinite values."""
    if not is_tensor(x):
        x = np.asarray(x)
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise DataError(f"{name}: expected a numeric array, found dtype {x.dtype}")
    else:
        x = x.detach()
    if x.ndim != 2:
        raise DataError(f"{name}: expected a 2-d rows x columns array, found shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{name}: empty array of shape {tuple(x.shape)}")
    floating = x.is_floating_point() if is_tensor(x) else np.issubdtype(x.dtype, np.floating)
    if floating:
        finite = bool(torch.isfinite(x).all()) if is_tensor(x) else bool(np.isfinite(x).all())
        if not finite:
            bad = (~torch.isfinite(x)).any(1).sum().item() if is_tensor(x) else int((~np.isfinite(x)).any(1).sum())
            raise DataError(f"{name}: {bad} rows hold NaN or infinite values; check the model outputs / labels")
    return x


def to_pm1(x: Any, name: str) -> Any:
    """±1 float32 codes: bool / unsigned {0,1} read as bits; signed or float binarised by sign."""
    if is_tensor(x):
        if x.dtype == torch.bool or x.dtype == torch.uint8:
            if x.dtype == torch.uint8 and bool((x > 1).any()):
                raise DataError(f"{name}: unsigned codes must be bits 0/1")
            return x.to(torch.float32) * 2 - 1
        return torch.where(x >= 0, 1.0, -1.0).to(torch.float32)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.unsignedinteger):
        if (x > 1).any():
            raise DataError(f"{name}: unsigned codes must be bits 0/1")
        return x.astype(np.float32) * 2 - 1
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def to_bits(x: np.ndarray, name: str) -> np.ndarray:
    """Code bits as bool (True = +1) without a float copy: the packed form of :func:`to_pm1`."""
    if x.dtype == np.bool_:
        return x
    if np.issubdtype(x.dtype, np.unsignedinteger):
        if (x > 1).any():
            raise DataError(f"{name}: unsigned codes must be bits 0/1")
        return x > 0
    return x >= 0


def codes_as_bits(codes: Any, name: str) -> np.ndarray:
    """Validated codes (numpy array or tensor) as a bool bit matrix on the CPU (True = +1);
    DataError naming ``name`` (a key or a file) if not a non-empty 2-d numeric array, if it
    holds NaN/inf, or if unsigned and not 0/1."""
    x = check_2d(codes, name)
    if hasattr(x, "cpu"):
        x = x.cpu().numpy()
    return to_bits(x, name)


# =========================================================================== packed words

def pack_bits(x: np.ndarray) -> np.ndarray:
    """Rows of 0/1 (any value > 0 is 1) packed little-endian into uint64 words (zero padding:
    padded bits are equal in every row, so they add nothing to distances or label overlaps)."""
    n_words = -(-x.shape[1] // 64)
    padded = np.zeros((x.shape[0], n_words * 64), np.bool_)
    np.greater(x, 0, out=padded[:, :x.shape[1]])
    return np.packbits(padded, axis=1, bitorder="little").view("<u8")


def numpy_popcount(x: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 (uint8 result)."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    table = np.array([v.bit_count() for v in range(256)], np.uint8)  # pragma: no cover
    return table[np.ascontiguousarray(x).view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)


def packed_distances(qwords: np.ndarray, db_t: np.ndarray, bits: int) -> np.ndarray:
    """Hamming distances (Q x D) of packed query rows (Q x words) to a word-major packed
    database (words x D), one word at a time: uint8 for one word, else uint16 (uint32 from
    65,536 bits)."""
    dist = numpy_popcount(qwords[:, :1] ^ db_t[0][None, :])
    if qwords.shape[1] > 1:
        dist = dist.astype(np.uint16 if bits < 65536 else np.uint32)
        for w in range(1, qwords.shape[1]):
            dist += numpy_popcount(qwords[:, w:w + 1] ^ db_t[w][None, :])
    return dist


if numba is not None:
    _M1, _M2, _M4, _H01 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333),
                           np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101))
    _S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)

    @numba.njit(inline="always", cache=True)
    def popcount64(x):  # pragma: no cover - compiled (LLVM emits popcnt / vpopcntq)
        """Bits set in one uint64 word, inside numba kernels (int32)."""
        x = x - ((x >> _S1) & _M1)
        x = (x & _M2) + ((x >> _S2) & _M2)
        x = (x + (x >> _S4)) & _M4
        return np.int32((x * _H01) >> _S56)
else:  # pragma: no cover - depends on the environment
    popcount64 = None


# =========================================================================== distances

def hamming_distances(query_codes: ArrayLike, db_codes: ArrayLike) -> ArrayLike:
    """Integer Hamming distances (Q x D, int64) between two code sets; a numpy array for numpy
    inputs, a tensor on the inputs' device otherwise."""
    qc = to_pm1(check_2d(query_codes, "query_codes"), "query_codes")
    dc = to_pm1(check_2d(db_codes, "db_codes"), "db_codes")
    if qc.shape[1] != dc.shape[1]:
        raise DataError(f"query_codes has {qc.shape[1]} bits but db_codes has {dc.shape[1]}")
    if is_tensor(qc) or is_tensor(dc):
        dev = qc.device if is_tensor(qc) else dc.device
        qt = qc.to(dev) if is_tensor(qc) else torch.from_numpy(qc).to(dev)
        dt = dc.to(dev) if is_tensor(dc) else torch.from_numpy(dc).to(dev)
        return ((qc.shape[1] - qt @ dt.T) * 0.5).round().to(torch.int64)
    return np.rint((qc.shape[1] - qc @ dc.T) * 0.5).astype(np.int64)
