"""Words for the models that learn their own vocabulary (seed 001's GRU, later the LSTM / transformer text encoders):
one word tokeniser, and a fixed-vocabulary ``tokenizer(list[str]) -> LongTensor`` with open_clip's call signature.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import torch

__all__ = ["tokenize_words", "WordTokenizer", "PAD", "UNK"]

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, inner hyphens/apostrophes)."""
    return _WORD.findall(text.lower())


PAD, UNK = 0, 1


class WordTokenizer:
    """Words → ids over a fixed vocabulary (0 = padding, 1 = unknown); ``tokenizer(list[str]) -> (B, L)``."""

    def __init__(self, vocab: Sequence[str], context_length: int = 24):
        self.itos = ["<pad>", "<unk>", *vocab]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.context_length = int(context_length)

    @classmethod
    def from_texts(cls, texts: Sequence[str], min_count: int = 1, context_length: int = 24) -> "WordTokenizer":
        counts = Counter(w for t in texts for w in tokenize_words(t))
        vocab = sorted(w for w, c in counts.items() if c >= min_count)
        return cls(vocab, context_length)

    def __len__(self) -> int:
        return len(self.itos)

    def __call__(self, texts: Sequence[str] | str) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for r, t in enumerate(texts):
            ids = [self.stoi.get(w, UNK) for w in tokenize_words(t)][: self.context_length] or [UNK]
            out[r, : len(ids)] = torch.tensor(ids)
        return out

