r"""The two-stream model of seed 001 §3.3, scaled down for a CPU.

Paper: ResNet-50 image stream (ImageNet init) → linear 2048→256; GRU text stream (hidden 512, word embeddings of
size 200) → linear 512→256; L2 normalisation; Xavier init for non-pretrained weights.
Here: a 3-block CNN (32-64-128 channels, global average pool) → linear 128→D; word embeddings of size 64 over a
vocabulary built from the training captions, a one-layer GRU (hidden 128) read up to each caption's last token
→ linear 128→D; D = 64; Xavier init. It exposes the open_clip interface ``encode_image(x, normalize=True)``,
``encode_text(tokens, normalize=True)`` and a ``logit_scale`` parameter, so :func:`labkit.train.fit` trains it
unchanged (the hinge losses ignore ``logit_scale``; fit still clamps it).

    bundle = create_two_stream(world.train, seed=0)
    fit(bundle.model, objective, world.train, bundle.tokenizer, TrainConfig(...))
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.text import PAD, WordTokenizer
from .base import DualEncoder
from .clip import ClipBundle

__all__ = ["TwoStreamModel", "create_two_stream"]


class TwoStreamModel(DualEncoder):
    """CNN image stream + GRU text stream, linear projections to a shared D-dimensional space."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, word_dim: int = 64, hidden: int = 128,
                 channels: Sequence[int] = (32, 64, 128), image_size: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        self.visual = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.visual.image_size = image_size  # what ClipBundle.image_size reads
        self.image_proj = nn.Linear(c_in, embed_dim)
        self.token_embedding = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        self.gru = nn.GRU(word_dim, hidden, batch_first=True)
        self.text_proj = nn.Linear(hidden, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.image_size = image_size
        self.embed_dim = embed_dim
        self._xavier()

    def _xavier(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GRU):
                for name, p in m.named_parameters():
                    (nn.init.xavier_uniform_ if "weight" in name else nn.init.zeros_)(p)
            elif isinstance(m, nn.Embedding):
                nn.init.xavier_uniform_(m.weight)
                with torch.no_grad():
                    m.weight[PAD].zero_()

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.image_proj(self.visual(image))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        lengths = (text != PAD).sum(1).clamp(min=1)
        states, _ = self.gru(self.token_embedding(text))  # (B, L, H)
        last = states[torch.arange(len(text), device=text.device), lengths - 1]  # the state after the last word
        z = self.text_proj(last)
        return F.normalize(z, dim=-1) if normalize else z


def create_two_stream(train_set, seed: int = 0, context_length: int = 24, **kw) -> ClipBundle:
    """A seeded :class:`TwoStreamModel` with a :class:`WordTokenizer` over ``train_set``'s captions, as a
    :class:`~labkit.models.ClipBundle` (``preprocess`` is ``None``: the embedded world's fast path is used)."""
    texts, _ = train_set.captions_flat()
    tokenizer = WordTokenizer.from_texts(texts, context_length=context_length)
    image_size = int(getattr(getattr(train_set, "world", None), "image_size", 32))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TwoStreamModel(len(tokenizer), image_size=image_size, **kw)
    return ClipBundle(model=model, tokenizer=tokenizer, preprocess=None, name="two-stream")
