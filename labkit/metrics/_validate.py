"""Input checks shared by every metric (and by :mod:`labkit.viz`): arrays or tensors in, validated and
L2-normalised float arrays out, with a ``ValueError`` naming the offending parameter."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch

__all__ = ["_to_numpy", "_embeddings", "_pair", "_positive_int"]


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu")
        if x.is_complex():
            raise ValueError(f"{name} must be real-valued")
        if x.is_floating_point():
            x = x.to(torch.float64)
        x = x.numpy()
    else:
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a real numeric array (got dtype {x.dtype})")
    return x


def _embeddings(x, name: str, dtype=np.float64) -> np.ndarray:
    """Validate one ``(n, d)`` embedding matrix and return it L2-normalised, as ``dtype``."""
    x = _to_numpy(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, d), got ndim={x.ndim}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN/inf")
    x = x.astype(dtype, copy=False)
    # norms in float64 whatever the working dtype (no float32 overflow/underflow)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    if not np.isfinite(norms).all():
        raise ValueError(f"{name} has rows whose norm overflows")
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms == 0)[0])
        raise ValueError(f"{name} has zero-norm rows (first: row {bad}); they cannot be normalised")
    return x / norms.astype(dtype)[:, None]


def _pair(a, b, name_a: str, name_b: str, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    a = _embeddings(a, name_a, dtype)
    b = _embeddings(b, name_b, dtype)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same embedding dimension "
            f"(got {a.shape[1]} and {b.shape[1]})"
        )
    return a, b


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
