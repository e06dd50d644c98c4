"""The embedded world: determinism, pairing modes, captions, saliency, splits, interface."""

import re
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from labkit.data import EmbeddedWorldDataset, ImageTextDataset, default_transform, make_world
from labkit.data.world import SHAPE_WORDS, SHAPES, TOPICS

N = 300


@pytest.fixture(scope="module")
def world():
    return make_world(n_pairs=N, seed=0)


@pytest.fixture(scope="module")
def comp():
    return make_world(n_pairs=N, seed=0, pairing="complementary")


def _shape_patterns():
    """shape -> regex matching any of its words as whole words (with an optional plural)."""
    return {
        s: re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")(s|es)?\b", re.IGNORECASE)
        for s, words in SHAPE_WORDS.items()
    }


def _named_shapes(text):
    return {s for s, pat in _shape_patterns().items() if pat.search(text)}


# ------------------------------------------------------------------ determinism


def test_same_seed_is_identical(world):
    again = make_world(n_pairs=N, seed=0)
    assert again.images.tobytes() == world.images.tobytes()
    assert np.array_equal(again.saliency, world.saliency)
    assert np.array_equal(again.topics, world.topics)
    assert again.captions == world.captions
    assert again.scenes == world.scenes
    for k in ("train", "val", "test"):
        assert np.array_equal(again.split_indices[k], world.split_indices[k])


def test_different_seed_differs(world):
    other = make_world(n_pairs=N, seed=1)
    assert other.images.tobytes() != world.images.tobytes()
    assert other.captions != world.captions
    assert not np.array_equal(other.topics, world.topics)
    assert not np.array_equal(other.split_indices["test"], world.split_indices["test"])


def test_pairings_share_everything_but_text(world, comp):
    assert comp.images.tobytes() == world.images.tobytes()
    assert np.array_equal(comp.topics, world.topics)
    assert np.array_equal(comp.saliency, world.saliency)
    assert comp.scenes == world.scenes
    for k in ("train", "val", "test"):
        assert np.array_equal(comp.split_indices[k], world.split_indices[k])
    assert (comp.pairing, world.pairing) == ("complementary", "literal")
    for lit, com in zip(world.captions, comp.captions):
        assert not set(lit) & set(com)


# ------------------------------------------------------------------ captions


def test_literal_captions_name_only_drawn_shapes(world):
    for caps, scene in zip(world.captions, world.scenes):
        drawn = {o["shape"] for o in scene["objects"]}
        for c in caps:
            named = _named_shapes(c)
            assert named, f"literal caption names no shape: {c!r}"
            assert named <= drawn, f"{c!r} names {named - drawn}, drawn {drawn}"


def test_complementary_captions_never_name_shapes_but_name_topic(comp):
    for caps, scene in zip(comp.captions, comp.scenes):
        topic = TOPICS[scene["topic"]]
        topic_words = set(topic.nouns) | set(topic.places) | {w for pair in topic.things for w in pair}
        for c in caps:
            assert not _named_shapes(c), f"complementary caption names a shape: {c!r}"
            assert any(w in c.lower() for w in topic_words), f"{c!r} says nothing about {topic.name}"


@pytest.mark.parametrize("pairing", ["literal", "complementary"])
def test_at_least_five_distinct_captions(pairing, world, comp):
    w = world if pairing == "literal" else comp
    for caps in w.captions:
        assert len(caps) == 5 and len({c.lower().rstrip(".") for c in caps}) == 5
    w8 = make_world(n_pairs=40, seed=2, pairing=pairing, n_captions=8)
    assert all(len(set(caps)) == 8 for caps in w8.captions)


def test_captions_are_varied_across_the_world(world, comp):
    for w in (world, comp):
        flat = [c for caps in w.captions for c in caps]
        vocab = {t for c in flat for t in re.findall(r"[a-z]+", c.lower())}
        assert len(set(flat)) > 0.95 * len(flat)
        assert len(vocab) > 80


# ------------------------------------------------------------------ topics, splits, saliency


def test_topics_and_scenes(world):
    assert world.topic_names == [t.name for t in TOPICS] and 8 <= len(world.topic_names) <= 10
    assert world.topics.dtype == np.int64 and set(world.topics) <= set(range(len(TOPICS)))
    assert len(set(world.topics.tolist())) == len(TOPICS)
    for sc, t in zip(world.scenes, world.topics):
        assert sc["topic"] == t and 1 <= len(sc["objects"]) <= 4
        assert any(o["salient"] for o in sc["objects"])
        assert {o["shape"] for o in sc["objects"]} <= set(SHAPES)
        assert (sc["relation"] is None) == (len(sc["objects"]) == 1)


def test_splits_disjoint_and_covering(world):
    s = world.split_indices
    assert [len(s[k]) for k in ("train", "val", "test")] == [240, 30, 30]
    allidx = np.concatenate([s["train"], s["val"], s["test"]])
    assert np.array_equal(np.sort(allidx), np.arange(N))
    assert len(world.train) == 240 and len(world.val) == 30 and len(world.test) == 30


def test_saliency_sums_to_one_and_peaks_on_salient_object(world):
    sal = world.saliency
    assert sal.dtype == np.float32 and sal.shape == (N, 32, 32)
    assert (sal >= 0).all()
    np.testing.assert_allclose(sal.reshape(N, -1).sum(1), 1.0, atol=1e-5)
    for m, sc in zip(sal, world.scenes):
        y, x = np.unravel_index(np.argmax(m), m.shape)
        near = [np.hypot(x + 0.5 - o["x"], y + 0.5 - o["y"]) <= o["radius"] + 1.0
                for o in sc["objects"] if o["salient"]]
        assert any(near)


