"""labkit.losses.modality: the gradient reversal layer, the modality classifier and seed 000 eq. 5 through the loss seam.

What is pinned down here:
* the GRL is the identity forward and multiplies the gradient by exactly −λ backward (gradcheck + by hand);
* at λ = 0 the total loss and the encoders' gradients *equal* the baseline CLIP loss's, in both λ placements;
* the modality term alone sends exactly −λ·∂L_m/∂e to the embeddings, and the classifier gets λ·∂L_m/∂θ
  (``lambda_on="loss"``) or ∂L_m/∂θ (``lambda_on="grl"``); the total reads L_c + λ·L_m in both;
* the classifier's shapes (2N rows, image first), its BCE targets (image 0, text 1) by hand, its accuracy log;
* a real effect: with λ > 0 the gap between two learnable embedding clouds shrinks more than with λ = 0, and a
  control with the reversal switched off (encoders *helping* the classifier) makes it grow;
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from labkit.losses.modality import (
    GradientReversal,
    ModalityClassifier,
    ModalityLoss,
    grad_reverse,
    grl_objective,
    stack_modalities,
)
from labkit.losses import ClipLoss, Features, Objective, clip_loss
from labkit.metrics import modality_gap

LAMBDAS = [0.0, 0.5, 1.0, 3.0, 0.3]
REPO = Path(__file__).resolve().parents[1]


def _leaf_embeddings(n=8, d=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(n, d, generator=g, dtype=dtype) + 1.0, dim=-1)
    txt = F.normalize(torch.randn(n, d, generator=g, dtype=dtype) - 1.0, dim=-1)
    return img.requires_grad_(), txt.requires_grad_()


# ---------------------------------------------------------------------------------------------- the GRL


@pytest.mark.parametrize("lambd", [1.0, 0.5, 3.0, 0.0])
def test_grad_reverse_gradcheck(lambd):
    """gradcheck compares the backward with finite differences of the forward. The GRL's forward is the identity
    but its backward is −λ·I *on purpose*, so it is checked inside ``f(x) = GRL_λ(x) − (1 + λ)·sg(x)`` whose value is
    −λ·x (numerical Jacobian −λ·I) while its gradient flows only through the GRL (sg = stop-gradient)."""
    x = torch.randn(5, 3, dtype=torch.double, requires_grad=True)
    f = lambda t: grad_reverse(t, lambd) - (1.0 + lambd) * t.detach()  # noqa: E731
    assert torch.allclose(f(x), -lambd * x)
    assert torch.autograd.gradcheck(f, (x,))
    # through a non-linear map too: d/dx tanh(GRL(x) W) must be −λ times the ordinary derivative
    w = torch.randn(3, 2, dtype=torch.double)
    g = lambda t: torch.tanh((grad_reverse(t, lambd) - (1.0 + lambd) * t.detach()) @ w)  # noqa: E731
    assert torch.autograd.gradcheck(g, (x,))
    jac = torch.autograd.functional.jacobian(lambda t: grad_reverse(t, lambd), x)
    assert torch.equal(jac.reshape(15, 15), -lambd * torch.eye(15, dtype=torch.double))


def test_gradcheck_plain_gradient_case():
    """With λ = −1 the 'reversed' gradient is the ordinary one: plain gradcheck and gradgradcheck must pass."""
    x = torch.randn(4, 6, dtype=torch.double, requires_grad=True)
    w = torch.randn(6, 2, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda t: torch.tanh(grad_reverse(t, -1.0) @ w), (x,))
    assert torch.autograd.gradgradcheck(lambda t: torch.tanh(grad_reverse(t, -1.0) @ w), (x,))
    with pytest.raises(Exception):  # and with λ = 1 plain gradcheck rightly fails: the sign is reversed
        torch.autograd.gradcheck(lambda t: grad_reverse(t, 1.0), (x,), raise_exception=True)


@pytest.mark.parametrize("lambd", LAMBDAS)
def test_grad_reverse_backward_is_minus_lambda_times_g_exactly(lambd):
    x = torch.randn(7, 4, requires_grad=True)
    y = grad_reverse(x, lambd)
    assert torch.equal(y, x)  # identity forward
    g = torch.randn(7, 4)
    (gx,) = torch.autograd.grad(y, x, g)
    assert torch.equal(gx, g * (-lambd))
    module = GradientReversal(lambd)
    assert module.lambd == lambd and f"lambd={lambd}" in repr(module)
    (gm,) = torch.autograd.grad(module(x), x, g)
    assert torch.equal(gm, gx)


def test_grad_reverse_lambda_zero_cuts_the_path_even_for_nonfinite_gradients():
    x = torch.randn(3, requires_grad=True)
    (gx,) = torch.autograd.grad(grad_reverse(x, 0.0), x, torch.tensor([1.0, float("inf"), float("nan")]))
    assert torch.equal(gx, torch.zeros(3))


def test_grad_reverse_rejects_non_finite_lambda():
    with pytest.raises(ValueError, match="finite"):
        grad_reverse(torch.zeros(2), float("nan"))
    with pytest.raises(TypeError, match="number"):
        GradientReversal("one")


# ---------------------------------------------------------------------------------------------- the classifier


def test_classifier_shapes_depth_and_probabilities():
    n, d = 6, 16
    img, txt = _leaf_embeddings(n, d)
    x, labels = stack_modalities(img, txt)
    assert x.shape == (2 * n, d) and torch.equal(x[:n], img) and torch.equal(x[n:], txt)  # image rows first
    assert labels.tolist() == [0.0] * n + [1.0] * n  # 0 = image, 1 = text
    clf = ModalityClassifier(d, seed=0)
    linears = [m for m in clf.mlp if isinstance(m, torch.nn.Linear)]
    relus = [m for m in clf.mlp if isinstance(m, torch.nn.ReLU)]
    assert len(linears) == 5 and len(relus) == 4  # M = 5 layers, ReLU between them (seed 000 §5)
    assert isinstance(clf.mlp[0], torch.nn.Linear) and isinstance(clf.mlp[-1], torch.nn.Linear)
    assert isinstance(clf.grl, GradientReversal)
    p = clf(x)
    assert p.shape == (2 * n,) and bool(((p > 0) & (p < 1)).all())
    assert torch.allclose(p, torch.sigmoid(clf.logits(x)))
    assert [l.out_features for l in ModalityClassifier(d, depth=3, hidden=[32, 8]).mlp
            if isinstance(l, torch.nn.Linear)] == [32, 8, 1]
    with pytest.raises(ValueError, match="hidden"):
        ModalityClassifier(d, depth=3, hidden=[32])
    # seeded initialisation, without touching the global RNG
    state = torch.get_rng_state()
    a, b = ModalityClassifier(d, seed=3), ModalityClassifier(d, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_modality_loss_is_bce_with_image0_text1_by_hand():
    n, d = 5, 16
    img, txt = _leaf_embeddings(n, d, seed=1)
    term = ModalityLoss(d, lambd=1.0, seed=0)
    value, logs = term(Features(img, txt, torch.tensor(10.0)))
    probs = term.classifier(torch.cat([img, txt])).tolist()
    # BCE by hand, Python floats: −log(1 − p) for an image row, −log p for a text row
    by_hand = -(sum(math.log(1 - p) for p in probs[:n]) + sum(math.log(p) for p in probs[n:])) / (2 * n)
    assert value.item() == pytest.approx(by_hand, rel=1e-5)
    assert logs["bce"] == pytest.approx(by_hand, rel=1e-5)
    # …and equal to BCE on the sigmoid output (the logits form is the stable evaluation of the same number)
    bce_sigmoid = F.binary_cross_entropy(torch.tensor(probs), torch.tensor([0.0] * n + [1.0] * n))
    assert value.item() == pytest.approx(bce_sigmoid.item(), rel=1e-5)
    # accuracy: P(text) > 0.5 is a "text" vote
    acc_img = sum(p <= 0.5 for p in probs[:n]) / n
    acc_txt = sum(p > 0.5 for p in probs[n:]) / n
    assert logs["accuracy_image"] == pytest.approx(acc_img)
    assert logs["accuracy_text"] == pytest.approx(acc_txt)
    assert logs["accuracy"] == pytest.approx((acc_img + acc_txt) / 2)
    assert term.accuracy(img.detach().numpy(), txt.detach().numpy()) == pytest.approx(logs["accuracy"])


def test_modality_loss_validates_its_arguments():
    with pytest.raises(ValueError, match="lambda_on"):
        ModalityLoss(8, lambda_on="encoder")
    with pytest.raises(ValueError, match=">= 0"):
        ModalityLoss(8, lambd=-1.0)
    assert ModalityLoss(8, lambd=0.5, lambda_on="loss").objective_weight == 0.5
    assert ModalityLoss(8, lambd=0.5, lambda_on="grl").objective_weight == 1.0
    assert ModalityLoss(8, lambd=0.5, lambda_on="grl").classifier.grl.lambd == 0.5
    assert ModalityLoss(8, lambd=0.5, lambda_on="loss").classifier.grl.lambd == 1.0


def test_objective_logs_accuracy_and_bce():
    img, txt = _leaf_embeddings()
    _, logs = grl_objective(0.5, 16, seed=0)(Features(img, txt, torch.tensor(10.0)))
    assert 0.0 <= logs["modality/accuracy"] <= 1.0 and logs["modality/bce"] > 0
    assert logs["loss"] == pytest.approx(logs["loss/contrastive"] + 0.5 * logs["modality/bce"], rel=1e-6)


# ---------------------------------------------------------------------------------------------- λ and eq. 5


@pytest.fixture(scope="module")
def tiny_batch():
    from labkit.models import create_model

    bundle = create_model("labkit-tiny", seed=0)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, bundle.image_size, bundle.image_size, generator=g)
    tokens = bundle.tokenizer([f"a {c} {s}" for c in ("red", "blue", "green", "pink")
                               for s in ("circle", "square")])
    return bundle.model, images, tokens


def _model_step(model, images, tokens, objective):
    """One forward + backward of a copy of ``model`` with ``objective``: (loss, encoder grads, logs)."""
    m = copy.deepcopy(model)
    image = m.encode_image(images, normalize=True)
    text = m.encode_text(tokens, normalize=True)
    loss, logs = objective(Features(image, text, m.logit_scale.exp()))
    loss.backward()
    return loss, {n: p.grad for n, p in m.named_parameters()}, logs


@pytest.mark.parametrize("lambda_on", ["loss", "grl"])
def test_lambda_zero_equals_the_baseline_exactly_on_the_tiny_model(tiny_batch, lambda_on):
    model, images, tokens = tiny_batch
    base_loss, base_grads, _ = _model_step(model, images, tokens, Objective({"contrastive": ClipLoss()}))
    loss, grads, logs = _model_step(model, images, tokens, grl_objective(0.0, 64, lambda_on=lambda_on, seed=0))
    assert torch.equal(loss, base_loss)
    assert grads.keys() == base_grads.keys()
    for name, g in grads.items():
        assert (g is None) == (base_grads[name] is None), name
        assert g is None or torch.equal(g, base_grads[name]), name
    assert logs["modality/bce"] > 0  # the classifier still ran (and was logged)


@pytest.mark.parametrize("lambda_on", ["loss", "grl"])
def test_lambda_zero_classifier_learns_only_with_lambda_on_grl(lambda_on):
    img, txt = _leaf_embeddings()
    obj = grl_objective(0.0, 16, lambda_on=lambda_on, seed=0)
    loss, _ = obj(Features(img, txt, torch.tensor(10.0)))
    loss.backward()
    grads = [p.grad for p in obj.terms["modality"].parameters()]
    if lambda_on == "loss":  # seed 000 literally: λ = 0 on the loss leaves the classifier without gradient
        assert all(g is None or not g.any() for g in grads)
    else:
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("lambda_on", ["loss", "grl"])
@pytest.mark.parametrize("lambd", [0.5, 1.0, 3.0])
def test_gradients_of_eq5(lambda_on, lambd):
    """Encoders: exactly −λ·∂L_m/∂e from the modality term; the classifier: λ·∂L_m/∂θ or ∂L_m/∂θ; the contrastive
    gradient untouched; the total reads L_c + λ·L_m."""
    img, txt = _leaf_embeddings(seed=2)
    scale = torch.tensor(14.0)
    obj = grl_objective(lambd, 16, lambda_on=lambda_on, seed=0)
    term: ModalityLoss = obj.terms["modality"]

    # the plain BCE of the same classifier, without any reversal: ∂L_m/∂e and ∂L_m/∂θ
    ref = copy.deepcopy(term.classifier).mlp  # the same MLP, no GRL in front: ordinary gradients
    x, labels = stack_modalities(img, txt)
    l_m = F.binary_cross_entropy_with_logits(ref(x).squeeze(-1), labels)
    d_img, d_txt, *d_theta = torch.autograd.grad(l_m, [img, txt, *ref.parameters()])

    # the modality term alone, weighted as the objective weights it
    value, _ = term(Features(img, txt, scale))
    weighted = obj.weights["modality"] * value
    assert weighted.item() == pytest.approx(lambd * l_m.item(), rel=1e-6)
    g_img, g_txt, *g_theta = torch.autograd.grad(weighted, [img, txt, *term.parameters()])
    if lambda_on == "grl":  # one multiplication by −λ, in the GRL: bit-exact
        assert torch.equal(g_img, d_img * (-lambd)) and torch.equal(g_txt, d_txt * (-lambd))
        for g, d in zip(g_theta, d_theta):
            assert torch.equal(g, d)
    else:  # λ enters through the loss weight before the backward: equal up to rounding
        assert torch.allclose(g_img, -lambd * d_img, rtol=1e-5, atol=1e-7)
        assert torch.allclose(g_txt, -lambd * d_txt, rtol=1e-5, atol=1e-7)
        for g, d in zip(g_theta, d_theta):
            assert torch.allclose(g, lambd * d, rtol=1e-5, atol=1e-7)

    # the whole objective: value L_c + λ·L_m, encoder gradient ∂L_c/∂e − λ·∂L_m/∂e
    total, logs = obj(Features(img, txt, scale))
    l_c = clip_loss(img, txt, scale)
    c_img, c_txt = torch.autograd.grad(l_c, [img, txt])
    assert total.item() == pytest.approx(l_c.item() + lambd * l_m.item(), rel=1e-6)
    assert logs["modality/bce"] == pytest.approx(l_m.item(), rel=1e-6)
    t_img, t_txt = torch.autograd.grad(total, [img, txt])
    assert torch.allclose(t_img, c_img - lambd * d_img, atol=1e-6)
    assert torch.allclose(t_txt, c_txt - lambd * d_txt, atol=1e-6)


# ---------------------------------------------------------------------------------------------- a real effect


def _train_clouds(lambd, seed, lambda_on="grl", reverse=True, steps=100, n=64, d=8, offset=0.3):
    """Two learnable clouds of embeddings (leaf tensors), pairs sharing a latent, the modalities shifted apart by
    ±offset·√d along one direction; trained with eq. 5 (Adam, the classifier in the same optimiser)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g)
    u = F.normalize(torch.randn(d, generator=g), dim=0) * math.sqrt(d)
    a = torch.nn.Parameter(z + offset * u + 0.3 * torch.randn(n, d, generator=g))
    b = torch.nn.Parameter(z - offset * u + 0.3 * torch.randn(n, d, generator=g))
    obj = grl_objective(lambd, d, lambda_on=lambda_on, seed=seed, hidden=16)
    if not reverse:  # control: no reversal, the encoders *help* the classifier
        obj.terms["modality"].classifier.grl.lambd = -lambd
    opt = torch.optim.Adam([a, b, *obj.parameters()], lr=1e-2)
    gap0 = modality_gap(a.detach(), b.detach())
    for _ in range(steps):
        loss, logs = obj(Features(F.normalize(a, dim=-1), F.normalize(b, dim=-1), torch.tensor(20.0)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return gap0, modality_gap(a.detach(), b.detach()), logs["modality/accuracy"]


@pytest.mark.parametrize("seed", [0, 1])
def test_grl_shrinks_the_gap_between_learnable_clouds(seed, one_thread):
    gap0, base, base_acc = _train_clouds(0.0, seed)
    _, grl, grl_acc = _train_clouds(1.0, seed)
    _, grl_paper, _ = _train_clouds(1.0, seed, lambda_on="loss")
    _, helped, _ = _train_clouds(1.0, seed, reverse=False)
    assert base < gap0  # the contrastive loss alone pulls the pairs together somewhat…
    assert grl < 0.5 * base and grl_paper < 0.5 * base  # …the GRL closes the gap much further
    assert grl_acc < base_acc  # and the classifier, trained at full strength in both, is fooled
    assert helped > base  # control: without the reversal the same head widens the gap


# ---------------------------------------------------------------------------------------------- the stabilisers


def test_dann_ramp_by_hand():
    from labkit.losses.modality import dann_ramp

    for p in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
        assert dann_ramp(p) == pytest.approx(2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0, abs=1e-15)
    assert dann_ramp(0.0) == 0.0 and 0.99 < dann_ramp(0.53) < 0.991
    assert dann_ramp(0.2, gamma=1.0) == pytest.approx(math.tanh(0.1), abs=1e-15)
    with pytest.raises(ValueError, match="progress"):
        dann_ramp(1.5)


@pytest.mark.parametrize("lambda_on", ["loss", "grl"])
def test_dann_schedule_sets_lambda_p_and_the_gradients_follow(lambda_on):
    lambd, total = 3.0, 40
    obj = grl_objective(lambd, 16, lambda_on=lambda_on, schedule="dann", seed=0)
    term: ModalityLoss = obj.terms["modality"]
    assert term.current_lambda == 0.0  # before training: p = 0
    img, txt = _leaf_embeddings(seed=3)
    ref = copy.deepcopy(term.classifier).mlp
    x, labels = stack_modalities(img, txt)
    d_img, = torch.autograd.grad(F.binary_cross_entropy_with_logits(ref(x).squeeze(-1), labels), [img])
    for step in (0, 5, 20, 39):
        obj.begin_step(step, total)
        lam_p = lambd * (2.0 / (1.0 + math.exp(-10.0 * step / total)) - 1.0)
        assert term.current_lambda == pytest.approx(lam_p, abs=1e-12)
        value, logs = term(Features(img, txt, torch.tensor(10.0)))
        assert logs["lambda"] == pytest.approx(lam_p, abs=1e-12)
        weighted = obj.weights["modality"] * value
        assert weighted.item() == pytest.approx(lam_p * logs["bce"], rel=1e-6, abs=1e-12)  # the total reads λ_p·L_m
        g_img, = torch.autograd.grad(weighted, [img])
        assert torch.allclose(g_img, -lam_p * d_img, rtol=1e-5, atol=1e-8)  # encoders: −λ_p·∂L_m/∂e
    constant = grl_objective(lambd, 16, lambda_on=lambda_on, seed=0)
    constant.begin_step(0, total)  # a constant schedule ignores the progress
    assert constant.terms["modality"].current_lambda == lambd


@pytest.mark.parametrize("lambda_on", ["loss", "grl"])
def test_lambda_zero_with_the_stabilisers_equals_the_baseline_exactly(tiny_batch, lambda_on):
    model, images, tokens = tiny_batch
    base_loss, base_grads, _ = _model_step(model, images, tokens, Objective({"contrastive": ClipLoss()}))
    obj = grl_objective(0.0, 64, lambda_on=lambda_on, seed=0, schedule="dann", classifier_lr_scale=10.0)
    obj.begin_step(30, 60)
    loss, grads, _ = _model_step(model, images, tokens, obj)
    assert torch.equal(loss, base_loss)
    for name, g in grads.items():
        assert (g is None) == (base_grads[name] is None), name
        assert g is None or torch.equal(g, base_grads[name]), name


def test_classifier_lr_scale_gives_the_classifier_its_own_parameter_group():
    from labkit.train import param_groups

    model = torch.nn.Linear(4, 4)
    obj = grl_objective(1.0, 16, lambda_on="grl", classifier_lr_scale=10.0, seed=0)
    groups = param_groups([model, obj], weight_decay=0.1)
    scaled = [g for g in groups if g["lr_scale"] == 10.0]
    ids = {id(p) for g in scaled for p in g["params"]}
    assert ids == {id(p) for p in obj.terms["modality"].classifier.parameters()}
    assert all(id(p) not in ids for p in model.parameters())
    assert not any(g["lr_scale"] != 1.0 for g in param_groups([model, grl_objective(1.0, 16, seed=0)], 0.1))
    with pytest.raises(ValueError, match="classifier_lr_scale"):
        ModalityLoss(16, classifier_lr_scale=0.0)
    with pytest.raises(ValueError, match="schedule"):
        ModalityLoss(16, schedule="linear")


class _Crash(RuntimeError):
    pass


class _CrashingSplit(torch.utils.data.Dataset):
    """A split that raises after serving ``left`` items: a simulated crash in the middle of an epoch."""

    def __init__(self, split, left):
        self.split, self.left = split, left

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        if self.left == 0:
            raise _Crash("simulated crash")
        self.left -= 1
        return self.split[i]


class _SmallTwoTower(torch.nn.Module):
    """The loop's model interface at its smallest: a linear image tower, a bag-of-words text tower."""

    def __init__(self, vocab_size, seed, dim=16):
        super().__init__()
        torch.manual_seed(seed)
        self.visual = torch.nn.Linear(3 * 16 * 16, dim)
        self.words = torch.nn.EmbeddingBag(vocab_size, dim, mode="mean", padding_idx=0)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))

    def encode_image(self, x, normalize=True):
        return F.normalize(self.visual(x.flatten(1)), dim=-1)

    def encode_text(self, tokens, normalize=True):
        return F.normalize(self.words(tokens), dim=-1)


