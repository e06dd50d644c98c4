"""Alignment / uniformity terms (Wang & Isola; Fahim et al.) against Python-loop evaluations of their equations."""

import math

import pytest
import torch
import torch.nn.functional as F

from labkit.losses import Features, Objective
from labkit.losses.uniformity import (UniformityAlignmentLoss, alignment_loss, cross_uniformity_loss,
                                      uniformity_alignment_objective, uniformity_loss)


def batch(n=6, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    y = F.normalize(x + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return x, y


def sqdist(u, v):
    return sum((float(a) - float(b)) ** 2 for a, b in zip(u, v))


def test_alignment_by_loop():
    x, y = batch()
    expected = sum(sqdist(x[i], y[i]) for i in range(6)) / 6
    assert float(alignment_loss(x, y)) == pytest.approx(expected, abs=1e-12)
    expected1 = sum(math.sqrt(sqdist(x[i], y[i])) for i in range(6)) / 6
    assert float(alignment_loss(x, y, alpha=1.0)) == pytest.approx(expected1, abs=1e-12)


def test_uniformity_by_loop():
    x, _ = batch(n=7)
    pots = [math.exp(-2 * sqdist(x[i], x[j])) for i in range(7) for j in range(i + 1, 7)]
    assert float(uniformity_loss(x)) == pytest.approx(math.log(sum(pots) / len(pots)), abs=1e-12)


def test_cross_uniformity_by_loop():
    x, y = batch(n=5)
    pots = [math.exp(-2 * sqdist(x[i], y[j])) for i in range(5) for j in range(5) if i != j]
    assert float(cross_uniformity_loss(x, y)) == pytest.approx(math.log(sum(pots) / len(pots)), abs=1e-12)


def test_uniformity_rewards_spread():
    x, _ = batch(n=32, d=8)
    clumped = F.normalize(x * 0.05 + torch.ones(8, dtype=x.dtype), dim=1)  # a narrow cone
    assert float(uniformity_loss(x)) < float(uniformity_loss(clumped))


def test_term_is_the_weighted_sum_and_logs_parts():
    x, y = batch()
    f = Features(x, y, torch.tensor(10.0))
    value, logs = UniformityAlignmentLoss()(f)
    parts = (alignment_loss(x, y), 0.5 * (uniformity_loss(x) + uniformity_loss(y)), cross_uniformity_loss(x, y))
    assert float(value) == pytest.approx(float(sum(parts)), abs=1e-12)
    assert logs == pytest.approx({"align": float(parts[0]), "uniform": float(parts[1]), "xuniform": float(parts[2])})
    cua, _ = UniformityAlignmentLoss(xuniform=0.0)(f)
    assert float(cua) == pytest.approx(float(parts[0] + parts[1]), abs=1e-12)
    zero, _ = UniformityAlignmentLoss(0.0, 0.0, 0.0)(f)
    assert float(zero) == 0.0


def test_objective_and_gradients_flow():
    x, y = batch()
    x.requires_grad_(True)
    obj = uniformity_alignment_objective()
    assert isinstance(obj, Objective) and set(obj.terms) == {"contrastive", "uniformity_alignment"}
    loss, logs = obj(Features(x, y, torch.tensor(10.0)))
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert {"loss/contrastive", "loss/uniformity_alignment", "uniformity_alignment/align"} <= set(logs)


def test_bad_inputs():
    x, y = batch()
    with pytest.raises(ValueError, match="row-aligned"):
        alignment_loss(x, y[:3])
    with pytest.raises(ValueError, match="at least 2 rows"):
        uniformity_loss(x[:1])
    with pytest.raises(ValueError, match="align"):
        UniformityAlignmentLoss(align=-1.0)
