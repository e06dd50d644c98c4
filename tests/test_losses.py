"""labkit.losses against open_clip's ClipLoss and a direct evaluation of seed 000 eq. 1–3."""

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss as OpenClipLoss

from labkit.losses import ClipLoss, Features, Objective, clip_loss


def _embeddings(n=16, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    txt = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    return img, txt


@pytest.mark.parametrize("n,scale", [(1, 1.0), (4, 14.3), (32, 100.0)])
def test_clip_loss_equals_open_clip(n, scale):
    img, txt = _embeddings(n)
    s = torch.tensor(scale)
    assert torch.allclose(clip_loss(img, txt, s), OpenClipLoss()(img, txt, s), atol=1e-6, rtol=1e-6)


def test_clip_loss_gradients_equal_open_clip():
    img, txt = _embeddings(12)
    a = [t.clone().requires_grad_() for t in (img, txt)]
    b = [t.clone().requires_grad_() for t in (img, txt)]
    clip_loss(*a, torch.tensor(10.0)).backward()
    OpenClipLoss()(*b, torch.tensor(10.0)).backward()
    for x, y in zip(a, b):
        assert torch.allclose(x.grad, y.grad, atol=1e-7)


def test_clip_loss_matches_equation_by_hand():
    """Eq. 2/3 evaluated term by term with Python floats."""
    img, txt = _embeddings(5, 3, seed=1)
    tau = 0.07
    n = img.shape[0]
    a2b = -sum(math.log(math.exp(float(img[i] @ txt[i]) / tau)
                        / sum(math.exp(float(img[i] @ txt[j]) / tau) for j in range(n))) for i in range(n)) / n
    b2a = -sum(math.log(math.exp(float(img[i] @ txt[i]) / tau)
                        / sum(math.exp(float(txt[i] @ img[j]) / tau) for j in range(n))) for i in range(n)) / n
    assert clip_loss(img, txt, torch.tensor(1 / tau)).item() == pytest.approx(0.5 * a2b + 0.5 * b2a, rel=1e-5)


def test_clip_loss_is_symmetric_and_minimal_for_perfect_pairs():
    img, txt = _embeddings(8)
    s = torch.tensor(20.0)
    assert torch.allclose(clip_loss(img, txt, s), clip_loss(txt, img, s))
    assert clip_loss(img, img, s) < clip_loss(img, txt, s)


def test_clip_loss_rejects_mismatched_shapes():
    img, txt = _embeddings(8)
    with pytest.raises(ValueError, match="image_emb and text_emb"):
        clip_loss(img, txt[:4], torch.tensor(1.0))


class _Constant(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, features):
        return features.image.sum() * 0 + self.value, {"seen": 1.0}


def test_objective_sums_weighted_terms_and_logs_each():
    img, txt = _embeddings(8)
    f = Features(img, txt, torch.tensor(10.0))
    obj = Objective({"contrastive": ClipLoss(), "extra": (_Constant(2.0), 0.5)})
    total, logs = obj(f)
    base = clip_loss(img, txt, torch.tensor(10.0)).item()
    assert total.item() == pytest.approx(base + 1.0, rel=1e-6)
    assert logs["loss/extra"] == pytest.approx(2.0) and logs["extra/seen"] == 1.0
    assert logs["loss/contrastive"] == pytest.approx(base, rel=1e-6)
    assert 0.0 <= logs["contrastive/batch_acc_i2t"] <= 1.0


def test_objective_zero_weight_term_changes_nothing():
    img, txt = _embeddings(8)
    a = [t.clone().requires_grad_() for t in (img, txt)]
    b = [t.clone().requires_grad_() for t in (img, txt)]
    t0, _ = Objective()(Features(*a, torch.tensor(10.0)))
    t1, logs = Objective({"contrastive": ClipLoss(), "extra": (_Constant(5.0), 0.0)})(Features(*b, torch.tensor(10.0)))
    t0.backward()
    t1.backward()
    assert t0.item() == t1.item() and logs["loss/extra"] == 5.0
    assert all(torch.equal(x.grad, y.grad) for x, y in zip(a, b))


def test_objective_validates_terms():
    with pytest.raises(ValueError, match="at least one"):
        Objective({})
    with pytest.raises(TypeError, match="terms\\['bad'\\]"):
        Objective({"bad": lambda f: 0})
