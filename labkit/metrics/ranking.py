r"""Ranked retrieval with graded truth: precision@k and mean average precision@k (seed 004 eq. 6, §4.3; the
category-level protocol of NUS-WIDE-10k), and the relevance a query's answers have when categories are known.

For a query with ranked gallery items :math:`g_1, g_2, \dots` and relevance :math:`\mathrm{rel}_i \in \{0, 1\}`:

.. math::
    P@k = \frac{1}{k}\sum_{i=1}^{k} \mathrm{rel}_i \qquad (6)

.. math::
    AP@k = \frac{1}{N_k} \sum_{i=1}^{k} P@i \cdot \mathrm{rel}_i , \qquad mAP@k = \text{mean of } AP@k
    \text{ over queries.}

**The normalisation** :math:`N_k` (the two conventions in use differ): here, by default,
:math:`N_k = \min(k, R)` with :math:`R` the number of relevant items in the whole gallery (``normalise="min"``),
so a perfect ranking scores 1 and a ranking that leaves relevant items out of the top k is penalised; the other
convention, :math:`N_k` = the number of relevant items *retrieved in the top k* (``normalise="retrieved"``),
only judges the order of what was retrieved. They coincide when every one of the ``min(k, R)`` best places holds a
relevant item, and both equal scikit-learn's ``average_precision_score`` when ``k`` is the gallery size (no
ties). A query with no relevant item in the gallery has AP 0 (and is counted).

**Ranking**: by cosine similarity (rows are L2-normalised first — equivalently by Euclidean distance on the unit
sphere), best first; ties are broken by gallery order (a stable sort), so results are deterministic.

Conventions (input validation, ``ValueError`` naming the parameter) as in :mod:`labkit.metrics.gap`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from ._validate import _pair, _positive_int, _to_numpy

__all__ = ["ranked_relevance", "precision_at_k", "average_precision_at_k", "mean_average_precision",
           "label_relevance", "category_retrieval", "NORMALISATIONS"]

NORMALISATIONS = ("min", "retrieved")


def _labels(x, name: str, n: int) -> np.ndarray:
    x = _to_numpy(x, name)
    if x.ndim != 1 or len(x) != n:
        raise ValueError(f"{name} must be 1-D with {n} entries (one per row), got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer labels, got dtype {x.dtype}")
    return x.astype(np.int64)


def label_relevance(query_labels, gallery_labels) -> np.ndarray:
    """bool (n_query, n_gallery): gallery item j is relevant to query i iff they share the label (categories)."""
    q = _to_numpy(query_labels, "query_labels")
    g = _to_numpy(gallery_labels, "gallery_labels")
    return q.reshape(-1)[:, None] == g.reshape(-1)[None, :]


def ranked_relevance(query_emb, gallery_emb, relevant, k: int, batch_size: int = 1024) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Relevance of each query's top ``k`` gallery items (bool, (n_query, k), best first) and each query's number
    of relevant items in the whole gallery (int, (n_query,)). ``relevant`` is a bool (n_query, n_gallery) matrix."""
    q, g = _pair(query_emb, gallery_emb, "query_emb", "gallery_emb", dtype=np.float32)
    k = _positive_int(k, "k")
    rel = np.asarray(relevant)
    if rel.shape != (len(q), len(g)):
        raise ValueError(f"relevant must be (n_query, n_gallery) = {(len(q), len(g))}, got {rel.shape}")
    rel = rel.astype(bool)
    k = min(k, len(g))
    top = np.empty((len(q), k), dtype=bool)
    gt = torch.from_numpy(g)
    for s in range(0, len(q), batch_size):
        sim = (torch.from_numpy(q[s:s + batch_size]) @ gt.T).numpy()
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        top[s:s + batch_size] = np.take_along_axis(rel[s:s + batch_size], order, axis=1)
    return top, rel.sum(1)


def precision_at_k(top: np.ndarray) -> np.ndarray:
    """Per-query P@k (eq. 6) from the relevance of the top k (``ranked_relevance``'s first output)."""
    return np.asarray(top, dtype=float).mean(1)


def average_precision_at_k(top: np.ndarray, n_relevant: np.ndarray, normalise: str = "min") -> np.ndarray:
    """Per-query AP@k from the top-k relevance and the number of relevant items in the gallery (see module)."""
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    top = np.asarray(top, dtype=float)
    k = top.shape[1]
    hits = np.cumsum(top, axis=1)
    prec = hits / np.arange(1, k + 1)
    summed = (prec * top).sum(1)
    denom = np.minimum(k, np.asarray(n_relevant)) if normalise == "min" else hits[:, -1]
    return np.divide(summed, denom, out=np.zeros_like(summed), where=denom > 0)


def mean_average_precision(query_emb, gallery_emb, relevant, k: int, normalise: str = "min") -> float:
    """mAP@k of queries against a gallery with a bool relevance matrix (n_query, n_gallery)."""
    top, n_rel = ranked_relevance(query_emb, gallery_emb, relevant, k)
    return float(average_precision_at_k(top, n_rel, normalise).mean())


def category_retrieval(image_emb, text_emb, image_labels, text_labels, ks: Iterable[int] = (10, 50),
                       normalise: str = "min") -> dict[str, float]:
    """Category-level retrieval both ways (seed 004's NUS-WIDE-10k protocol with categories as truth): every image
    queries all texts and every text queries all images; relevant = same category. Returns ``i2t_mAP@k``,
    ``t2i_mAP@k``, ``i2t_P@k``, ``t2i_P@k`` for each k, as fractions in [0, 1]."""
    img, txt = _pair(image_emb, text_emb, "image_emb", "text_emb", dtype=np.float32)
    li, lt = _labels(image_labels, "image_labels", len(img)), _labels(text_labels, "text_labels", len(txt))
    ks = sorted({_positive_int(k, "ks") for k in ks})
    out: dict[str, float] = {}
    for name, q, g, lq, lg in (("i2t", img, txt, li, lt), ("t2i", txt, img, lt, li)):
        top, n_rel = ranked_relevance(q, g, label_relevance(lq, lg), max(ks))
        for k in ks:
            out[f"{name}_mAP@{k}"] = float(average_precision_at_k(top[:, :k], n_rel, normalise).mean())
            out[f"{name}_P@{k}"] = float(precision_at_k(top[:, :k]).mean())
    return out