def test_images_look_like_their_topic(world):
    """Nearest topic centroid on raw pixels: well above chance (1/8), not perfect."""
    w = make_world(n_pairs=3000, seed=5)
    x = w.images.reshape(len(w.images), -1).astype(np.float32)
    tr, te = w.split_indices["train"], w.split_indices["test"]
    cents = np.stack([x[tr][w.topics[tr] == k].mean(0) for k in range(len(TOPICS))])
    pred = np.argmin(((x[te][:, None, :] - cents[None]) ** 2).sum(-1), 1)
    acc = float((pred == w.topics[te]).mean())
    assert 0.4 < acc < 0.98, acc


# ------------------------------------------------------------------ dataset interface


def test_dataset_item_contract(world):
    ds = world.train
    assert isinstance(ds, EmbeddedWorldDataset) and isinstance(ds, ImageTextDataset)
    item = ds[3]
    assert set(item) == {"image", "captions", "pair_id", "topic", "saliency", "index"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["saliency"].shape == (32, 32) and item["saliency"].dtype == torch.float32
    assert abs(float(item["saliency"].sum()) - 1.0) < 1e-5
    assert item["index"] == 3 and isinstance(item["pair_id"], int) and isinstance(item["topic"], int)
    j = int(world.split_indices["train"][3])
    assert item["pair_id"] == j and item["topic"] == int(world.topics[j])
    assert item["captions"] == world.captions[j]
    assert ds[-1]["index"] == len(ds) - 1
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert ds.topic_names == world.topic_names


def test_captions_flat_matches_items(world):
    ds = world.val
    texts, t2i = ds.captions_flat()
    assert t2i.dtype == np.int64 and len(texts) == len(t2i) == 5 * len(ds)
    assert np.array_equal(t2i, np.repeat(np.arange(len(ds)), 5))
    for text, i in zip(texts, t2i):
        assert text in ds[int(i)]["captions"]
    assert np.array_equal(ds.pair_ids, world.split_indices["val"])
    assert np.array_equal(ds.topics, world.topics[world.split_indices["val"]])


def test_fast_path_equals_default_transform(world):
    slow = world.split("test", transform=default_transform())
    fast = world.test
    for i in (0, 7):
        torch.testing.assert_close(fast[i]["image"], slow[i]["image"], atol=1e-5, rtol=0)


def test_transform_path_resizes_saliency(world):
    tf = transforms.Compose([transforms.Resize(64), transforms.ToTensor()])
    ds = world.split("train", transform=tf)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["saliency"].shape == (64, 64)
    assert abs(float(item["saliency"].sum()) - 1.0) < 1e-5
    seen = []
    world.split("val", transform=lambda im: seen.append(im) or transforms.functional.to_tensor(im))[0]
    assert isinstance(seen[0], Image.Image) and seen[0].mode == "RGB"


@pytest.mark.parametrize("size", [16, 64])
def test_other_image_sizes(size):
    w = make_world(n_pairs=30, seed=0, image_size=size)
    assert w.images.shape == (30, size, size, 3) and w.images.dtype == np.uint8
    assert w.train[0]["image"].shape == (3, size, size)
    assert w.saliency.shape == (30, size, size)


def test_generation_time_10k():
    t0 = time.perf_counter()
    w = make_world(n_pairs=10_000, seed=0)
    dt = time.perf_counter() - t0
    print(f"\nmake_world(n_pairs=10_000) took {dt:.2f} s")
    assert len(w) == 10_000
    assert dt < 30


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("kwargs, name", [
    ({"pairing": "foo"}, "pairing"),
    ({"n_pairs": 0}, "n_pairs"),
    ({"n_pairs": 2.5}, "n_pairs"),
    ({"split_fractions": (0.5, 0.2, 0.2)}, "split_fractions"),
    ({"split_fractions": (0.8, 0.2)}, "split_fractions"),
    ({"split_fractions": (1.2, -0.1, -0.1)}, "split_fractions"),
    ({"image_size": 8}, "image_size"),
    ({"n_captions": 0}, "n_captions"),
    ({"seed": -1}, "seed"),
])
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_world(**{"n_pairs": 10, **kwargs})


def test_unknown_split_name(world):
    with pytest.raises(ValueError, match="split"):
        world.split("holdout")


def test_a_registered_caption_style_changes_only_the_text():
    from labkit.data import CAPTION_STYLES, register_caption_style

    def terse(scene, rng, n):
        return [f"{scene['objects'][0]['shape']} {k}" for k in range(n)]

    register_caption_style("terse_test", terse)
    try:
        a, b = make_world(n_pairs=40, seed=3), make_world(n_pairs=40, seed=3, pairing="terse_test")
        assert np.array_equal(a.images, b.images) and np.array_equal(a.topics, b.topics)
        assert all(np.array_equal(a.split_indices[k], b.split_indices[k]) for k in a.split_indices)
        assert b.captions[0] == [f"{b.scenes[0]['objects'][0]['shape']} {k}" for k in range(5)]
        with pytest.raises(ValueError, match="already registered"):
            register_caption_style("terse_test", lambda s, r, n: [])
        with pytest.raises(ValueError, match="pairing must be one of"):
            make_world(n_pairs=10, pairing="nope")
    finally:
        CAPTION_STYLES.pop("terse_test")
