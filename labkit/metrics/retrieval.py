r"""Cross-modal retrieval: Recall@K over a whole split (several captions per image), its chance level, and the
N-way task of seed 001 §4.3.

Conventions (inputs, unit sphere, validation) as in :mod:`labkit.metrics.gap`: embeddings are ``(n, d)`` arrays
or tensors, rows are L2-normalised first, bad input raises ``ValueError`` naming the parameter.

*N-way retrieval.* For query ``i`` (an image for I→T, a text for T→I), the candidates are its paired item and
``N − 1`` items drawn at random (seeded) among the non-paired ones of the test set; the query scores 1 when its
paired item is *strictly* more similar (cosine) than every drawn candidate. R@1 is the mean over queries. Chance
is ``1/N``.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Iterable

import numpy as np
import torch

from ._validate import _pair, _positive_int, _to_numpy

__all__ = ["retrieval_recall", "chance_recall", "nway_recall", "nway_retrieval"]


def _text_to_image(text_to_image, n_texts: int, n_images: int) -> np.ndarray:
    t2i = _to_numpy(text_to_image, "text_to_image")
    if t2i.ndim != 1:
        raise ValueError(f"text_to_image must be 1-D, got ndim={t2i.ndim}")
    if t2i.dtype.kind not in "iu":
        raise ValueError(f"text_to_image must contain integer image indices (got dtype {t2i.dtype})")
    if len(t2i) != n_texts:
        raise ValueError(
            f"text_to_image has length {len(t2i)} but there are {n_texts} texts (rows of text_emb)"
        )
    t2i = t2i.astype(np.int64)
    if t2i.min() < 0 or t2i.max() >= n_images:
        raise ValueError(
            f"text_to_image has indices outside [0, {n_images}) (n_images = rows of image_emb)"
        )
    counts = np.bincount(t2i, minlength=n_images)
    if (counts == 0).any():
        bad = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(
            f"image {bad} has no caption in text_to_image; every image needs at least one"
        )
    return t2i


def _ks(ks) -> tuple[int, ...]:
    if isinstance(ks, Integral) and not isinstance(ks, bool):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise ValueError(f"ks must be a positive integer or a sequence of them, got {ks!r}") from None
    if not ks:
        raise ValueError("ks is empty")
    return tuple(sorted({_positive_int(k, "ks") for k in ks}))


def retrieval_recall(
    image_emb,
    text_emb,
    text_to_image,
    ks: Iterable[int] = (1, 5, 10),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Cross-modal retrieval Recall@k in both directions, in percent (0-100).

    Similarity is the cosine similarity (dot product of normalised rows).
    ``text_to_image[j]`` is the index of the image that caption ``j`` describes;
    an image may have several captions and every image needs at least one.

    * image -> text (``i2t_R@k``): an image query is correct at ``k`` if *any* of
      its captions is among the ``k`` most similar captions.
    * text -> image (``t2i_R@k``): a caption query is correct at ``k`` if its
      image is among the ``k`` most similar images.

    Computed by ranks, without sorting: for an image, with ``s*`` the best
    similarity among its own captions, ``rank`` = number of captions with
    similarity *strictly greater* than ``s*``; for a caption, ``rank`` = number
    of other images strictly more similar than its own image.  A query is correct
    at ``k`` iff ``rank < k``.  **Ties** (and differences below float32 round-off)
    are therefore resolved in the query's favour (optimistic ranking).

    The similarity matrix is computed in float32 blocks of ``batch_size`` images
    against all captions (extra memory about ``8 * batch_size * n_texts`` bytes),
    so 5k images x 25k captions never materialise the full matrix.

    Returns ``{"i2t_R@k" for k in ks, "t2i_R@k" for k in ks, "mean_recall"}`` where
    ``mean_recall`` is the mean of all the recall values (the "mean retrieval"
    of seed paper 000, Fig. 3).
    """
    ks = _ks(ks)
    batch_size = _positive_int(batch_size, "batch_size")
    # float32 throughout: similarities only need to be ranked
    img, txt = _pair(image_emb, text_emb, "image_emb", "text_emb", dtype=np.float32)
    n_img, n_txt = len(img), len(txt)
    t2i_np = _text_to_image(text_to_image, n_txt, n_img)

    img32 = torch.from_numpy(img)
    txt32 = torch.from_numpy(txt)
    t2i = torch.from_numpy(t2i_np)
    # similarity of every caption to its own image
    s_true = (txt32 * img32[t2i]).sum(dim=1)
    # captions grouped by image, so each image block owns a contiguous run
    by_image = torch.from_numpy(np.argsort(t2i_np, kind="stable"))
    sorted_img = t2i[by_image]

    # Ranks are counted as float32 sums of 0/1 indicators: exact for counts
    # below 2**24, and several times faster than summing bool tensors.
    i2t_rank = torch.empty(n_img, dtype=torch.float32)
    t2i_rank = torch.zeros(n_txt, dtype=torch.float32)
    bs = min(batch_size, n_img)
    sim = torch.empty((bs, n_txt), dtype=torch.float32)
    beats = torch.empty((bs, n_txt), dtype=torch.float32)
    sorted_img_np = sorted_img.numpy()
    for s0 in range(0, n_img, bs):
        e0 = min(s0 + bs, n_img)
        m = e0 - s0
        sim_b, beats_b = sim[:m], beats[:m]
        torch.mm(img32[s0:e0], txt32.T, out=sim_b)
        lo, hi = np.searchsorted(sorted_img_np, [s0, e0])
        own_cap = by_image[lo:hi]  # captions of the images in this block
        own_row = t2i[own_cap] - s0
        own_sim = sim_b[own_row, own_cap]
        # image -> text: captions more similar than the image's best own caption
        best = torch.full((m,), -math.inf, dtype=torch.float32)
        best.scatter_reduce_(0, own_row, own_sim, reduce="amax")
        torch.gt(sim_b, best[:, None], out=beats_b)
        i2t_rank[s0:e0] = beats_b.sum(dim=1)
        # text -> image: images of this block more similar than each caption's own image
        torch.gt(sim_b, s_true[None, :], out=beats_b)
        # a caption's own image never outranks itself
        beats_b.view(-1).index_fill_(0, own_row * n_txt + own_cap, 0.0)
        t2i_rank += beats_b.sum(dim=0)

    out: dict[str, float] = {}
    for k in ks:
        out[f"i2t_R@{k}"] = float((i2t_rank < k).double().mean().item() * 100.0)
    for k in ks:
        out[f"t2i_R@{k}"] = float((t2i_rank < k).double().mean().item() * 100.0)
    out["mean_recall"] = float(np.mean(list(out.values())))
    return out

