"""Studies of notebooks 09 (seed 002) and 10 (seed 004): verdict logic, semantic metrics, the second world's
caption style, determinism, and the real-data paths on Karpathy-format fixtures (Flickr8k from
tests/test_real_data_path.py; Flickr30k / COCO written with the helpers of tests/test_real_loaders.py)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from labkit.data import CaptionGroups, GroupTokenizer, make_world
from labkit.data.caption_styles import CASUAL_COLOURS, CASUAL_SHAPES
from labkit.data.groups import WithTopics
from labkit.data.text import tokenize_words
from labkit.evaluate import Embeddings
from labkit.studies import single_network as sn
from labkit.studies import staged_alignment as sa
from labkit.studies.sweep import Sweep
from test_real_data_path import COLOURS, flickr8k_root  # noqa: F401  (the shared Flickr8k fixture)
from test_real_loaders import _dump, _write_image


pytestmark = pytest.mark.usefixtures("one_thread")


TINY_SN = sn.study_settings("tiny", epochs=1)
TINY_SA = sa.study_settings("tiny", epochs=2)


# ------------------------------------------------------------------ the second world's captions and the data views

def test_casual_style_is_another_voice_over_the_same_scenes():
    lit, cas = make_world(80, seed=3), make_world(80, seed=3, pairing="casual")
    np.testing.assert_array_equal(lit.images, cas.images)  # same pixels, scenes, topics, splits
    assert lit.captions != cas.captions and all(len(c) == 5 for c in cas.captions)
    lit_vocab = {w for cs in lit.captions for c in cs for w in tokenize_words(c)}
    words = [w for cs in cas.captions for c in cs for w in tokenize_words(c)]
    known = np.mean([w in lit_vocab for w in words])
    assert 0.4 < known < 0.85  # another vocabulary, but not another language
    for scene, caps in zip(cas.scenes, cas.captions):  # every caption names a drawn shape, by one of its words
        drawn = {w for o in scene["objects"] for name in CASUAL_SHAPES[o["shape"]] for w in name.split()}
        assert all(drawn & set(tokenize_words(c)) or "bunch" in c or "couple" in c for c in caps)
    assert {"cherry", "ball"} <= {w for cs in make_world(400, seed=0, pairing="casual").captions for c in cs
                                  for w in tokenize_words(c)}
    assert "cherry" in CASUAL_COLOURS["red"] and "cherry" not in lit_vocab


def test_caption_groups_and_relabelled_topics():
    world = make_world(20, seed=0)
    groups = CaptionGroups(world.train, k=7)  # more than the 5 captions: cycled
    item = groups[0]
    assert len(item["captions"]) == 1 and len(item["captions"][0]) == 7
    assert item["captions"][0][5] == item["captions"][0][0]
    assert groups.captions_flat()[0] == world.train.captions_flat()[0]  # evaluation still sees every caption
    tok = GroupTokenizer(lambda texts: torch.tensor([[len(t)] for t in texts]))
    assert tok([("ab", "c"), ("d", "efg")]).shape == (2, 2, 1)
    relabelled = WithTopics(world.train, np.arange(len(world.train)) % 3)
    assert relabelled[4]["topic"] == 1 and relabelled.topics.tolist()[:4] == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="one label per item"):
        WithTopics(world.train, [0, 1])
    with pytest.raises(ValueError, match="k must be"):
        CaptionGroups(world.train, k=0)


# ------------------------------------------------------------------ seed 002 study

def test_comparable_verdict_is_an_equivalence_test():
    assert sn.comparable_verdict(0.1, 0.2, margin=1.0) == "holds"  # resolved inside ±1
    assert sn.comparable_verdict(-3.0, 0.2, margin=1.0) == "does not hold"  # resolved below −1
    assert sn.comparable_verdict(3.0, 0.2, margin=1.0) == "does not hold"  # resolved above +1
    assert sn.comparable_verdict(0.5, 1.0, margin=1.0) == "inconclusive"  # too noisy to tell
    assert sn.comparable_verdict(0.0, float("nan"), margin=1.0) == "inconclusive"


def test_semantic_metrics_on_a_hand_built_space():
    # 4 images, topics [0, 0, 1, 1], 1 caption each; captions retrieve the other image of their topic first
    image = np.eye(4)
    text = np.array([[0.1, 1, 0, 0], [1, 0.1, 0, 0], [0, 0, 0.1, 1], [0, 0, 1, 0.1]])
    emb = Embeddings(image, text / np.linalg.norm(text, axis=1, keepdims=True), np.arange(4), np.array([0, 0, 1, 1]))
    out = sn.semantic_metrics(emb, None, k=1)
    assert out["i2t_topicP@1"] == 100.0 and out["i2t_missed_topic@1"] == 100.0  # every miss has the topic
    assert out["i2t_chance_missed_topic@1"] == pytest.approx(100 / 3)
    assert "i2t_objectP@1" not in out and sn.semantic_metrics(
        Embeddings(image, text, np.arange(4), -np.ones(4, int)), None) == {}


def _fake_sweep(single, two, share, chance):
    rows = []
    for s, (a, b, c, d) in enumerate(zip(single, two, share, chance)):
        base = {"seed": s, "i2t_R@10": 50.0, "t2i_R@10": 50.0, "chance/i2t_R@10": 2.0, "chance/t2i_R@10": 2.0}
        rows.append({**base, "model": "single_network", "mean_recall": a, "i2t_missed_topic@5": c,
                     "i2t_chance_missed_topic@5": d})
        rows.append({**base, "model": "two_tower", "mean_recall": b, "i2t_missed_topic@5": c,
                     "i2t_chance_missed_topic@5": d})
    return Sweep(pd.DataFrame(rows), ("model",))


def test_single_network_claims_are_computed():
    settings = {"k_semantic": 5, "margin": 0.1}
    claims, learned, _ = sn.claims(_fake_sweep([5, 6, 5.5], [20, 21, 20.5], [30, 28, 29], [12, 12, 12]), settings)
    verdicts = {c.id: c.verdict for c in claims}
    assert learned and verdicts == {"one_network_comparable_to_two_towers": "does not hold",
                                    "recall_undervalues_semantic_matches": "holds"}
    claims, _, _ = sn.claims(_fake_sweep([20.1, 20.9, 20.4], [20, 21, 20.5], [12, 13, 11], [12, 12, 12]), settings)
    assert {c.id: c.verdict for c in claims} == {"one_network_comparable_to_two_towers": "holds",
                                                 "recall_undervalues_semantic_matches": "inconclusive"}


def test_single_network_study_is_deterministic_and_its_diagnostics_run():
    source = sn.make_study_source(TINY_SN, seed=0)
    a = sn.train_single_network(source, 1, TINY_SN, device="cpu")
    b = sn.train_single_network(source, 1, TINY_SN, device="cpu")
    np.testing.assert_array_equal(a.emb.image, b.emb.image)
    np.testing.assert_array_equal(a.emb.text, b.emb.text)
    numbers = sn.evaluate_run(a, k=5)
    assert {"mean_recall", "i2t_topicP@5", "t2i_objectP@5", "chance/t2i_R@10"} <= set(numbers)
    centers = a.extra["objective"].terms["center"].centers
    assert not torch.allclose(centers, sn.center_objective(source.split("train").pair_ids, TINY_SN["embed_dim"],
                                                           seed=1).terms["center"].centers)  # they moved
    for name in sn.DIAGNOSTICS:
        sweep = sn.run_study(source, [0], TINY_SN, device="cpu", log=None, models=(name,))
        assert sweep.table["model"].tolist() == [name]
    table = sn.top_captions(a, [0, 1], k=5)
    assert len(table) == 10 and set(table["rank"]) == {1, 2, 3, 4, 5}


def _karpathy_fixture(root, name, image_dir, n=12):
    """A Karpathy-format split file and images (train: first half, test: second half)."""
    images = []
    for k in range(n):
        colour = list(COLOURS)[k % 4]
        filename = f"{2000 + k}.jpg"
        _write_image(root / image_dir / filename, COLOURS[colour], size=(36, 30), fmt="JPEG")
        images.append({"filename": filename, "imgid": k, "split": "train" if k < n // 2 else "test",
                       "sentences": [{"raw": f"a {colour} photo of thing {j}"} for j in range(5)]})
    _dump(root / f"dataset_{name}.json", {"dataset": name, "images": images})
    return root


def test_single_network_on_real_format_data(flickr8k_root):  # noqa: F811
    source = sn.make_study_source(TINY_SN, dataset="flickr8k", data_root=str(flickr8k_root))
    run = sn.train_single_network(source, 0, TINY_SN, device="cpu")
    numbers = sn.evaluate_run(run)
    assert run.emb.image.shape == (8, TINY_SN["embed_dim"]) and run.emb.text.shape == (40, TINY_SN["embed_dim"])
    assert "i2t_topicP@5" not in numbers and np.isfinite(numbers["mean_recall"])  # no topics: no semantic metric


def test_staged_study_on_real_format_data(tmp_path, flickr8k_root):  # noqa: F811
    f30k = _karpathy_fixture(tmp_path / "f30k", "flickr30k", "flickr30k-images")
    first, second = sa.make_worlds(TINY_SA, dataset="flickr30k", data_root=str(f30k), second_dataset="flickr8k",
                                   second_root=str(flickr8k_root))
    result = sa.train_staged(first, 0, TINY_SA, device="cpu")
    assert result.extra["image_positives"] == "text_clusters"  # no topics: types from stage-1 caption clusters
    numbers, emb = sa.evaluate_on(result, second, TINY_SA, "second", device="cpu")
    assert emb.image.shape == (8, 64) and "second/i2t_mAP@10" not in numbers
    assert np.isfinite(numbers["second/mean_recall"])
    coco = tmp_path / "coco"
    _karpathy_fixture(coco, "coco", "val2014")
    data = json.loads((coco / "dataset_coco.json").read_text())
    for img in data["images"]:
        img["filepath"] = "val2014"
    _dump(coco / "dataset_coco.json", data)
    first, _ = sa.make_worlds(TINY_SA, dataset="coco", data_root=str(coco))
    assert len(first.split("test")) == 6


def test_staged_study_end_to_end_on_the_embedded_worlds():
    first, second = sa.make_worlds(TINY_SA, seed=0)
    assert second.pairing == "casual" and len(second) == TINY_SA["second_n_pairs"]
    a = sa.train_staged(first, 2, TINY_SA, device="cpu")
    b = sa.train_staged(first, 2, TINY_SA, device="cpu")
    na, _ = sa.evaluate_on(a, first, TINY_SA, "first", device="cpu")
    nb, _ = sa.evaluate_on(b, first, TINY_SA, "first", device="cpu")
    assert na == nb  # same seed on CPU → same numbers
    assert {"first/i2t_mAP@10", "first/t2i_P@50", "first/mAP@50", "first/chance/P"} <= set(na)
    eq2 = sa.train_staged(first, 2, TINY_SA, device="cpu", kind="eq2")
    table = sa.loss_comparison({"staged": a, "staged_eq2": eq2}, first, TINY_SA, device="cpu")
    assert list(table.index) == [sa.LABELS["staged"], sa.LABELS["staged_eq2"]]
    sweep = sa.run_study(first, second, [0, 1], TINY_SA, device="cpu", log=None)
    assert len(sweep.table) == 8
    claims, _, _ = sa.claims(sweep, TINY_SA)
    assert [c.id for c in claims] == ["staged_beats_end_to_end.instance", "staged_beats_end_to_end.category",
                                      "zero_shot_beats_supervised"]
    assert "Table" not in sa.results_markdown(sweep, claims, TINY_SA, {"first_test": 1, "second_train": 1,
                                                                       "second_test": 1}).split("\n")[0]


def _coco_fixture(root):
    """COCO in the Karpathy layout (``dataset_coco.json`` + ``val2014/``), written with the Flickr30k helper."""
    _karpathy_fixture(root, "coco", "val2014")
    data = json.loads((root / "dataset_coco.json").read_text())
    for img in data["images"]:
        img["filepath"] = "val2014"
    _dump(root / "dataset_coco.json", data)
    return root


@pytest.mark.parametrize("dataset", ["flickr30k", "coco"])
def test_single_network_on_flickr30k_and_coco_karpathy(tmp_path, dataset):
    root = (_coco_fixture(tmp_path / "coco") if dataset == "coco"
            else _karpathy_fixture(tmp_path / "f30k", "flickr30k", "flickr30k-images"))
    source = sn.make_study_source(TINY_SN, dataset=dataset, data_root=str(root))
    assert len(source.split("train")) == 6 and len(source.split("test")) == 6
    run = sn.train_single_network(source, 0, TINY_SN, device="cpu")
    assert run.emb.image.shape == (6, TINY_SN["embed_dim"]) and run.emb.text.shape == (30, TINY_SN["embed_dim"])
    vocab = set(run.encoder.words)
    assert "photo" in vocab and all(w in vocab for w in tokenize_words(source.split("train").captions_flat()[0][0]))
    assert np.isfinite(sn.evaluate_run(run)["mean_recall"])
    with pytest.raises(FileNotFoundError, match="nowhere"):  # a missing folder: an error naming it
        sn.make_study_source(TINY_SN, dataset=dataset, data_root=str(tmp_path / "nowhere")).split("train")
