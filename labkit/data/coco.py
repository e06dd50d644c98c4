"""COCO Captions in its official annotation format (``captions_train2017.json`` etc.).

Expected layout (any names work, you pass both paths)::

    coco/
      train2017/000000000009.jpg ...
      val2017/000000000139.jpg ...
      annotations/captions_train2017.json
      annotations/captions_val2017.json

    ds = CocoCaptions("coco/val2017", "coco/annotations/captions_val2017.json", transform=preprocess)

One item per image, with all of its captions (usually 5). Images without any
caption are skipped. ``pair_id`` is the COCO image id; there are no topics or
saliency maps.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Optional

import torch
from pycocotools.coco import COCO

from .base import (DataFormatError, ImageTextDataset, ListedPairs, Transform, default_transform, load_rgb,
                   missing_file, read_json)

__all__ = ["CocoCaptions"]


def _check_coco_captions(data, name: str) -> None:
    """Validate the fields labkit (and pycocotools) rely on; errors name file and entry."""
    if not isinstance(data, dict):
        raise DataFormatError(f"{name}: top level must be a JSON object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in data:
            raise DataFormatError(f"{name}: missing top-level field {key!r}")
        if not isinstance(data[key], list):
            raise DataFormatError(f"{name}: field {key!r} must be a list")
    ids = set()
    for k, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise DataFormatError(f"{name}: image {k} is not an object")
        for field in ("id", "file_name"):
            if field not in img:
                raise DataFormatError(f"{name}: image {k} has no field {field!r}")
        if img["id"] in ids:
            raise DataFormatError(f"{name}: image {k} repeats id {img['id']!r}")
        ids.add(img["id"])
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise DataFormatError(f"{name}: annotation {k} is not an object")
        for field in ("id", "image_id", "caption"):
            if field not in ann:
                raise DataFormatError(f"{name}: annotation {k} has no field {field!r}")
        if not isinstance(ann["caption"], str) or not ann["caption"].strip():
            raise DataFormatError(f"{name}: annotation {k} has an empty or non-string 'caption'")
        if ann["image_id"] not in ids:
            raise DataFormatError(f"{name}: annotation {k} refers to unknown image_id {ann['image_id']!r}")


class CocoCaptions(ListedPairs, ImageTextDataset):
    """COCO captions: one item per image, captions grouped by image.

    Args:
        image_root: folder holding the images named by ``file_name``.
        annotation_file: a COCO captions JSON (``captions_<split><year>.json``).
        transform: PIL image -> tensor; default ToTensor + OpenAI-CLIP Normalize at native size
            (pass open_clip's ``preprocess`` for real models).
        check_files: also verify at construction that every image file exists.

    Missing fields are reported at construction, missing or corrupt images at item access.
    """

    def __init__(self, image_root: str | Path, annotation_file: str | Path,
                 transform: Optional[Transform] = None, check_files: bool = False) -> None:
        super().__init__(transform if transform is not None else default_transform())
        self.image_root = Path(image_root)
        self.annotation_file = Path(annotation_file)
        if not self.image_root.is_dir():
            raise missing_file(self.image_root, "image folder")
        data = read_json(self.annotation_file)
        _check_coco_captions(data, str(self.annotation_file))

        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

        self._ids: list[int] = []
        self._files: list[str] = []
        self._captions: list[list[str]] = []
        self.n_skipped = 0  # images without captions
        for img in data["images"]:
            caps = [a["caption"].strip() for a in self.coco.imgToAnns.get(img["id"], [])]
            if not caps:
                self.n_skipped += 1
                continue
            self._ids.append(int(img["id"]))
            self._files.append(img["file_name"])
            self._captions.append(caps)
        if check_files:
            for f in self._files:
                if not (self.image_root / f).is_file():
                    raise missing_file(self.image_root / f, "image file")

    def __repr__(self) -> str:
        return f"CocoCaptions(n={len(self)}, annotation_file={str(self.annotation_file)!r})"

    def image_path(self, i: int) -> Path:
        return self.image_root / self._files[i]

    def _image(self, i: int) -> torch.Tensor:
        return self.transform(load_rgb(self.image_path(i)))
