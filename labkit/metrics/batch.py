r"""The numbers seed 003 reports (§4, Tables 2–5): accuracy, loss and average similarity *within batches*.

**Our reading of the seed** (it does not define them; these readings follow from eq. 1 and the tables):

* the validation set is cut into consecutive batches of the training batch size ``n`` (a loader without shuffling),
  and inside each batch the image queries meet the n text keys of that batch, as in batch sampling;
* **accuracy** — the fraction of image queries whose own caption is the top-1 (strictly most similar) key among the
  n keys of its batch (the (K+1)-way classifier of eq. 1 with K = n − 1). Chance is ``1/n``, so it depends on the
  batch size: 0.6 at n = 64 is a harder result than 0.6 at n = 16. That is why labkit also reports R@K over the
  whole split (:func:`labkit.metrics.retrieval_recall`), which does not depend on n;
* **loss** — eq. 1 with those in-batch negatives at the run's temperature τ, averaged over queries;
* **average similarity** — the mean cosine similarity ``q·k₊`` of the matched (image, caption) pairs. Under this
  reading, with τ = 0.07 (MoCo's default, which the seed's citations suggest), Table 2's training row at n = 16
  (similarity 0.228, accuracy 0.858) gives a loss of about log(1 + 15·e^{−0.228/0.07}) ≈ 0.45 — the 0.448 printed —
  but other rows do not match as well, so the reading is uncertain; labkit therefore also reports the mean
  similarity of the non-matching pairs (``avg_similarity_negatives``) and the margin between the two.

Batches hold ``batch_size`` consecutive rows; a final partial batch is dropped (its chance level would differ)
unless it is the only one (fewer rows than ``batch_size``: one batch of all rows, and ``batch_size_used`` says so).
"""

from __future__ import annotations

import math

import torch

from ._validate import _pair, _positive_int

__all__ = ["batch_metrics"]


def batch_metrics(image_emb, text_emb, batch_size: int, logit_scale: float | None = None,
                  temperature: float | None = None) -> dict[str, float]:
    """Seed 003's accuracy, loss and average similarity over consecutive batches of row-aligned pairs.

    Args:
        image_emb, text_emb: (n, d) embeddings, row i of both a matched pair (rows are L2-normalised here).
        batch_size: the batch size of the run (the seed evaluates with its training batch size).
        logit_scale / temperature: ``1/τ`` or τ for the loss (give one; default τ = 0.07).

    Returns (means over batches; every batch the same size): ``accuracy`` (image queries, eq. 1's direction),
    ``accuracy_t2i``, ``loss`` (eq. 1, image queries), ``loss_t2i``, ``avg_similarity`` (matched pairs),
    ``avg_similarity_negatives`` (unmatched pairs in the same batches), ``margin`` (their difference),
    ``chance_accuracy`` (1 / batch size), ``batch_size_used`` and ``n_batches``.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    img, txt = _pair(image_emb, text_emb, "image_emb", "text_emb")
    if len(img) != len(txt):
        raise ValueError(f"image_emb and text_emb must be row-aligned pairs; got {len(img)} and {len(txt)} rows")
    if logit_scale is not None and temperature is not None:
        raise ValueError("give logit_scale or temperature, not both")
    if temperature is not None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        scale = 1.0 / float(temperature)
    else:
        scale = float(logit_scale) if logit_scale is not None else 1.0 / 0.07
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"logit_scale must be a positive finite number, got {logit_scale}")

    n = len(img)
    size = min(batch_size, n)
    n_batches = n // size
    if size < 2:
        raise ValueError(f"a batch needs at least 2 pairs to have a negative; got {n} pairs")
    x = torch.from_numpy(img[: n_batches * size]).view(n_batches, size, -1)
    y = torch.from_numpy(txt[: n_batches * size]).view(n_batches, size, -1)
    sims = x @ y.transpose(1, 2)  # (B, n, n): row i = image i against the batch's captions
    diag = sims.diagonal(dim1=1, dim2=2)  # (B, n)
    eye = torch.eye(size, dtype=torch.bool)
    off = sims.masked_fill(eye, float("-inf"))
    targets = torch.arange(size).repeat(n_batches)
    logits = (scale * sims).reshape(-1, size)
    loss_i2t = torch.nn.functional.cross_entropy(logits, targets).item()
    loss_t2i = torch.nn.functional.cross_entropy((scale * sims.transpose(1, 2)).reshape(-1, size), targets).item()
    acc_i2t = (diag > off.max(2).values).double().mean().item()
    acc_t2i = (diag > off.max(1).values).double().mean().item()
    pos = diag.mean().item()
    neg = sims.masked_select(~eye.expand_as(sims)).mean().item()
    return {
        "accuracy": acc_i2t,
        "accuracy_t2i": acc_t2i,
        "loss": loss_i2t,
        "loss_t2i": loss_t2i,
        "avg_similarity": pos,
        "avg_similarity_negatives": neg,
        "margin": pos - neg,
        "chance_accuracy": 1.0 / size,
        "batch_size_used": float(size),
        "n_batches": float(n_batches),
    }
