"""The SALICON loader on fixtures written here in the real formats: COCO captions JSON + JPEGs, SALICON's
fixations JSON (``[row, col]``, 1-indexed) and grey-level saliency maps named after the COCO image files."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from labkit.data import DataFormatError, GazeRegularized, SaliconCaptions, fixation_map, read_fixations

W, H = 40, 30  # COCO-like: landscape images, maps of the same size


def _name(i):
    return f"COCO_train2014_{i:012d}.jpg"


@pytest.fixture
def salicon(tmp_path):
    images, maps = tmp_path / "train2014", tmp_path / "maps" / "train"
    images.mkdir()
    maps.mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries, anns, fix_anns = [], [], []
    for k, image_id in enumerate((9, 25, 30, 42)):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(images / _name(image_id))
        entries.append({"id": image_id, "file_name": _name(image_id), "width": W, "height": H})
        for j in range(2):
            anns.append({"id": 10 * image_id + j, "image_id": image_id, "caption": f"image {image_id} caption {j}"})
        if image_id != 42:  # image 42 has captions but is not in SALICON
            fix_anns.append({"id": image_id, "image_id": image_id, "worker_id": 1,
                             "fixations": [[5 + k, 10 + k], [20, 30]]})
            fix_anns.append({"id": 100 + image_id, "image_id": image_id, "worker_id": 2, "fixations": [[1, 1]]})
            grey = np.zeros((H, W), dtype=np.uint8)
            grey[5 + k, 10 + k] = 255
            grey[20, 30] = 128
            Image.fromarray(grey, mode="L").save(maps / _name(image_id).replace(".jpg", ".png"))
    captions = tmp_path / "captions_train2014.json"
    captions.write_text(json.dumps({"images": entries, "annotations": anns}))
    fixations = tmp_path / "fixations_train2014.json"
    fixations.write_text(json.dumps({"type": "fixations", "info": {}, "licenses": [],
                                     "images": [e for e in entries if e["id"] != 42], "annotations": fix_anns}))
    return {"images": images, "maps": maps, "captions": captions, "fixations": fixations, "tmp": tmp_path}


def test_joins_captions_and_saliency_by_image_id(salicon):
    ds = SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"])
    assert len(ds) == 3 and ds.pair_ids.tolist() == [9, 25, 30] and ds.n_without_saliency == 1
    item = ds[1]
    assert item["pair_id"] == 25 and item["captions"] == ["image 25 caption 0", "image 25 caption 1"]
    sal = item["saliency"]
    assert sal.shape == (H, W) and sal.sum().item() == pytest.approx(1.0, abs=1e-5)
    # the map's brightest pixel (255 at row 6, col 11 for k = 1) stays the peak; 128 at (20, 30) is about half
    assert np.unravel_index(int(sal.argmax()), sal.shape) == (6, 11)
    assert (sal[20, 30] / sal[6, 11]).item() == pytest.approx(128 / 255, rel=1e-5)
    assert [f.tolist() for f in ds.fixations_of(1)] == [[[6, 11], [20, 30]], [[1, 1]]]


def test_saliency_follows_a_resizing_transform_and_feeds_eq2(salicon):
    from torchvision import transforms

    t = transforms.Compose([transforms.Resize((15, 20)), transforms.ToTensor()])
    ds = SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"], transform=t)
    item = ds[0]
    assert item["image"].shape == (3, 15, 20) and item["saliency"].shape == (15, 20)
    masked = GazeRegularized(ds, p=1.0, mean=None, std=None)[0]["image"]
    assert torch.allclose(masked, item["image"] * item["saliency"] / item["saliency"].max())


def test_maps_from_fixations_follow_the_salicon_api(salicon):
    ds = SaliconCaptions(salicon["images"], salicon["captions"], fixations_file=salicon["fixations"])
    m = ds.saliency_map(0)
    assert m.shape == (H, W) and m.max() == pytest.approx(1.0) and m.min() == pytest.approx(0.0)
    raw = fixation_map([np.array([[3, 4]])], 5, 6, sigma=0)  # 1-indexed (row 3, col 4) -> pixel [2, 3]
    assert raw[2, 3] == 1.0 and raw.sum() == 1.0
    images, fixations = read_fixations(salicon["fixations"])
    assert sorted(images) == [9, 25, 30] and len(fixations[9]) == 2


def test_a_missing_map_names_the_file(salicon):
    missing = salicon["maps"] / _name(25).replace(".jpg", ".png")
    missing.unlink()
    ds = SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"])
    ds[0]  # other items still load
    with pytest.raises(FileNotFoundError) as err:
        ds[1]
    assert err.value.filename == str(missing.absolute())
    with pytest.raises(FileNotFoundError, match="saliency map"):
        SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"],
                        check_files=True)


def test_a_map_of_the_wrong_size_is_an_error_naming_the_file_or_resized_on_request(salicon):
    bad = salicon["maps"] / _name(30).replace(".jpg", ".png")
    grey = np.zeros((H // 2, W // 2), dtype=np.uint8)
    grey[3, 4] = 255
    Image.fromarray(grey, mode="L").save(bad)
    ds = SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"])
    with pytest.raises(DataFormatError, match=str(bad)) as err:
        ds[2]
    assert "20 × 15" in str(err.value) and "40 × 30" in str(err.value)
    resized = SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"],
                              on_size_mismatch="resize")
    assert resized[2]["saliency"].shape == (H, W)
    with pytest.raises(ValueError, match="on_size_mismatch"):
        SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"],
                        on_size_mismatch="crop")


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["annotations"][0].pop("fixations"), "annotation 0 has no field 'fixations'"),
    (lambda d: d["annotations"][0].update(fixations=[[0, 5]]), "annotation 0: a fixation lies outside"),
    (lambda d: d["annotations"][0].update(fixations=[[H + 1, 5]]), "annotation 0: a fixation lies outside"),
    (lambda d: d["annotations"][0].update(fixations=[[1, 2, 3]]), "annotation 0"),
    (lambda d: d["annotations"][0].update(image_id=777), "unknown image_id 777"),
    (lambda d: d["images"][0].pop("height"), "image 0 has no field 'height'"),
    (lambda d: d.pop("annotations"), "'annotations'"),
])
def test_malformed_fixations_name_the_file_and_entry(salicon, mutate, match):
    data = json.loads(salicon["fixations"].read_text())
    mutate(data)
    salicon["fixations"].write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=match) as err:
        SaliconCaptions(salicon["images"], salicon["captions"], salicon["fixations"], salicon["maps"])
    assert str(salicon["fixations"]) in str(err.value)


def test_needs_a_source_of_saliency_and_existing_folders(salicon):
    with pytest.raises(ValueError, match="fixations_file"):
        SaliconCaptions(salicon["images"], salicon["captions"])
    with pytest.raises(FileNotFoundError, match="saliency-map folder"):
        SaliconCaptions(salicon["images"], salicon["captions"], maps_root=salicon["tmp"] / "nope")
