"""webdataset shards: two small shards written by the test from the embedded world, streamed back with the usual item
interface, split over processes, shuffled per (seed, epoch), and trained on by fit."""

import pytest
import torch

from labkit.data import make_world
from labkit.data.shards import ShardDataset, expand_shards, write_shards


@pytest.fixture(scope="module")
def world():
    return make_world(n_pairs=30, seed=0, image_size=16)


@pytest.fixture(scope="module")
def shards(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    names = write_shards(world.train, str(root / "train-%06d.tar"), maxcount=12)
    return root, names


def test_two_shards_round_trip_the_items(world, shards):
    root, names = shards
    assert [n.rsplit("/", 1)[-1] for n in names] == ["train-000000.tar", "train-000001.tar"]
    assert expand_shards(str(root / "train-{000000..000001}.tar")) == names
    ds = ShardDataset(str(root / "train-{000000..000001}.tar"))
    train = world.train
    assert ds.n_items == len(train) == 24 and len(ds) == 24
    items = list(ds)
    assert [it["pair_id"] for it in items] == train.pair_ids.tolist()
    for it, j in zip(items, range(len(train))):
        ref = train[j]
        assert set(it) == set(ref) and it["captions"] == ref["captions"] and it["topic"] == -1
        torch.testing.assert_close(it["image"], ref["image"])  # PNG is lossless: same pixels, same normalisation
    mem = ds.materialize()
    texts, owner = mem.captions_flat()
    assert texts == train.captions_flat()[0] and owner.tolist() == train.captions_flat()[1].tolist()


def test_shuffle_is_seeded_per_epoch_and_complete(shards):
    root, names = shards
    ds = ShardDataset(names, shuffle=True, seed=3, buffer=5)
    first = [it["pair_id"] for it in ds]
    assert sorted(first) == sorted(it["pair_id"] for it in ShardDataset(names))
    assert [it["pair_id"] for it in ds] == first  # same (seed, epoch): same order
    ds.set_epoch(1)
    assert [it["pair_id"] for it in ds] != first


def test_processes_get_disjoint_shards_and_equal_counts(shards, monkeypatch):
    _, names = shards
    ds = ShardDataset(names, n_items=24)
    seen = []
    for rank in range(2):
        monkeypatch.setattr(ShardDataset, "_world", lambda self, r=rank: (r, 2))
        ids = [it["pair_id"] for it in ds]
        assert len(ids) == len(ds) == 12
        seen.append(set(ids))
    assert not seen[0] & seen[1]
    monkeypatch.setattr(ShardDataset, "_world", lambda self: (2, 3))  # 3 processes, 2 shards: still 8 each
    assert len(list(ds)) == 8


def test_fit_trains_on_a_stream():
    from labkit.losses import Objective
    from labkit.models import create_model
    from labkit.train import TrainConfig, fit

    world = make_world(n_pairs=40, seed=1, image_size=32)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        names = write_shards(world.train, f"{tmp}/s-%06d.tar", maxcount=20)
        b = create_model("labkit-tiny", seed=0)
        ds = ShardDataset(names, shuffle=True, seed=0, buffer=8)
        hist = fit(b.model, Objective(), ds, b.tokenizer,
                   TrainConfig(epochs=2, batch_size=16, device="cpu", progress=False, warmup_steps=1))
    assert len(hist) == 2 and torch.isfinite(torch.tensor(hist["loss"].tolist())).all()


def test_entry_point_trains_and_evaluates_on_shards(tmp_path):
    from labkit.io import read_jsonl, read_metrics
    from labkit.studies.train_cli import main

    world = make_world(n_pairs=60, seed=2, image_size=32)
    train = write_shards(world.train, str(tmp_path / "train-%06d.tar"), maxcount=24)
    val = write_shards(world.test, str(tmp_path / "val-%06d.tar"))
    out = tmp_path / "run"
    assert main(["--dataset", "shards", "--shards", ",".join(train), "--eval-shards", val[0], "--profile", "tiny",
                 "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-progress",
                 "--output-dir", str(out)]) == 0
    metrics = read_metrics(out / "metrics.json")
    assert "i2t_R@1" in metrics and metrics["epoch"] == 1
    assert read_jsonl(out / "results.jsonl")[0]["i2t_R@1"] == metrics["i2t_R@1"]
