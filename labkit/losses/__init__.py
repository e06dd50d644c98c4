"""labkit.losses: every loss term is an ``nn.Module`` called as ``term(features) -> loss | (loss, logs)``
(the :class:`Features` seam), and an :class:`Objective` sums weighted terms; the training loop only sees the
Objective.

    contrastive      Features, ``clip_loss`` / ClipLoss (seed 000 eq. 1–3, InfoNCE), Objective, gathering across
                     processes (done once, in the Objective)
    modality         the gradient reversal layer, the modality classifier and its loss term, ``grl_objective``
                     (seed 000 eq. 5)
    infonce          InfoNCE with a temperature and swappable negatives (seed 003 eq. 1; the samplers live in
                     :mod:`labkit.negatives`)
    metric_learning  the hinge family (triplet, angular, N-pairs, symmetric: seed 001 eq. 1–4), the text / image
                     neighbour terms (eq. 6–7), ``ours_objective`` (eq. 8), STRUC
    center           the center loss with Wen et al.'s centre update (seed 002 eq. 1) and its softmax partner
    intra_modal      contrast within one modality: seed 004 eq. 2 literally, and a multi-positive InfoNCE
    uniformity       alignment, uniformity and cross-uniformity on the sphere (Wang & Isola), added to CLIP's loss as
                     Fahim et al. do (``UniformityAlignmentLoss``, ``uniformity_alignment_objective``)
"""

from .center import CenterLoss, IdentitySoftmax, center_loss, center_objective, center_update
from .contrastive import ClipLoss, Features, Objective, clip_loss, gather_features
from .intra_modal import IntraModalLoss, eq2_literal, supcon_infonce
from .infonce import InfoNCE, info_nce, infonce_objective
from .metric_learning import (AngularNPSym, CrossModalLoss, ImageNeighbourLoss, StructureLoss, TextNeighbourLoss,
                              TripletNPSym, angular_hinge, baseline_objective, n_pairs, ours_objective,
                              triplet_hinge)
from .modality import (LAMBDA_MODES, PAPER_LAMBDAS, GradientReversal, ModalityClassifier, ModalityLoss,
                       grad_reverse, grl_objective, stack_modalities)
from .uniformity import (UniformityAlignmentLoss, alignment_loss, cross_uniformity_loss, uniformity_alignment_objective,
                         uniformity_loss)

__all__ = [
    "Features", "clip_loss", "ClipLoss", "Objective", "gather_features",
    "grad_reverse", "GradientReversal", "ModalityClassifier", "ModalityLoss", "stack_modalities", "grl_objective",
    "LAMBDA_MODES", "PAPER_LAMBDAS",
    "info_nce", "InfoNCE", "infonce_objective",
    "triplet_hinge", "angular_hinge", "n_pairs", "CrossModalLoss", "AngularNPSym", "TripletNPSym",
    "TextNeighbourLoss", "ImageNeighbourLoss", "StructureLoss", "baseline_objective", "ours_objective",
    "CenterLoss", "IdentitySoftmax", "center_loss", "center_objective", "center_update",
    "IntraModalLoss", "eq2_literal", "supcon_infonce",
    "alignment_loss", "uniformity_loss", "cross_uniformity_loss", "UniformityAlignmentLoss",
    "uniformity_alignment_objective",
]
