"""labkit.metrics against independent computations (scikit-learn, plain numpy, brute force)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

from labkit import metrics as M


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def two_modalities(n_a, n_b, d, offset, seed):
    """Random embeddings with a shared shift on the first modality (a modality gap)."""
    rng = np.random.default_rng(seed)
    shift = np.zeros(d)
    shift[0] = offset
    a = rng.normal(size=(n_a, d)) / np.sqrt(d) + shift
    b = rng.normal(size=(n_b, d)) / np.sqrt(d) - shift
    return a.astype(np.float32), b.astype(np.float32)


# --------------------------------------------------------------------------- gap


@pytest.mark.parametrize("n_a,n_b", [(30, 30), (17, 40), (1, 5)])
def test_gap_matches_numpy(n_a, n_b):
    a, b = two_modalities(n_a, n_b, 12, 0.3, seed=n_a)
    expected = np.sqrt(np.sum((unit(a).mean(0) - unit(b).mean(0)) ** 2))
    assert M.modality_gap(a, b) == pytest.approx(expected, abs=1e-12)
    assert isinstance(M.modality_gap(a, b), float)


def test_gap_normalises_rows_and_accepts_tensors():
    a, b = two_modalities(20, 25, 8, 0.5, seed=1)
    g = M.modality_gap(a, b)
    # scaling rows changes nothing: the gap lives on the unit sphere
    scale = np.random.default_rng(0).uniform(0.1, 10, size=(20, 1))
    assert M.modality_gap(a * scale, b) == pytest.approx(g, abs=1e-6)
    assert M.modality_gap(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(g, abs=1e-12)
    # identical sets have no gap; antipodal points have the maximal gap 2
    assert M.modality_gap(a, a) == pytest.approx(0.0, abs=1e-12)
    e = np.eye(4)[:1]
    assert M.modality_gap(e, -e) == pytest.approx(2.0)


# ---------------------------------------------------------------------- silhouette


@pytest.mark.parametrize(
    "n_a,n_b,d,offset,batch_size",
    [
        (40, 40, 16, 0.0, 2048),  # no gap: silhouette near 0
        (57, 23, 8, 0.2, 16),  # unequal sizes, batches smaller than n
        (23, 57, 32, 0.5, 7),  # batch size not dividing anything
        (120, 90, 64, 3.0, 50),  # clearly separated modalities
        (2, 9, 5, 0.3, 3),
    ],
)
def test_silhouette_matches_sklearn(n_a, n_b, d, offset, batch_size):
    a, b = two_modalities(n_a, n_b, d, offset, seed=n_a + n_b)
    x = np.vstack([unit(a), unit(b)])
    labels = np.r_[np.zeros(n_a), np.ones(n_b)]
    expected = silhouette_score(x, labels)
    got = M.modality_silhouette(a, b, batch_size=batch_size)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-5)
    if offset >= 3.0:
        assert got > 0.7


@pytest.mark.parametrize("batch_size", [3, 8, 1000])
def test_silhouette_column_chunks(monkeypatch, batch_size):
    # tiny chunks: strips are split into many column chunks, crossing the boundary
    monkeypatch.setattr(M.gap, "_CHUNK_ENTRIES", 40)
    a, b = two_modalities(37, 29, 12, 0.4, seed=21)
    a[5] = a[30]  # a duplicate pair -> the float64 sub-block path inside a chunk
    x = np.vstack([unit(a), unit(b)])
    expected = silhouette_score(x, np.r_[np.zeros(37), np.ones(29)])
    assert M.modality_silhouette(a, b, batch_size=batch_size) == pytest.approx(expected, abs=1e-6)


def test_silhouette_singleton_modality_like_sklearn():
    a, b = two_modalities(1, 6, 6, 0.4, seed=3)
    x = np.vstack([unit(a), unit(b)])
    expected = silhouette_score(x, np.r_[0, np.ones(6)])
    assert M.modality_silhouette(a, b, batch_size=2) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="at least 3 points"):
        M.modality_silhouette(a[:1], b[:1])


def test_silhouette_with_duplicate_points():
    # exact duplicates (e.g. an image repeated once per caption) take the float64 path
    rng = np.random.default_rng(5)
    a = np.repeat(rng.normal(size=(10, 16)), 3, axis=0)
    b = rng.normal(size=(25, 16)) + 0.5
    x = np.vstack([unit(a), unit(b)])
    expected = silhouette_score(x, np.r_[np.zeros(30), np.ones(25)])
    assert M.modality_silhouette(a, b, batch_size=8) == pytest.approx(expected, abs=1e-6)
    # a modality collapsed to a single direction: a(i) = 0, s(i) = 1
    c = np.ones((5, 4))
    e = np.vstack([np.eye(4), -np.eye(4)])
    xs = np.vstack([unit(c), unit(e)])
    assert M.modality_silhouette(c, e) == pytest.approx(
        silhouette_score(xs, np.r_[np.zeros(5), np.ones(8)]), abs=1e-6
    )


# ---------------------------------------------------------------- centroid distances


def test_centroid_distances_match_numpy():
    a, b = two_modalities(33, 21, 10, 0.4, seed=7)
    an, bn = unit(a), unit(b)
    ca, cb = an.mean(0), bn.mean(0)
    expected = {
        "image_to_image_centroid": np.mean([np.linalg.norm(v - ca) for v in an]),
        "image_to_text_centroid": np.mean([np.linalg.norm(v - cb) for v in an]),
        "text_to_text_centroid": np.mean([np.linalg.norm(v - cb) for v in bn]),
        "text_to_image_centroid": np.mean([np.linalg.norm(v - ca) for v in bn]),
    }
    got = M.centroid_distances(a, b)
    assert set(got) == set(expected)
    for key, val in expected.items():
        assert got[key] == pytest.approx(val, abs=1e-12)
        assert isinstance(got[key], float)
    # with a gap, points are closer to their own centroid
    assert got["image_to_image_centroid"] < got["image_to_text_centroid"]
    assert got["text_to_text_centroid"] < got["text_to_image_centroid"]


# --------------------------------------------------------------------------- PC1


def pc1_reference(a, b):
    x = np.vstack([unit(a), unit(b)])
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    share = s[0] ** 2 / np.sum(s**2)
    z = xc @ vt[0]
    y = np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)]
    best = 0.5
    for t in np.r_[-np.inf, np.unique(z)]:  # every distinct split: "z > t" vs "z <= t"
        pred = z > t
        bal = 0.5 * (np.mean(pred[y]) + np.mean(~pred[~y]))
        best = max(best, bal, 1 - bal)
    return share, best


@pytest.mark.parametrize(
    "n_a,n_b,d,offset",
    [(40, 40, 16, 0.0), (25, 60, 16, 0.15), (50, 50, 16, 2.0), (5, 6, 32, 0.3)],  # last: n < d
)
def test_pc1_stats_match_svd(n_a, n_b, d, offset):
    a, b = two_modalities(n_a, n_b, d, offset, seed=11)
    share, sep = pc1_reference(a, b)
    got = M.pc1_stats(a, b)
    assert got["pc1_variance_share"] == pytest.approx(share, abs=1e-10)
    assert got["pc1_modality_separation"] == pytest.approx(sep, abs=1e-12)
    if offset >= 2.0:
        assert got["pc1_modality_separation"] == 1.0
        assert got["pc1_variance_share"] > 0.5


def test_pc1_separation_hand_made():
    # PC1 is the x axis; one text point sits among the images -> 3 of 4 texts right
    a = np.array([[1.0, 0.05], [1.0, -0.05], [1.0, 0.0], [0.2, 1.0]])
    b = np.array([[-1.0, 0.05], [-1.0, -0.05], [-1.0, 0.0], [-1.0, 0.02]])
    got = M.pc1_stats(a, b)
    assert got["pc1_modality_separation"] == pytest.approx(1.0)
    a2 = np.vstack([a[:3], [[-1.0, 0.03]]])  # one image on the text side
    assert M.pc1_stats(a2, b)["pc1_modality_separation"] == pytest.approx(0.875)


# ---------------------------------------------------------------------- retrieval


def recall_reference(img, txt, t2i, ks):
    """Brute force: full similarity matrix, full argsort."""
    sim = unit(img) @ unit(txt).T
    out = {}
    order_i2t = np.argsort(-sim, axis=1, kind="stable")
    order_t2i = np.argsort(-sim.T, axis=1, kind="stable")
    for k in ks:
        hits = [np.any(t2i[order_i2t[i, :k]] == i) for i in range(len(img))]
        out[f"i2t_R@{k}"] = 100.0 * np.mean(hits)
    for k in ks:
        hits = [t2i[j] in order_t2i[j, :k] for j in range(len(txt))]
        out[f"t2i_R@{k}"] = 100.0 * np.mean(hits)
    out["mean_recall"] = np.mean(list(out.values()))
    return out


@pytest.mark.parametrize("batch_size", [1024, 7])
def test_recall_matches_brute_force(batch_size):
    rng = np.random.default_rng(2)
    n_img, d = 60, 16
    img = rng.normal(size=(n_img, d))
    per = rng.integers(1, 6, size=n_img)  # 1..5 captions per image
    t2i = np.repeat(np.arange(n_img), per)
    rng.shuffle(t2i)
    txt = img[t2i] + 1.2 * rng.normal(size=(len(t2i), d)) + 0.5  # noisy captions, with a gap
    ks = (1, 3, 5, 10)
    expected = recall_reference(img, txt, t2i, ks)
    got = M.retrieval_recall(img, txt, t2i, ks=ks, batch_size=batch_size)
    assert list(got) == list(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-9), key
    assert 0 < got["i2t_R@1"] < 100


def test_recall_hand_made():
    # 3 images on the axes; captions 0,1 -> image 0, 2 -> image 1, 3 -> image 2
    img = np.eye(3)
    txt = np.array(
        [
            [0.1, 1.0, 0.0],  # image 0's caption, but closest to image 1
            [1.0, 0.2, 0.0],  # image 0's caption, closest to image 0
            [0.0, 1.0, 0.05],  # image 1's caption, closest to image 1
            [1.0, 0.0, 0.3],  # image 2's caption, closest to image 0, then image 2
        ]
    )
    t2i = [0, 0, 1, 2]
    got = M.retrieval_recall(img, txt, t2i, ks=(1, 2))
    # image 0: best own caption #1 (0.98) beats all -> hit; image 1: #2 (0.9988) > #0
    # (0.995) -> hit; image 2: #3 (0.287) > #2 (0.05) -> hit
    assert got["i2t_R@1"] == pytest.approx(100.0)
    assert got["i2t_R@2"] == pytest.approx(100.0)
    # texts: #0 ranks image 1 first (miss at 1, hit at 2); #1, #2 hit; #3 like #0
    assert got["t2i_R@1"] == pytest.approx(50.0)
    assert got["t2i_R@2"] == pytest.approx(100.0)
    assert got["mean_recall"] == pytest.approx((100 + 100 + 50 + 100) / 4)


def test_recall_ties_count_for_the_query():
    # both captions are the same vector, equally similar to both images
    img = np.eye(2)
    txt = np.ones((2, 2))
    got = M.retrieval_recall(img, txt, [0, 1], ks=(1,))
    assert got["i2t_R@1"] == 100.0 and got["t2i_R@1"] == 100.0


def test_recall_one_caption_per_image_perfect_and_torch_input():
    rng = np.random.default_rng(4)
    img = rng.normal(size=(30, 8))
    got = M.retrieval_recall(torch.tensor(img), torch.tensor(img), torch.arange(30), ks=[1])
    assert got == {"i2t_R@1": 100.0, "t2i_R@1": 100.0, "mean_recall": 100.0}


# ---------------------------------------------------------------------- gap_report


def test_gap_report_is_flat_dict_of_floats():
    a, b = two_modalities(30, 20, 8, 0.5, seed=9)
    rep = M.gap_report(a, b)
    assert set(rep) == {
        "gap", "silhouette", "image_to_image_centroid", "image_to_text_centroid",
        "text_to_text_centroid", "text_to_image_centroid", "pc1_variance_share",
        "pc1_modality_separation",
    }
    assert all(isinstance(v, float) for v in rep.values())
    assert rep["gap"] == pytest.approx(M.modality_gap(a, b))
    assert rep["silhouette"] == pytest.approx(M.modality_silhouette(a, b))


# ---------------------------------------------------------------------- bad inputs


def _good():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 4)), rng.normal(size=(9, 4)), np.arange(9) % 6


@pytest.mark.parametrize("fn", [M.modality_gap, M.modality_silhouette, M.centroid_distances, M.pc1_stats])
def test_pair_functions_reject_bad_inputs(fn):
    a, b, _ = _good()
    bad_nan = a.copy()
    bad_nan[2, 1] = np.nan
    bad_inf = b.copy()
    bad_inf[0, 0] = np.inf
    zero = a.copy()
    zero[3] = 0
    with pytest.raises(ValueError, match="a contains NaN/inf"):
        fn(bad_nan, b)
    with pytest.raises(ValueError, match="b contains NaN/inf"):
        fn(a, bad_inf)
    with pytest.raises(ValueError, match="^a must be a 2-D"):
        fn(a[0], b)
    with pytest.raises(ValueError, match="^b must be a 2-D"):
        fn(a, b[None])
    with pytest.raises(ValueError, match="a and b must have the same embedding dimension"):
        fn(a, b[:, :3])
    with pytest.raises(ValueError, match="^a is empty"):
        fn(a[:0], b)
    with pytest.raises(ValueError, match="^a has zero-norm rows"):
        fn(zero, b)
    with pytest.raises(ValueError, match="^b must be a real numeric"):
        fn(a, np.array([["x", "y"]]))


def test_silhouette_rejects_bad_batch_size():
    a, b, _ = _good()
    for bs in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            M.modality_silhouette(a, b, batch_size=bs)


def test_gap_report_names_its_arguments():
    a, b, _ = _good()
    a[0, 0] = np.nan
    with pytest.raises(ValueError, match="image_emb contains NaN/inf"):
        M.gap_report(a, b)
    with pytest.raises(ValueError, match="text_emb contains NaN/inf"):
        M.gap_report(b, a)


def test_recall_rejects_bad_inputs():
    img, txt, t2i = _good()
    R = M.retrieval_recall
    with pytest.raises(ValueError, match="image_emb contains NaN/inf"):
        R(np.full_like(img, np.nan), txt, t2i)
    with pytest.raises(ValueError, match="text_emb contains NaN/inf"):
        R(img, np.full_like(txt, np.inf), t2i)
    with pytest.raises(ValueError, match="image_emb and text_emb must have the same embedding"):
        R(img, txt[:, :2], t2i)
    with pytest.raises(ValueError, match="^text_emb must be a 2-D"):
        R(img, txt[0], t2i)
    with pytest.raises(ValueError, match="^text_to_image has length 8"):
        R(img, txt, t2i[:8])
    with pytest.raises(ValueError, match="^text_to_image has indices outside"):
        R(img, txt, np.r_[t2i[:-1], 6])
    with pytest.raises(ValueError, match="^text_to_image has indices outside"):
        R(img, txt, np.r_[t2i[:-1], -1])
    with pytest.raises(ValueError, match="^text_to_image must contain integer"):
        R(img, txt, t2i.astype(float))
    with pytest.raises(ValueError, match="^text_to_image must be 1-D"):
        R(img, txt, t2i[None])
    with pytest.raises(ValueError, match="^image 5 has no caption"):
        R(img, txt, t2i % 5)
    with pytest.raises(ValueError, match="^ks"):
        R(img, txt, t2i, ks=(1, 0))
    with pytest.raises(ValueError, match="^ks"):
        R(img, txt, t2i, ks=())
    with pytest.raises(ValueError, match="^ks"):
        R(img, txt, t2i, ks=(-1,))
    with pytest.raises(ValueError, match="^batch_size"):
        R(img, txt, t2i, batch_size=0)
    with pytest.raises(ValueError, match="^image_emb is empty"):
        R(img[:0], txt, t2i)
