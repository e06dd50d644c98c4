"""The center loss (seed 002 eq. 1) and Wen et al.'s centre update, against hand computations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit.losses import Features, Objective
from labkit.losses.center import (BatchIdentitySoftmax, CenterLoss, IdentitySoftmax, center_loss, center_objective,
                                  center_update, stack_groups)
from labkit.losses.intra_modal import supcon_infonce


def _features(image, text, pair_ids):
    return Features(image, text, torch.tensor(10.0), {"pair_id": torch.tensor(pair_ids)})


def test_stack_groups_orders_captions_item_major():
    image = torch.arange(4.0).view(2, 2)
    text = torch.arange(100.0, 112.0).view(6, 2)  # 3 captions per image
    x, y = stack_groups(_features(image, text, [7, 9]), torch.tensor([7, 9]))
    assert y.tolist() == [7, 9, 7, 7, 7, 9, 9, 9]
    torch.testing.assert_close(x, torch.cat([image, text]))


def test_loss_value_and_gradient_by_hand():
    torch.manual_seed(0)
    loss_fn = CenterLoss([3, 5, 8], dim=2, alpha=0.5, init="zeros")
    loss_fn.centers.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    image = torch.tensor([[0.5, 0.5], [2.0, 0.0]], requires_grad=True)
    text = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)  # one caption per image
    loss, _ = loss_fn(_features(image, text, [5, 8]))
    # rows: image(5), image(8), text(5), text(8); centres c5 = (0, 1), c8 = (-1, 0)
    expected = 0.5 * np.mean([0.25 + 0.25, 9.0, 0.0 + 1.0, 4.0 + 1.0])
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    # d/dx of ½ mean ||x − c||² = (x − c) / m, m = 4 rows
    torch.testing.assert_close(image.grad, torch.tensor([[0.5, -0.5], [3.0, 0.0]]) / 4)
    torch.testing.assert_close(text.grad, torch.tensor([[0.0, -1.0], [2.0, 1.0]]) / 4)
    summed = CenterLoss([3, 5, 8], dim=2, init="zeros", reduction="sum")
    summed.centers.copy_(loss_fn.centers)
    assert summed(_features(image, text, [5, 8]))[0].item() == pytest.approx(4 * expected)


def test_wen_centre_update_by_hand():
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0], [4.0, 4.0]])
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 0, 1])  # class 0 twice, class 1 once, class 2 absent
    alpha = 0.5
    expected = centers.clone()
    for j in range(3):  # Δc_j = Σ_{y_i=j}(c_j − x_i) / (1 + n_j); c_j ← c_j − α Δc_j
        members = [i for i in range(3) if y[i] == j]
        if not members:
            continue
        delta = sum(centers[j] - x[i] for i in members) / (1 + len(members))
        expected[j] = centers[j] - alpha * delta
    center_update(centers, x, y, alpha)
    torch.testing.assert_close(centers, expected)
    torch.testing.assert_close(centers[0], torch.tensor([2.0 / 3.0, 0.0]))  # 0 − 0.5 · (−4, 0)/3
    torch.testing.assert_close(centers[2], torch.tensor([4.0, 4.0]))  # absent: unchanged


def test_end_step_moves_only_the_batch_centres_through_the_objective():
    loss_fn = CenterLoss([10, 11, 12], dim=2, alpha=0.25, init="zeros")
    objective = Objective({"center": loss_fn})
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.0, 1.0]])  # k = 2 captions per image
    objective(_features(image, text, [10, 12]))
    assert torch.equal(loss_fn.centers, torch.zeros(3, 2))  # the forward pass does not move them
    objective.end_step(None)
    c10 = 0.25 * (torch.tensor([1.0, 0.0]) + torch.tensor([1.0, 0.0]) + torch.tensor([0.6, 0.8])) / 4
    c12 = 0.25 * 3 * torch.tensor([0.0, 1.0]) / 4
    torch.testing.assert_close(loss_fn.centers, torch.stack([c10, torch.zeros(2), c12]))
    objective.end_step(None)  # nothing pending: no second move
    torch.testing.assert_close(loss_fn.centers[0], c10)
    loss_fn.eval()
    objective(_features(image, text, [10, 12]))
    objective.end_step(None)  # evaluation passes never move the centres
    torch.testing.assert_close(loss_fn.centers[0], c10)


def test_centres_are_a_buffer_and_checked():
    loss_fn = CenterLoss([1, 2], dim=4, seed=0)
    assert "centers" in dict(loss_fn.named_buffers()) and not list(loss_fn.parameters())
    torch.testing.assert_close(loss_fn.centers.norm(dim=1), torch.ones(2))  # random unit init
    with pytest.raises(ValueError, match="pair id 5 has no centre"):
        loss_fn(_features(torch.zeros(1, 4), torch.zeros(1, 4), [5]))
    with pytest.raises(ValueError, match="alpha"):
        CenterLoss([1], dim=2, alpha=1.5)
    with pytest.raises(ValueError, match="class_ids"):
        CenterLoss([], dim=2)
    with pytest.raises(ValueError, match="whole number"):
        loss_fn(_features(torch.zeros(2, 4), torch.zeros(3, 4), [1, 2]))


def test_softmax_partners():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(3, 8), dim=1)
    text = F.normalize(torch.randn(6, 8), dim=1)
    f = _features(image, text, [4, 2, 9])
    x, y = stack_groups(f, torch.tensor([4, 2, 9]))
    loss, _ = BatchIdentitySoftmax(temperature=0.2)(f)
    torch.testing.assert_close(loss, supcon_infonce(x, y, 5.0))
    clf = IdentitySoftmax([2, 4, 9], dim=8, scale=10.0, seed=0)
    logits = 10.0 * x @ F.normalize(clf.weight, dim=1).T
    expected = F.cross_entropy(logits, torch.tensor([1, 0, 2, 1, 1, 0, 0, 2, 2]))
    torch.testing.assert_close(clf(f)[0], expected)


def test_center_objective_kinds():
    ids = [0, 1, 2]
    assert list(center_objective(ids, 4).terms) == ["softmax", "center"]
    assert isinstance(center_objective(ids, 4, softmax="parametric").terms["softmax"], IdentitySoftmax)
    assert list(center_objective(ids, 4, softmax="none").terms) == ["center"]
    assert center_objective(ids, 4, lambda_c=0.3).weights["center"] == 0.3
    with pytest.raises(ValueError, match="softmax"):
        center_objective(ids, 4, softmax="arcface")


def test_functional_center_loss_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([1, 0, 1])
    rows = [0.5 * ((1 - 1) ** 2 + (2 - 1) ** 2), 0.0, 0.5 * ((3 - 1) ** 2 + (-1 - 1) ** 2)]
    assert center_loss(x, y, centers).item() == pytest.approx(np.mean(rows))
    assert center_loss(x, y, centers, reduction="sum").item() == pytest.approx(sum(rows))
    with pytest.raises(ValueError, match="reduction"):
        center_loss(x, y, centers, reduction="max")
