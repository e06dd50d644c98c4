"""What every generated (embedded) world shares, whatever it generates — scenes with images, clips with sounds:
named train / val / test splits of one set of arrays, and split datasets that read captions, pair ids, topics and
scenes from the world by index. :mod:`labkit.data.world` and :mod:`labkit.data.sound_world` build on these two."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Optional, Sequence

import numpy as np


class WorldSplits:
    """A world whose items are split by ``split_indices`` {"train", "val", "test"} → index arrays; subclasses say
    how one split becomes a dataset (:meth:`_split_dataset`)."""

    split_indices: dict[str, np.ndarray]

    def _split_dataset(self, indices: np.ndarray, transform: Optional[Callable], name: str) -> Any:
        raise NotImplementedError

    def split(self, name: str, transform: Optional[Callable] = None):
        """The ``name`` split ("train", "val", "test") as a dataset, with an optional transform."""
        if name not in self.split_indices:
            raise ValueError(f"split must be one of {sorted(self.split_indices)}, got {name!r}")
        return self._split_dataset(self.split_indices[name], transform, name)

    @cached_property
    def train(self):
        return self.split("train")

    @cached_property
    def val(self):
        return self.split("val")

    @cached_property
    def test(self):
        return self.split("test")


class WorldSplitView:
    """The part of a split dataset that only indexes its world: ``pair_id`` = index into the world; captions,
    topics and scenes read from the world's arrays. Mixed in before the dataset base class."""

    def _view(self, world: Any, indices: Sequence[int], name: str) -> None:
        self.world = world
        self.name = name
        self.indices = np.asarray(indices, dtype=np.int64)
        self.topic_names = list(world.topic_names)

    def __len__(self) -> int:
        return len(self.indices)

    def captions_of(self, i: int) -> list[str]:
        return list(self.world.captions[self.indices[i]])

    def pair_id_of(self, i: int) -> int:
        return int(self.indices[i])

    def topic_of(self, i: int) -> int:
        return int(self.world.topics[self.indices[i]])

    @property
    def pair_ids(self) -> np.ndarray:
        return self.indices.copy()

    @property
    def topics(self) -> np.ndarray:
        return self.world.topics[self.indices].copy()

    @property
    def scenes(self) -> list[dict]:
        """Scenes of this split's items, in dataset order."""
        return [self.world.scenes[j] for j in self.indices]
