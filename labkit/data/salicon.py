"""SALICON (Jiang et al., CVPR 2015): mouse-tracked attention on COCO images, joined to COCO captions by image id.

Seed 003 trains on COCO image–caption pairs and takes the attention maps of eq. 2 from SALICON. Real layout
(the official release; file names are examples)::

    coco/train2014/COCO_train2014_000000000009.jpg ...       images (SALICON uses COCO 2014 train/val images)
    coco/annotations/captions_train2014.json                 COCO captions
    salicon/fixations_train2014.json                         fixations, COCO-style JSON (below)
    salicon/maps/train/COCO_train2014_000000000009.png       saliency maps: grey-level images named after the
                                                             COCO image file, same width × height as the image

    ds = SaliconCaptions("coco/train2014", "coco/annotations/captions_train2014.json",
                         fixations_file="salicon/fixations_train2014.json", maps_root="salicon/maps/train")

The fixations file follows the SALICON API (a COCO-style JSON with ``"type": "fixations"``): ``images`` (``id``,
``file_name``, ``width``, ``height``) and ``annotations``, one per viewer: ``image_id``, ``worker_id`` and
``fixations``, a list of ``[row, col]`` pairs, **1-indexed** as the SALICON API reads them
(``map[row − 1][col − 1]``).

Which images: those with captions *and* an entry in the fixations file (the join by image id); without a fixations
file, every captioned image, each of which must then have a map. Each item's ``saliency`` is its map — read from
``maps_root`` when given, else built from the fixations as the SALICON API does (a 1 at every fixation, Gaussian
blur with σ = 19 px) — resized to the transformed image (bilinear) and normalised to sum to 1.

Bad files: a missing map raises ``FileNotFoundError`` naming the map's path (at item access, or at construction with
``check_files=True``). **A map whose size differs from its image's is an error** (``DataFormatError`` naming the map
file and both sizes) unless ``on_size_mismatch="resize"``, which resizes it bilinearly to the image's size
(documented fallback, off by default: a wrong-sized map usually means maps and images from different releases).
Malformed JSON fields (a missing field, ``fixations`` not a list of integer ``[row, col]`` pairs, a fixation outside
the image, an unknown or repeated image id) raise ``DataFormatError`` naming the file and the entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .base import DataFormatError, Transform, missing_file, read_json
from .coco import CocoCaptions

__all__ = ["SaliconCaptions", "read_fixations", "fixation_map", "SALICON_SIGMA"]

SALICON_SIGMA = 19.0  # px, the SALICON API's blur of fixation maps (640 × 480 images)
SIZE_POLICIES = ("error", "resize")


def read_fixations(path: str | Path) -> tuple[dict[int, dict], dict[int, list[np.ndarray]]]:
    """Parse and check a SALICON fixations JSON: ``({image_id: image entry}, {image_id: [fixations (K, 2) int,
    1-indexed (row, col), one array per viewer]})``. Errors name the file and the entry."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: top level must be a JSON object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataFormatError(f"{path}: missing or non-list top-level field {key!r}")
    images: dict[int, dict] = {}
    for k, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise DataFormatError(f"{path}: image {k} is not an object")
        for field in ("id", "file_name", "width", "height"):
            if field not in img:
                raise DataFormatError(f"{path}: image {k} has no field {field!r}")
        if int(img["id"]) in images:
            raise DataFormatError(f"{path}: image {k} repeats id {img['id']!r}")
        images[int(img["id"])] = img
    fixations: dict[int, list[np.ndarray]] = {}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise DataFormatError(f"{path}: annotation {k} is not an object")
        for field in ("image_id", "fixations"):
            if field not in ann:
                raise DataFormatError(f"{path}: annotation {k} has no field {field!r}")
        image = images.get(int(ann["image_id"]))
        if image is None:
            raise DataFormatError(f"{path}: annotation {k} refers to unknown image_id {ann['image_id']!r}")
        raw = ann["fixations"]
        try:
            arr = np.asarray(raw) if isinstance(raw, list) else None
        except ValueError:  # ragged
            arr = None
        if arr is None or (arr.size and (arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu")):
            raise DataFormatError(f"{path}: annotation {k}: 'fixations' must be a list of [row, col] integer "
                                  f"pairs, got {_preview(raw)}")
        fx = arr.astype(np.int64).reshape(-1, 2)
        h, w = int(image["height"]), int(image["width"])
        if len(fx) and (fx[:, 0].min() < 1 or fx[:, 0].max() > h or fx[:, 1].min() < 1 or fx[:, 1].max() > w):
            raise DataFormatError(f"{path}: annotation {k}: a fixation lies outside the {h} × {w} image "
                                  "(rows 1..height, cols 1..width, 1-indexed)")
        fixations.setdefault(int(ann["image_id"]), []).append(fx)
    return images, fixations


def _preview(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " …"


def fixation_map(fixations: list[np.ndarray], height: int, width: int, sigma: float = SALICON_SIGMA) -> np.ndarray:
    """The SALICON API's map from fixations: 1 at every (1-indexed) fixation of every viewer, Gaussian blur of
    ``sigma`` px (``scipy.ndimage.gaussian_filter``), scaled to [0, 1]. float32 (height, width)."""
    from scipy.ndimage import gaussian_filter

    m = np.zeros((height, width), dtype=np.float64)
    for fx in fixations:
        if len(fx):
            m[fx[:, 0] - 1, fx[:, 1] - 1] = 1.0
    if sigma > 0:
        m = gaussian_filter(m, sigma)
    m -= m.min()
    peak = m.max()
    return (m / peak if peak > 0 else m).astype(np.float32)


class SaliconCaptions(CocoCaptions):
    """COCO captions with SALICON saliency maps: items carry ``saliency`` (H, W) summing to 1.

    Args:
        image_root, captions_file, transform: as :class:`~labkit.data.CocoCaptions`. Geometric transforms must be
            deterministic (resize / crop): the map is resized to the transformed image, not flipped or cropped with
            it.
        fixations_file: the SALICON fixations JSON (the set of images, and the maps' source when no ``maps_root``).
        maps_root: folder of the saliency-map images, named after the COCO image files (``.png``).
        on_size_mismatch: ``"error"`` (default) or ``"resize"`` (see the module docstring).
        sigma: blur of maps built from fixations.
        check_files: verify at construction that every image and map file exists.
    """

    def __init__(self, image_root: str | Path, captions_file: str | Path, fixations_file: str | Path | None = None,
                 maps_root: str | Path | None = None, transform: Optional[Transform] = None,
                 on_size_mismatch: str = "error", sigma: float = SALICON_SIGMA, check_files: bool = False) -> None:
        if fixations_file is None and maps_root is None:
            raise ValueError("give fixations_file (SALICON's JSON) and/or maps_root (its saliency-map images)")
        if on_size_mismatch not in SIZE_POLICIES:
            raise ValueError(f"on_size_mismatch must be one of {SIZE_POLICIES}, got {on_size_mismatch!r}")
        super().__init__(image_root, captions_file, transform=transform, check_files=False)
        self.fixations_file = Path(fixations_file) if fixations_file is not None else None
        self.maps_root = Path(maps_root) if maps_root is not None else None
        if self.maps_root is not None and not self.maps_root.is_dir():
            raise missing_file(self.maps_root, "saliency-map folder")
        self.on_size_mismatch, self.sigma = on_size_mismatch, float(sigma)

        self._sizes: dict[int, tuple[int, int]] = {}  # image id -> (height, width)
        for img in self.coco.dataset["images"]:
            if "height" in img and "width" in img:
                self._sizes[int(img["id"])] = (int(img["height"]), int(img["width"]))
        self._fixations: dict[int, list[np.ndarray]] = {}
        if self.fixations_file is not None:
            images, self._fixations = read_fixations(self.fixations_file)
            for image_id, img in images.items():
                self._sizes.setdefault(image_id, (int(img["height"]), int(img["width"])))
            keep = [k for k, i in enumerate(self._ids) if i in images]  # the join by image id
            self.n_without_saliency = len(self._ids) - len(keep)
            self._ids = [self._ids[k] for k in keep]
            self._files = [self._files[k] for k in keep]
            self._captions = [self._captions[k] for k in keep]
            if self.maps_root is None:
                no_fix = [i for i in self._ids if i not in self._fixations]
                if no_fix:
                    raise DataFormatError(f"{self.fixations_file}: image {no_fix[0]} has no fixations and no "
                                          "maps_root was given to read its map from")
        else:
            self.n_without_saliency = 0
        if not self._ids:
            raise DataFormatError(f"{self.annotation_file}: no captioned image joins the SALICON data")
        if check_files:
            for i in range(len(self)):
                if not self.image_path(i).is_file():
                    raise missing_file(self.image_path(i), "image file")
                if self.maps_root is not None and not self.map_path(i).is_file():
                    raise missing_file(self.map_path(i), "saliency map")

    def __repr__(self) -> str:
        return (f"SaliconCaptions(n={len(self)}, maps_root={str(self.maps_root) if self.maps_root else None!r}, "
                f"fixations_file={str(self.fixations_file) if self.fixations_file else None!r})")

    def map_path(self, i: int) -> Path:
        """Where item ``i``'s map is: ``maps_root/<COCO file stem>.png``."""
        if self.maps_root is None:
            raise ValueError("no maps_root: maps are built from the fixations")
        return self.maps_root / (Path(self._files[i]).stem + ".png")

    def fixations_of(self, i: int) -> list[np.ndarray]:
        """Item ``i``'s fixations, one (K, 2) array of 1-indexed (row, col) per viewer."""
        return list(self._fixations.get(self._ids[i], []))

    def image_size_of(self, i: int) -> tuple[int, int]:
        """(height, width) of item ``i``'s original image (from the JSON, else the file's header)."""
        size = self._sizes.get(self._ids[i])
        if size is None:
            path = self.image_path(i)
            if not path.is_file():
                raise missing_file(path, "image file")
            with Image.open(path) as im:
                size = (im.height, im.width)
            self._sizes[self._ids[i]] = size
        return size

    def saliency_map(self, i: int) -> np.ndarray:
        """Item ``i``'s map at its image's original size, float32 in [0, 1] (before resizing and normalising)."""
        h, w = self.image_size_of(i)
        if self.maps_root is None:
            return fixation_map(self._fixations[self._ids[i]], h, w, self.sigma)
        path = self.map_path(i)
        if not path.is_file():
            raise missing_file(path, "saliency map")
        try:
            with Image.open(path) as im:
                grey = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataFormatError(f"{path}: cannot decode saliency map: {exc}") from exc
        if grey.shape != (h, w):
            if self.on_size_mismatch == "error":
                raise DataFormatError(f"{path}: saliency map is {grey.shape[1]} × {grey.shape[0]} (w × h) but its "
                                      f"image {self._files[i]} is {w} × {h}; pass on_size_mismatch='resize' to "
                                      "resize maps to their images")
            grey = F.interpolate(torch.from_numpy(grey)[None, None], size=(h, w), mode="bilinear",
                                 align_corners=False)[0, 0].numpy()
        return grey

    def _saliency(self, i: int, image: torch.Tensor) -> torch.Tensor:
        sal = torch.from_numpy(np.ascontiguousarray(self.saliency_map(i)))
        hw = tuple(image.shape[-2:])
        if hw != tuple(sal.shape):
            sal = F.interpolate(sal[None, None], size=hw, mode="bilinear", align_corners=False)[0, 0]
        sal = sal.clamp_min(0)
        total = sal.sum()
        if not total > 0:
            raise DataFormatError(f"saliency map of {self._files[i]} is all zeros")
        return sal / total
