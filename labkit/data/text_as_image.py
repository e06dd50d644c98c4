r"""Text written as an image (Gallo et al., ICDAR 2017; the input of seed 002's single network, §3.1).

Every word of a caption becomes its word2vec vector, and the vector is *painted* as a block of pixels into an
image of the same size as the real images, so one CNN can read both (seed 002, Fig. 2)::

    encoder = TextAsImage.fit(train_captions, image_size=32, seed=0)   # word2vec on the TRAINING captions only
    pixels = encoder(["A red circle left of a blue square"])          # (1, 3, 32, 32) float tensor
    groups = encoder([("caption 1", "caption 2", ...)])               # (1, k, 3, 32, 32): a caption group

**The layout** (:class:`TextImageLayout`). A word vector has ``dim = 3·g²`` components. It is cut into ``g²``
consecutive *triplets*; triplet ``t`` is the RGB colour of superpixel ``(t // g, t % g)`` of a ``g × g`` grid, and
each superpixel is an ``s × s`` square of pixels, so a word is a ``g·s``-pixel square ("visual word"). Words are
laid left to right, ``words_per_row`` to a row, rows top to bottom, with ``gap`` blank pixels between words; the
image holds ``capacity = words_per_row · rows`` words and later words are dropped (counted in ``n_truncated``).
Blank pixels are 0.

Default for the embedded world's 32-pixel images: ``g = 4`` (48-dimensional word2vec vectors: 16 RGB triplets),
``s = 1`` → a word is a 4 × 4-pixel block, 8 words to a row, 8 rows → 64 words; the longest embedded caption (24
words) fills three rows and the rest of the image stays blank. A 4 × 4 word is what
:class:`~labkit.models.backbones.ResidualCNN`'s 4 × 4, stride-4 stem reads in one step, so every stem
output sees exactly one word (and, on a photograph, one 4 × 4 patch). Gallo et al. paint 12- or 24-component
vectors as 2 × 2 superpixels of several pixels each, with separators, into 256-pixel images; for 64-pixel images
the superpixel here doubles (``s = 2``, 8-pixel words), and :meth:`TextImageLayout.for_image` picks ``s`` for any
size.

**Colours.** Each word2vec component is standardised with the mean and standard deviation of that component over
the training vocabulary and clipped to ±3, so encoded captions live on the scale of normalised images (zero mean,
unit spread); blank pixels (0) are the mean colour. :meth:`TextAsImage.to_display` maps ±3 to [0, 1] for plotting.
Words never seen in training (out of vocabulary) keep their place but are painted blank (``n_oov`` counts them).

word2vec is gensim's skip-gram (``sg=1``), trained with one worker and a CRC32 hash for the initial vectors, so
the same captions and seed give the same vectors in every process (Python's own ``hash`` is salted per process).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .text import tokenize_words

__all__ = ["TextImageLayout", "TextAsImage", "paint_word_block", "train_word2vec"]

CLIP_VALUE = 3.0  # standardised components are clipped to ±3


def _crc32(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class TextImageLayout:
    """Where each word goes: ``g × g`` superpixels of ``s × s`` pixels per word, ``words_per_row`` words a row.

    Args:
        image_size: side of the square image (that of the real images).
        grid: ``g``; a word vector has ``3·g²`` components (one RGB triplet per superpixel).
        superpixel: ``s``, the side of a superpixel in pixels.
        words_per_row: words on one row of the image.
        gap: blank pixels between neighbouring words (and rows).
    """

    image_size: int = 32
    grid: int = 4
    superpixel: int = 1
    words_per_row: int = 8
    gap: int = 0

    def __post_init__(self):
        for name in ("image_size", "grid", "superpixel", "words_per_row"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TextImageLayout.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.gap, (int, np.integer)) or self.gap < 0:
            raise ValueError(f"TextImageLayout.gap must be a non-negative integer, got {self.gap!r}")
        if self.words_per_row * self.cell - self.gap > self.image_size:
            raise ValueError(f"TextImageLayout: {self.words_per_row} words of {self.word_px} px (+{self.gap} px gaps) "
                             f"do not fit in a row of {self.image_size} px")

    @classmethod
    def for_image(cls, image_size: int, grid: int = 4, words_per_row: int = 8, gap: int = 0) -> "TextImageLayout":
        """The largest superpixel with which ``words_per_row`` words (and gaps) fit a row of ``image_size``."""
        s = (int(image_size) + gap) // int(words_per_row) - gap
        s //= int(grid)
        if s < 1:
            raise ValueError(f"image_size={image_size} is too small for {words_per_row} words of a {grid}x{grid} grid")
        return cls(int(image_size), int(grid), s, int(words_per_row), int(gap))

    @property
    def dim(self) -> int:
        """Length of a word vector: one RGB triplet per superpixel."""
        return 3 * self.grid * self.grid

    @property
    def word_px(self) -> int:
        return self.grid * self.superpixel

    @property
    def cell(self) -> int:
        return self.word_px + self.gap

    @property
    def rows(self) -> int:
        return (self.image_size + self.gap) // self.cell

    @property
    def capacity(self) -> int:
        """Words that fit in one image."""
        return self.words_per_row * self.rows

    def pixel_source(self) -> np.ndarray:
        """int64 (3, H, W): for each pixel, ``1 + slot·dim + component`` of the word component it shows, 0 = blank.

        Encoding a batch is then one gather from ``[0, word vectors of slot 0, slot 1, …]``.
        """
        src = np.zeros((3, self.image_size, self.image_size), dtype=np.int64)
        s, g = self.superpixel, self.grid
        for slot in range(self.capacity):
            top = (slot // self.words_per_row) * self.cell
            left = (slot % self.words_per_row) * self.cell
            for t in range(g * g):  # triplet t → superpixel (t // g, t % g)
                y, x = top + (t // g) * s, left + (t % g) * s
                for ch in range(3):
                    src[ch, y:y + s, x:x + s] = 1 + slot * self.dim + 3 * t + ch
        return src


def paint_word_block(vector, grid: int, superpixel: int = 1) -> np.ndarray:
    """One word's block, float32 (3, g·s, g·s): RGB triplet ``t`` of ``vector`` (``3·g²`` components) colours
    superpixel ``(t // g, t % g)`` — the unit :class:`TextImageLayout` tiles an image with."""
    layout = TextImageLayout(image_size=int(grid) * int(superpixel), grid=int(grid), superpixel=int(superpixel),
                             words_per_row=1)
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if len(v) != layout.dim:
        raise ValueError(f"vector has {len(v)} components; a {grid}x{grid} grid paints {layout.dim}")
    return np.concatenate([np.zeros(1, np.float32), v])[layout.pixel_source()]


def train_word2vec(texts: Sequence[str], dim: int, seed: int = 0, epochs: int = 20, window: int = 5,
                   min_count: int = 1):
    """gensim skip-gram word2vec on ``texts`` (tokenised by :func:`~labkit.data.text.tokenize_words`),
    deterministic: one worker, seeded, CRC32 instead of Python's salted ``hash``. Returns its ``KeyedVectors``."""
    from gensim.models import Word2Vec

    sentences = [tokenize_words(t) for t in texts]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise ValueError("texts: no words to train word2vec on")
    model = Word2Vec(sentences, vector_size=int(dim), window=int(window), min_count=int(min_count), sg=1,
                     workers=1, seed=int(seed), epochs=int(epochs), hashfxn=_crc32)
    return model.wv


class TextAsImage:
    """Captions → images (the "tokenizer" of :class:`~labkit.models.single_network.SingleNetwork`).

    ``encoder(texts)`` takes a list whose entries are captions (→ ``(B, 3, H, W)``) or equal-length groups of
    captions (→ ``(B, k, 3, H, W)``; :class:`~labkit.data.groups.CaptionGroups` serves an image's captions as one
    group, the "config-standard" input of seed 002 §4.1).

    Args:
        words: the vocabulary, in row order of ``vectors``.
        vectors: (V, dim) word vectors, dim = ``layout.dim``.
        layout: a :class:`TextImageLayout`.
        mean, std: per-component standardisation (default: over ``vectors``).
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, layout: TextImageLayout,
                 mean: np.ndarray | None = None, std: np.ndarray | None = None):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(words):
            raise ValueError(f"vectors must be (len(words), dim); got {vectors.shape} for {len(words)} words")
        if vectors.shape[1] != layout.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} components but the layout paints {layout.dim} "
                             f"(3 x grid^2 with grid={layout.grid})")
        self.layout = layout
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.mean = vectors.mean(0) if mean is None else np.asarray(mean, dtype=np.float32)
        std = vectors.std(0) if std is None else np.asarray(std, dtype=np.float32)
        self.std = np.where(std > 0, std, 1.0).astype(np.float32)
        table = np.clip((vectors - self.mean) / self.std, -CLIP_VALUE, CLIP_VALUE)
        self._table = np.concatenate([table, np.zeros((1, layout.dim), np.float32)])  # last row: blank (pad, OOV)
        self._blank = len(self.words)
        self._src = layout.pixel_source().reshape(-1)
        self.n_truncated = 0  # captions longer than the layout's capacity (words dropped)
        self.n_oov = 0  # out-of-vocabulary words painted blank

    @classmethod
    def fit(cls, texts: Sequence[str], image_size: int = 32, seed: int = 0, grid: int = 4, words_per_row: int = 8,
            gap: int = 0, epochs: int = 20, window: int = 5, min_count: int = 1) -> "TextAsImage":
        """Train word2vec on ``texts`` (the training captions only) and lay words out for ``image_size`` images."""
        layout = TextImageLayout.for_image(image_size, grid=grid, words_per_row=words_per_row, gap=gap)
        wv = train_word2vec(texts, layout.dim, seed=seed, epochs=epochs, window=window, min_count=min_count)
        return cls(list(wv.index_to_key), wv.vectors, layout)

    @property
    def image_size(self) -> int:
        return self.layout.image_size

    def word_vector(self, word: str) -> np.ndarray:
        """The standardised, clipped vector painted for ``word`` (zeros, i.e. blank, when out of vocabulary)."""
        return self._table[self.index.get(word, self._blank)].copy()

    def word_slots(self, text: str) -> np.ndarray:
        """Row of each word of ``text`` in the (standardised) table, blank for OOV; truncated to the capacity."""
        ids = [self.index.get(w, self._blank) for w in tokenize_words(text)]
        self.n_oov += sum(i == self._blank for i in ids)
        if len(ids) > self.layout.capacity:
            self.n_truncated += 1
            ids = ids[: self.layout.capacity]
        return np.asarray(ids, dtype=np.int64)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (B, 3, H, W) encoded images of ``texts``."""
        cap, dim = self.layout.capacity, self.layout.dim
        slots = np.full((len(texts), cap), self._blank, dtype=np.int64)
        for r, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{r}] must be a string, got {type(t).__name__}")
            ids = self.word_slots(t)
            slots[r, : len(ids)] = ids
        flat = np.concatenate([np.zeros((len(texts), 1), np.float32),
                               self._table[slots].reshape(len(texts), cap * dim)], axis=1)
        size = self.layout.image_size
        return flat[:, self._src].reshape(len(texts), 3, size, size)

    def __call__(self, texts) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if texts and not isinstance(texts[0], str):  # caption groups → (B, k, 3, H, W)
            k = len(texts[0])
            if k == 0 or any(isinstance(g, str) or len(g) != k for g in texts):
                raise ValueError("caption groups must all be non-empty sequences of the same length")
            flat = self.encode([c for g in texts for c in g])
            return torch.from_numpy(flat).view(len(texts), k, *flat.shape[1:])
        return torch.from_numpy(self.encode(texts))

    @staticmethod
    def to_display(pixels) -> np.ndarray:
        """An encoded caption (3, H, W) as an (H, W, 3) array in [0, 1] for ``imshow`` (±3 → 0 / 1)."""
        x = pixels.detach().cpu().numpy() if torch.is_tensor(pixels) else np.asarray(pixels)
        return np.clip((x.transpose(1, 2, 0) + CLIP_VALUE) / (2 * CLIP_VALUE), 0.0, 1.0)

    def __repr__(self) -> str:
        lay = self.layout
        return (f"TextAsImage(vocab={len(self.words)}, dim={lay.dim}, {lay.image_size}px, word={lay.word_px}px "
                f"({lay.grid}x{lay.grid} superpixels of {lay.superpixel}px), {lay.words_per_row} words/row, "
                f"capacity={lay.capacity})")

    def state(self) -> dict:
        """What rebuilds the encoder: the words, their standardised (clipped) vectors and the layout."""
        return {"words": self.words, "table": self._table[:-1].copy(), "layout": self.layout.__dict__.copy()}

    @classmethod
    def from_state(cls, state: dict) -> "TextAsImage":
        layout = TextImageLayout(**state["layout"])
        table = np.asarray(state["table"], dtype=np.float32)
        return cls(state["words"], table, layout, mean=np.zeros(layout.dim, np.float32),
                   std=np.ones(layout.dim, np.float32))
