"""From dataset items to training batches: pick a caption per image, tokenise, stack.

COCO-style data has several captions per image; each epoch a training pair uses one of them, chosen at random
but reproducibly: the choice is a function of ``(seed, epoch, pair_id)`` only, so a resumed run sees exactly the
captions an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["PairCollator"]


class PairCollator:
    """Collate dataset items into ``{"image" | "audio", "text", "caption", "pair_id", "topic", "index"[, "saliency"]}``.

    Args:
        tokenizer: list[str] -> LongTensor (B, L), e.g. ``open_clip.get_tokenizer(name)``.
        caption: ``"random"`` (one of the item's captions, seeded per epoch) or ``"first"``.
        seed: the run's seed.
    """

    def __init__(self, tokenizer: Callable[[Sequence[str]], torch.Tensor], caption: str = "random", seed: int = 0):
        if caption not in ("random", "first"):
            raise ValueError(f"caption must be 'random' or 'first', got {caption!r}")
        self.tokenizer = tokenizer
        self.caption = caption
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def choose(self, captions: Sequence[str], pair_id: int) -> str:
        if self.caption == "first" or len(captions) == 1:
            return captions[0]
        rng = np.random.default_rng([self.seed, self.epoch, int(pair_id)])
        return captions[int(rng.integers(len(captions)))]

    def __call__(self, items: Sequence[dict]) -> dict:
        captions = [self.choose(it["captions"], it["pair_id"]) for it in items]
        batch = {key: torch.stack([it[key] for it in items]) for key in ("image", "audio") if key in items[0]}
        batch.update({
            "text": self.tokenizer(captions),
            "caption": captions,
            "pair_id": torch.tensor([it["pair_id"] for it in items], dtype=torch.long),
            "topic": torch.tensor([it.get("topic", -1) for it in items], dtype=torch.long),
            "index": torch.tensor([it.get("index", -1) for it in items], dtype=torch.long),
        })
        if all(it.get("saliency") is not None for it in items):
            batch["saliency"] = torch.stack([it["saliency"] for it in items])
        return batch
