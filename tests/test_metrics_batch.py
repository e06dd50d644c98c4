"""Seed 003's batch metrics (accuracy, loss, average similarity within validation batches) against hand loops."""

import math

import numpy as np
import pytest

from labkit.metrics import batch_metrics


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_batch_metrics_match_a_hand_computation():
    rng = np.random.default_rng(0)
    img, txt = _unit(rng.normal(size=(10, 4))), _unit(rng.normal(size=(10, 4)))
    txt[:6] = _unit(img[:6] + 0.3 * rng.normal(size=(6, 4)))  # some pairs match
    out = batch_metrics(img, txt, batch_size=4, temperature=0.5)  # batches rows 0-3, 4-7; rows 8-9 dropped
    acc, acc_t, loss, pos, neg = [], [], [], [], []
    for start in (0, 4):
        for i in range(start, start + 4):
            sims = [float(img[i] @ txt[j]) for j in range(start, start + 4)]
            own = sims[i - start]
            acc.append(own > max(s for k, s in enumerate(sims) if k != i - start))
            loss.append(-own / 0.5 + math.log(sum(math.exp(s / 0.5) for s in sims)))
            pos.append(own)
            neg.extend(s for k, s in enumerate(sims) if k != i - start)
            col = [float(img[j] @ txt[i]) for j in range(start, start + 4)]
            acc_t.append(col[i - start] > max(s for k, s in enumerate(col) if k != i - start))
    assert out["accuracy"] == pytest.approx(np.mean(acc))
    assert out["accuracy_t2i"] == pytest.approx(np.mean(acc_t))
    assert out["loss"] == pytest.approx(np.mean(loss), rel=1e-6)
    assert out["avg_similarity"] == pytest.approx(np.mean(pos))
    assert out["avg_similarity_negatives"] == pytest.approx(np.mean(neg))
    assert out["margin"] == pytest.approx(np.mean(pos) - np.mean(neg))
    assert out["n_batches"] == 2 and out["chance_accuracy"] == 0.25


def test_perfect_pairs_score_one_and_chance_depends_on_the_batch_size():
    x = np.eye(8)
    out = batch_metrics(x, x, batch_size=8, logit_scale=100.0)
    assert out["accuracy"] == 1.0 and out["avg_similarity"] == pytest.approx(1.0)
    assert out["loss"] == pytest.approx(math.log(1 + 7 * math.exp(-100)), abs=1e-12)
    small = batch_metrics(x[:3], x[:3], batch_size=8)  # fewer rows than a batch: one batch of all rows
    assert small["batch_size_used"] == 3 and small["n_batches"] == 1


def test_batch_metrics_validate_their_inputs():
    x = np.eye(4)
    with pytest.raises(ValueError, match="batch_size"):
        batch_metrics(x, x, batch_size=0)
    with pytest.raises(ValueError, match="row-aligned"):
        batch_metrics(x, x[:3], batch_size=2)
    with pytest.raises(ValueError, match="not both"):
        batch_metrics(x, x, 2, logit_scale=10.0, temperature=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        batch_metrics(x[:1], x[:1], batch_size=4)
    with pytest.raises(ValueError, match="NaN"):
        batch_metrics(np.full((4, 4), np.nan), x, 2)
