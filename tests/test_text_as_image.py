"""Seed 002's text-as-image encoding: the layout against hand-placed pixels, truncation / OOV, groups, word2vec
determinism and its training-captions-only vocabulary."""

import numpy as np
import pytest
import torch

from labkit.data.text_as_image import CLIP_VALUE, TextAsImage, TextImageLayout


def _encoder(layout, words=("red", "circle", "blue"), seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.uniform(-2, 2, (len(words), layout.dim)).astype(np.float32)
    # identity standardisation: the table is the vectors themselves (all within ±3, so clipping never acts)
    enc = TextAsImage(list(words), vectors, layout, mean=np.zeros(layout.dim), std=np.ones(layout.dim))
    return enc, dict(zip(words, vectors))


def test_default_layout_for_32_pixels():
    lay = TextImageLayout.for_image(32)
    assert (lay.grid, lay.superpixel, lay.words_per_row, lay.dim, lay.word_px, lay.capacity) == (4, 1, 8, 48, 4, 64)
    assert TextImageLayout.for_image(64).superpixel == 2


def test_each_word_is_painted_where_and_how_the_layout_says():
    lay = TextImageLayout(image_size=16, grid=2, superpixel=2, words_per_row=3, gap=1)  # 4-px words, 5-px cells
    enc, vec = _encoder(lay)
    img = enc.encode(["Red circle blue red"])[0]  # (3, 16, 16)
    expected = np.zeros((3, 16, 16), np.float32)
    for slot, word in enumerate(["red", "circle", "blue", "red"]):
        top, left = (slot // 3) * 5, (slot % 3) * 5
        for t in range(4):  # triplet t → superpixel (t // 2, t % 2), 2 × 2 pixels
            y, x = top + (t // 2) * 2, left + (t % 2) * 2
            for ch in range(3):
                expected[ch, y:y + 2, x:x + 2] = vec[word][3 * t + ch]
    np.testing.assert_array_equal(img, expected)


def test_truncation_oov_and_groups():
    lay = TextImageLayout(image_size=8, grid=2, superpixel=1, words_per_row=4, gap=0)  # capacity 4 × 4 = 16
    enc, vec = _encoder(lay)
    long = " ".join(["red"] * 20)
    img = enc.encode([long])[0]
    assert enc.n_truncated == 1 and np.count_nonzero(img == 0) == 0  # 16 words fill the image, 4 dropped
    blank = enc.encode(["red zebra blue"])[0]
    assert enc.n_oov == 1
    np.testing.assert_array_equal(blank[:, 0:2, 2:4], 0)  # the unknown word keeps its place, painted blank
    np.testing.assert_array_equal(blank[:, 0:2, 4:6], enc.encode(["blue"])[0][:, 0:2, 0:2])
    groups = enc([("red", "blue"), ("circle", "red circle")])
    assert groups.shape == (2, 2, 3, 8, 8) and groups.dtype == torch.float32
    torch.testing.assert_close(groups[1, 1], enc(["red circle"])[0])
    with pytest.raises(ValueError, match="same length"):
        enc([("red",), ("red", "blue")])
    with pytest.raises(TypeError):
        enc.encode([3])


def test_standardisation_clips_and_display_range():
    lay = TextImageLayout(image_size=4, grid=1, superpixel=1, words_per_row=4)
    vectors = np.array([[0, 0, 0], [100, 0, 0], [-100, 0, 0]], np.float32)
    enc = TextAsImage(["a", "b", "c"], vectors, lay)
    assert enc.encode(["b"])[0].max() <= CLIP_VALUE
    shown = enc.to_display(enc(["a b c"])[0])
    assert shown.shape == (4, 4, 3) and shown.min() >= 0 and shown.max() <= 1


def test_bad_layouts_and_vectors():
    with pytest.raises(ValueError, match="do not fit"):
        TextImageLayout(image_size=8, grid=2, superpixel=2, words_per_row=3)
    with pytest.raises(ValueError, match="grid"):
        TextImageLayout(grid=0)
    with pytest.raises(ValueError, match="components"):
        TextAsImage(["a"], np.zeros((1, 5)), TextImageLayout())
    with pytest.raises(ValueError, match="no words"):
        TextAsImage.fit(["!!", ""], image_size=32)


def test_word2vec_on_training_captions_only_and_deterministic():
    train = ["a red circle", "a blue square", "a red square left of a blue circle"] * 5
    a = TextAsImage.fit(train, image_size=32, seed=3, epochs=3)
    b = TextAsImage.fit(train, image_size=32, seed=3, epochs=3)
    assert set(a.words) == {"a", "red", "circle", "blue", "square", "left", "of"}
    np.testing.assert_array_equal(a.encode(["a red circle"]), b.encode(["a red circle"]))
    c = TextAsImage.fit(train, image_size=32, seed=4, epochs=3)
    assert not np.array_equal(a.encode(["a red circle"]), c.encode(["a red circle"]))
    restored = TextAsImage.from_state(a.state())
    np.testing.assert_allclose(restored.encode(["a blue square"]), a.encode(["a blue square"]))


def test_one_word_block_by_hand_and_in_place_in_the_image():
    from labkit.data.text_as_image import paint_word_block

    g, s = 2, 3
    vector = np.arange(1, 13, dtype=np.float32)  # 4 triplets
    block = paint_word_block(vector, g, s)
    expected = np.zeros((3, 6, 6), np.float32)
    for t in range(4):
        for ch in range(3):
            expected[ch, (t // g) * s:(t // g + 1) * s, (t % g) * s:(t % g + 1) * s] = vector[3 * t + ch]
    np.testing.assert_array_equal(block, expected)
    lay = TextImageLayout(image_size=12, grid=2, superpixel=3, words_per_row=2)
    enc, vec = _encoder(lay)
    np.testing.assert_array_equal(enc.word_vector("blue"), vec["blue"])
    np.testing.assert_array_equal(enc.word_vector("zebra"), 0)  # out of vocabulary: blank
    img = enc.encode(["red blue"])[0]
    np.testing.assert_array_equal(img[:, :6, 6:12], paint_word_block(enc.word_vector("blue"), 2, 3))
    with pytest.raises(ValueError, match="components"):
        paint_word_block(np.zeros(5), 2, 1)