def test_schedule_in_fit_is_a_function_of_the_step(tmp_path):
    """Trained through fit, the term logs λ_p rising over the epochs, and a run that crashed mid-training and resumed
    from its epoch checkpoint ends with the same weights as an uninterrupted one."""
    from labkit.data import make_world
    from labkit.data.text import WordTokenizer
    from labkit.train import TrainConfig, fit

    world = make_world(n_pairs=60, seed=0, image_size=16)
    tokenizer = WordTokenizer.from_texts([c for i in range(len(world.train)) for c in world.train.captions_of(i)])

    def run(data, ckpt, resume=False, model_seed=0):
        model = _SmallTwoTower(len(tokenizer), model_seed)
        obj = grl_objective(1.0, 16, lambda_on="grl", schedule="dann", classifier_lr_scale=10.0, seed=model_seed)
        cfg = TrainConfig(epochs=3, batch_size=16, warmup_steps=2, seed=0, device="cpu", progress=False,
                          checkpoint_dir=str(ckpt))
        return fit(model, obj, data, tokenizer, cfg, resume=resume), model.state_dict()

    hist, full = run(world.train, tmp_path / "a")
    lam = hist["modality/lambda"].to_numpy()
    assert 0.0 < lam[0] < lam[1] < lam[2] < 1.0
    with pytest.raises(_Crash):
        run(_CrashingSplit(world.train, 2 * len(world.train) + 5), tmp_path / "b")
    _, resumed = run(world.train, tmp_path / "b", resume=True, model_seed=7)
    assert all(torch.equal(full[k], resumed[k]) for k in full)
