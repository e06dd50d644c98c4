r"""Metric-learning terms of seed 001 (Thomas & Kovashka, *Preserving Semantic Neighborhoods*, §3), as labkit loss
terms: each is an ``nn.Module`` called as ``term(features) -> (loss, logs)`` (the :mod:`labkit.losses` seam), so
:func:`labkit.train.fit` trains with them unchanged.

Notation (paper §3.1): ``x`` image embedding, ``y`` text embedding, both L2-normalised; a triplet
:math:`\mathcal{T} = (x^a_i, y^p_i, y^n_j)` with :math:`i \ne j`.

=================  =====================================================================================
eq. 1 (TRIP)       :math:`[\|x^a_i-y^p_i\|^2 - \|x^a_i-y^n_j\|^2 + m]_+`                   :func:`triplet_hinge`
eq. 2 (ANG)        :math:`[\|x^a_i-y^p_i\|^2 - 4\tan^2\!\alpha\,\|y^n_j-C_i\|^2]_+`,
                   :math:`C_i=(x^a_i+y^p_i)/2`                                              :func:`angular_hinge`
eq. 3 (NP)         :math:`\sum_{j\in\text{batch},\,j\ne i} \mathcal{L}(x^a_i, y^p_i, y^n_j)`  :func:`n_pairs`
eq. 4 (SYM)        :math:`\mathcal{L}^{NP}(\mathcal{T}) + \mathcal{L}^{NP}(\mathcal{T}_{sym})`,
                   :math:`\mathcal{T}_{sym}=(y^a_i, x^p_i, x^n_j)`                         :class:`CrossModalLoss`
eq. 6 (L_text)     :math:`\mathcal{L}(y^a_i, y^p_{i'}, y^n_j)`, :math:`\langle x_{i'},y_{i'}\rangle=\Psi(\Omega(y_i))`
                                                                                            :class:`TextNeighbourLoss`
eq. 7 (L_img)      :math:`\mathcal{L}(x^a_i, x^p_{i'}, x^n_j)`                             :class:`ImageNeighbourLoss`
eq. 8 (OURS)       :math:`\mathcal{L}^{NP+SYM} + \alpha\mathcal{L}^{NP}_{text} + \beta\mathcal{L}^{NP}_{img}`
                                                                                            :func:`ours_objective`
STRUC              Wang et al. 2016: :math:`[d(y_i, y_i^+) - d(y_i, y_j) + m]_+`             :class:`StructureLoss`
=================  =====================================================================================

Two different alphas. The *angle* :math:`\alpha` of the angular loss (eq. 2) is not given in the paper; we use
45° (``tan² = 1``; Wang et al. 2017 recommend 36°–55°). The *weights* :math:`\alpha, \beta` of eq. 8 are
0.2 / 0.3 with the angular loss and 0.3 / 0.1 with the triplet loss (§3.3). The triplet margin is not given
either; we use ``m = 0.2``.

Reduction: eq. 3 *sums* over the in-batch negatives of one anchor; the loss of a batch is the *mean* over
anchors of that sum (so it does not grow with the number of anchors, only with the number of negatives, as in
the paper).

Where the neighbour pair comes from. :math:`\Psi` (eq. 5) returns a *training pair* :math:`\langle x_{i'},
y_{i'}\rangle` that usually is not in the batch. The neighbour terms hold a
:class:`~labkit.neighbours.NeighbourPairs`: it owns the cached neighbour table, a reference to the
training dataset, the tokenizer and the model (not registered as a sub-module, so the objective's
``state_dict`` stays small and the optimiser sees each parameter once), samples one neighbour per batch row
(seeded), and encodes the sampled images and texts with gradients. L_text and L_img share one sampler, which
caches the encoded pair per batch: both terms see the same :math:`i'`, as eq. 8 requires, at the cost of one
extra forward pass. Nothing in :func:`labkit.train.fit` or the collator changes: the batch already carries
``index`` (dataset index) and ``caption`` (the caption drawn this step).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from .contrastive import Features, Objective

if TYPE_CHECKING:  # pragma: no cover
    from ..neighbours import NeighbourPairs

__all__ = [
    "triplet_hinge",
    "angular_hinge",
    "n_pairs",
    "CrossModalLoss",
    "TripletNPSym",
    "AngularNPSym",
    "TextNeighbourLoss",
    "ImageNeighbourLoss",
    "StructureLoss",
    "ours_objective",
    "baseline_objective",
    "OURS_WEIGHTS",
    "DEFAULT_ANGLE_DEG",
    "DEFAULT_MARGIN",
]

DEFAULT_ANGLE_DEG = 30.0
DEFAULT_MARGIN = 0.2
#: eq. 8 weights (alpha for L_text, beta for L_img), §3.3
OURS_WEIGHTS = {"angular": (0.2, 0.3), "triplet": (0.3, 0.1)}


def _sq(v: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean norm over the last axis, ``‖v‖²``."""
    return (v * v).sum(-1)


