r"""Alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020), added to CLIP's loss as Fahim et al. do
(*It's Not a Modality Gap: Characterizing and Addressing the Contrastive Gap*, 2024).

For L2-normalised embeddings :math:`x_i` (images) and :math:`y_i` (their texts) of a batch of N pairs:

.. math::
    \mathcal{L}_{\text{align}} = \frac1N\sum_i \lVert x_i - y_i\rVert_2^{\alpha} \qquad (\alpha = 2)

.. math::
    \mathcal{L}_{\text{uniform}}(x) = \log \frac{2}{N(N-1)}\sum_{i<j} e^{-t\lVert x_i - x_j\rVert_2^2} \qquad (t = 2)

.. math::
    \mathcal{L}_{\text{xuniform}}(x, y) = \log \frac{1}{N(N-1)}\sum_{i\ne j} e^{-t\lVert x_i - y_j\rVert_2^2}

Fahim et al. train with :math:`\mathcal{L}_{CUA} = \mathcal{L}_{CLIP} + \mathcal{L}_{\text{uniform}} +
\mathcal{L}_{\text{align}}` (the in-modality uniformity is the mean of the image and the text term) and
:math:`\mathcal{L}_{CUAXU} = \mathcal{L}_{CUA} + \mathcal{L}_{\text{xuniform}}`, every weight 1. Alignment pulls each
pair together; uniformity spreads each modality over the sphere (a narrow cone per modality is what makes a gap
possible); cross-uniformity spreads the non-matching image–text pairs, so the two modalities share the space.

:class:`UniformityAlignmentLoss` is the added part as one loss term for the :class:`~labkit.losses.Objective` seam:

    Objective({"contrastive": ClipLoss(), "uniformity_alignment": UniformityAlignmentLoss()})   # L_CUAXU
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .contrastive import ClipLoss, Features, Objective

__all__ = ["alignment_loss", "uniformity_loss", "cross_uniformity_loss", "UniformityAlignmentLoss",
           "uniformity_alignment_objective"]


def _check(x: torch.Tensor, name: str) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {tuple(x.shape)}")


def alignment_loss(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    r""":math:`\frac1N\sum_i \lVert x_i - y_i\rVert_2^\alpha` over row-aligned pairs (Wang & Isola eq. 4)."""
    _check(x, "x"), _check(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must be row-aligned pairs of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return (x - y).norm(dim=1).pow(alpha).mean()


def _log_mean_exp(values: torch.Tensor) -> torch.Tensor:
    """log(mean(exp(values))), computed stably."""
    return torch.logsumexp(values, dim=0) - math.log(values.numel())


def uniformity_loss(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    r""":math:`\log` of the mean Gaussian potential :math:`e^{-t\lVert x_i - x_j\rVert^2}` over pairs
    :math:`i < j` of one modality (Wang & Isola eq. 5). Needs N >= 2."""
    _check(x, "x")
    if x.shape[0] < 2:
        raise ValueError(f"uniformity needs at least 2 rows, got {x.shape[0]}")
    return _log_mean_exp(torch.pdist(x, p=2).pow(2).mul(-t))


def cross_uniformity_loss(x: torch.Tensor, y: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    r"""The same potential over the non-matching cross-modal pairs :math:`(x_i, y_j), i \ne j`
    (Fahim et al.'s cross-uniformity). Needs N >= 2 row-aligned pairs."""
    _check(x, "x"), _check(y, "y")
    if x.shape != y.shape or x.shape[0] < 2:
        raise ValueError(f"x and y must be >= 2 row-aligned pairs of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    d2 = torch.cdist(x, y, p=2).pow(2)
    off = ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return _log_mean_exp(d2[off].mul(-t))


class UniformityAlignmentLoss(nn.Module):
    r"""Fahim et al.'s additions to the CLIP loss as one term:
    ``w_align · L_align + w_uniform · ½(L_uniform(x) + L_uniform(y)) + w_xuniform · L_xuniform``.

    Defaults give :math:`\mathcal{L}_{CUAXU} - \mathcal{L}_{CLIP}` (every weight 1); ``xuniform=0`` gives
    :math:`\mathcal{L}_{CUA} - \mathcal{L}_{CLIP}`. Logs each part unweighted.
    """

    def __init__(self, align: float = 1.0, uniform: float = 1.0, xuniform: float = 1.0, t: float = 2.0,
                 alpha: float = 2.0):
        super().__init__()
        for name, v in (("align", align), ("uniform", uniform), ("xuniform", xuniform)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite weight >= 0, got {v!r}")
        if not (t > 0 and alpha > 0):
            raise ValueError(f"t and alpha must be > 0, got t={t!r}, alpha={alpha!r}")
        self.w = {"align": float(align), "uniform": float(uniform), "xuniform": float(xuniform)}
        self.t, self.alpha = float(t), float(alpha)

    def forward(self, features: Features) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = features.image, features.text
        parts = {
            "align": alignment_loss(x, y, self.alpha),
            "uniform": 0.5 * (uniformity_loss(x, self.t) + uniformity_loss(y, self.t)),
            "xuniform": cross_uniformity_loss(x, y, self.t),
        }
        total = sum(self.w[k] * v for k, v in parts.items() if self.w[k] != 0.0)
        if not torch.is_tensor(total):  # every weight 0
            total = x.new_zeros(())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.w.items()) + f", t={self.t:g}"


def uniformity_alignment_objective(align: float = 1.0, uniform: float = 1.0, xuniform: float = 1.0) -> Objective:
    """``L_CLIP + L_align + L_uniform (+ L_xuniform)`` as an :class:`~labkit.losses.Objective` (Fahim et al.'s
    CUAXU with the defaults, CUA with ``xuniform=0``)."""
    return Objective({"contrastive": ClipLoss(),
                      "uniformity_alignment": UniformityAlignmentLoss(align, uniform, xuniform)})
