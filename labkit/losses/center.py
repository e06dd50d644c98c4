r"""The center loss (seed 002 eq. 1; Wen et al., ECCV 2016) and the softmax it is trained with.

.. math::
    \mathcal{L}_C = \tfrac12 \sum_{i=1}^{m} \lVert x_i - c_{y_i} \rVert_2^2 \qquad (1)

with one centre :math:`c_j` per class; in seed 002 a class is an image *and its captions* (a pair id), so the
image's embedding and its five encoded captions' embeddings are pulled to one shared centre.

**How the centres learn** (Wen et al. §3.2, Algorithm 1). The centres are not trained by the optimiser: after each
step every centre seen in the mini-batch moves toward the mean of its features,

.. math::
    \Delta c_j = \frac{\sum_{i=1}^m \delta(y_i = j)\,(c_j - x_i)}{1 + \sum_{i=1}^m \delta(y_i = j)},
    \qquad c_j \leftarrow c_j - \alpha\,\Delta c_j,

with its own rate :math:`\alpha \in [0, 1]` (Wen: 0.5), and centres of classes absent from the batch stay put. The
``1 +`` in the denominator damps classes with few samples in the batch. :class:`CenterLoss` implements this in
``end_step`` (the Objective's hook after each optimiser step) from the features of the step's forward pass —
exactly Algorithm 1, where the centre update uses the step-*t* features. Gradient descent on the centres would not
be the same rule: its step is proportional to the *number* of samples of the class (no ``1 +`` normalisation) and,
under Adam, rescaled per coordinate; hence a buffer and ``end_step`` rather than a parameter with ``lr_scale``.
The features receive :math:`\partial\mathcal{L}_C/\partial x_i = x_i - c_{y_i}` (centres are constants in the
graph).

**Why a softmax too.** The center loss alone is minimised by collapsing every feature and every centre onto one
point (loss 0) — Wen et al. train it jointly with the softmax loss, :math:`\mathcal{L} = \mathcal{L}_S +
\lambda\mathcal{L}_C`, and so does facenet's ``train_softmax`` (the InceptionResNet-V1 + center-loss code seed 002
builds on; the seed itself names only the center loss). Two forms of :math:`\mathcal{L}_S` over pair ids:
:class:`IdentitySoftmax`, Wen's classifier over every training id (a cosine classifier with a fixed scale, as
labkit's embeddings are L2-normalised), and :class:`BatchIdentitySoftmax` (the default), the same identities
classified within the batch. With one class per training image, the first sees each class once per epoch and
stays on the uniform-prediction plateau for the few epochs a CPU profile affords; the second learns from the
first step. :func:`center_objective` builds the pair.

Reduction: eq. 1 sums over the batch; here ``reduction="mean"`` (default) divides by the number of rows, so λ does
not have to change with the batch size (``"sum"`` is eq. 1 as printed). Under data parallelism the Objective gathers
features from every process before the terms see them, so every process applies the same centre update.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.groups import group_size
from .contrastive import Features, Objective
from .intra_modal import supcon_infonce

__all__ = ["center_loss", "CenterLoss", "BatchIdentitySoftmax", "IdentitySoftmax", "center_objective", "stack_groups", "center_update",
           "SOFTMAX_KINDS"]


def stack_groups(features: Features, pair_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All rows of a batch and their pair ids: the images, then their captions (``k`` per image, item-major, as
    a batch of :class:`~labkit.data.groups.CaptionGroups` gives; ``k = 1`` for plain pairs)."""
    n = len(features.image)
    k = group_size(len(features.text), n)
    x = torch.cat([features.image, features.text])
    y = torch.cat([pair_ids, pair_ids.repeat_interleave(k)])
    return x, y


