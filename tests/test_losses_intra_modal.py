"""Seed 004 eq. 2 as printed and the multi-positive InfoNCE, against loops; what eq. 2 does on the sphere."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit.losses import Features
from labkit.losses.intra_modal import IntraModalLoss, eq2_literal, eq2_pair_term, supcon_infonce


def test_eq2_literal_against_a_loop():
    torch.manual_seed(0)
    emb = torch.randn(7, 3)
    labels = torch.tensor([2, 5, 2, 2, 9, 5, 1])  # sets {0, 2, 3}, {1, 5}, {4}, {6}
    pairs = [(0, 2), (2, 3), (1, 5)]  # consecutive members of each set, in batch order
    terms = [abs(float(torch.dist(emb[i], emb[j])) + float(emb[i] @ emb[j])) for i, j in pairs]
    assert eq2_literal(emb, labels, "sum").item() == pytest.approx(sum(terms), rel=1e-6)
    assert eq2_literal(emb, labels).item() == pytest.approx(np.mean(terms), rel=1e-6)
    with pytest.raises(ValueError, match="no two items share a label"):
        eq2_literal(emb, torch.arange(7))


def test_eq2_on_unit_vectors_is_blind_to_the_sign_of_the_pair():
    """sqrt(2 − 2c) + c on [−1, 1]: ≥ 1, = 1 at c = ±1, max 1.5 at c = 1/2 — identical and opposite pairs tie."""
    cos = torch.linspace(-1, 1, 401)
    a = torch.stack([torch.ones_like(cos), torch.zeros_like(cos)], 1)
    b = torch.stack([cos, torch.sqrt(1 - cos ** 2)], 1)
    values = eq2_pair_term(a, b)
    torch.testing.assert_close(values, torch.sqrt(2 - 2 * cos) + cos, atol=1e-5, rtol=0)
    assert values.min().item() == pytest.approx(1.0, abs=1e-5) and values.max().item() == pytest.approx(1.5, abs=1e-4)
    assert values[0].item() == pytest.approx(values[-1].item(), abs=1e-5)  # c = −1 and c = +1
    assert cos[values.argmax()].item() == pytest.approx(0.5, abs=0.01)
    # no negative term: a batch mapped to one point is a minimum whatever the labels say
    collapsed = F.normalize(torch.ones(6, 4), dim=1)
    assert eq2_literal(collapsed, torch.tensor([0, 0, 1, 1, 2, 2])).item() == pytest.approx(1.0, abs=1e-5)
    assert eq2_literal(torch.zeros(4, 3), torch.tensor([0, 0, 1, 1])).item() == 0.0  # unnormalised: zero vectors


def test_supcon_against_a_loop():
    torch.manual_seed(1)
    emb = F.normalize(torch.randn(6, 4), dim=1)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])  # item 3 has no positive: left out
    scale = 7.0
    per_anchor = []
    for a in range(6):
        positives = [p for p in range(6) if p != a and labels[p] == labels[a]]
        if not positives:
            continue
        denom = math.log(sum(math.exp(scale * float(emb[a] @ emb[b])) for b in range(6) if b != a))
        per_anchor.append(-np.mean([scale * float(emb[a] @ emb[p]) - denom for p in positives]))
    assert supcon_infonce(emb, labels, scale).item() == pytest.approx(np.mean(per_anchor), rel=1e-5)
    with pytest.raises(ValueError, match="no item has a positive"):
        supcon_infonce(emb, torch.arange(6), scale)


def test_infonce_separates_what_eq2_lets_collapse():
    """One gradient step from a nearly collapsed batch: InfoNCE spreads the two sets apart; eq. 2 does not care."""
    torch.manual_seed(0)
    base = F.normalize(torch.ones(1, 4), dim=1)
    raw = (base + 0.01 * torch.randn(8, 4)).requires_grad_(True)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])

    def spread(z):
        e = F.normalize(z, dim=1)
        return float(1 - e[:4].mean(0) @ e[4:].mean(0))

    def train(loss_fn):
        z = raw.detach().clone().requires_grad_(True)
        opt = torch.optim.SGD([z], lr=0.05)
        for _ in range(50):
            opt.zero_grad()
            loss_fn(F.normalize(z, dim=1)).backward()
            opt.step()
        return spread(z.detach())

    before = spread(raw.detach())
    assert train(lambda e: supcon_infonce(e, labels, 10.0)) > 10 * before
    assert train(lambda e: eq2_literal(e, labels)) < 2 * before + 1e-3


def test_intra_modal_term_reads_one_modality_and_groups():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, 5), dim=1)  # 3 items × 2 captions
    batch = {"pair_id": torch.tensor([4, 7, 9]), "topic": torch.tensor([1, 1, 2])}
    f = Features(torch.zeros(3, 0), text, torch.tensor(10.0), batch)
    loss, logs = IntraModalLoss("text", "pair_id")(f)
    torch.testing.assert_close(loss, supcon_infonce(text, torch.tensor([4, 4, 7, 7, 9, 9]), torch.tensor(10.0)))
    assert 0 <= logs["nearest_is_positive"] <= 1
    eq2, _ = IntraModalLoss("text", "topic", "eq2")(f)
    torch.testing.assert_close(eq2, eq2_literal(text, torch.tensor([1, 1, 1, 1, 2, 2])))
    image = F.normalize(torch.randn(3, 5), dim=1)
    f = Features(image, torch.zeros(3, 0), torch.tensor(10.0), batch)
    loss, _ = IntraModalLoss("image", "topic")(f)
    torch.testing.assert_close(loss, supcon_infonce(image, batch["topic"], torch.tensor(10.0)))
    for bad in ({"modality": "audio"}, {"positives": "colour"}, {"kind": "triplet"}):
        with pytest.raises(ValueError):
            IntraModalLoss(**bad)
