"""Seed 004's staged model (one-modality views, the stage-3 linear map) and seed 002's single network."""

import numpy as np
import pytest
import torch

from labkit.data import CaptionGroups, GroupTokenizer, TextAsImage, make_world
from labkit.losses import IntraModalLoss, Objective
from labkit.metrics import retrieval_recall
from labkit.models import LinearMap, ModalityView, StagedModel, create_model, create_single_network, tower_parameters
from labkit.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")



def test_least_squares_map_matches_numpy_and_the_ridge_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = x @ rng.normal(size=(4, 3)) + rng.normal(size=3) + 0.1 * rng.normal(size=(50, 3))
    m = LinearMap(4, 3).fit_least_squares(torch.tensor(x), torch.tensor(y))
    design = np.hstack([x, np.ones((50, 1))])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(m.weight.detach().numpy().T, coef[:4], atol=1e-5)
    np.testing.assert_allclose(m.bias.detach().numpy(), coef[4], atol=1e-5)
    rho = 3.0  # ridge on W only, bias free: W = (Xcᵀ Xc + ρ I)⁻¹ Xcᵀ Yc
    xc, yc = x - x.mean(0), y - y.mean(0)
    w = np.linalg.solve(xc.T @ xc + rho * np.eye(4), xc.T @ yc)
    m = LinearMap(4, 3).fit_least_squares(torch.tensor(x), torch.tensor(y), ridge=rho)
    np.testing.assert_allclose(m.weight.detach().numpy().T, w, atol=1e-5)
    with pytest.raises(ValueError, match="row-aligned"):
        m.fit_least_squares(torch.zeros(3, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="ridge"):
        m.fit_least_squares(torch.zeros(3, 4), torch.zeros(3, 3), ridge=-1)


def test_trained_linear_layer_converges_to_the_closed_form():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(200, 5)), dtype=torch.float32)
    y = x @ torch.tensor(rng.normal(size=(5, 5)), dtype=torch.float32) + 0.05 * torch.randn(200, 5)
    exact = LinearMap(5, 5).fit_least_squares(x, y)
    trained = LinearMap(5, 5)
    history = trained.fit_gradient(x, y, epochs=300, lr=2e-2, batch_size=50, seed=0)
    assert history[-1] < history[0]
    torch.testing.assert_close(trained.weight, exact.weight, atol=2e-2, rtol=0)
    with torch.no_grad():
        best = float((exact(x) - y).pow(2).sum(1).mean())
    assert history[-1] == pytest.approx(best, rel=0.05)
    torch.testing.assert_close(LinearMap(3, 3)(torch.eye(3)), torch.eye(3))  # untrained = identity


def test_modality_view_freezes_the_other_tower_and_returns_empty_rows():
    clip = create_model("labkit-tiny", seed=0).model
    text_params, image_params = tower_parameters(clip, "text"), tower_parameters(clip, "image")
    assert text_params and image_params and not {id(p) for p in text_params} & {id(p) for p in image_params}
    with ModalityView(clip, "text") as view:
        assert not any(p.requires_grad for p in image_params) and all(p.requires_grad for p in text_params)
        assert view.encode_image(torch.zeros(3, 3, 32, 32)).shape == (3, 0)
        tokens = torch.randint(1, 100, (2, 4, 24))
        assert view.encode_text(tokens, normalize=True).shape == (8, 64)
        torch.testing.assert_close(view.encode_text(tokens)[4:8], clip.encode_text(tokens[1]))
    assert all(p.requires_grad for p in clip.parameters())  # restored
    with pytest.raises(ValueError):
        ModalityView(clip, "audio")


