r"""Contrast within one modality (seed 004 §3.1–3.2, eq. 1–4): texts (or images) of the same semantics are
positives, everything else in the batch is a negative — or, in eq. 2 as printed, nothing is.

**Eq. 2 / eq. 4, literally.** With :math:`F_i` the encoder's features of the *i*-th item of a positive set,

.. math::
    L = \sum_i \big|\, \lVert F_i - F_{i+1} \rVert_2 + F_i \cdot F_{i+1} \,\big| . \qquad (2)

:func:`eq2_literal` computes exactly that over consecutive members of each positive set (items sharing a label,
in batch order). What it does (derived in its docstring, tested): on unit vectors with cosine :math:`c`,
:math:`\lVert F_i - F_{i+1}\rVert = \sqrt{2-2c}`, so each term is :math:`\sqrt{2-2c} + c \in [1, 1.5]`; the absolute
value never acts; the minimum, 1, is reached at :math:`c = 1` (identical) **and** at :math:`c = -1` (opposite):
the loss pushes a positive pair toward whichever end is nearer (the maximum is at :math:`c = 1/2`). There is no
negative term, so nothing keeps different semantics apart: mapping every input to one point gives the minimum.
On unnormalised features the printed loss is minimised (0) by the zero vector. It is implemented to be
compared, not recommended.

**The standard alternative**: a multi-positive InfoNCE (supervised contrastive loss, Khosla et al. 2020,
"L_out"), :func:`supcon_infonce`: for each anchor *a* with positives :math:`P(a)` (same label, not itself) among
the batch :math:`A(a)` (everything but itself),

.. math::
    \mathcal{L} = \frac{1}{|\mathcal{A}|}\sum_{a} \frac{-1}{|P(a)|} \sum_{p \in P(a)}
        \log \frac{\exp(F_a\cdot F_p / \tau)}{\sum_{b \in A(a)} \exp(F_a \cdot F_b / \tau)} ,

over anchors that have at least one positive. It pulls positives together *and* pushes the rest apart, so it
cannot collapse.

:class:`IntraModalLoss` is the loss term (the :class:`~labkit.losses.Features` seam): it reads one modality's rows
(``features.text`` — caption groups give ``k`` rows per item — or ``features.image``) and labels from the batch
(``"pair_id"``: captions of the same image; ``"topic"``: same topic).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data.groups import group_size
from .contrastive import Features

__all__ = ["eq2_literal", "eq2_pair_term", "supcon_infonce", "IntraModalLoss", "KINDS", "MODALITIES", "POSITIVES"]

KINDS = ("infonce", "eq2")
MODALITIES = ("text", "image")
POSITIVES = ("pair_id", "topic")


def eq2_pair_term(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|‖a − b‖₂ + a·b|`` row by row: one term of eq. 2 (eq. 4 for images)."""
    return ((a - b).norm(dim=-1) + (a * b).sum(-1)).abs()


def _consecutive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j) of consecutive members of each positive set: items sharing a label, in batch order."""
    order = torch.argsort(labels, stable=True)
    same = labels[order[1:]] == labels[order[:-1]]
    return order[:-1][same], order[1:][same]


def eq2_literal(emb: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Seed 004 eq. 2 as printed: ``Σ_i |‖F_i − F_{i+1}‖ + F_i·F_{i+1}|`` over consecutive members of each
    positive set (``reduction="sum"``; ``"mean"`` divides by the number of pairs). Raises if no label repeats."""
    i, j = _consecutive_pairs(labels)
    if len(i) == 0:
        raise ValueError("eq2_literal: no two items share a label, so there is no positive pair in the batch")
    terms = eq2_pair_term(emb[i], emb[j])
    return terms.sum() if reduction == "sum" else terms.mean()


def supcon_infonce(emb: torch.Tensor, labels: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Multi-positive InfoNCE (SupCon L_out) on L2-normalised rows ``emb`` with ``logit_scale = 1/τ``; anchors
    without a positive in the batch are left out. Raises if no anchor has a positive."""
    n = len(emb)
    logits = logit_scale * emb @ emb.T
    self_mask = torch.eye(n, dtype=torch.bool, device=emb.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # A(a): everything but the anchor itself
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positive.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        raise ValueError("supcon_infonce: no item has a positive (same label) in the batch")
    per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(1)[has]) / n_pos[has]
    return per_anchor.mean()


class IntraModalLoss(nn.Module):
    """Contrast within one modality, as a loss term.

    Args:
        modality: ``"text"`` (reads ``features.text``; caption groups give ``k`` rows per batch item, item-major)
            or ``"image"`` (reads ``features.image``).
        positives: the batch key whose equal values make positives: ``"pair_id"`` (captions of the same image)
            or ``"topic"`` (same topic: seed 004's "same type").
        kind: ``"infonce"`` (:func:`supcon_infonce`, temperature from ``features.logit_scale``) or ``"eq2"``
            (:func:`eq2_literal`).
    """

    def __init__(self, modality: str = "text", positives: str = "pair_id", kind: str = "infonce"):
        super().__init__()
        for name, value, allowed in (("modality", modality, MODALITIES), ("positives", positives, POSITIVES),
                                     ("kind", kind, KINDS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.modality, self.positives, self.kind = modality, positives, kind

    def forward(self, features: Features):
        emb = features.text if self.modality == "text" else features.image
        labels = features.batch[self.positives].to(emb.device)
        k = group_size(len(emb), len(labels))
        labels = labels.repeat_interleave(k)
        if self.kind == "eq2":
            loss = eq2_literal(emb, labels)
        else:
            loss = supcon_infonce(emb, labels, features.logit_scale)
        with torch.no_grad():
            sims = emb @ emb.T
            sims.fill_diagonal_(float("-inf"))
            nearest_same = (labels[sims.argmax(1)] == labels).float().mean()
            off = ~torch.eye(len(emb), dtype=torch.bool, device=emb.device)
            logs = {"nearest_is_positive": float(nearest_same), "mean_cosine": float(sims[off].mean())}
        return loss, logs