def triplet_hinge(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                  margin: float = DEFAULT_MARGIN) -> torch.Tensor:
    r"""Eq. 1, elementwise over broadcast rows: :math:`[\|a-p\|^2 - \|a-n\|^2 + m]_+`."""
    return torch.clamp(_sq(anchor - positive) - _sq(anchor - negative) + margin, min=0)


def angular_hinge(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                  angle_deg: float = DEFAULT_ANGLE_DEG) -> torch.Tensor:
    r"""Eq. 2, elementwise over broadcast rows: :math:`[\|a-p\|^2 - 4\tan^2\alpha\,\|n-C\|^2]_+`, :math:`C=(a+p)/2`."""
    tan2 = math.tan(math.radians(angle_deg)) ** 2
    centre = (anchor + positive) / 2
    return torch.clamp(_sq(anchor - positive) - 4.0 * tan2 * _sq(negative - centre), min=0)


def n_pairs(hinge, anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, **kw) -> torch.Tensor:
    r"""Eq. 3: per anchor ``i``, :math:`\sum_{j \ne i} \text{hinge}(a_i, p_i, n_j)`; returns the (N,) vector.

    ``negatives[j]`` is the negative offered by batch row ``j`` (the other modality's row for eq. 3–4, the same
    modality's row for eq. 6–7); row ``i``'s own is excluded.
    """
    if anchor.shape != positive.shape or anchor.shape != negatives.shape or anchor.ndim != 2:
        raise ValueError(f"anchor, positive and negatives must all be (N, D); got {tuple(anchor.shape)}, "
                         f"{tuple(positive.shape)}, {tuple(negatives.shape)}")
    values = hinge(anchor[:, None, :], positive[:, None, :], negatives[None, :, :], **kw)  # (N anchors, N negs)
    off_diagonal = ~torch.eye(len(anchor), dtype=torch.bool, device=anchor.device)
    return (values * off_diagonal).sum(1)


def _hinge_of(kind: str):
    if kind == "angular":
        return angular_hinge
    if kind == "triplet":
        return triplet_hinge
    raise ValueError(f"kind must be 'angular' or 'triplet', got {kind!r}")


class _HingeTerm(nn.Module):
    """Holds the hinge (angular or triplet) and its one hyper-parameter."""

    def __init__(self, kind: str = "angular", angle_deg: float = DEFAULT_ANGLE_DEG, margin: float = DEFAULT_MARGIN):
        super().__init__()
        self.kind = kind
        self.hinge = _hinge_of(kind)
        self.angle_deg = float(angle_deg)
        self.margin = float(margin)

    def _kw(self) -> dict:
        return {"angle_deg": self.angle_deg} if self.kind == "angular" else {"margin": self.margin}

    def np_loss(self, anchor, positive, negatives) -> torch.Tensor:
        """Eq. 3 averaged over anchors."""
        return n_pairs(self.hinge, anchor, positive, negatives, **self._kw()).mean()

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, " + ", ".join(f"{k}={v}" for k, v in self._kw().items())


class CrossModalLoss(_HingeTerm):
    r"""The cross-modal baseline ``ANG+NP+SYM`` / ``TRIP+NP+SYM`` (eq. 1–4).

    :math:`\mathcal{L}^{NP}(\mathcal{T})` with image anchors, paired text positives and every other in-batch
    text as negative, plus (``symmetric=True``, eq. 4) the same with the roles of images and texts swapped.
    """

    def __init__(self, kind: str = "angular", symmetric: bool = True, **kw):
        super().__init__(kind, **kw)
        self.symmetric = bool(symmetric)

    def forward(self, features: Features):
        x, y = features.image, features.text
        i2t = self.np_loss(x, y, y)  # T = (x_i^a, y_i^p, y_j^n), eq. 3
        loss = i2t
        logs = {"i2t": float(i2t.detach())}
        if self.symmetric:
            t2i = self.np_loss(y, x, x)  # T_sym = (y_i^a, x_i^p, x_j^n), eq. 4
            loss = i2t + t2i
            logs["t2i"] = float(t2i.detach())
        return loss, logs


def AngularNPSym(**kw) -> CrossModalLoss:
    """``ANG+NP+SYM``: eq. 2 + 3 + 4."""
    return CrossModalLoss("angular", symmetric=True, **kw)


def TripletNPSym(**kw) -> CrossModalLoss:
    """``TRIP+NP+SYM``: eq. 1 + 3 + 4."""
    return CrossModalLoss("triplet", symmetric=True, **kw)


