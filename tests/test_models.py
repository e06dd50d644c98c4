"""labkit.models: the JSON configs, the factory, local checkpoints."""

import json

import open_clip
import pytest
import torch

from labkit.io import save_checkpoint
from labkit.models import CONFIG_DIR, create_model, encode, list_labkit_models


def test_shipped_configs_are_registered_with_open_clip():
    names = list_labkit_models()
    assert "labkit-tiny" in names
    for name in names:
        assert name in open_clip.list_models()
        cfg = json.loads((CONFIG_DIR / f"{name}.json").read_text())
        assert {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg)


def test_tiny_model_encodes_normalised_embeddings():
    b = create_model("labkit-tiny", seed=0)
    tokens = b.tokenizer(["a red circle", "two blue squares"])
    assert tokens.shape == (2, 24)
    images = torch.randn(2, 3, b.image_size, b.image_size)
    out = encode(b.model, images, tokens)
    assert out["image"].shape == out["text"].shape == (2, 64)
    assert torch.allclose(out["image"].norm(dim=-1), torch.ones(2), atol=1e-5)
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-4)  # CLIP's initial temperature


def test_seed_fixes_initialisation():
    a = create_model("labkit-tiny", seed=3).model.state_dict()
    b = create_model("labkit-tiny", seed=3).model.state_dict()
    c = create_model("labkit-tiny", seed=4).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_any_open_clip_name_builds_without_weights():
    b = create_model("RN50")  # open_clip's own config, random init, no download
    assert b.image_size == 224


@pytest.mark.parametrize("wrap", ["plain", "labkit", "open_clip_train"])
def test_local_checkpoint_round_trip(tmp_path, wrap):
    src = create_model("labkit-tiny", seed=1).model
    sd = src.state_dict()
    state = {"plain": sd, "labkit": {"state_dict": sd, "epoch": 3},
             "open_clip_train": {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}}[wrap]
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, state)
    loaded = create_model("labkit-tiny", checkpoint=path, seed=99).model.state_dict()
    assert all(torch.equal(sd[k], loaded[k]) for k in sd)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no-such-model"):
        create_model("no-such-model")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        create_model("labkit-tiny", checkpoint=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="either pretrained"):
        create_model("labkit-tiny", pretrained="openai", checkpoint=tmp_path / "x.pt")
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, {"state_dict": create_model("labkit-tiny-64px").model.state_dict()})
    with pytest.raises(ValueError, match="wrong.pt"):
        create_model("labkit-tiny", checkpoint=wrong)
