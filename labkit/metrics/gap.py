"""The modality-gap family: centroid distance (Δgap), silhouette, centroid distances, PC1 — and the measures
beyond the centroid distance: relative modality gap, linear separability, the share of the gap carried by the top-k
dimensions; post-hoc centering and Mind the Gap's shift along the gap vector.

Conventions used by every function in this module
-------------------------------------------------
* **Inputs.** Embeddings are ``(n, d)`` NumPy arrays or torch tensors (any float
  or integer dtype, any device; they are copied to the CPU).  The two modalities
  may contain different numbers of rows, but must share the embedding width ``d``.
* **Unit sphere.** Every function first L2-normalises each row.  The modality gap
  is defined on the unit hypersphere, as in Liang et al., *Mind the Gap* (NeurIPS
  2022) and in seed paper 000 ("Pull It Together", §3), where CLIP-style models
  normalise their outputs before the contrastive loss.  Rows with zero norm have
  no direction and are rejected with ``ValueError``.
* **Which modality is which.** By convention the first argument is the image
  modality (``a`` / ``image_emb``) and the second the text modality (``b`` /
  ``text_emb``).  Only the names of the keys returned by
  :func:`centroid_distances` depend on this convention.
* **Validation.** NaN/inf values, wrong number of dimensions, empty inputs,
  mismatched embedding widths, zero-norm rows and malformed retrieval arguments
  raise ``ValueError`` whose message names the offending parameter.
* **Outputs** are plain Python ``float`` values (or ``dict`` of them), ready to be
  written to ``metrics.json``.

The heavy computations (silhouette, retrieval) run in float32 on torch in row
blocks, so memory stays bounded whatever the number of points; per-row sums are
accumulated in float64.
"""


from __future__ import annotations

import numpy as np
import torch

from ._validate import _embeddings, _pair, _positive_int, _to_numpy

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
    "shift_along_gap",
    "gap_direction",
    "extended_gap_report",
]

# Squared distances below this are recomputed in float64 by
# :func:`modality_silhouette` (float32 ``2 - 2 cos`` loses precision near 0).
_NEAR_D2 = 1e-3
# Rows per strip for the silhouette, and the most entries one distance chunk may
# hold (2**24 float32 = 64 MiB); see _silhouette.
_SILHOUETTE_BATCH = 1024
_CHUNK_ENTRIES = 1 << 24


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))


