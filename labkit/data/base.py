"""The interface every labkit image-text dataset shares.

An item is a plain dict::

    {
        "image":    FloatTensor (3, H, W), after the dataset's transform,
        "captions": list[str], at least one,
        "pair_id":  int, stable id of the image (unique within the whole source),
        "topic":    int, -1 when the source has no topic labels,
        "saliency": FloatTensor (H, W) summing to 1, or None,
        "index":    int, the item's position in this dataset,
    }

Evaluation needs every caption as its own query, so datasets also offer
``captions_flat()``: all captions in dataset order plus, for each caption,
the dataset index of its image (an image with 5 captions contributes 5 texts).
"""

from __future__ import annotations

import errno
import json
import operator
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from PIL import Image

Transform = Callable[[Image.Image], torch.Tensor]

__all__ = [
    "DataFormatError",
    "ImageTextDataset",
    "Transform",
    "default_transform",
    "load_rgb",
    "read_json",
    "missing_file",
]


class DataFormatError(ValueError):
    """Input data is malformed. The message names the file and the field or entry."""


def missing_file(path: str | Path, what: str = "file") -> FileNotFoundError:
    """A FileNotFoundError carrying the full path (``err.filename``)."""
    path = Path(path).expanduser().absolute()
    return FileNotFoundError(errno.ENOENT, f"{what} not found", str(path))


def default_transform() -> Transform:
    """ToTensor + Normalize with open_clip's OpenAI mean/std, at the image's native size."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision import transforms

    return transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)]
    )


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file as RGB.

    Raises FileNotFoundError (full path) when absent and DataFormatError naming
    the file when it cannot be decoded (truncated, not an image, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise missing_file(path, "image file")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")  # convert() forces a full decode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"{path}: cannot decode image (truncated or corrupt?): {exc}") from exc


def read_json(path: str | Path) -> Any:
    """Load a JSON file; FileNotFoundError / DataFormatError name the file."""
    path = Path(path)
    if not path.is_file():
        raise missing_file(path, "annotation file")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not valid JSON: {exc}") from exc


class ImageTextDataset(torch.utils.data.Dataset):
    """Base class of all labkit datasets (embedded world and real loaders).

    Subclasses implement ``__len__``, ``captions_of``, ``pair_id_of`` and
    ``_image``; they may override ``topic_of`` and ``_saliency``. Caption and id
    access never decodes images, so ``captions_flat()`` is cheap.
    """

    #: human-readable topic names, indexed by ``item["topic"]``; empty if unknown
    topic_names: list[str] = []

    def __init__(self, transform: Optional[Transform] = None) -> None:
        self.transform = transform
        self.topic_names = []

    # ----------------------------------------------------------- to implement
    def __len__(self) -> int:
        raise NotImplementedError

    def captions_of(self, i: int) -> list[str]:
        """Captions of item ``i`` (no image decoding)."""
        raise NotImplementedError

    def pair_id_of(self, i: int) -> int:
        """Stable id of item ``i``'s image within the whole source."""
        raise NotImplementedError

    def topic_of(self, i: int) -> int:
        """Topic of item ``i``; -1 when unknown."""
        return -1

    def _image(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def _saliency(self, i: int, image: torch.Tensor) -> Optional[torch.Tensor]:
        return None

    # ------------------------------------------------------------- interface
    def _check_index(self, i: Any) -> int:
        n = len(self)
        i = operator.index(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {type(self).__name__} of length {n}")
        return i

    def __getitem__(self, i: int) -> dict:
        i = self._check_index(i)
        image = self._image(i)
        return {
            "image": image,
            "captions": list(self.captions_of(i)),
            "pair_id": int(self.pair_id_of(i)),
            "topic": int(self.topic_of(i)),
            "saliency": self._saliency(i, image),
            "index": i,
        }

    def captions_flat(self) -> tuple[list[str], np.ndarray]:
        """Every caption of every item in dataset order, and for each caption the
        dataset index of its image (int64, same length)."""
        texts: list[str] = []
        owner: list[int] = []
        for i in range(len(self)):
            caps = self.captions_of(i)
            texts.extend(caps)
            owner.extend([i] * len(caps))
        return texts, np.asarray(owner, dtype=np.int64)

    @property
    def pair_ids(self) -> np.ndarray:
        """``pair_id`` of every item (int64, dataset order)."""
        return np.asarray([self.pair_id_of(i) for i in range(len(self))], dtype=np.int64)

    @property
    def topics(self) -> np.ndarray:
        """``topic`` of every item (int64, dataset order; -1 when unknown)."""
        return np.asarray([self.topic_of(i) for i in range(len(self))], dtype=np.int64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)})"


class ListedPairs:
    """Mixin for the real-data loaders, which keep their items as two parallel lists: ``self._ids`` (each item's
    pair id in its source) and ``self._captions`` (each item's captions). Put it before the dataset base class."""

    _ids: list[int]
    _captions: list[list[str]]

    def __len__(self) -> int:
        return len(self._ids)

    def captions_of(self, i: int) -> list[str]:
        return list(self._captions[i])

    def pair_id_of(self, i: int) -> int:
        return self._ids[i]

    @property
    def pair_ids(self) -> np.ndarray:
        return np.asarray(self._ids, dtype=np.int64)
