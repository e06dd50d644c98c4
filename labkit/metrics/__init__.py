"""labkit.metrics: what is measured on embeddings, one module per family.

    gap           Δgap (seed 000 eq. 4), modality silhouette, centroid distances, PC1, ``gap_report``; relative
                  modality gap, linear separability, the gap's top-k dimensions, post-hoc centering, the shift
                  along the gap, ``extended_gap_report``
    retrieval     Recall@K over a split (several captions per image), chance levels, N-way R@1 (seed 001 §4.3)
    neighbourhood neighbourhood preservation (seed 001 Table 3)
    ranking       precision@k and mAP@k with graded truth, category-level retrieval (seed 004 eq. 6)
    nway          the N-way R@1 in expectation over the distractor draws (closed form, no sampling noise)
    batch         accuracy, loss and average similarity within validation batches (seed 003 Tables 2–5)

Every function takes ``(n, d)`` arrays or tensors, L2-normalises rows first and raises ``ValueError`` naming the
offending parameter on bad input; outputs are plain floats ready for ``metrics.json``.
"""

from .batch import batch_metrics
from .gap import (center_modalities, centroid_distances, drop_gap_dimensions, extended_gap_report, gap_dimension_shares,
                  gap_direction, gap_report, linear_separability, modality_gap, modality_silhouette, pc1_stats,
                  relative_modality_gap, shift_along_gap)
from .neighbourhood import neighbourhood_preservation
from .ranking import (average_precision_at_k, category_retrieval, label_relevance, mean_average_precision,
                      precision_at_k, ranked_relevance)
from .nway import expected_nway_recall, expected_nway_retrieval
from .retrieval import chance_recall, nway_recall, nway_retrieval, retrieval_recall

__all__ = [
    "modality_gap",
    "modality_silhouette",
    "centroid_distances",
    "pc1_stats",
    "gap_report",
    "relative_modality_gap",
    "linear_separability",
    "gap_dimension_shares",
    "drop_gap_dimensions",
    "center_modalities",
    "gap_direction",
    "shift_along_gap",
    "extended_gap_report",
    "retrieval_recall",
    "chance_recall",
    "nway_recall",
    "nway_retrieval",
    "neighbourhood_preservation",
    "ranked_relevance",
    "precision_at_k",
    "average_precision_at_k",
    "mean_average_precision",
    "label_relevance",
    "category_retrieval",
    "expected_nway_recall",
    "expected_nway_retrieval",
    "batch_metrics",
]
