"""Real-format loaders (COCO captions JSON, Karpathy splits) on tiny generated fixtures."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from labkit.data import (
    CocoCaptions,
    DataFormatError,
    ImageTextDataset,
    KarpathySplit,
    coco_karpathy,
    flickr8k,
    flickr30k,
)


def _write_image(path: Path, colour, size=(20, 12), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _dump(path: Path, obj):
    path.write_text(json.dumps(obj))
    return path


# ================================================================== COCO captions


def _coco_json():
    return {
        "info": {}, "licenses": [],
        "images": [
            {"id": 9, "file_name": "000000000009.jpg", "width": 20, "height": 12},
            {"id": 25, "file_name": "000000000025.png", "width": 20, "height": 12},
            {"id": 30, "file_name": "000000000030.jpg", "width": 20, "height": 12},  # no captions
            {"id": 42, "file_name": "000000000042.jpg", "width": 20, "height": 12},  # truncated
            {"id": 77, "file_name": "000000000077.jpg", "width": 20, "height": 12},  # file missing
        ],
        "annotations": [
            {"id": 1, "image_id": 9, "caption": "A plate of food.\n"},
            {"id": 2, "image_id": 25, "caption": "A giraffe eating leaves."},
            {"id": 3, "image_id": 9, "caption": " Broccoli on a plate"},
            {"id": 4, "image_id": 42, "caption": "A broken picture."},
            {"id": 5, "image_id": 9, "caption": "Dinner is served."},
            {"id": 6, "image_id": 77, "caption": "Nobody saved this file."},
        ],
    }


@pytest.fixture
def coco_dir(tmp_path):
    root = tmp_path / "coco"
    _write_image(root / "val2017" / "000000000009.jpg", (200, 30, 30))
    _write_image(root / "val2017" / "000000000025.png", (30, 200, 30))
    _write_image(root / "val2017" / "000000000030.jpg", (30, 30, 200))
    _write_image(root / "val2017" / "000000000042.jpg", (90, 90, 90), size=(64, 64))
    _truncate(root / "val2017" / "000000000042.jpg")
    (root / "annotations").mkdir()
    _dump(root / "annotations" / "captions_val2017.json", _coco_json())
    return root


def test_coco_items_grouped_by_image(coco_dir):
    ds = CocoCaptions(coco_dir / "val2017", coco_dir / "annotations" / "captions_val2017.json")
    assert isinstance(ds, ImageTextDataset)
    assert len(ds) == 4 and ds.n_skipped == 1  # image 30 has no caption
    assert list(ds.pair_ids) == [9, 25, 42, 77]
    item = ds[0]
    assert set(item) == {"image", "captions", "pair_id", "topic", "saliency", "index"}
    assert item["captions"] == ["A plate of food.", "Broccoli on a plate", "Dinner is served."]
    assert item["pair_id"] == 9 and item["topic"] == -1 and item["saliency"] is None and item["index"] == 0
    assert item["image"].shape == (3, 12, 20) and item["image"].dtype == torch.float32
    assert float(item["image"][0].mean()) > float(item["image"][1].mean())  # red image, normalised
    assert ds[1]["captions"] == ["A giraffe eating leaves."]
    assert ds.topic_names == []
    texts, t2i = ds.captions_flat()
    assert len(texts) == 6 and t2i.dtype == np.int64 and list(t2i) == [0, 0, 0, 1, 2, 3]
    assert texts[3] == "A giraffe eating leaves."


def test_coco_transform_is_applied(coco_dir):
    tf = transforms.Compose([transforms.Resize((8, 8)), transforms.ToTensor()])
    ds = CocoCaptions(coco_dir / "val2017", coco_dir / "annotations" / "captions_val2017.json", transform=tf)
    assert ds[1]["image"].shape == (3, 8, 8) and float(ds[1]["image"].max()) <= 1.0


def test_coco_corrupt_and_missing_images(coco_dir):
    ds = CocoCaptions(coco_dir / "val2017", coco_dir / "annotations" / "captions_val2017.json")
    with pytest.raises(DataFormatError, match="000000000042.jpg: cannot decode image"):
        ds[2]
    with pytest.raises(FileNotFoundError) as err:
        ds[3]
    assert str(coco_dir / "val2017" / "000000000077.jpg") in str(err.value)
    with pytest.raises(FileNotFoundError, match="000000000077.jpg"):
        CocoCaptions(coco_dir / "val2017", coco_dir / "annotations" / "captions_val2017.json", check_files=True)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["annotations"][3].pop("caption"), r"annotation 3 has no field 'caption'"),
    (lambda d: d["annotations"][1].pop("image_id"), r"annotation 1 has no field 'image_id'"),
    (lambda d: d["images"][2].pop("file_name"), r"image 2 has no field 'file_name'"),
    (lambda d: d.pop("annotations"), r"missing top-level field 'annotations'"),
    (lambda d: d["annotations"][0].update(image_id=999), r"annotation 0 refers to unknown image_id 999"),
])
def test_coco_bad_annotations_name_file_and_field(coco_dir, mutate, message):
    data = _coco_json()
    mutate(data)
    path = _dump(coco_dir / "annotations" / "captions_train2017.json", data)
    with pytest.raises(DataFormatError, match=r"captions_train2017\.json: " + message):
        CocoCaptions(coco_dir / "val2017", path)


def test_coco_missing_and_invalid_files(coco_dir, tmp_path):
    missing = tmp_path / "nowhere" / "captions_val2017.json"
    with pytest.raises(FileNotFoundError) as err:
        CocoCaptions(coco_dir / "val2017", missing)
    assert str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError, match="train2017"):
        CocoCaptions(coco_dir / "train2017", coco_dir / "annotations" / "captions_val2017.json")
    bad = coco_dir / "annotations" / "broken.json"
    bad.write_text('{"images": [')
    with pytest.raises(DataFormatError, match=r"broken\.json: not valid JSON"):
        CocoCaptions(coco_dir / "val2017", bad)


# ================================================================== Karpathy splits


def _sent(raw):
    return {"raw": raw, "tokens": raw.lower().rstrip(".").split(), "imgid": 0, "sentid": 0}


def _karpathy_coco():
    images = []
    specs = [("val2014", "test", 391895), ("val2014", "val", 522418), ("train2014", "train", 184613),
             ("val2014", "restval", 318219), ("val2014", "test", 554625)]
    for k, (folder, split, cocoid) in enumerate(specs):
        images.append({
            "filepath": folder,
            "filename": f"COCO_{folder}_{cocoid:012d}.jpg",
            "imgid": k, "cocoid": cocoid, "split": split,
            "sentids": [5 * k + j for j in range(5)],
            "sentences": [_sent(f"Caption {j} of image {cocoid}.") for j in range(5)],
        })
    return {"dataset": "coco", "images": images}


@pytest.fixture
def karpathy_coco(tmp_path):
    root = tmp_path / "coco2014"
    data = _karpathy_coco()
    for k, img in enumerate(data["images"]):
        _write_image(root / img["filepath"] / img["filename"], (40 * k, 100, 100))
    _truncate(root / "val2014" / data["images"][4]["filename"])
    _dump(root / "dataset_coco.json", data)
    return root


def test_karpathy_split_filtering(karpathy_coco):
    test = coco_karpathy(karpathy_coco, "test")
    assert list(test.pair_ids) == [391895, 554625]
    assert coco_karpathy(karpathy_coco, "val").pair_ids.tolist() == [522418]
    assert coco_karpathy(karpathy_coco, "train").pair_ids.tolist() == [184613, 318219]
    assert coco_karpathy(karpathy_coco, "train", include_restval=False).pair_ids.tolist() == [184613]
    assert coco_karpathy(karpathy_coco, "restval").pair_ids.tolist() == [318219]
    item = test[0]
    assert item["captions"] == [f"Caption {j} of image 391895." for j in range(5)]
    assert item["pair_id"] == 391895 and item["topic"] == -1 and item["saliency"] is None
    assert item["image"].shape == (3, 12, 20)
    assert test.image_path(0) == karpathy_coco / "val2014" / "COCO_val2014_000000391895.jpg"
    texts, t2i = test.captions_flat()
    assert len(texts) == 10 and list(t2i) == [0] * 5 + [1] * 5


def test_karpathy_errors(karpathy_coco, tmp_path):
    with pytest.raises(ValueError, match="split"):
        coco_karpathy(karpathy_coco, "testing")
    with pytest.raises(DataFormatError, match=r"COCO_val2014_000000554625\.jpg: cannot decode image"):
        coco_karpathy(karpathy_coco, "test")[1]
    (karpathy_coco / "train2014" / "COCO_train2014_000000184613.jpg").unlink()
    ds = coco_karpathy(karpathy_coco, "train")
    with pytest.raises(FileNotFoundError, match="COCO_train2014_000000184613.jpg"):
        ds[0]
    with pytest.raises(FileNotFoundError, match="dataset_coco.json"):
        coco_karpathy(tmp_path, "test")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["images"][2]["sentences"][1].pop("raw"), r"image 2 sentence 1 has no field 'raw'"),
    (lambda d: d["images"][0].pop("split"), r"image 0 has no field 'split'"),
    (lambda d: d["images"][1].pop("filename"), r"image 1 has no field 'filename'"),
    (lambda d: d["images"][3].update(split="dev"), r"image 3 has unknown split 'dev'"),
])
def test_karpathy_bad_json_names_file_and_field(karpathy_coco, mutate, message):
    data = _karpathy_coco()
    mutate(data)
    _dump(karpathy_coco / "dataset_coco.json", data)
    with pytest.raises(DataFormatError, match=r"dataset_coco\.json: " + message):
        coco_karpathy(karpathy_coco, "test")


def _flickr_json(name, splits):
    images = []
    for k, split in enumerate(splits):
        images.append({
            "filename": f"{1000 + k}_{name}.jpg", "imgid": k, "split": split,
            "sentids": list(range(5 * k, 5 * k + 5)),
            "sentences": [_sent(f"{name} picture {k}, sentence {j}.") for j in range(5)],
        })
    return {"dataset": name, "images": images}


@pytest.mark.parametrize("name, folder, loader", [
    ("flickr30k", "flickr30k-images", flickr30k),
    ("flickr8k", "Flicker8k_Dataset", flickr8k),
    ("flickr8k", "Images", flickr8k),
])
def test_flickr_layouts(tmp_path, name, folder, loader):
    data = _flickr_json(name, ["train", "val", "test", "test", "train"])
    for img in data["images"]:
        _write_image(tmp_path / folder / img["filename"], (10, 200, 10), fmt="JPEG")
    _dump(tmp_path / f"dataset_{name}.json", data)
    test = loader(tmp_path, "test")
    assert isinstance(test, KarpathySplit) and len(test) == 2
    assert test.pair_ids.tolist() == [2, 3]  # imgid: no cocoid in Flickr files
    assert test[1]["captions"][0] == f"{name} picture 3, sentence 0."
    assert test[0]["image"].shape == (3, 12, 20)
    assert loader(tmp_path, "train").pair_ids.tolist() == [0, 4]
    assert len(KarpathySplit(tmp_path / f"dataset_{name}.json", tmp_path / folder, split="val")) == 1


def test_flickr_missing_image_folder(tmp_path):
    _dump(tmp_path / "dataset_flickr30k.json", _flickr_json("flickr30k", ["test"]))
    with pytest.raises(FileNotFoundError, match="flickr30k-images"):
        flickr30k(tmp_path, "test")
