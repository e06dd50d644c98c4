"""labkit.metrics: what is measured on embeddings, one module per family.

    gap           Δgap (seed 000 eq. 4), modality silhouette, centroid distances, PC1, ``gap_report``
    retrieval     Recall@K over a split (several captions per image), chance levels, N-way R@1 (seed 001 §4.3)
    neighbourhood neighbourhood preservation (seed 001 Table 3)
    batch         accuracy, loss and average similarity within validation batches (seed 003 Tables 2–5)

Every function takes ``(n, d)`` arrays or tensors, L2-normalises rows first and raises ``ValueError`` naming the
offending parameter on bad input; outputs are plain floats ready for ``metrics.json``.
"""

from .batch import batch_metrics
from .gap import centroid_distances, gap_report, modality_gap, modality_silhouette, pc1_stats
from .neighbourhood import neighbourhood_preservation
from .retrieval import chance_recall, nway_recall, nway_retrieval, retrieval_recall

__all__ = [
    "modality_gap",
    "modality_silhouette",
    "centroid_distances",
    "pc1_stats",
    "gap_report",
    "retrieval_recall",
    "chance_recall",
    "nway_recall",
    "nway_retrieval",
    "neighbourhood_preservation",
    "batch_metrics",
]
