r"""Evaluation of seed 001 §4.3: N-way retrieval and neighbourhood preservation (Table 3).

*N-way retrieval.* For query ``i`` (an image for I→T, a text for T→I), the candidates are its paired item and
``N − 1`` items drawn at random (seeded) among the non-paired ones of the test set; the query scores 1 when its
paired item is *strictly* more similar (cosine) than every drawn candidate. R@1 is the mean over queries. Chance
is ``1/N``.

*Neighbourhood preservation.* For each test sample ``s_i`` of one modality: :math:`\Psi_\Omega(s_i)`, the ``k``
samples whose texts are nearest to ``s_i``'s text in the text space Ω, and :math:`\Psi_\mathcal{M}(s_i)`, its
``k`` nearest samples of the same modality in the learned space; the score is
:math:`|\Psi_\mathcal{M}(s_i) \cap \Psi_\Omega(s_i)| / |\Psi_\Omega(s_i)|` averaged over samples (an image's Ω
neighbours are those of its paired text). Neither set contains ``s_i`` itself.
"""

from __future__ import annotations

import numpy as np

from .neighbours import knn

__all__ = ["nway_recall", "nway_retrieval", "neighbourhood_preservation"]


def nway_recall(queries: np.ndarray, targets: np.ndarray, n_way: int = 5, seed: int = 0,
                distractors: np.ndarray | None = None) -> float:
    """R@1 of the N-way task: row ``i`` of ``queries`` against ``targets[i]`` and N−1 other rows of ``targets``.

    ``distractors`` (optional, (n, N−1) int) fixes the drawn candidates instead of sampling them (for tests).
    """
    q = np.asarray(queries, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    n = len(q)
    if t.shape != q.shape:
        raise ValueError(f"queries and targets must be row-aligned pairs; got {q.shape} and {t.shape}")
    if not 2 <= n_way <= n:
        raise ValueError(f"n_way must be in [2, {n}], got {n_way}")
    if distractors is None:
        rng = np.random.default_rng(seed)
        distractors = np.empty((n, n_way - 1), dtype=np.int64)
        for i in range(n):
            pool = rng.choice(n - 1, size=n_way - 1, replace=False)
            distractors[i] = pool + (pool >= i)  # skip i itself: indices in [0, n) minus {i}
    distractors = np.asarray(distractors)
    if (distractors == np.arange(n)[:, None]).any():
        raise ValueError("distractors must not contain the paired item")
    positive = np.einsum("nd,nd->n", q, t)
    negative = np.einsum("nd,nkd->nk", q, t[distractors])
    return float(np.mean(positive > negative.max(1)))


def nway_retrieval(image: np.ndarray, text: np.ndarray, n_way: int = 5, seed: int = 0) -> dict[str, float]:
    """Both directions of the N-way task on row-aligned (image, text) pairs: ``{"i2t": R@1, "t2i": R@1}``."""
    return {"i2t": nway_recall(image, text, n_way, seed), "t2i": nway_recall(text, image, n_way, seed + 1)}


def neighbourhood_preservation(omega: np.ndarray, learned: np.ndarray, k: int = 200) -> float:
    """Mean share of each sample's ``k`` Ω-neighbours that are among its ``k`` neighbours in ``learned``.

    ``omega`` (n, d_Ω) and ``learned`` (n, d) are row-aligned (both cosine; exact search).
    """
    if len(omega) != len(learned):
        raise ValueError(f"omega and learned must be row-aligned; got {len(omega)} and {len(learned)} rows")
    a = knn(omega, k, method="exact")
    b = knn(learned, k, method="exact")
    return float(np.mean([len(np.intersect1d(a[i], b[i])) / k for i in range(len(a))]))
