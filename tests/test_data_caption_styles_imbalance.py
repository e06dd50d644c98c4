"""The information-imbalance caption styles: k of each object's four attributes named, nothing else changed."""

import numpy as np
import pytest

from labkit.data import CAPTION_STYLES, COLOURS, SHAPES, make_world
from labkit.data.caption_styles_imbalance import ATTRIBUTES, IMBALANCE_STYLES, attribute_captions, imbalance_style
from labkit.data.world import POSITION_WORDS, SIZES

POSITIONS = [w[0] for w in POSITION_WORDS.values()]


def named_attributes(caption: str) -> dict[str, int]:
    """How many shape, colour, size and position words a caption contains (canonical words only)."""
    text = caption.lower()
    words = text.replace(",", " ").replace(".", " ").replace(":", " ").split()
    return {"shape": sum(w in SHAPES for w in words), "colour": sum(w in COLOURS for w in words),
            "size": sum(w in SIZES for w in words), "position": sum(text.count(p) for p in POSITIONS)}


@pytest.mark.parametrize("k", range(5))
def test_each_caption_names_exactly_k_attributes_of_every_object(k):
    world = make_world(n_pairs=40, seed=3, pairing=imbalance_style(k))
    for i in range(len(world.train)):
        scene = world.train.scenes[i]
        n_obj = len(scene["objects"])
        counts = [named_attributes(c) for c in world.train.captions_of(i)]
        assert len(set(world.train.captions_of(i))) == 5  # five distinct captions
        for c in counts:
            assert sum(c.values()) == k * n_obj
        assert all(c == counts[0] for c in counts)  # the same attributes in every caption of the image
        if k == len(ATTRIBUTES):  # complete: every object's shape, colour and size named
            text = " ".join(world.train.captions_of(i)[:1]).lower()
            for o in scene["objects"]:
                assert o["shape"] in text and o["colour"] in text and o["size"] in text


def test_images_topics_and_splits_match_the_literal_world():
    base = make_world(n_pairs=30, seed=1)
    for style in IMBALANCE_STYLES:
        w = make_world(n_pairs=30, seed=1, pairing=style)
        assert style in CAPTION_STYLES
        assert np.array_equal(w.images, base.images) and np.array_equal(w.topics, base.topics)
        assert all(np.array_equal(w.split_indices[s], base.split_indices[s]) for s in ("train", "val", "test"))
    again = make_world(n_pairs=30, seed=1, pairing="attributes_2")
    assert again.captions == make_world(n_pairs=30, seed=1, pairing="attributes_2").captions


def test_bad_k():
    for k in (-1, 5, 2.0):
        with pytest.raises(ValueError, match="k must be"):
            attribute_captions(k)
        with pytest.raises(ValueError, match="k must be"):
            imbalance_style(k)
