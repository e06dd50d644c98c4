"""precision@k and mAP@k (seed 004 eq. 6) against brute force and scikit-learn's average precision."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from labkit.metrics import (average_precision_at_k, category_retrieval, label_relevance, mean_average_precision,
                            precision_at_k, ranked_relevance)


def _brute_ap(scores, relevant, k, normalise):
    """One query, loops only: rank by score (ties by index), AP@k with the stated normalisation."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:k]
    hits, total = 0, 0.0
    for i, j in enumerate(order, start=1):
        if relevant[j]:
            hits += 1
            total += hits / i
    denom = min(k, int(sum(relevant))) if normalise == "min" else hits
    return total / denom if denom else 0.0


def _unit(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("normalise", ["min", "retrieved"])
@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_map_against_brute_force(normalise, k):
    rng = np.random.default_rng(k)
    q, g = _unit(rng, 12, 5), _unit(rng, 40, 5)
    relevant = rng.random((12, 40)) < 0.2
    relevant[0] = False  # a query with nothing relevant scores 0
    sims = q @ g.T
    expected = np.mean([_brute_ap(sims[i], relevant[i], k, normalise) for i in range(12)])
    assert mean_average_precision(q, g, relevant, k, normalise) == pytest.approx(expected, abs=1e-12)
    top, n_rel = ranked_relevance(q, g, relevant, k)
    brute_p = [np.mean([relevant[i][j] for j in sorted(range(40), key=lambda j: (-sims[i][j], j))[:k]])
               for i in range(12)]
    np.testing.assert_allclose(precision_at_k(top), brute_p)
    np.testing.assert_array_equal(n_rel, relevant.sum(1))


def test_equals_sklearn_average_precision_over_the_whole_gallery():
    rng = np.random.default_rng(0)
    q, g = _unit(rng, 8, 6), _unit(rng, 30, 6)
    relevant = rng.random((8, 30)) < 0.3
    relevant[:, 0] = True  # every query has something relevant (sklearn's AP needs a positive)
    sims = q @ g.T  # continuous: no ties
    top, n_rel = ranked_relevance(q, g, relevant, 30)
    for normalise in ("min", "retrieved"):
        ours = average_precision_at_k(top, n_rel, normalise)
        theirs = [average_precision_score(relevant[i], sims[i]) for i in range(8)]
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_the_two_normalisations_differ_as_documented():
    top = np.array([[False, True, False]])  # one relevant item retrieved at rank 2, three in the gallery
    assert average_precision_at_k(top, np.array([3]), "retrieved")[0] == pytest.approx(0.5)
    assert average_precision_at_k(top, np.array([3]), "min")[0] == pytest.approx(0.5 / 3)
    perfect = np.array([[True, True, False]])
    assert average_precision_at_k(perfect, np.array([2]), "min")[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="normalise"):
        average_precision_at_k(top, np.array([3]), "max")


def test_category_retrieval_on_a_hand_built_space():
    # two categories on two orthogonal axes: every query's same-category items come first
    image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.05]])
    text = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, -0.1], [0.0, 1.0]])
    out = category_retrieval(image, text, [0, 1, 0], [0, 1, 0, 1], ks=(2, 4))
    assert out["i2t_mAP@2"] == pytest.approx(1.0) and out["t2i_mAP@2"] == pytest.approx(1.0)
    assert out["i2t_P@4"] == pytest.approx(0.5) and out["t2i_P@2"] == pytest.approx((1 + 0.5 + 1 + 0.5) / 4)
    np.testing.assert_array_equal(label_relevance([0, 1], [1, 1, 0]), [[False, False, True], [True, True, False]])


def test_bad_inputs_name_the_parameter():
    rng = np.random.default_rng(0)
    q, g = _unit(rng, 3, 4), _unit(rng, 5, 4)
    with pytest.raises(ValueError, match="relevant"):
        ranked_relevance(q, g, np.zeros((3, 4), bool), 2)
    with pytest.raises(ValueError, match="k must be"):
        ranked_relevance(q, g, np.zeros((3, 5), bool), 0)
    with pytest.raises(ValueError, match="text_labels"):
        category_retrieval(q, g, [0, 1, 0], [0, 1], ks=(2,))
    with pytest.raises(ValueError, match="image_labels"):
        category_retrieval(q, g, [0.5, 1, 0], [0, 1, 0, 1, 1], ks=(2,))