def _centroid_distances(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    return {
        "image_to_image_centroid": float(np.linalg.norm(a - ca, axis=1).mean()),
        "image_to_text_centroid": float(np.linalg.norm(a - cb, axis=1).mean()),
        "text_to_text_centroid": float(np.linalg.norm(b - cb, axis=1).mean()),
        "text_to_image_centroid": float(np.linalg.norm(b - ca, axis=1).mean()),
    }


def _best_threshold_balanced_accuracy(z: np.ndarray, is_a: np.ndarray) -> float:
    """Best balanced accuracy of the rule ``z > t`` (either orientation) over all t."""
    order = np.argsort(z, kind="stable")
    zs, ys = z[order], is_a[order]
    n_a, n_b = int(ys.sum()), int((~ys).sum())
    # counts of each modality among the m smallest values, m = 0..n
    cum_a = np.concatenate([[0], np.cumsum(ys)])
    cum_b = np.concatenate([[0], np.cumsum(~ys)])
    # a threshold can only fall between two *distinct* values (or outside the range)
    valid = np.ones(len(zs) + 1, dtype=bool)
    valid[1:-1] = zs[1:] > zs[:-1]
    # "below the threshold = a": recall of a + recall of b, halved
    bal = 0.5 * (cum_a[valid] / n_a + (n_b - cum_b[valid]) / n_b)
    return float(np.max(np.maximum(bal, 1.0 - bal)))


def _pc1_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    x = np.vstack([a, b])
    xc = x - x.mean(axis=0)
    total = float(np.einsum("ij,ij->", xc, xc))  # total variance (times n)
    if len(xc) >= xc.shape[1]:
        # many points: eigen-decompose the d x d scatter matrix (much cheaper than
        # an SVD of the n x d data); eigenvalues = squared singular values
        evals, evecs = np.linalg.eigh(xc.T @ xc)
        top, axis = float(evals[-1]), evecs[:, -1]
    else:
        # few points: SVD of the centred data; right singular vectors = principal axes
        _, sv, vt = np.linalg.svd(xc, full_matrices=False)
        top, axis = float(sv[0] ** 2), vt[0]
    share = min(1.0, max(0.0, top / total)) if total > 0 else 0.0
    z = xc @ axis
    is_a = np.zeros(len(x), dtype=bool)
    is_a[: len(a)] = True
    return {
        "pc1_variance_share": share,
        "pc1_modality_separation": _best_threshold_balanced_accuracy(z, is_a),
    }


def _silhouette(a: np.ndarray, b: np.ndarray, batch_size: int) -> float:
    n_a, n_b = len(a), len(b)
    n = n_a + n_b
    if n < 3:
        # same rule as sklearn.metrics.silhouette_score: 2 <= n_labels <= n - 1
        raise ValueError(
            "the silhouette needs at least 3 points in total (a and b together); "
            f"got len(a)={n_a}, len(b)={n_b}"
        )
    x32 = torch.from_numpy(np.vstack([a, b]).astype(np.float32))
    x64 = None  # float64 copy, made only if near-duplicates show up
    # Row strips never straddle the modality boundary, so every strip is pure.
    starts = list(range(0, n_a, batch_size)) + list(range(n_a, n, batch_size))
    strips = [(s, min(s + batch_size, n_a if s < n_a else n)) for s in starts]
    # A strip is matched against all points after its start (the distance matrix
    # is symmetric, so only its upper triangle is visited), in column chunks of
    # at most _CHUNK_ENTRIES entries.  Few, large operations keep the two cores
    # busy even when other processes compete for them.
    width = max(batch_size, _CHUNK_ENTRIES // batch_size)
    # sums[i, m] = sum of Euclidean distances from point i to every point of modality m
    sums = torch.zeros((n, 2), dtype=torch.float64)
    two = torch.tensor(2.0, dtype=torch.float32)
    buf = torch.empty(min(batch_size, n) * min(width, n), dtype=torch.float32)

    for s0, e0 in strips:
        rows, m0 = e0 - s0, (0 if s0 < n_a else 1)
        for c0 in range(s0, n, width):
            c1 = min(c0 + width, n)
            w = c1 - c0
            first = c0 == s0  # this chunk holds the diagonal block (first `rows` columns)
            # on the unit sphere ||x - y||^2 = 2 - 2 <x, y>: one fused matmul
            d2 = buf[: rows * w].view(rows, w)
            torch.addmm(two, x32[s0:e0], x32[c0:c1].T, alpha=-2.0, out=d2)
            if first:
                d2[:, :rows].fill_diagonal_(2.0)  # self-pairs: zeroed below, kept out of the check
            redo = []
            if float(d2.min()) < _NEAR_D2:
                # near-duplicate points: float32 cancellation in 2 - 2 cos would be
                # amplified by the square root; redo those sub-blocks in float64
                redo = [
                    (j, min(j + batch_size, w))
                    for j in range(0, w, batch_size)
                    if float(d2[:, j : j + batch_size].min()) < _NEAR_D2
                ]
            d = d2.sqrt_()
            if redo and x64 is None:
                x64 = torch.from_numpy(np.vstack([a, b]))
            for j0, j1 in redo:
                g64 = torch.mm(x64[s0:e0], x64[c0 + j0 : c0 + j1].T)
                d[:, j0:j1] = g64.mul_(-2.0).add_(2.0).clamp_(min=0.0).sqrt_()
            if first:
                d[:, :rows].fill_diagonal_(0.0)
            # row sums, split at the modality boundary (float32 cascade sums,
            # accumulated in float64)
            k = min(max(n_a - c0, 0), w)
            if k > 0:
                sums[s0:e0, 0] += d[:, :k].sum(dim=1)
            if k < w:
                sums[s0:e0, 1] += d[:, k:].sum(dim=1)
            # column sums: the columns' points see the strip's modality (the
            # diagonal block is symmetric and already counted by its row sums)
            j = rows if first else 0
            if j < w:
                sums[c0 + j : c1, m0] += d[:, j:].sum(dim=0)

    sums_np = sums.numpy()
    own = np.concatenate([sums_np[:n_a, 0], sums_np[n_a:, 1]])
    other = np.concatenate([sums_np[:n_a, 1], sums_np[n_a:, 0]])
    n_own = np.concatenate([np.full(n_a, n_a), np.full(n_b, n_b)]).astype(np.float64)
    n_other = np.concatenate([np.full(n_a, n_b), np.full(n_b, n_a)]).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_i = own / (n_own - 1.0)  # the point itself (distance 0) is excluded
        b_i = other / n_other
        s = (b_i - a_i) / np.maximum(a_i, b_i)
    # singleton cluster (0/0) and identical a(i) = b(i) = 0 give s(i) = 0, as sklearn
    s = np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)
    s[n_own == 1] = 0.0
    return float(s.mean())


# ----------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------


def modality_gap(a, b) -> float:
    r"""Modality gap: Euclidean distance between the two modality centroids.

    Implements seed paper 000 ("Pull It Together"), §3, eq. (4), following Liang
    et al. (*Mind the Gap*, 2022):

    .. math:: \Delta_{gap} = \Big\lVert \tfrac{1}{n_a}\sum_i a_i - \tfrac{1}{n_b}\sum_j b_j \Big\rVert_2

    with every row L2-normalised first.  (Eq. 4 as printed in seed 000 writes the
    averages with a dimension index; the quantity meant, and the one reported as
    0.82 for CLIP on MSCOCO, is the distance between the per-modality means over
    samples.)  ``a`` and ``b`` may have different numbers of rows.

    Returns a float in ``[0, 2]``.
    """
    a, b = _pair(a, b, "a", "b")
    return _gap(a, b)


def modality_silhouette(a, b, batch_size: int = _SILHOUETTE_BATCH) -> float:
    r"""Silhouette score of the stacked embeddings, with modality as the cluster label.

    Rousseeuw (1987), Euclidean distance, as used in seed paper 000 §3.  For point
    ``i`` of modality ``A`` (and symmetrically for ``B``)

    .. math::
        a(i) = \frac{1}{|A| - 1}\sum_{j \in A, j \ne i} \lVert x_i - x_j \rVert, \quad
        b(i) = \frac{1}{|B|}\sum_{j \in B} \lVert x_i - x_j \rVert, \quad
        s(i) = \frac{b(i) - a(i)}{\max(a(i), b(i))}

    and the score is the mean of ``s(i)`` over all ``len(a) + len(b)`` points.
    As in :func:`sklearn.metrics.silhouette_score`, a point alone in its modality
    gets ``s(i) = 0``, and at least 3 points are required in total.

    Exact (matches scikit-learn to ~1e-8 on the same normalised inputs) but never
    builds the full ``n x n`` matrix.  The distance matrix is symmetric, so only
    its upper triangle is visited: strips of ``batch_size`` rows (never mixing
    modalities) against all later points, in column chunks of at most 2**24
    entries; each entry feeds the row sum of its row point and the column sum of
    its column point.  On the unit sphere ``||x - y||^2 = 2 - 2 <x, y>``, computed
    with a float32 matmul; sub-blocks holding near-duplicate points (squared
    distance below 1e-3, where float32 cancellation would be amplified by the
    square root) are recomputed in float64.  Per-point sums are accumulated in
    float64.  Extra memory: about ``4 * batch_size * min(n, 2**24 / batch_size)``
    bytes (64 MiB by default) plus two copies of the data.

    Range ``[-1, 1]``: values near 1 mean the modalities form separate clusters
    (a large modality gap), near 0 that they are intermixed.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    a, b = _pair(a, b, "a", "b")
    return _silhouette(a, b, batch_size)


def centroid_distances(a, b) -> dict[str, float]:
    r"""Mean Euclidean distance of each modality's points to both centroids.

    Seed paper 000 §3 ("Euclidean distance from the modality cluster centroid").
    With ``a`` the image embeddings, ``b`` the text embeddings (rows normalised)
    and :math:`c_a, c_b` their means:

    * ``image_to_image_centroid`` = mean_i ||a_i - c_a||
    * ``image_to_text_centroid``  = mean_i ||a_i - c_b||
    * ``text_to_text_centroid``   = mean_j ||b_j - c_b||
    * ``text_to_image_centroid``  = mean_j ||b_j - c_a||

    A modality gap shows as points being much closer to their own centroid than
    to the other modality's.
    """
    a, b = _pair(a, b, "a", "b")
    return _centroid_distances(a, b)


def pc1_stats(a, b) -> dict[str, float]:
    """How much the first principal component is about modality.

    PCA (seed paper 000 §3, Fig. 2) of the stacked, row-normalised embeddings
    ``[a; b]`` centred on their joint mean (eigen-decomposition of the ``d x d``
    scatter matrix, or an SVD of the data when there are fewer points than
    dimensions).

    * ``pc1_variance_share``: explained-variance ratio of PC1,
      ``sigma_1**2 / sum_k sigma_k**2``.
    * ``pc1_modality_separation``: how well a single threshold on the PC1
      coordinate tells the modalities apart -- the best *balanced* accuracy
      (mean of the per-modality recalls) over all thresholds and both
      orientations.  With equal numbers of points this is plain accuracy.
      0.5 means no separation; 1.0 means PC1 alone separates the modalities.
    """
    a, b = _pair(a, b, "a", "b")
    return _pc1_stats(a, b)


def gap_report(image_emb, text_emb) -> dict[str, float]:
    """All modality-gap measures of seed paper 000 §3 in one flat dict (for ``metrics.json``).

    Keys: ``gap`` (:func:`modality_gap`, eq. 4), ``silhouette``
    (:func:`modality_silhouette`), the four keys of :func:`centroid_distances`
    and the two of :func:`pc1_stats`.  Retrieval is not included (it needs the
    caption-to-image mapping; see :func:`retrieval_recall`).
    """
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    report = {"gap": _gap(a, b), "silhouette": _silhouette(a, b, _SILHOUETTE_BATCH)}
    report.update(_centroid_distances(a, b))
    report.update(_pc1_stats(a, b))
    return report


# ----------------------------------------------------------------------------
# beyond the centroid distance
# ----------------------------------------------------------------------------


def _mean_offdiagonal_cosine(x: np.ndarray) -> float:
    """Mean of x_i · x_j over i != j for unit rows: (||sum_i x_i||^2 - n) / (n (n - 1)), no n x n matrix."""
    n = len(x)
    total = x.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def relative_modality_gap(image_emb, text_emb) -> float:
    r"""Relative modality gap (RMG) of Schrodi et al., *Two Effects, One Trigger* (ICLR 2025).

    Rows are L2-normalised pairs: row ``i`` of ``image_emb`` belongs to row ``i`` of ``text_emb``. With the cosine
    dissimilarity :math:`d(x, y) = (1 - x\cdot y)/2 \in [0, 1]`,

    .. math::
        \mathrm{RMG} = \frac{\overline{d}_{\text{match}}}
                           {\overline{d}_{\text{match}} + \tfrac12\big(\overline{d}_{II} + \overline{d}_{TT}\big)},
        \quad \overline{d}_{\text{match}} = \tfrac1n\sum_i d(x_i, y_i),
        \quad \overline{d}_{II} = \tfrac{1}{n(n-1)}\sum_{i\ne j} d(x_i, x_j)

    (and :math:`\overline{d}_{TT}` likewise for the texts). Unlike Δgap it is measured against the spread of each
    modality: a matched pair that is as far apart as two random images scores 0.5; 0 means every pair coincides.
    (The authors' code also floors :math:`\overline{d}_{\text{match}}` at 1e-3; here a zero stays zero.)
    Needs at least two pairs. Returns a float in ``[0, 1]``.
    """
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    if len(a) != len(b):
        raise ValueError(f"image_emb and text_emb must be row-aligned pairs of equal length, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError(f"the relative modality gap needs at least 2 pairs, got {len(a)}")
    d_match = (1.0 - float(np.einsum("ij,ij->i", a, b).mean())) / 2.0
    d_within = ((1.0 - _mean_offdiagonal_cosine(a)) / 2.0 + (1.0 - _mean_offdiagonal_cosine(b)) / 2.0) / 2.0
    d_match, d_within = max(d_match, 0.0), max(d_within, 0.0)
    denom = d_match + d_within
    return float(d_match / denom) if denom > 0 else 0.0


def linear_separability(image_emb, text_emb, test_fraction: float = 0.3, seed: int = 0, C: float = 1.0) -> float:
    """Held-out accuracy of a linear classifier that tells image embeddings from text embeddings.

    Fahim et al. (*It's Not a Modality Gap*, 2024) use it beside the centroid distance: a small Δgap does not mean
    mixed modalities — two thin, parallel sheets can be 100 % separable at a small centroid distance. The rows of
    both modalities (L2-normalised) are stacked with labels 0 = image, 1 = text, split once into train / test
    (stratified, ``test_fraction`` held out, seeded), standardised on the train part, and scikit-learn's
    ``LogisticRegression`` (L2 penalty, inverse strength ``C``, lbfgs) is fitted on the train part. Returns the
    accuracy on the held-out part: 0.5 means inseparable (for equal sizes), 1.0 perfectly separable.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    if not (isinstance(test_fraction, float) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    if not (isinstance(C, (int, float)) and not isinstance(C, bool) and C > 0):
        raise ValueError(f"C must be a positive number, got {C!r}")
    if min(len(a), len(b)) < 4:
        raise ValueError(f"linear_separability needs at least 4 rows per modality, got {len(a)} and {len(b)}")
    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a), dtype=np.int64), np.ones(len(b), dtype=np.int64)]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=int(seed), stratify=y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=float(C), max_iter=2000))
    clf.fit(x_tr, y_tr)
    return float((clf.predict(x_te) == y_te).mean())


