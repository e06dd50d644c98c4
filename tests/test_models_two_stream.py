"""The two-stream model trains unchanged under labkit.train.fit, with the seed-001 objectives; the losses also
work with labkit's CLIP towers."""

import numpy as np
import torch

from labkit.data import make_world
from labkit.models import create_model
from labkit.losses.metric_learning import baseline_objective, ours_objective
from labkit.data.text import WordTokenizer
from labkit.models import TwoStreamModel, create_two_stream
from labkit.neighbours import NeighbourPairs, NeighbourTable, TfidfSpace
from labkit.train import TrainConfig, fit


def test_tokenizer_and_encoders():
    tok = WordTokenizer.from_texts(["a red circle", "two blue squares"], context_length=5)
    ids = tok(["a red circle", "an unseen word here now and more"])
    assert ids.shape == (2, 5) and ids[0, 3] == 0 and ids[1, 0] == 1  # padding, unknown
    m = TwoStreamModel(len(tok), embed_dim=8, hidden=16, word_dim=8, channels=(4, 4, 4), image_size=16)
    x = m.encode_image(torch.randn(3, 3, 16, 16), normalize=True)
    y = m.encode_text(ids, normalize=True)
    assert x.shape == (3, 8) and y.shape == (2, 8)
    assert torch.allclose(x.norm(dim=1), torch.ones(3)) and torch.allclose(y.norm(dim=1), torch.ones(2))
    # padding after the last word does not change a caption's embedding
    longer = WordTokenizer(tok.itos[2:], context_length=9)
    assert torch.allclose(m.encode_text(longer(["a red circle"])), m.encode_text(tok(["a red circle"])), atol=1e-6)


def test_fit_trains_two_stream_with_ours_objective():
    world = make_world(n_pairs=100, seed=1, image_size=16)
    train = world.train
    bundle = create_two_stream(train, seed=0, channels=(8, 8, 8), hidden=16, word_dim=8, embed_dim=8)
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    table = NeighbourTable.from_texts(train, TfidfSpace(), k=5)
    objective = ours_objective(NeighbourPairs(table, train, bundle.model, bundle.tokenizer, seed=0))
    history = fit(bundle.model, objective, train, bundle.tokenizer,
                  TrainConfig(epochs=2, batch_size=32, seed=0, device="cpu", progress=False, warmup_steps=1))
    assert {"loss/cross", "loss/text", "loss/img"} <= set(history.columns)
    assert np.isfinite(history["loss"]).all()
    changed = [k for k, v in bundle.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("visual") for k in changed) and any(k.startswith("gru") for k in changed)


def test_losses_work_with_clip_towers():
    world = make_world(n_pairs=60, seed=2)
    train = world.train
    bundle = create_model("labkit-tiny", seed=0)
    table = NeighbourTable.from_texts(train, TfidfSpace(), k=3)
    for objective in (baseline_objective("triplet"),
                      ours_objective(NeighbourPairs(table, train, bundle.model, bundle.tokenizer, seed=0))):
        history = fit(bundle.model, objective, train, bundle.tokenizer,
                      TrainConfig(epochs=1, batch_size=16, seed=0, device="cpu", progress=False, warmup_steps=1))
        assert np.isfinite(history["loss"]).all()
