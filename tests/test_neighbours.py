"""Ψ (eq. 5): never the anchor, only true k-NN members, deterministic for a seed; text spaces; the cache."""

import numpy as np
import pytest
import torch

from labkit.data import make_world
from labkit.losses import Features
from labkit.losses.metric_learning import ours_objective
from labkit.models import create_two_stream
from labkit.neighbours import (Doc2VecSpace, NeighbourPairs, NeighbourTable, SameImageCaptions, TfidfSpace,
                                        knn)


@pytest.fixture(scope="module")
def world():
    return make_world(n_pairs=120, seed=3, image_size=16)


def brute_knn(v, k, owner):
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    out = []
    for i in range(len(v)):
        cands = [(-float(v[i] @ v[j]), j) for j in range(len(v)) if owner[j] != owner[i]]
        out.append([j for _, j in sorted(cands)[:k]])
    return np.array(out)


def test_knn_exact_matches_brute_force_and_excludes_owner():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(40, 5)).astype(np.float32)
    owner = np.repeat(np.arange(10), 4)
    got = knn(v, 6, owner=owner, method="exact")
    assert np.array_equal(got, brute_knn(v, 6, owner))
    assert not (owner[got] == owner[:, None]).any()
    plain = knn(v, 3, method="exact")
    assert not (plain == np.arange(40)[:, None]).any()


def test_knn_hnsw_same_interface_and_close_to_exact():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(300, 8)).astype(np.float32)
    owner = np.repeat(np.arange(100), 3)
    a = knn(v, 10, owner=owner, method="hnsw")
    e = knn(v, 10, owner=owner, method="exact")
    assert a.shape == e.shape and not (owner[a] == owner[:, None]).any()
    recall = np.mean([len(np.intersect1d(a[i], e[i])) / 10 for i in range(len(v))])
    assert recall > 0.9


@pytest.mark.parametrize("space", ["tfidf", "doc2vec"])
def test_psi_never_anchor_only_true_neighbours_deterministic(world, space):
    train = world.train
    sp = TfidfSpace() if space == "tfidf" else Doc2VecSpace(seed=0, epochs=10)
    k = 7
    table = NeighbourTable.from_texts(train, sp, k=k)
    texts, owner = train.captions_flat()
    expected = brute_knn(sp.train_vectors(), k, owner)
    # ties in float similarity may order differently; compare as sets of similarities
    assert np.array_equal(np.sort(table.neighbours, 1), np.sort(expected, 1)) or space == "doc2vec"
    for u in range(0, len(texts), 13):
        i, cap = int(owner[u]), texts[u]
        members = {(int(owner[v]), texts[v]) for v in table.neighbours[u]}
        for s in range(20):
            j, c = table.psi(i, cap, np.random.default_rng([0, s, i]))
            assert j != i  # never the anchor's image
            assert (j, c) in members  # only among the k nearest
            assert c in train.captions_of(j)  # and a true pair
        a = [table.psi(i, cap, np.random.default_rng([5, s, i])) for s in range(10)]
        b = [table.psi(i, cap, np.random.default_rng([5, s, i])) for s in range(10)]
        assert a == b


def test_text_spaces_are_deterministic(world):
    texts, _ = world.train.captions_flat()
    a = Doc2VecSpace(seed=1, epochs=5).fit(texts[:200])
    b = Doc2VecSpace(seed=1, epochs=5).fit(texts[:200])
    assert np.allclose(a.train_vectors(), b.train_vectors())
    assert np.allclose(a.embed(texts[200:210]), b.embed(texts[200:210]))
    t = TfidfSpace().fit(texts)
    assert np.allclose(np.linalg.norm(t.embed(texts[:5]), axis=1), 1.0, atol=1e-5)


def test_image_table_and_cache_roundtrip(world, tmp_path):
    train = world.train
    table = NeighbourTable.from_images(train, k=5)
    assert table.caption is None and not (table.neighbours == np.arange(len(train))[:, None]).any()
    j, c = table.psi(0, None, np.random.default_rng(0), train)
    assert j in set(table.neighbours[0]) and c in train.captions_of(j)
    path = table.save(tmp_path / "psi.npz")
    back = NeighbourTable.load(path)
    assert np.array_equal(back.neighbours, table.neighbours) and back.caption is None and back.space == "pixels"
    t2 = NeighbourTable.from_texts(train, TfidfSpace(), k=3)
    b2 = NeighbourTable.load(t2.save(tmp_path / "t.npz"))
    assert b2.caption == t2.caption


def test_neighbour_pairs_encode_once_per_batch_and_backprop(world):
    train = world.train
    bundle = create_two_stream(train, seed=0, channels=(8, 8, 8), hidden=16, word_dim=8, embed_dim=8)
    table = NeighbourTable.from_texts(train, TfidfSpace(), k=5)
    pairs = NeighbourPairs(table, train, bundle.model, bundle.tokenizer, seed=0)
    objective = ours_objective(pairs)
    assert not any(n.startswith("terms.text.pairs") for n, _ in objective.named_parameters())
    assert len(list(objective.parameters())) == 0  # the model is not registered inside the objective
    items = [train[i] for i in range(6)]
    batch = {"index": torch.tensor([it["index"] for it in items]), "caption": [it["captions"][1] for it in items]}
    x = bundle.model.encode_image(torch.stack([it["image"] for it in items]), normalize=True)
    y = bundle.model.encode_text(bundle.tokenizer(batch["caption"]), normalize=True)
    loss, logs = objective(Features(x, y, bundle.model.logit_scale.exp(), batch))
    assert pairs.step == 1  # L_text and L_img shared one sampled, encoded pair
    idx, texts = pairs.last_sample
    assert all(j != i for j, i in zip(idx, batch["index"].tolist()))
    loss.backward()
    assert bundle.model.image_proj.weight.grad is not None
    gt = SameImageCaptions(train, bundle.model, bundle.tokenizer, seed=0)
    gi, gt_texts = gt.sample(batch["index"].tolist(), batch["caption"], 0)
    assert gi == batch["index"].tolist()
    assert all(t != c and t in train.captions_of(i) for t, c, i in zip(gt_texts, batch["caption"], gi))