class TextNeighbourLoss(_HingeTerm):
    r"""Eq. 6 with N-pairs: anchor :math:`y_i`, positive :math:`y_{i'}` from :math:`\Psi`, negatives the other
    in-batch texts :math:`y_j`, :math:`j \ne i`."""

    def __init__(self, pairs: "NeighbourPairs", kind: str = "angular", **kw):
        super().__init__(kind, **kw)
        self.pairs = pairs

    def forward(self, features: Features):
        _, y_pos = self.pairs.encode(features)
        loss = self.np_loss(features.text, y_pos, features.text)
        return loss, {"pos_cos": float((features.text * y_pos).sum(1).mean().detach())}


class ImageNeighbourLoss(_HingeTerm):
    r"""Eq. 7 with N-pairs: anchor :math:`x_i`, positive :math:`x_{i'}` (the image paired with the text
    neighbour), negatives the other in-batch images :math:`x_j`, :math:`j \ne i`."""

    def __init__(self, pairs: "NeighbourPairs", kind: str = "angular", **kw):
        super().__init__(kind, **kw)
        self.pairs = pairs

    def forward(self, features: Features):
        x_pos, _ = self.pairs.encode(features)
        loss = self.np_loss(features.image, x_pos, features.image)
        return loss, {"pos_cos": float((features.image * x_pos).sum(1).mean().detach())}


class StructureLoss(nn.Module):
    r"""STRUC, the structure-preserving constraint of Wang et al. (2016), in N-pairs form:

    .. math:: \sum_{j \ne i} [\, d(s_i, s_i^+) - d(s_i, s_j) + m \,]_+ ,\qquad d(u, v) = \|u - v\|_2

    ``modality="text"``: :math:`s_i = y_i`, :math:`s_i^+` a text in :math:`y_i`'s neighbourhood — another caption
    of the *same image* (``pairs`` a :class:`~labkit.neighbours.SameImageCaptions`, "GT") or the text of
    :math:`\Psi(y_i)` (a :class:`~labkit.neighbours.NeighbourPairs`, "NN_Ω"); :math:`s_j` the other
    in-batch texts. ``modality="image"``: the same on images with :math:`x_{i'}` from :math:`\Psi`
    (Table 2's "STRUC (NN_Ω, Img)"). Wang et al. use the Euclidean (not squared) distance; so do we.
    """

    def __init__(self, pairs, modality: str = "text", margin: float = 0.1):
        super().__init__()
        if modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")
        self.pairs, self.modality, self.margin = pairs, modality, float(margin)

    @staticmethod
    def hinge(anchor, positive, negative, margin):
        """:math:`[\\|a-p\\| - \\|a-n\\| + m]_+`, elementwise over broadcast rows."""
        return torch.clamp(_dist(anchor, positive) - _dist(anchor, negative) + margin, min=0)

    def forward(self, features: Features):
        x_pos, y_pos = self.pairs.encode(features)
        anchor, positive = (features.text, y_pos) if self.modality == "text" else (features.image, x_pos)
        loss = n_pairs(self.hinge, anchor, positive, anchor, margin=self.margin).mean()
        return loss, {}


def _dist(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Euclidean distance with a gradient that stays finite at zero distance."""
    return torch.sqrt(_sq(u - v) + 1e-12)


def baseline_objective(kind: str = "angular", **kw) -> Objective:
    """``ANG+NP+SYM`` (``kind="angular"``) or ``TRIP+NP+SYM`` (``kind="triplet"``) as an Objective."""
    return Objective({"cross": (CrossModalLoss(kind, symmetric=True, **kw), 1.0)})


def ours_objective(pairs: "NeighbourPairs", kind: str = "angular", alpha: float | None = None,
                   beta: float | None = None, text: bool = True, image: bool = True, **kw) -> Objective:
    r"""Eq. 8: :math:`\mathcal{L}^{NP+SYM} + \alpha\,\mathcal{L}^{NP}_{text} + \beta\,\mathcal{L}^{NP}_{img}`.

    ``alpha``/``beta`` default to §3.3's values for ``kind``; ``text=False`` / ``image=False`` drop a term
    (Table 4's ablations). The within-modality terms use the same hinge as the cross-modal one.
    """
    a0, b0 = OURS_WEIGHTS[kind]
    alpha = a0 if alpha is None else float(alpha)
    beta = b0 if beta is None else float(beta)
    terms: dict = {"cross": (CrossModalLoss(kind, symmetric=True, **kw), 1.0)}
    if text:
        terms["text"] = (TextNeighbourLoss(pairs, kind, **kw), alpha)
    if image:
        terms["img"] = (ImageNeighbourLoss(pairs, kind, **kw), beta)
    return Objective(terms)
