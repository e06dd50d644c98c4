"""Caption groups: every caption of an image in ONE training item.

:class:`~labkit.data.collate.PairCollator` picks one caption per image per step. Two seed papers need all of an
image's captions in the same batch instead: seed 002's "config-standard" input (one image and its five encoded
captions, §4.1, each sharing the image's centre) and seed 004's text stage (captions of the same image are the
positives, §3.1). :class:`CaptionGroups` serves an image's first ``k`` captions as a single *group* (a tuple), so
the collator hands the whole group to the tokenizer; tokenizers that understand groups return ``(B, k, …)``
(:class:`~labkit.data.text_as_image.TextAsImage`, :class:`GroupTokenizer`), and the model's ``encode_text``
returns ``k·B`` rows, item-major (the k captions of item 0, then of item 1, …). Evaluation is unchanged:
``captions_flat()`` still lists every caption on its own.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .base import ImageTextDataset

__all__ = ["CaptionGroups", "GroupTokenizer", "WithTopics", "group_size"]


class CaptionGroups(ImageTextDataset):
    """A view of ``dataset`` whose items carry ``captions = [(c_1, …, c_k)]``: one group of ``k`` captions.

    Images with more than ``k`` captions keep their first ``k``; images with fewer repeat theirs cyclically (so
    every group has the same size and batches stack).
    """

    def __init__(self, dataset: ImageTextDataset, k: int = 5):
        super().__init__(getattr(dataset, "transform", None))
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.dataset, self.k = dataset, k
        self.topic_names = list(getattr(dataset, "topic_names", []))

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return f"CaptionGroups({self.dataset!r}, k={self.k})"

    def group_of(self, i: int) -> tuple[str, ...]:
        caps = list(self.dataset.captions_of(i))
        if not caps:
            raise ValueError(f"item {i} of {self.dataset!r} has no caption")
        return tuple(caps[j % len(caps)] for j in range(self.k))

    def captions_of(self, i: int) -> list[str]:
        return list(self.dataset.captions_of(i))

    def pair_id_of(self, i: int) -> int:
        return self.dataset.pair_id_of(i)

    def topic_of(self, i: int) -> int:
        return self.dataset.topic_of(i)

    @property
    def pair_ids(self):
        return self.dataset.pair_ids

    @property
    def topics(self):
        return self.dataset.topics

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        item["captions"] = [self.group_of(self._check_index(i))]
        return item


class GroupTokenizer:
    """Wrap a ``list[str] -> (B, L)`` tokenizer so that it also takes caption groups: ``list[tuple] -> (B, k, L)``."""

    def __init__(self, tokenizer: Callable[[Sequence[str]], torch.Tensor]):
        self.tokenizer = tokenizer

    def __call__(self, texts) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if texts and not isinstance(texts[0], str):
            k = len(texts[0])
            if k == 0 or any(isinstance(g, str) or len(g) != k for g in texts):
                raise ValueError("caption groups must all be non-empty sequences of the same length")
            tokens = self.tokenizer([c for g in texts for c in g])
            return tokens.view(len(texts), k, *tokens.shape[1:])
        return self.tokenizer(texts)

    def __getattr__(self, name):  # context_length, vocab_size, … of the wrapped tokenizer
        if name == "tokenizer":
            raise AttributeError(name)
        return getattr(self.tokenizer, name)


def group_size(n_rows: int, n_items: int) -> int:
    """``k`` such that ``n_rows = k · n_items`` (the rows a model returned for a batch of caption groups)."""
    if n_items < 1 or n_rows % n_items:
        raise ValueError(f"{n_rows} text rows are not a whole number of groups for {n_items} items")
    return n_rows // n_items


class WithTopics(ImageTextDataset):
    """A view of ``dataset`` with other topic labels (``topics[i]`` for item ``i``): e.g. image "types" found by
    clustering, for data that has no topics of its own."""

    def __init__(self, dataset: ImageTextDataset, topics):
        super().__init__(getattr(dataset, "transform", None))
        topics = torch.as_tensor(topics).long()
        if topics.ndim != 1 or len(topics) != len(dataset):
            raise ValueError(f"topics must give one label per item ({len(dataset)}), got shape {tuple(topics.shape)}")
        self.dataset, self._topics = dataset, topics
        self.topic_names = [f"type {t}" for t in range(int(topics.max()) + 1)] if len(topics) else []

    def __len__(self) -> int:
        return len(self.dataset)

    def captions_of(self, i: int) -> list[str]:
        return list(self.dataset.captions_of(i))

    def pair_id_of(self, i: int) -> int:
        return self.dataset.pair_id_of(i)

    def topic_of(self, i: int) -> int:
        return int(self._topics[i])

    @property
    def pair_ids(self):
        return self.dataset.pair_ids

    def __getitem__(self, i: int) -> dict:
        i = self._check_index(i)
        item = dict(self.dataset[i])
        item["topic"] = int(self._topics[i])
        return item
