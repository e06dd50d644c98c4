"""The expected N-way R@1 against brute-force enumeration of every distractor set and against the sampled task."""

import itertools
import math

import numpy as np
import pytest

from labkit.metrics import expected_nway_recall, expected_nway_retrieval, nway_recall


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pairs(n, d, noise, seed):
    """Row-aligned pairs on the unit sphere (the N-way task compares cosine similarities)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    return unit(a), unit(a + noise * rng.normal(size=(n, d)))


@pytest.mark.parametrize("n,n_way", [(7, 2), (7, 3), (8, 5), (6, 6)])
def test_equals_enumeration_of_all_distractor_sets(n, n_way):
    q, t = pairs(n, 4, 1.0, seed=n + n_way)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    hits = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        sets = list(itertools.combinations(others, n_way - 1))
        own = qn[i] @ tn[i]
        hits.append(sum(all(qn[i] @ tn[j] < own for j in s) for s in sets) / len(sets))
    assert expected_nway_recall(q, t, n_way) == pytest.approx(float(np.mean(hits)), abs=1e-12)


def test_is_the_mean_of_the_sampled_task():
    q, t = pairs(60, 8, 1.2, seed=3)
    sampled = np.mean([nway_recall(q, t, 5, seed=s) for s in range(400)])
    assert expected_nway_recall(q, t, 5) == pytest.approx(sampled, abs=0.01)


def test_limits_and_inputs():
    q, _ = pairs(20, 5, 0.0, seed=1)
    assert expected_nway_recall(q, q, 5) == pytest.approx(1.0)  # every pair is its own nearest
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    assert abs(expected_nway_recall(a, b, 5) - 0.2) < 0.03  # unrelated: chance 1/N
    both = expected_nway_retrieval(*pairs(30, 6, 0.8, seed=2), n_way=4)
    assert set(both) == {"i2t", "t2i"} and all(0 <= v <= 1 for v in both.values())
    assert math.isclose(expected_nway_recall(q, q, 2, batch_size=3), 1.0)
    with pytest.raises(ValueError, match="n_way"):
        expected_nway_recall(q, q, 21)
    with pytest.raises(ValueError, match="row-aligned"):
        expected_nway_recall(q, q[:5], 3)