def center_loss(x: torch.Tensor, y: torch.Tensor, centers: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 1: ``½ Σ_i ‖x_i − c_{y_i}‖²`` over the rows of ``x`` (``y``: each row's centre index); ``"mean"``
    divides by the number of rows, ``"sum"`` is eq. 1 as printed."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    per_row = 0.5 * (x - centers[y]).pow(2).sum(1)
    return per_row.mean() if reduction == "mean" else per_row.sum()


@torch.no_grad()
def center_update(centers: torch.Tensor, x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Wen et al.'s rule, in place: ``c_j -= α Σ_{y_i=j}(c_j − x_i) / (1 + n_j)`` for every class ``j`` in ``y``."""
    classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(classes), x.shape[1], dtype=centers.dtype, device=centers.device)
    sums.index_add_(0, inverse, x.to(centers.dtype))
    c = centers[classes]
    delta = (counts[:, None] * c - sums) / (1.0 + counts[:, None])
    centers[classes] = c - alpha * delta
    return centers


class _ClassIndex(nn.Module):
    """Pair ids → class rows 0..C-1 (the training set's ids, sorted); unknown ids are an error."""

    def __init__(self, class_ids: Sequence[int]):
        super().__init__()
        ids = np.unique(np.asarray(class_ids, dtype=np.int64))
        if len(ids) == 0:
            raise ValueError("class_ids is empty: give the pair ids of the training set")
        self.register_buffer("ids", torch.from_numpy(ids), persistent=True)

    @property
    def n_classes(self) -> int:
        return len(self.ids)

    def classes(self, pair_ids: torch.Tensor) -> torch.Tensor:
        pair_ids = pair_ids.to(self.ids.device)
        pos = torch.searchsorted(self.ids, pair_ids).clamp(max=len(self.ids) - 1)
        if not bool((self.ids[pos] == pair_ids).all()):
            bad = pair_ids[self.ids[pos] != pair_ids][0].item()
            raise ValueError(f"pair id {bad} has no centre (not among the {len(self.ids)} training ids)")
        return pos


class CenterLoss(_ClassIndex):
    """Eq. 1 as a loss term: one centre per training pair id, updated by Wen et al.'s rule in ``end_step``.

    Args:
        class_ids: the training set's pair ids (one centre each).
        dim: embedding width.
        alpha: the centres' own rate α (Wen et al.: 0.5).
        reduction: ``"mean"`` over rows (default) or ``"sum"`` (eq. 1 as printed).
        init: ``"random"`` (unit vectors in random directions, default: Wen et al.'s released model fills its
            centres with a Xavier filler) or ``"zeros"`` (facenet's choice).
    """

    def __init__(self, class_ids: Sequence[int], dim: int, alpha: float = 0.5, reduction: str = "mean",
                 init: str = "random", seed: int | None = None):
        super().__init__(class_ids)
        if init not in ("random", "zeros"):
            raise ValueError(f"init must be 'random' or 'zeros', got {init!r}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.alpha, self.reduction = float(alpha), reduction
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            centers = F.normalize(torch.randn(self.n_classes, int(dim)), dim=1) if init == "random" else \
                torch.zeros(self.n_classes, int(dim))
        self.register_buffer("centers", centers)  # a buffer: saved in the checkpoint, never seen by the optimiser
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, features: Features):
        x, y = stack_groups(features, features.batch["pair_id"])
        y = self.classes(y)
        c = self.centers[y]
        loss = center_loss(x, y, self.centers, self.reduction)
        if self.training:
            self._pending = (x.detach(), y)
        with torch.no_grad():
            n = len(features.image)
            logs = {"image_to_centre": float((features.image - c[:n]).norm(dim=1).mean()),
                    "text_to_centre": float((features.text - c[n:]).norm(dim=1).mean())}
        return loss, logs

    def end_step(self, model: nn.Module | None = None) -> None:
        """Move the centres seen in the last forward pass (Wen et al., Algorithm 1, line 6)."""
        if self._pending is None:
            return
        x, y = self._pending
        center_update(self.centers, x, y, self.alpha)
        self._pending = None


class IdentitySoftmax(_ClassIndex):
    r"""Softmax over the training pair ids (Wen et al.'s :math:`\mathcal{L}_S`), as a cosine classifier:
    ``logits = s · x̂ Ŵᵀ`` on unit rows, ``s`` fixed (``scale``), over the image and caption rows alike."""

    def __init__(self, class_ids: Sequence[int], dim: int, scale: float = 16.0, seed: int | None = None):
        super().__init__(class_ids)
        self.scale = float(scale)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.weight = nn.Parameter(F.normalize(torch.randn(self.n_classes, int(dim)), dim=1))

    def forward(self, features: Features):
        x, y = stack_groups(features, features.batch["pair_id"])
        y = self.classes(y)
        logits = self.scale * F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).T
        loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            acc = float((logits.argmax(1) == y).float().mean())
        return loss, {"accuracy": acc}


class BatchIdentitySoftmax(nn.Module):
    r"""The softmax over identities, computed within the batch: every row (an image or one of its encoded captions)
    is classified among the other rows of the batch, the rows with its pair id being the right answers — the
    multi-positive InfoNCE of :func:`~labkit.losses.intra_modal.supcon_infonce` with pair ids as labels, at a fixed
    temperature τ. Its "class weights" are the current features of the batch, so it is informative from the first
    step; a classifier over all training ids (:class:`IdentitySoftmax`) sees each class once per epoch and does not
    leave the uniform-prediction plateau within the CPU profiles' budget (measured: the features collapse)."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        if not 0.0 < float(temperature) <= 1.0:
            raise ValueError(f"temperature must be in (0, 1], got {temperature!r}")
        self.temperature = float(temperature)

    def forward(self, features: Features):
        x, y = stack_groups(features, features.batch["pair_id"])
        loss = supcon_infonce(x, y, 1.0 / self.temperature)
        with torch.no_grad():
            sims = x @ x.T
            sims.fill_diagonal_(float("-inf"))
            acc = float((y[sims.argmax(1)] == y).float().mean())
        return loss, {"nearest_is_same_id": acc}


SOFTMAX_KINDS = ("batch", "parametric", "none")


def center_objective(class_ids: Sequence[int], dim: int, lambda_c: float = 1.0, alpha: float = 0.5,
                     softmax: str = "batch", temperature: float = 0.1, scale: float = 16.0,
                     seed: int | None = None) -> Objective:
    """Joint supervision ``L = L_S + λ L_C`` over pair ids (Wen et al.).

    ``softmax``: ``"batch"`` (default; :class:`BatchIdentitySoftmax`, the identities of the batch),
    ``"parametric"`` (:class:`IdentitySoftmax`, Wen's learned classifier over every training id; it learns each of
    thousands of instance classes from a handful of visits, too slowly for the CPU profiles), ``"none"`` (the
    center loss alone, which collapses — kept for the ablation that shows it).
    """
    if softmax not in SOFTMAX_KINDS:
        raise ValueError(f"softmax must be one of {SOFTMAX_KINDS}, got {softmax!r}")
    center = CenterLoss(class_ids, dim, alpha=alpha, seed=seed)
    terms: dict = {}
    if softmax == "batch":
        terms["softmax"] = BatchIdentitySoftmax(temperature)
    elif softmax == "parametric":
        terms["softmax"] = IdentitySoftmax(class_ids, dim, scale=scale, seed=seed)
    terms["center"] = (center, float(lambda_c))
    return Objective(terms)
