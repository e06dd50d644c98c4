r"""Contrastive losses and the seam that extra loss terms plug into.

The contrastive objective of CLIP (seed 000, eq. 1–3): for a batch of N pairs with L2-normalised embeddings
:math:`e^A_n, e^B_n` and a learned temperature :math:`\tau`,

.. math::
    \mathcal{L}_{A\to B} = -\frac{1}{N}\sum_n \log\frac{\exp(e^A_n\cdot e^B_n/\tau)}
                                                  {\sum_{\tilde n}\exp(e^A_n\cdot e^B_{\tilde n}/\tau)},
    \qquad
    \mathcal{L}_{\text{Contrastive}} = \tfrac12\mathcal{L}_{A\to B} + \tfrac12\mathcal{L}_{B\to A}.

open_clip parameterises the temperature as ``logit_scale = exp(t) = 1/τ``; so does labkit.

**The seam.** Every loss term is a small ``nn.Module`` with one call signature,
``term(features: Features) -> Tensor | (Tensor, dict[str, float])``: it receives the batch's embeddings (and
whatever else the batch carries: topics, saliency, pair ids) and returns a scalar (and optional numbers to log).
:class:`Objective` sums weighted terms, ``L = Σ_k w_k L_k`` — seed 000's ``L = L_contrastive + λ·L_modality``
(eq. 5) is ``Objective({"contrastive": (ClipLoss(), 1.0), "modality": (ModalityLoss(...), λ)})``. The training
loop only ever sees an :class:`Objective`, so adding a term (a GRL modality classifier, within-modality
neighbourhood losses, a queue of negatives) never touches the loop. Terms with parameters (a classifier) or
state (a queue) are modules, so the optimiser and the checkpoint pick them up through ``objective.parameters()``
and ``objective.state_dict()``.

**Distributed training.** Gathering embeddings across processes is done once, here, by :func:`gather_features`
(identity in a single process), before the terms see the batch — as open_clip does in its loss. The terms see the
embeddings of the *global* batch (every process's rows, in rank order, with gradients flowing back to their owners);
``features.local_rows`` says which rows this process computed, and ``features.batch`` holds only those rows' fields.
Each process's loss is then a function of the global batch; since DistributedDataParallel averages the gradients
over processes and the all-gather's backward sums them, the update is exactly that of one process on the global
batch. ``ClipLoss(local_loss=True)`` is open_clip's ``local_loss``: each process scores only its own rows against
all gathered columns (labels offset by its first row), which costs N·W instead of (N·W)² logits per process and
gives the same gradient (the loss logged is the mean over processes, which equals the global loss).
A term that keeps state across steps (the MoCo queue) gathers what it stores *without* gradients — the keys and the
pair ids of the global batch — so that every process holds the same queue (see :mod:`labkit.train`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Features", "clip_loss", "ClipLoss", "Objective", "gather_features"]


@dataclass
class Features:
    """What a loss term sees for one batch.

    ``image`` and ``text`` are L2-normalised embeddings (N, D) with row n of each forming a pair (``image`` holds the
    first modality, whichever it is: images, or audio clips for an audio–text model);
    ``logit_scale`` is ``1/τ`` (already exponentiated); ``batch`` holds the rest of the batch
    (e.g. ``topic``, ``saliency``, ``pair_id``, ``index``), already on the right device.
    ``local_rows``: under torchrun, ``image``/``text`` are the global batch gathered from every process and
    ``local_rows`` the slice of them this process computed (the rows ``batch`` describes); ``None`` in one process,
    where every row is local.
    """

    image: torch.Tensor
    text: torch.Tensor
    logit_scale: torch.Tensor
    batch: Mapping[str, Any] = field(default_factory=dict)
    local_rows: slice | None = None


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    r"""Symmetric InfoNCE, seed 000 eq. 1–3: ``½ CE(s·I Tᵀ, diag) + ½ CE(s·T Iᵀ, diag)`` with ``s = 1/τ``.

    Numerically identical to ``open_clip.loss.ClipLoss()(image_emb, text_emb, logit_scale)`` in one process.
    Embeddings are used as given (normalise them first, as the model's ``encode_*(normalize=True)`` does).
    """
    if image_emb.ndim != 2 or text_emb.shape != image_emb.shape:
        raise ValueError(
            f"image_emb and text_emb must both be (N, D) and equal in shape; got {tuple(image_emb.shape)} "
            f"and {tuple(text_emb.shape)}"
        )
    logits_per_image = logit_scale * image_emb @ text_emb.T  # row n: image n against every text (eq. 2)
    logits_per_text = logit_scale * text_emb @ image_emb.T  # row n: text n against every image (eq. 3)
    targets = torch.arange(image_emb.shape[0], device=image_emb.device)
    return 0.5 * (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets))


class ClipLoss(nn.Module):
    """The CLIP contrastive term (eq. 1–3) as a loss term; logs the in-batch accuracy of both directions.

    Args:
        local_loss: open_clip's option for multi-process training: each process computes the loss of its own rows
            (``features.local_rows``) against all gathered columns, targets offset by its first row, instead of the
            whole global (N·W)² matrix. Same gradient, less compute; identical to the default in one process.
    """

    def __init__(self, local_loss: bool = False):
        super().__init__()
        self.local_loss = bool(local_loss)

    def forward(self, features: Features):
        rows = features.local_rows
        if self.local_loss and rows is not None and rows.stop - rows.start != features.image.shape[0]:
            return self._local(features, rows)
        loss = clip_loss(features.image, features.text, features.logit_scale)
        with torch.no_grad():
            sims = features.image @ features.text.T
            targets = torch.arange(sims.shape[0], device=sims.device)
            logs = {
                "batch_acc_i2t": (sims.argmax(1) == targets).float().mean().item(),
                "batch_acc_t2i": (sims.argmax(0) == targets).float().mean().item(),
            }
        return loss, logs

    @staticmethod
    def _local(features: Features, rows: slice):
        """open_clip's ``local_loss``: this process's rows against every gathered column (eq. 2 and 3 row-wise)."""
        s = features.logit_scale
        logits_per_image = s * features.image[rows] @ features.text.T
        logits_per_text = s * features.text[rows] @ features.image.T
        targets = torch.arange(rows.start, rows.stop, device=features.image.device)
        loss = 0.5 * (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets))
        with torch.no_grad():
            logs = {
                "batch_acc_i2t": (logits_per_image.argmax(1) == targets).float().mean().item(),
                "batch_acc_t2i": (logits_per_text.argmax(1) == targets).float().mean().item(),
            }
        return loss, logs


class _AllGather(torch.autograd.Function):
    """All-gather along dim 0 in rank order; backward: this process's slice of the gradient summed over processes
    (every process's loss depends on every row, so each row's owner collects all of their gradients)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rows = slice(dist.get_rank() * x.shape[0], (dist.get_rank() + 1) * x.shape[0])
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        if dist.get_backend() == "nccl":  # a reduce-scatter moves 1/W of the data an all-reduce does
            out = grad.new_empty((ctx.rows.stop - ctx.rows.start, *grad.shape[1:]))
            dist.reduce_scatter_tensor(out, grad)
            return out
        grad = grad.clone()
        dist.all_reduce(grad)  # gloo has no reduce-scatter
        return grad[ctx.rows]


def gather_features(image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All-gather embeddings across processes (rank order) with gradients flowing back to each row's owner.

    Identity when torch.distributed is not initialised (the single-process case, CPU or one GPU). Every process
    must pass the same number of rows (labkit's sampler gives each an equal block of the global batch).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return image, text
    return _AllGather.apply(image), _AllGather.apply(text)


class Objective(nn.Module):
    """A weighted sum of loss terms, ``L = Σ_k w_k · L_k`` (seed 000 eq. 5 when the terms are CLIP + modality).

    Args:
        terms: ``{name: term}`` (weight 1) or ``{name: (term, weight)}``. Order is kept for logging.

    Calling it returns ``(total_loss, logs)`` where ``logs`` has ``loss`` (the total), ``loss/<name>`` for each
    term's unweighted value, and any numbers the terms returned, prefixed by the term's name.
    A term with weight 0 is still evaluated and logged (so a λ = 0 run shows the classifier's loss) but adds
    exactly nothing to the total and to the gradients.
    """

    def __init__(self, terms: Mapping[str, nn.Module | tuple[nn.Module, float]] | None = None):
        super().__init__()
        terms = {"contrastive": ClipLoss()} if terms is None else terms
        if not terms:
            raise ValueError("terms: an Objective needs at least one loss term")
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, spec in terms.items():
            term, weight = spec if isinstance(spec, tuple) else (spec, 1.0)
            if not isinstance(term, nn.Module):
                raise TypeError(f"terms[{name!r}] must be an nn.Module loss term, got {type(term).__name__}")
            self.terms[name] = term
            self.weights[name] = float(weight)

    def forward(self, features: Features) -> tuple[torch.Tensor, dict[str, float]]:
        image, text = gather_features(features.image, features.text)
        if image is not features.image:  # under torchrun: the global batch, this process's rows at its rank
            n = features.image.shape[0]
            rank = dist.get_rank()
            features = Features(image, text, features.logit_scale, features.batch, slice(rank * n, (rank + 1) * n))
        total = features.image.new_zeros(())
        logs: dict[str, float] = {}
        for name, term in self.terms.items():
            out = term(features)
            value, extra = out if isinstance(out, tuple) else (out, {})
            weight = self.weights[name]
            if weight != 0.0:
                total = total + weight * value
            logs[f"loss/{name}"] = float(value.detach())
            logs.update({f"{name}/{k}": float(v) for k, v in extra.items()})
        logs["loss"] = float(total.detach())
        return total, logs

    def begin_step(self, step: int, total_steps: int) -> None:
        """Called by the training loop before each step: a term that schedules itself (a λ warm-up over training
        progress ``step / total_steps``) defines ``begin_step(step, total_steps)``."""
        for term in self.terms.values():
            hook = getattr(term, "begin_step", None)
            if callable(hook):
                hook(step, total_steps)

    def end_step(self, model: nn.Module) -> None:
        """Called by the training loop after each optimiser step: a term with state outside the gradient (a
        momentum key encoder, a queue of past keys) defines ``end_step(model)`` and updates it there."""
        for term in self.terms.values():
            hook = getattr(term, "end_step", None)
            if callable(hook):
                hook(model)
