"""N-way retrieval and neighbourhood preservation on hand-made examples."""

import numpy as np
import pytest

from labkit.metrics import neighbourhood_preservation, nway_recall, nway_retrieval


def test_nway_recall_hand_made():
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    t = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    # query 0: paired sim 1 > {t1: 1}? tie -> not strictly closer -> miss
    # query 1: paired sim 0 vs t2: 0.8 -> miss; query 2: paired 0.6 vs t1: 1.0 -> miss
    d = np.array([[1], [2], [1]])
    assert nway_recall(q, t, 2, distractors=d) == 0.0
    d = np.array([[2], [0], [1]])
    # q0: 1 vs 0.6 hit; q1: 0 vs 0 tie miss; q2: 0.6 vs 1 miss
    assert nway_recall(q, t, 2, distractors=d) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        nway_recall(q, t, 2, distractors=np.array([[0], [0], [1]]))


def test_nway_perfect_chance_and_seeded():
    e = np.eye(6)
    assert nway_retrieval(e, e, n_way=4, seed=0) == {"i2t": 1.0, "t2i": 1.0}
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    r = nway_recall(a, b, n_way=5, seed=1)
    assert abs(r - 0.2) < 0.03
    assert r == nway_recall(a, b, n_way=5, seed=1)


def test_neighbourhood_preservation_hand_made():
    # 4 points on a line in Ω: neighbours of 0 -> {1}, 1 -> {0 or 2}, ...
    omega = np.array([[1.0, 0.0], [0.9, 0.1], [0.1, 0.9], [0.0, 1.0]])
    assert neighbourhood_preservation(omega, omega, k=1) == 1.0
    assert neighbourhood_preservation(omega, omega, k=3) == 1.0  # all other points
    # a learned space that swaps the pairing: 0<->2 close, 1<->3 close
    learned = np.array([[1.0, 0.0], [0.0, 1.0], [0.99, 0.01], [0.01, 0.99]])
    # Ω 1-NN: 0->1, 1->0, 2->3, 3->2; learned 1-NN: 0->2, 1->3, 2->0, 3->1: none preserved
    assert neighbourhood_preservation(omega, learned, k=1) == 0.0
    # k=2: Ω 0->{1,2} 1->{0,2} 2->{3,1} 3->{2,1}; learned 0->{2,3} 1->{3,2} 2->{0,3} 3->{1,2}
    # overlaps 1/2, 1/2, 1/2, 2/2 -> mean 0.625
    assert neighbourhood_preservation(omega, learned, k=2) == pytest.approx(0.625)
