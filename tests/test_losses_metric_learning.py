"""Seed 001 losses vs brute-force Python-loop evaluations of their equations."""

import math

import pytest
import torch

from labkit.losses import Features, Objective
from labkit.losses.metric_learning import (AngularNPSym, CrossModalLoss, ImageNeighbourLoss, StructureLoss,
                                    TextNeighbourLoss, TripletNPSym, angular_hinge, ours_objective, triplet_hinge)


def sq(u, v):
    return sum((float(a) - float(b)) ** 2 for a, b in zip(u, v))


def trip_bf(a, p, n, m):  # eq. 1
    return max(0.0, sq(a, p) - sq(a, n) + m)


def ang_bf(a, p, n, angle_deg):  # eq. 2
    c = [(float(x) + float(y)) / 2 for x, y in zip(a, p)]
    return max(0.0, sq(a, p) - 4 * math.tan(math.radians(angle_deg)) ** 2 * sq(n, c))


def np_bf(hinge, A, P, Neg, **kw):  # eq. 3, mean over anchors of the sum over j != i
    n = len(A)
    return sum(sum(hinge(A[i], P[i], Neg[j], **kw) for j in range(n) if j != i) for i in range(n)) / n


def unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


class FixedPairs:
    """A stand-in for NeighbourPairs: returns given neighbour embeddings."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def encode(self, features):
        return self.x, self.y


def test_hinges_match_equations_and_hinge_at_zero():
    a, p, n = unit(3, 4, 0)
    assert float(triplet_hinge(a, p, n, margin=0.3)) == pytest.approx(trip_bf(a, p, n, 0.3))
    assert float(angular_hinge(a, p, n, angle_deg=40)) == pytest.approx(ang_bf(a, p, n, 40))
    # the hinge: a satisfied triplet gives exactly 0 and no gradient
    a2 = torch.tensor([1.0, 0.0], requires_grad=True)
    zero = triplet_hinge(a2, torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]), margin=0.5)
    assert float(zero.detach()) == 0.0
    zero.backward()
    assert torch.all(a2.grad == 0)
    assert float(angular_hinge(a2, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).detach()) == 0.0
    # and a violated one is positive
    assert float(triplet_hinge(torch.tensor([1.0, 0]), torch.tensor([0, 1.0]), torch.tensor([1.0, 0]), 0.1)) == \
        pytest.approx(2.1)


@pytest.mark.parametrize("kind,bf,kw", [("angular", ang_bf, {"angle_deg": 35.0}),
                                         ("triplet", trip_bf, {"m": 0.2})])
def test_cross_modal_np_sym(kind, bf, kw):
    x, y = unit(5, 3, 1), unit(5, 3, 2)
    term = CrossModalLoss(kind, symmetric=True, **({"angle_deg": 35.0} if kind == "angular" else {"margin": 0.2}))
    loss, logs = term(Features(x, y, torch.tensor(1.0)))
    i2t = np_bf(bf, x, y, y, **kw)  # T = (x_i, y_i, y_j)
    t2i = np_bf(bf, y, x, x, **kw)  # T_sym = (y_i, x_i, x_j)
    assert float(loss) == pytest.approx(i2t + t2i)
    assert logs["i2t"] == pytest.approx(i2t) and logs["t2i"] == pytest.approx(t2i)
    # the symmetric swap: exchanging the modalities exchanges the two halves, the sum is unchanged
    swapped, logs2 = term(Features(y, x, torch.tensor(1.0)))
    assert float(swapped) == pytest.approx(float(loss))
    assert logs2["i2t"] == pytest.approx(t2i) and logs2["t2i"] == pytest.approx(i2t)
    one_way, _ = CrossModalLoss(kind, symmetric=False)(Features(x, y, torch.tensor(1.0)))
    default_kw = {"angle_deg": 30.0} if kind == "angular" else {"m": 0.2}
    assert float(one_way) == pytest.approx(np_bf(bf, x, y, y, **default_kw))


def test_factories_are_the_paper_baselines():
    assert AngularNPSym().kind == "angular" and AngularNPSym().symmetric
    assert TripletNPSym().kind == "triplet" and TripletNPSym().symmetric


def test_text_and_image_neighbour_losses_eq6_eq7():
    x, y = unit(4, 3, 3), unit(4, 3, 4)
    xn, yn = unit(4, 3, 5), unit(4, 3, 6)  # x_{i'}, y_{i'}
    pairs = FixedPairs(xn, yn)
    f = Features(x, y, torch.tensor(1.0))
    lt, _ = TextNeighbourLoss(pairs, "angular", angle_deg=30.0)(f)
    li, _ = ImageNeighbourLoss(pairs, "angular", angle_deg=30.0)(f)
    assert float(lt) == pytest.approx(np_bf(ang_bf, y, yn, y, angle_deg=30.0))  # (y_i, y_i', y_j)
    assert float(li) == pytest.approx(np_bf(ang_bf, x, xn, x, angle_deg=30.0))  # (x_i, x_i', x_j)
    lt3, _ = TextNeighbourLoss(pairs, "triplet", margin=0.2)(f)
    assert float(lt3) == pytest.approx(np_bf(trip_bf, y, yn, y, m=0.2))


def test_ours_objective_eq8_weights_and_ablations():
    x, y = unit(4, 3, 7), unit(4, 3, 8)
    xn, yn = unit(4, 3, 9), unit(4, 3, 10)
    f = Features(x, y, torch.tensor(1.0))
    total, logs = ours_objective(FixedPairs(xn, yn), "angular")(f)
    expect = (np_bf(ang_bf, x, y, y, angle_deg=30.0) + np_bf(ang_bf, y, x, x, angle_deg=30.0)
              + 0.2 * np_bf(ang_bf, y, yn, y, angle_deg=30.0) + 0.3 * np_bf(ang_bf, x, xn, x, angle_deg=30.0))
    assert float(total) == pytest.approx(expect)
    trip = ours_objective(FixedPairs(xn, yn), "triplet")
    assert trip.weights == {"cross": 1.0, "text": 0.3, "img": 0.1}
    assert set(ours_objective(FixedPairs(xn, yn), text=False).terms) == {"cross", "img"}
    assert set(ours_objective(FixedPairs(xn, yn), image=False).terms) == {"cross", "text"}
    assert isinstance(trip, Objective)


def test_structure_loss_wang2016():
    x, y = unit(4, 3, 11), unit(4, 3, 12)
    yp, xp = unit(4, 3, 13), unit(4, 3, 14)

    def d(u, v):
        return math.sqrt(sq(u, v))

    def struc_bf(a, p, n, m):
        return max(0.0, d(a, p) - d(a, n) + m)

    f = Features(x, y, torch.tensor(1.0))
    lt, _ = StructureLoss(FixedPairs(xp, yp), "text", margin=0.1)(f)
    li, _ = StructureLoss(FixedPairs(xp, yp), "image", margin=0.1)(f)
    assert float(lt) == pytest.approx(np_bf(struc_bf, y, yp, y, m=0.1), rel=1e-6)
    assert float(li) == pytest.approx(np_bf(struc_bf, x, xp, x, m=0.1), rel=1e-6)
