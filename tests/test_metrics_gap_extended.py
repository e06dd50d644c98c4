"""The gap measures beyond the centroid distance, each against an independent computation (loops, full matrices,
a hand-written logistic regression)."""

import numpy as np
import pytest
import torch

from labkit import metrics as M


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pairs(n, d, offset, seed, noise=0.3):
    """n row-aligned pairs: texts are noisy copies of the images, then both modalities are shifted apart."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = a + noise * rng.normal(size=(n, d))
    shift = np.zeros(d)
    shift[0] = offset
    return unit(a + shift), unit(b - shift)


# ---------------------------------------------------------------------- relative modality gap


def rmg_by_loops(a, b):
    a, b = unit(a), unit(b)
    n = len(a)
    d = lambda x, y: (1.0 - float(x @ y)) / 2.0  # noqa: E731
    match = sum(d(a[i], b[i]) for i in range(n)) / n
    within_a = sum(d(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(d(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return match / (match + (within_a + within_b) / 2)


@pytest.mark.parametrize("n,d,offset", [(12, 5, 0.0), (30, 8, 1.0), (7, 3, 3.0), (2, 4, 0.5)])
def test_relative_gap_matches_loops(n, d, offset):
    a, b = pairs(n, d, offset, seed=n)
    assert M.relative_modality_gap(a, b) == pytest.approx(rmg_by_loops(a, b), abs=1e-12)


def test_relative_gap_limits_and_inputs():
    a, b = pairs(20, 6, 0.0, seed=1, noise=0.0)
    assert M.relative_modality_gap(a, b) == 0.0  # every pair coincides
    a, b = pairs(20, 6, 0.0, seed=1)
    scale = np.random.default_rng(0).uniform(0.5, 3, size=(20, 1))
    assert M.relative_modality_gap(a * scale, torch.from_numpy(b)) == pytest.approx(M.relative_modality_gap(a, b))
    far = M.relative_modality_gap(*pairs(20, 6, 5.0, seed=1))
    assert 0.5 < far <= 1.0  # pairs farther apart than two random points of one modality
    with pytest.raises(ValueError, match="equal length"):
        M.relative_modality_gap(a, b[:10])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        M.relative_modality_gap(a[:1], b[:1])
    with pytest.raises(ValueError, match="image_emb contains NaN"):
        M.relative_modality_gap(np.full_like(a, np.nan), b)


# ---------------------------------------------------------------------- linear separability


def logistic_by_newton(x, y, C, iters=50):
    """Minimise C * sum(log-loss) + ||w||^2 / 2 (scikit-learn's objective; the intercept is not penalised) by
    Newton's method — an independent implementation of the same strictly convex problem."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = C * xb.T @ (p - y) + reg @ w
        hess = C * (xb.T * (p * (1 - p))) @ xb + reg
        w -= np.linalg.solve(hess, grad)
    return w


def separability_by_hand(a, b, test_fraction=0.3, seed=0, C=1.0):
    from sklearn.model_selection import train_test_split  # the split only: the classifier is written out below

    x = np.vstack([unit(a), unit(b)])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    sd[sd == 0] = 1.0
    w = logistic_by_newton((x_tr - mu) / sd, y_tr, C)
    scores = np.hstack([(x_te - mu) / sd, np.ones((len(x_te), 1))]) @ w
    return float(((scores > 0) == y_te).mean())


@pytest.mark.parametrize("offset,seed", [(0.0, 0), (0.15, 1), (0.4, 2)])
def test_separability_matches_a_hand_written_logistic_regression(offset, seed):
    a, b = pairs(80, 6, offset, seed=seed, noise=1.0)
    assert M.linear_separability(a, b, seed=seed) == pytest.approx(separability_by_hand(a, b, seed=seed), abs=1 / 48)


def test_separability_limits_and_inputs():
    a, b = pairs(100, 8, 3.0, seed=3)
    assert M.linear_separability(a, b) == 1.0
    rng = np.random.default_rng(4)
    same = rng.normal(size=(400, 8))
    assert abs(M.linear_separability(same[:200], same[200:]) - 0.5) < 0.1
    assert M.linear_separability(a, b, seed=5) == M.linear_separability(a, b, seed=5)  # seeded split
    with pytest.raises(ValueError, match="at least 4 rows"):
        M.linear_separability(a[:3], b)
    with pytest.raises(ValueError, match="test_fraction"):
        M.linear_separability(a, b, test_fraction=1.5)
    with pytest.raises(ValueError, match="^C must"):
        M.linear_separability(a, b, C=0)


def test_small_gap_can_be_perfectly_separable():
    """Fahim et al.: two thin parallel sheets — a small centroid distance, separability 1."""
    rng = np.random.default_rng(0)
    core = rng.normal(size=(300, 16))
    core[:, 0] = 0.0
    a = unit(core + np.r_[0.08, np.zeros(15)])
    b = unit(core - np.r_[0.08, np.zeros(15)] + 0.01 * rng.normal(size=(300, 16)))
    assert M.modality_gap(a, b) < 0.1
    assert M.linear_separability(a, b) == 1.0


# ---------------------------------------------------------------------- the gap's dimensions


def test_dimension_shares_match_loops():
    a, b = pairs(40, 10, 0.7, seed=5)
    diff = [sum(a[i, k] for i in range(40)) / 40 - sum(b[i, k] for i in range(40)) / 40 for k in range(10)]
    sq = sorted((v * v for v in diff), reverse=True)
    got = M.gap_dimension_shares(a, b, ks=(1, 3, 10, 50))
    for k in (1, 3, 10, 50):
        assert got[f"gap_top{k}_share"] == pytest.approx(sum(sq[:k]) / sum(sq), abs=1e-12)
    assert got["gap_top10_share"] == pytest.approx(1.0)
    assert M.gap_dimension_shares(a, a, ks=2) == {"gap_top2_share": 0.0}
    with pytest.raises(ValueError, match="ks"):
        M.gap_dimension_shares(a, b, ks=(0,))


def test_drop_gap_dimensions_removes_the_largest_mean_differences():
    a, b = pairs(40, 10, 0.0, seed=6)
    a[:, 7] += 2.0  # coordinate 7 carries the gap
    a = unit(a)
    x, y = M.drop_gap_dimensions(a, b, 1)
    assert x.shape == y.shape == (40, 9)
    np.testing.assert_allclose(x, unit(np.delete(a, 7, axis=1)), atol=1e-12)
    np.testing.assert_allclose(y, unit(np.delete(b, 7, axis=1)), atol=1e-12)
    assert M.modality_gap(x, y) < M.modality_gap(a, b)
    with pytest.raises(ValueError, match="smaller than the embedding width"):
        M.drop_gap_dimensions(a, b, 10)


# ---------------------------------------------------------------------- centering and shifting


def test_centering_matches_loops_and_closes_the_gap():
    a, b = pairs(30, 6, 1.0, seed=7)
    x, y = M.center_modalities(a, b)
    mu_a = [sum(a[i, k] for i in range(30)) / 30 for k in range(6)]
    for i in range(30):
        v = [a[i, k] - mu_a[k] for k in range(6)]
        norm = sum(t * t for t in v) ** 0.5
        np.testing.assert_allclose(x[i], [t / norm for t in v], atol=1e-12)
    assert M.modality_gap(x, y) < 0.2 * M.modality_gap(a, b)
    # means estimated elsewhere are applied as given
    x2, _ = M.center_modalities(a, b, image_mean=np.zeros(6), text_mean=b.mean(0))
    np.testing.assert_allclose(x2, a, atol=1e-12)
    with pytest.raises(ValueError, match="image_mean"):
        M.center_modalities(a, b, image_mean=np.zeros(5))
    with pytest.raises(ValueError, match="zero-norm"):
        M.center_modalities(a[:1], b)


def test_shift_along_gap_follows_mind_the_gap():
    a, b = pairs(50, 8, 1.0, seed=8)
    g = a.mean(0) - b.mean(0)
    g /= np.linalg.norm(g)
    np.testing.assert_allclose(M.gap_direction(a, b), g, atol=1e-12)
    x, y = M.shift_along_gap(a, b, 0.6)
    np.testing.assert_allclose(x, unit(a - 0.3 * g), atol=1e-12)
    np.testing.assert_allclose(y, unit(b + 0.3 * g), atol=1e-12)
    x0, y0 = M.shift_along_gap(a, b, 0.0)
    np.testing.assert_allclose(x0, a, atol=1e-12)
    gaps = [M.modality_gap(*M.shift_along_gap(a, b, d)) for d in (0.0, 0.2, 0.4)]
    assert gaps[0] > gaps[1] > gaps[2]  # moving towards each other shrinks the gap
    assert M.modality_gap(*M.shift_along_gap(a, b, -0.4)) > gaps[0]
    with pytest.raises(ValueError, match="same centroid"):
        M.gap_direction(a, a)
    with pytest.raises(ValueError, match="delta"):
        M.shift_along_gap(a, b, float("nan"))


def test_extended_report_keys():
    a, b = pairs(30, 6, 1.0, seed=9)
    rep = M.extended_gap_report(a, b)
    assert {"gap", "silhouette", "relative_gap", "separability", "gap_top1_share", "gap_top4_share"} <= set(rep)
    assert all(isinstance(v, float) for v in rep.values())
