"""Gaze regularisation (seed 003 §3.3, eq. 2) and the embedded world's distractor clutter."""

import numpy as np
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from labkit.data import GazeRegularized, PairCollator, attention_mask, gaze_modulate, make_world
from labkit.data.gaze import OPENAI_MEAN, OPENAI_STD
from labkit.data.text import WordTokenizer


pytestmark = pytest.mark.usefixtures("one_thread")


def test_eq2_multiplies_every_channel_by_the_peak_normalised_map():
    image = torch.arange(2 * 2 * 3, dtype=torch.float32).view(3, 2, 2)  # (C, H, W)
    sal = torch.tensor([[1.0, 3.0], [0.0, 4.0]])  # peak 4 -> M = [[.25, .75], [0, 1]]
    out = gaze_modulate(image, sal, mean=None, std=None)
    for c in range(3):
        for y in range(2):
            for x in range(2):
                assert out[c, y, x].item() == pytest.approx(image[c, y, x].item() * sal[y, x].item() / 4.0)


def test_eq2_on_intensities_of_a_normalised_tensor():
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 3, 4, 4, generator=g)  # intensities in [0, 1]
    sal = torch.rand(2, 4, 4, generator=g)
    mean, std = torch.tensor(OPENAI_MEAN).view(3, 1, 1), torch.tensor(OPENAI_STD).view(3, 1, 1)
    normalised = (pixels - mean) / std
    out = gaze_modulate(normalised, sal)
    for b in range(2):
        m = sal[b] / sal[b].max()
        for c in range(3):  # channel by channel, on the intensities, then normalised again
            expect = (m * pixels[b, c] - mean[c]) / std[c]
            assert torch.allclose(out[b, c], expect, atol=1e-5)
    assert tuple(OPENAI_MEAN) == tuple(OPENAI_DATASET_MEAN) and tuple(OPENAI_STD) == tuple(OPENAI_DATASET_STD)


def test_attention_mask_and_bad_maps():
    assert attention_mask(torch.tensor([[0.0, 2.0]])).tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="all zeros"):
        attention_mask(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        attention_mask(torch.tensor([[-1.0, 1.0]]))
    with pytest.raises(ValueError, match="does not match"):
        gaze_modulate(torch.zeros(3, 4, 4), torch.ones(5, 5))


@pytest.fixture(scope="module")
def world():
    return make_world(n_pairs=60, seed=1, image_size=16)


def test_gaze_regularized_applies_eq2_with_probability_p(world):
    train = world.train
    never = GazeRegularized(train, p=0.0)
    always = GazeRegularized(train, p=1.0)
    for i in range(5):
        assert torch.equal(never[i]["image"], train[i]["image"])
        assert torch.allclose(always[i]["image"], gaze_modulate(train[i]["image"], train[i]["saliency"]))
    half = GazeRegularized(train, p=0.5, generator=torch.Generator().manual_seed(0))
    changed = [not torch.equal(half[i % len(train)]["image"], train[i % len(train)]["image"]) for i in range(400)]
    assert 0.4 < np.mean(changed) < 0.6 and half.n_modulated == sum(changed)
    assert half.captions_flat()[0] == train.captions_flat()[0] and len(half) == len(train)
    assert np.array_equal(half.pair_ids, train.pair_ids)


def test_gaze_draws_are_seeded_and_nested_across_p(world):
    """Same global seed -> same masked items; the items masked at p = 0.3 are among those masked at p = 0.7."""
    masked = {}
    for p in (0.3, 0.7, 0.3):
        torch.manual_seed(5)
        ds = GazeRegularized(world.train, p=p)
        masked.setdefault(p, []).append([not torch.equal(ds[i]["image"], world.train[i]["image"]) for i in range(40)])
    assert masked[0.3][0] == masked[0.3][1]
    assert all(b for a, b in zip(masked[0.3][0], masked[0.7][0]) if a)
    assert sum(masked[0.7][0]) > sum(masked[0.3][0])


def test_gaze_regularized_collates_and_checks_its_inputs(world):
    tok = WordTokenizer.from_texts(world.train.captions_flat()[0])
    batch = PairCollator(tok)([GazeRegularized(world.train, 1.0)[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 16, 16) and "saliency" in batch
    with pytest.raises(ValueError, match="attention probability"):
        GazeRegularized(world.train, p=1.5)

    class NoSaliency(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {"image": torch.zeros(3, 2, 2), "captions": ["x"], "pair_id": 0, "saliency": None}

    with pytest.raises(ValueError, match="no saliency map"):
        GazeRegularized(NoSaliency(), p=1.0)[0]


def test_clutter_leaves_everything_but_the_corners_unchanged():
    plain = make_world(n_pairs=80, seed=3, image_size=32)
    default = make_world(n_pairs=80, seed=3, image_size=32, clutter=0)
    assert np.array_equal(plain.images, default.images) and plain.captions == default.captions
    assert all("clutter" not in sc for sc in plain.scenes)
    busy = make_world(n_pairs=80, seed=3, image_size=32, clutter=2)
    assert busy.captions == plain.captions  # no caption mentions the clutter
    assert np.array_equal(busy.saliency, plain.saliency)  # the map covers what the captions talk about
    assert np.array_equal(busy.topics, plain.topics)
    assert all(np.array_equal(busy.split_indices[k], plain.split_indices[k]) for k in plain.split_indices)
    assert all(len(sc["clutter"]) == 2 for sc in busy.scenes)
    assert [sc["objects"] for sc in busy.scenes] == [sc["objects"] for sc in plain.scenes]
    diff = np.abs(busy.images.astype(int) - plain.images.astype(int)).sum(axis=(0, 3))  # (H, W)
    centre = diff[10:22, 10:22].sum()
    assert diff.sum() > 0 and centre < 0.02 * diff.sum()  # the change sits in the corners
    assert busy.clutter == 2 and plain.clutter == 0


def test_clutter_is_validated():
    for bad in (-1, 5, 1.5, True):
        with pytest.raises(ValueError, match="clutter"):
            make_world(n_pairs=10, clutter=bad)