def _gap_vector(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.mean(axis=0) - b.mean(axis=0)


def gap_dimension_shares(image_emb, text_emb, ks=(1, 2, 4, 8)) -> dict[str, float]:
    r"""The share of the (squared) gap carried by the ``k`` coordinates where the modality means differ most.

    With :math:`\Delta = \bar x - \bar y` the difference of the modality means (rows L2-normalised) and its
    coordinates sorted so that :math:`\Delta_{(1)}^2 \ge \Delta_{(2)}^2 \ge \dots`,

    .. math:: \text{share}_k = \sum_{m \le k}\Delta_{(m)}^2 \Big/ \sum_{m}\Delta_{(m)}^2 = \sum_{m\le k}\Delta_{(m)}^2 / \Delta_{gap}^2 .

    Schrodi et al. (*Two Effects, One Trigger*, Fig. 4) find CLIP's gap carried by a few embedding dimensions.
    The quantity depends on the basis — the model's own output coordinates — by design: a rotation-invariant
    version would always put 100 % of the gap on one direction, the gap vector itself. Keys ``gap_top{k}_share``;
    ``k`` larger than the width counts every coordinate (share 1). A zero gap gives shares of 0.
    """
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    ks = [_positive_int(k, "ks") for k in ks]
    if not ks:
        raise ValueError("ks must name at least one k")
    sq = np.sort(_gap_vector(a, b) ** 2)[::-1]
    total = float(sq.sum())
    cum = np.cumsum(sq)
    return {f"gap_top{k}_share": (float(cum[min(k, len(sq)) - 1] / total) if total > 0 else 0.0) for k in ks}


def drop_gap_dimensions(image_emb, text_emb, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove the ``k`` coordinates where the modality means differ most, and re-normalise the rows (Schrodi et
    al.'s dimension ablation, Fig. 4c). Returns float64 arrays of width ``d - k``; rows that become zero raise."""
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    k = _positive_int(k, "k")
    if k >= a.shape[1]:
        raise ValueError(f"k must be smaller than the embedding width {a.shape[1]}, got {k}")
    keep = np.sort(np.argsort(-(_gap_vector(a, b) ** 2), kind="stable")[k:])
    return (_embeddings(a[:, keep], "image_emb (dimensions dropped)"),
            _embeddings(b[:, keep], "text_emb (dimensions dropped)"))


def center_modalities(image_emb, text_emb, image_mean=None, text_mean=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Post-hoc centering: subtract each modality's mean and re-normalise (DrML, Zhang et al. 2023; the *collapse*
    step of C3, Zhang et al. 2024).

    .. math:: \tilde x_i = \frac{x_i - \bar x}{\lVert x_i - \bar x\rVert}, \qquad
              \tilde y_j = \frac{y_j - \bar y}{\lVert y_j - \bar y\rVert}

    with rows L2-normalised first. The means default to those of the given rows (a transductive estimate that uses
    no pairing); pass ``image_mean`` / ``text_mean`` estimated elsewhere (e.g. on the training split) to apply the
    same map to new data. Both modalities end up centred on the origin, so their centroid distance becomes small
    (not exactly zero: re-normalising moves the means again). Returns float64 arrays; a row equal to its
    modality's mean has no direction and raises ``ValueError``.
    """
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    out = []
    for x, mean, name in ((a, image_mean, "image"), (b, text_mean, "text")):
        mu = x.mean(axis=0) if mean is None else _to_numpy(mean, f"{name}_mean").astype(np.float64)
        if mu.shape != (x.shape[1],) or not np.isfinite(mu).all():
            raise ValueError(f"{name}_mean must be a finite vector of length {x.shape[1]}, got shape {mu.shape}")
        out.append(_embeddings(x - mu, f"{name}_emb (centred)"))
    return out[0], out[1]


def gap_direction(image_emb, text_emb) -> np.ndarray:
    """The unit vector from the text centroid to the image centroid (rows L2-normalised first); Mind the Gap's
    ``modality_gap`` vector of ``get_gap_stats``."""
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    g = _gap_vector(a, b)
    norm = float(np.linalg.norm(g))
    if norm == 0.0:
        raise ValueError("the two modalities have the same centroid: the gap has no direction")
    return g / norm


def shift_along_gap(image_emb, text_emb, delta: float, direction=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Move both modalities towards each other along the gap vector and re-normalise (Mind the Gap, §4.3 / Table 1).

    .. math:: x_i' = \frac{x_i - \tfrac{\delta}{2} g}{\lVert\cdot\rVert}, \qquad
              y_j' = \frac{y_j + \tfrac{\delta}{2} g}{\lVert\cdot\rVert}

    with :math:`g` the unit gap direction (:func:`gap_direction`, computed from these rows unless ``direction`` is
    given). ``delta > 0`` shrinks the gap, ``delta < 0`` widens it; the rows stay on the unit sphere, so a large
    ``delta`` swaps the modalities' sides rather than merging them. Returns float64 arrays.
    """
    a, b = _pair(image_emb, text_emb, "image_emb", "text_emb")
    delta = float(delta)
    if not np.isfinite(delta):
        raise ValueError(f"delta must be finite, got {delta!r}")
    g = gap_direction(a, b) if direction is None else _embeddings(np.asarray(direction)[None], "direction")[0]
    if g.shape != (a.shape[1],):
        raise ValueError(f"direction must have length {a.shape[1]}, got {g.shape}")
    return (_embeddings(a - 0.5 * delta * g, "image_emb (shifted)"),
            _embeddings(b + 0.5 * delta * g, "text_emb (shifted)"))


def extended_gap_report(image_emb, text_emb, ks=(1, 4), seed: int = 0) -> dict[str, float]:
    """:func:`gap_report` plus ``relative_gap``, ``separability`` and the ``gap_top{k}_share`` keys, for row-aligned
    pairs (one flat dict for ``metrics.json``)."""
    report = gap_report(image_emb, text_emb)
    report["relative_gap"] = relative_modality_gap(image_emb, text_emb)
    report["separability"] = linear_separability(image_emb, text_emb, seed=seed)
    report.update(gap_dimension_shares(image_emb, text_emb, ks))
    return report
