r"""InfoNCE with a temperature hyper-parameter (seed 003 eq. 1, after van den Oord et al. 2018 and MoCo).

For a query :math:`q`, its positive key :math:`k_+` and K negative keys :math:`k_1 … k_K` (unit vectors),

.. math::
    \mathcal{L}_q = -\log\frac{\exp(q\cdot k_+/\tau)}{\exp(q\cdot k_+/\tau) + \sum_{i=1}^{K}\exp(q\cdot k_i/\tau)}
    \qquad (1)

the cross-entropy of a (K+1)-way softmax classifier that must pick :math:`k_+`. (The seed's typeset eq. 1 drops the
``exp`` in the numerator; the cited InfoNCE has it.) In the seed, the visual teacher produces the queries and the
language teacher the keys (``"i2t"``); the symmetric variant adds text queries against image keys (``"t2i"``) and
averages the two, which with in-batch negatives is exactly CLIP's loss (:func:`labkit.losses.clip_loss`).

**Who chooses the negatives.** Not this module: :class:`InfoNCE` takes a sampler from :mod:`labkit.negatives`
(batch, queue, rerank) and computes eq. 1 over the :class:`~labkit.negatives.Candidates` it returns, masking the
keys it marks invalid. Swapping the sampler changes nothing else.

``τ``: ``temperature=None`` uses the model's (``features.logit_scale = 1/τ``; fix it with
:class:`~labkit.train.TrainConfig` ``temperature``); a number fixes τ inside the loss term.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..negatives import BatchNegatives, Candidates, NegativeSampler
from .contrastive import Features, Objective

__all__ = ["info_nce", "InfoNCE", "infonce_objective"]


def info_nce(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
             logit_scale: torch.Tensor | float, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1 averaged over the N queries; also returns, per query, whether its positive scores strictly above
    every valid negative (the top-1 accuracy of the (K+1)-way classifier).

    Args:
        query, positive: (N, D), row-aligned.
        negatives: (M, D) shared by all queries or (N, M, D) per query.
        logit_scale: ``1/τ``.
        mask: (N, M) bool, ``True`` = the negative counts; a query with none left has loss 0 (log 1).
    """
    if query.ndim != 2 or positive.shape != query.shape:
        raise ValueError(f"query and positive must both be (N, D); got {tuple(query.shape)} and "
                         f"{tuple(positive.shape)}")
    if negatives.ndim == 2:
        if negatives.shape[1] != query.shape[1]:
            raise ValueError(f"negatives must be (M, {query.shape[1]}) or (N, M, D); got {tuple(negatives.shape)}")
        neg = query @ negatives.T
    elif negatives.ndim == 3 and negatives.shape[0] == query.shape[0] and negatives.shape[2] == query.shape[1]:
        neg = torch.einsum("nd,nmd->nm", query, negatives)
    else:
        raise ValueError(f"negatives must be (M, D) or (N, M, D) with N={query.shape[0]}, D={query.shape[1]}; "
                         f"got {tuple(negatives.shape)}")
    pos = (query * positive).sum(-1, keepdim=True)
    logits = torch.cat([pos, neg], dim=1) * logit_scale
    if mask is not None:
        if mask.shape != neg.shape:
            raise ValueError(f"mask must be {tuple(neg.shape)}, got {tuple(mask.shape)}")
        # masked after scaling: a learnable 1/τ multiplying -inf would get a NaN gradient (0 · -inf)
        neg = neg.masked_fill(~mask, float("-inf"))
        logits = logits.masked_fill(torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1).logical_not(),
                                    float("-inf"))
    targets = torch.zeros(len(query), dtype=torch.long, device=query.device)
    loss = F.cross_entropy(logits, targets)
    with torch.no_grad():
        best_neg = neg.max(1).values if neg.shape[1] else torch.full_like(pos[:, 0], float("-inf"))
        correct = pos[:, 0] > best_neg
    return loss, correct


class InfoNCE(nn.Module):
    """Eq. 1 as a loss term for the :class:`~labkit.losses.Objective` seam, with swappable negatives.

    Args:
        sampler: a :class:`~labkit.negatives.NegativeSampler` (default: in-batch negatives).
        temperature: τ; ``None`` uses the model's ``1/logit_scale``.
        symmetric: average the image→text (eq. 1) and text→image directions. Required with a momentum sampler
            (its positives carry no gradient, so one direction would leave the text tower untrained).

    Logs, per direction ``d``: ``acc_d`` (top-1 of the (K+1)-way choice on the training batch), ``loss_d``, and
    ``negatives`` (mean number of valid negatives per query).
    """

    def __init__(self, sampler: NegativeSampler | None = None, temperature: float | None = None,
                 symmetric: bool = True):
        super().__init__()
        self.sampler = sampler if sampler is not None else BatchNegatives()
        if temperature is not None and not 0 < temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {temperature}")
        if not symmetric and self.sampler.positives_detached:
            raise ValueError(f"{type(self.sampler).__name__} takes its positive keys from a momentum encoder (no "
                             "gradient): with image queries only, the text tower would never train; use "
                             "symmetric=True")
        self.temperature = temperature
        self.symmetric = bool(symmetric)
        self.directions = ("i2t", "t2i") if symmetric else ("i2t",)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"

    def forward(self, features: Features):
        scale = features.logit_scale if self.temperature is None else 1.0 / self.temperature
        candidates: dict[str, Candidates] = self.sampler.sample(features, self.directions)
        losses, logs = [], {}
        for d in self.directions:
            c = candidates[d]
            query = features.image if d == "i2t" else features.text
            loss, correct = info_nce(query, c.positive, c.negatives, scale, c.mask)
            losses.append(loss)
            logs[f"acc_{d}"] = correct.float().mean().item()
            logs[f"loss_{d}"] = loss.item()
        logs["negatives"] = candidates[self.directions[0]].n_negatives.float().mean().item()
        return sum(losses) / len(losses), logs

    def end_step(self, model: nn.Module) -> None:
        self.sampler.end_step(model)


def infonce_objective(sampler: NegativeSampler | None = None, temperature: float | None = None,
                      symmetric: bool = True) -> Objective:
    """``Objective({"infonce": InfoNCE(sampler, temperature, symmetric)})``."""
    return Objective({"infonce": InfoNCE(sampler, temperature, symmetric)})
