r"""The N-way retrieval task of seed 001 (§4.3) without the noise of drawing the distractors.

:func:`labkit.metrics.nway_recall` draws, for every query, N − 1 random distractors once; its R@1 carries the
sampling noise of that draw on top of the test set's. Its expectation over all draws has a closed form: if
:math:`m_i` of the :math:`n - 1` other targets score strictly below query :math:`i`'s own target, the query is right
exactly when all N − 1 distractors come from those :math:`m_i`, so

.. math:: \mathbb{E}[\text{R@1}] = \frac1n\sum_i \binom{m_i}{N-1} \Big/ \binom{n-1}{N-1}.

Same estimand, no draw: differences between two models on the same test set become paired comparisons of smooth
numbers (the variance reduction notebook 06 needs to resolve small differences).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = ["expected_nway_recall", "expected_nway_retrieval"]


def _log_comb(n: np.ndarray, k: int) -> np.ndarray:
    """log C(n, k) for an array n >= k (natural log, via log-gamma)."""
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def expected_nway_recall(queries, targets, n_way: int = 5, batch_size: int = 2048) -> float:
    """Expected N-way R@1 over all draws of the N − 1 distractors: row ``i`` of ``queries`` against ``targets[i]``
    (cosine similarity on L2-normalised rows; a tie with a distractor counts as a miss, as in
    :func:`~labkit.metrics.nway_recall`)."""
    q = np.asarray(queries, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if q.ndim != 2 or t.shape != q.shape:
        raise ValueError(f"queries and targets must be row-aligned (n, d) pairs; got {q.shape} and {t.shape}")
    n = len(q)
    if not (isinstance(n_way, (int, np.integer)) and 2 <= n_way <= n):
        raise ValueError(f"n_way must be an int in [2, {n}], got {n_way!r}")
    if not np.isfinite(q).all() or not np.isfinite(t).all():
        raise ValueError("queries and targets must be finite")
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    below = np.empty(n, dtype=np.int64)
    for s in range(0, n, batch_size):
        sims = q[s:s + batch_size] @ t.T
        own = sims[np.arange(len(sims)), np.arange(s, s + len(sims))]
        below[s:s + len(sims)] = (sims < own[:, None]).sum(axis=1)  # the own target is not below itself
    k = n_way - 1
    ok = below >= k
    probs = np.zeros(n)
    probs[ok] = np.exp(_log_comb(below[ok].astype(float), k) - _log_comb(np.array(n - 1.0), k))
    return float(probs.mean())


def expected_nway_retrieval(image, text, n_way: int = 5) -> dict[str, float]:
    """Both directions of :func:`expected_nway_recall` on row-aligned (image, text) pairs: ``{"i2t", "t2i"}``."""
    return {"i2t": expected_nway_recall(image, text, n_way), "t2i": expected_nway_recall(text, image, n_way)}
