"""The real-data path end to end on a Flickr8k fixture in the Karpathy format, with a random-init checkpoint:
what `dataset=flickr8k data_root=… checkpoint=…` does in the notebooks, minus the hub."""

import json

import numpy as np
import pytest
from PIL import Image

from labkit.evaluate import embed_dataset
from labkit.studies.recipe import RealSource, open_source, train_clip
from labkit.studies.grl_sweep import lambda_sweep
from labkit.io import save_checkpoint
from labkit.models import create_model

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}


@pytest.fixture(scope="module")
def flickr8k_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("flickr8k")
    (root / "Flicker8k_Dataset").mkdir()
    rng = np.random.default_rng(0)
    images = []
    for k in range(16):
        name = list(COLOURS)[k % 4]
        pixels = np.clip(np.array(COLOURS[name]) + rng.normal(0, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
        filename = f"{1000 + k}_fixture.jpg"
        Image.fromarray(pixels).save(root / "Flicker8k_Dataset" / filename, format="JPEG")
        images.append({"filename": filename, "imgid": k, "split": "train" if k < 8 else "test",
                       "sentids": list(range(5 * k, 5 * k + 5)),
                       "sentences": [{"raw": f"a {name} picture number {j}", "tokens": []} for j in range(5)]})
    (root / "dataset_flickr8k.json").write_text(json.dumps({"dataset": "flickr8k", "images": images}))
    return root


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "random_init.pt"
    save_checkpoint(path, {"state_dict": create_model("labkit-tiny", seed=7).model.state_dict()})
    return path


def test_open_source_real_and_its_errors(flickr8k_root):
    source = open_source("flickr8k", str(flickr8k_root))
    assert isinstance(source, RealSource)
    assert len(source.split("train")) == 8 and len(source.split("test")) == 8
    with pytest.raises(ValueError, match="data_root"):
        open_source("flickr8k", None)
    with pytest.raises(ValueError, match="dataset must be"):
        open_source("imagenet", str(flickr8k_root))


def test_train_clip_fine_tunes_a_checkpoint_on_real_format_data(flickr8k_root, random_checkpoint):
    result = train_clip(open_source("flickr8k", str(flickr8k_root)), seed=0, checkpoint=str(random_checkpoint),
                        epochs=2, batch_size=4, device="cpu", progress=False)
    assert result.final.image.shape == (8, 64) and result.final.text.shape == (40, 64)  # 5 captions per image
    assert set(result.metrics) >= {"gap", "silhouette", "i2t_R@1", "t2i_R@5", "mean_recall"}
    assert np.isfinite(list(result.metrics.values())).all()
    # training started from the checkpoint, not from a fresh init: the "at init" embeddings are the checkpoint's
    start = create_model("labkit-tiny", checkpoint=random_checkpoint)
    test_set = open_source("flickr8k", str(flickr8k_root)).split("test", transform=start.preprocess)
    expected = embed_dataset(start.model, test_set, start.tokenizer, device="cpu")
    np.testing.assert_allclose(result.init.image, expected.image, atol=1e-6)
    np.testing.assert_allclose(result.init.text, expected.text, atol=1e-6)


def test_grl_sweep_runs_on_real_format_data(flickr8k_root, random_checkpoint):
    sweep = lambda_sweep(open_source("flickr8k", str(flickr8k_root)), lambdas=[0.0, 1.0], seeds=[0],
                         lambda_on="grl", log=None, checkpoint=str(random_checkpoint),
                         epochs=1, batch_size=4, device="cpu", progress=False)
    assert sweep.table.shape[0] == 2
    assert {"gap@lambda=0", "gap@lambda=1"} <= set(sweep.metrics())