def test_a_text_stage_through_fit_trains_only_the_text_tower():
    world = make_world(60, seed=0)
    bundle = create_model("labkit-tiny", seed=0)
    clip = bundle.model
    before = {n: p.detach().clone() for n, p in clip.named_parameters()}
    with ModalityView(clip, "text") as view:
        history = fit(view, Objective({"text": IntraModalLoss("text", "pair_id")}), CaptionGroups(world.train, 2),
                      GroupTokenizer(bundle.tokenizer), TrainConfig(epochs=1, batch_size=16, device="cpu",
                                                                   progress=False, warmup_steps=1))
    assert np.isfinite(history["loss"]).all()
    changed = {n for n, p in clip.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(not n.startswith("visual.") for n in changed)


def test_staged_model_maps_one_side():
    clip = create_model("labkit-tiny", seed=0).model
    images, tokens = torch.randn(2, 3, 32, 32), torch.randint(1, 100, (2, 24))
    staged = StagedModel(clip)
    torch.testing.assert_close(staged.encode_image(images), clip.encode_image(images, normalize=True))  # identity
    with torch.no_grad():
        staged.map.weight.mul_(2.0)
    torch.testing.assert_close(staged.encode_image(images), 2 * clip.encode_image(images, normalize=True))
    torch.testing.assert_close(staged.encode_text(tokens), clip.encode_text(tokens, normalize=True))
    other = StagedModel(clip, direction="text_to_image")
    x, y = torch.randn(20, 64), torch.randn(20, 64)
    other.fit_map(x, y)  # maps the text features (second argument) onto the image features
    exact = LinearMap(64, 64).fit_least_squares(y, x)
    torch.testing.assert_close(other.map.weight, exact.weight)
    with pytest.raises(ValueError, match="direction"):
        StagedModel(clip, direction="sideways")


def test_single_network_one_cnn_for_both_and_groups():
    world = make_world(30, seed=0)
    texts, _ = world.train.captions_flat()
    enc = TextAsImage.fit(texts, image_size=32, seed=0, epochs=1)
    model = create_single_network(enc, seed=0, channels=(8, 16), embed_dim=16).model
    assert model.backbone.stem[0].kernel_size == (4, 4) and model.backbone.stem[0].stride == (4, 4)
    groups = enc([tuple(world.captions[i][:3]) for i in range(2)])
    out = model.encode_text(groups, normalize=True)
    assert out.shape == (6, 16)
    torch.testing.assert_close(out[3:], model.encode_text(groups[1], normalize=True))
    # one network: an encoded caption fed as an "image" gets the same embedding
    torch.testing.assert_close(model.encode_image(groups[0]), model.encode_text(groups[0]))
    two = create_single_network(enc, seed=0, channels=(8, 16), embed_dim=16, shared=False).model
    assert not torch.allclose(two.encode_image(groups[0]), two.encode_text(groups[0]))
    with pytest.raises(ValueError, match="encoded captions"):
        model.encode_text(torch.zeros(2, 3, 32))
    big = create_single_network(enc, backbone="resnet18", embed_dim=16, seed=0).model
    assert big.encode_image(torch.zeros(2, 3, 32, 32)).shape == (2, 16)
    with pytest.raises(ValueError, match="backbone"):
        create_single_network(enc, backbone="not_a_model")


def test_euclidean_nearest_neighbour_ranks_as_the_cosine_recall():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(15, 6))
    text = image.repeat(2, 0) + 0.8 * rng.normal(size=(30, 6))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    t2i = np.arange(15).repeat(2)
    dist = np.linalg.norm(image[:, None] - text[None], axis=2)  # (images, texts), §5.2's Euclidean NN
    i2t = {k: 100 * np.mean([any(t2i[j] == i for j in np.argsort(dist[i])[:k]) for i in range(15)]) for k in (1, 5)}
    t2i_r = {k: 100 * np.mean([i in np.argsort(dist[:, j])[:k] for j, i in enumerate(t2i)]) for k in (1, 5)}
    got = retrieval_recall(image, text, t2i, ks=(1, 5))
    for k in (1, 5):
        assert got[f"i2t_R@{k}"] == pytest.approx(i2t[k]) and got[f"t2i_R@{k}"] == pytest.approx(t2i_r[k])