def chance_recall(n_images: int, captions_per_image: float, k: int) -> dict[str, float]:
    """R@k of a random ranking, in percent: what 'far above chance' is measured against.

    t2i: k / N. i2t with c captions per image among M = c·N: 1 − C(M−c, k) / C(M, k).
    """
    n_texts = int(round(n_images * captions_per_image))
    c = int(round(captions_per_image))
    t2i = min(1.0, k / n_images)
    miss = 1.0
    for i in range(k):
        miss *= max(0.0, (n_texts - c - i) / (n_texts - i))
    return {f"i2t_R@{k}": 100 * (1 - miss), f"t2i_R@{k}": 100 * t2i}

def nway_recall(queries: np.ndarray, targets: np.ndarray, n_way: int = 5, seed: int = 0,
                distractors: np.ndarray | None = None) -> float:
    """R@1 of the N-way task: row ``i`` of ``queries`` against ``targets[i]`` and N−1 other rows of ``targets``.

    ``distractors`` (optional, (n, N−1) int) fixes the drawn candidates instead of sampling them (for tests).
    """
    q = np.asarray(queries, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    n = len(q)
    if t.shape != q.shape:
        raise ValueError(f"queries and targets must be row-aligned pairs; got {q.shape} and {t.shape}")
    if not 2 <= n_way <= n:
        raise ValueError(f"n_way must be in [2, {n}], got {n_way}")
    if distractors is None:
        rng = np.random.default_rng(seed)
        distractors = np.empty((n, n_way - 1), dtype=np.int64)
        for i in range(n):
            pool = rng.choice(n - 1, size=n_way - 1, replace=False)
            distractors[i] = pool + (pool >= i)  # skip i itself: indices in [0, n) minus {i}
    distractors = np.asarray(distractors)
    if (distractors == np.arange(n)[:, None]).any():
        raise ValueError("distractors must not contain the paired item")
    positive = np.einsum("nd,nd->n", q, t)
    negative = np.einsum("nd,nkd->nk", q, t[distractors])
    return float(np.mean(positive > negative.max(1)))


def nway_retrieval(image: np.ndarray, text: np.ndarray, n_way: int = 5, seed: int = 0) -> dict[str, float]:
    """Both directions of the N-way task on row-aligned (image, text) pairs: ``{"i2t": R@1, "t2i": R@1}``."""
    return {"i2t": nway_recall(image, text, n_way, seed), "t2i": nway_recall(text, image, n_way, seed + 1)}
