"""Karpathy-split caption datasets: COCO 2014, Flickr30k, Flickr8k.

The split files (``dataset_coco.json``, ``dataset_flickr30k.json``,
``dataset_flickr8k.json``, from Karpathy & Fei-Fei's ``caption_datasets.zip``)
share one structure::

    {"dataset": "coco",
     "images": [{"filepath": "val2014",            # COCO only
                 "filename": "COCO_val2014_000000391895.jpg",
                 "split": "test",                  # train | val | test | restval
                 "sentences": [{"raw": "A man ...", "tokens": [...], ...}, ...],
                 "cocoid": 391895,                 # COCO only
                 "imgid": 0}, ...]}

The image file is ``image_root / filepath / filename`` when ``filepath`` is present,
else ``image_root / filename``. ``pair_id`` is ``cocoid`` when present, else ``imgid``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from .base import (DataFormatError, ImageTextDataset, ListedPairs, Transform, default_transform, load_rgb,
                   missing_file, read_json)

__all__ = ["KarpathySplit", "coco_karpathy", "flickr30k", "flickr8k", "SPLITS"]

SPLITS = ("train", "val", "test", "restval")


def _check_karpathy(data, name: str) -> None:
    if not isinstance(data, dict) or "images" not in data:
        raise DataFormatError(f"{name}: missing top-level field 'images'")
    if not isinstance(data["images"], list):
        raise DataFormatError(f"{name}: field 'images' must be a list")
    for k, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise DataFormatError(f"{name}: image {k} is not an object")
        for field in ("filename", "split", "sentences"):
            if field not in img:
                raise DataFormatError(f"{name}: image {k} has no field {field!r}")
        if "cocoid" not in img and "imgid" not in img:
            raise DataFormatError(f"{name}: image {k} has no field 'imgid' (nor 'cocoid')")
        if img["split"] not in SPLITS:
            raise DataFormatError(f"{name}: image {k} has unknown split {img['split']!r} (expected one of {SPLITS})")
        if not isinstance(img["sentences"], list):
            raise DataFormatError(f"{name}: image {k} field 'sentences' must be a list")
        for j, sent in enumerate(img["sentences"]):
            if not isinstance(sent, dict) or "raw" not in sent:
                raise DataFormatError(f"{name}: image {k} sentence {j} has no field 'raw'")
            if not isinstance(sent["raw"], str):
                raise DataFormatError(f"{name}: image {k} sentence {j} field 'raw' is not a string")


class KarpathySplit(ListedPairs, ImageTextDataset):
    """One split of a Karpathy caption JSON (COCO, Flickr30k or Flickr8k).

    Args:
        json_path: ``dataset_coco.json`` / ``dataset_flickr30k.json`` / ``dataset_flickr8k.json``.
        image_root: COCO: the folder holding ``train2014/`` and ``val2014/``;
            Flickr: the folder holding the jpgs.
        split: "train", "val", "test" or "restval".
        transform: PIL image -> tensor; default ToTensor + OpenAI-CLIP Normalize.
        include_restval: with split="train", also take the "restval" images
            (the usual 113k-image COCO training set). Ignored for other splits.
        check_files: verify at construction that every image file exists.

    Images with no sentence are skipped (``n_skipped``).
    """

    def __init__(self, json_path: str | Path, image_root: str | Path, split: str = "test",
                 transform: Optional[Transform] = None, include_restval: bool = True,
                 check_files: bool = False) -> None:
        super().__init__(transform if transform is not None else default_transform())
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.json_path = Path(json_path)
        self.image_root = Path(image_root)
        self.split = split
        if not self.image_root.is_dir():
            raise missing_file(self.image_root, "image folder")
        data = read_json(self.json_path)
        _check_karpathy(data, str(self.json_path))
        self.source = data.get("dataset", "")

        wanted: Sequence[str] = ("train", "restval") if (split == "train" and include_restval) else (split,)
        self._paths: list[Path] = []
        self._ids: list[int] = []
        self._captions: list[list[str]] = []
        self.n_skipped = 0
        for img in data["images"]:
            if img["split"] not in wanted:
                continue
            caps = [s["raw"].strip() for s in img["sentences"] if s["raw"].strip()]
            if not caps:
                self.n_skipped += 1
                continue
            sub = Path(img["filepath"]) / img["filename"] if "filepath" in img else Path(img["filename"])
            self._paths.append(self.image_root / sub)
            self._ids.append(int(img["cocoid"] if "cocoid" in img else img["imgid"]))
            self._captions.append(caps)
        if check_files:
            for p in self._paths:
                if not p.is_file():
                    raise missing_file(p, "image file")

    def __repr__(self) -> str:
        return f"KarpathySplit(source={self.source!r}, split={self.split!r}, n={len(self)})"

    def image_path(self, i: int) -> Path:
        return self._paths[i]

    def _image(self, i: int) -> torch.Tensor:
        return self.transform(load_rgb(self._paths[i]))


def _first_dir(root: Path, candidates: Sequence[str]) -> Path:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    raise missing_file(root / candidates[0], f"image folder (looked for {', '.join(candidates)} under {root})")


def coco_karpathy(root: str | Path, split: str = "test", **kwargs) -> KarpathySplit:
    """COCO 2014 with Karpathy splits (5k test / 5k val / 113k train incl. restval).

    Layout::

        root/
          dataset_coco.json
          train2014/COCO_train2014_000000000009.jpg ...
          val2014/COCO_val2014_000000000042.jpg ...
    """
    root = Path(root)
    return KarpathySplit(root / "dataset_coco.json", root, split, **kwargs)


def flickr30k(root: str | Path, split: str = "test", **kwargs) -> KarpathySplit:
    """Flickr30k with Karpathy splits (29k train / 1,014 val / 1k test).

    Layout (the image folder may also be called ``flickr30k_images``, ``images`` or ``Images``)::

        root/
          dataset_flickr30k.json
          flickr30k-images/1000092795.jpg ...
    """
    root = Path(root)
    images = _first_dir(root, ("flickr30k-images", "flickr30k_images", "images", "Images"))
    return KarpathySplit(root / "dataset_flickr30k.json", images, split, **kwargs)


def flickr8k(root: str | Path, split: str = "test", **kwargs) -> KarpathySplit:
    """Flickr8k with Karpathy splits (6k train / 1k val / 1k test).

    Layout (the image folder may also be called ``Flickr8k_Dataset``, ``images`` or ``Images``)::

        root/
          dataset_flickr8k.json
          Flicker8k_Dataset/1000268201_693b08cb0e.jpg ...   (official archive's spelling)
    """
    root = Path(root)
    images = _first_dir(root, ("Flicker8k_Dataset", "Flickr8k_Dataset", "images", "Images"))
    return KarpathySplit(root / "dataset_flickr8k.json", images, split, **kwargs)
