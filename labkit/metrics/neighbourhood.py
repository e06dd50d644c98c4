r"""Neighbourhood preservation, seed 001 §4.3 (Table 3).

*Neighbourhood preservation.* For each test sample ``s_i`` of one modality: :math:`\Psi_\Omega(s_i)`, the ``k``
samples whose texts are nearest to ``s_i``'s text in the text space Ω, and :math:`\Psi_\mathcal{M}(s_i)`, its
``k`` nearest samples of the same modality in the learned space; the score is
:math:`|\Psi_\mathcal{M}(s_i) \cap \Psi_\Omega(s_i)| / |\Psi_\Omega(s_i)|` averaged over samples (an image's Ω
neighbours are those of its paired text). Neither set contains ``s_i`` itself.
"""

from __future__ import annotations

import numpy as np

from ..neighbours import knn

__all__ = ["neighbourhood_preservation"]


def neighbourhood_preservation(omega: np.ndarray, learned: np.ndarray, k: int = 200) -> float:
    """Mean share of each sample's ``k`` Ω-neighbours that are among its ``k`` neighbours in ``learned``.

    ``omega`` (n, d_Ω) and ``learned`` (n, d) are row-aligned (both cosine; exact search).
    """
    if len(omega) != len(learned):
        raise ValueError(f"omega and learned must be row-aligned; got {len(omega)} and {len(learned)} rows")
    a = knn(omega, k, method="exact")
    b = knn(learned, k, method="exact")
    return float(np.mean([len(np.intersect1d(a[i], b[i])) / k for i in range(len(a))]))
