r"""Semantic neighbours, :math:`\Psi` of seed 001 eq. 5, computed once before training.

    space = Doc2VecSpace(seed=0).fit(train_texts)        # Ω: a text space fitted on the training texts only
    table = NeighbourTable.from_texts(world.train, space, k=200)   # k nearest, never the same image
    pairs = NeighbourPairs(table, world.train, model, tokenizer, seed=0)
    objective = ours_objective(pairs)                     # eq. 8

*Text units.* A training image may have several captions (five in the embedded world, as in COCO); the text
:math:`y_i` of a training step is the caption the collator drew. Ω embeds every training caption, and
:math:`\Psi(y_i)` samples, uniformly and seeded, one of the ``k`` captions nearest to :math:`y_i` among the
captions of *other* images (the anchor's own captions are excluded: :math:`i' \ne i`); it returns that caption
and its image, :math:`\langle x_{i'}, y_{i'}\rangle`.

*Text spaces* (:class:`TextSpace`): :class:`Doc2VecSpace` (gensim, distributed memory, hierarchical softmax as
in §3.3, hyper-parameters scaled down to captions of ~10 words), :class:`TfidfSpace` (scikit-learn) and
:class:`SentenceSpace` (sentence-transformers; only when it is importable and its model is available locally).

*Img NNs* (Table 1's "Ours (Img NNs)"): :meth:`NeighbourTable.from_images` finds neighbours among *images*
before cross-modal training, in the space of raw pixels (normalised, average-pooled to 8×8, then PCA); there
are no pretrained image weights offline, so raw pixels stand in for the paper's ImageNet ResNet features. The
pair returned is the neighbour image with one of its captions (seeded).

*Search*: exact cosine k-NN for small data; hnswlib's HNSW (cosine) above ``exact_max`` units — same call.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .data.text import tokenize_words
from .io import atomic_write

__all__ = [
    "tokenize_words",
    "TextSpace",
    "Doc2VecSpace",
    "TfidfSpace",
    "SentenceSpace",
    "make_text_space",
    "sentence_transformers_available",
    "knn",
    "pixel_features",
    "NeighbourTable",
    "NeighbourPairs",
    "SameImageCaptions",
]


def _l2(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


# =========================================================================== text spaces Ω

class TextSpace:
    """Ω: ``fit(train_texts)`` once, then ``embed(texts)`` → L2-normalised (n, d) float32."""

    name = "base"

    def fit(self, texts: Sequence[str]) -> "TextSpace":  # pragma: no cover - interface
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def train_vectors(self) -> np.ndarray:
        """Ω of the texts passed to ``fit`` (same order)."""
        return self._train


@contextmanager
def _stable_gensim_hash():
    """gensim seeds the starting vector of ``infer_vector`` from Python's ``hash`` of the text, which changes
    between processes (PYTHONHASHSEED); swap in CRC32 while inferring so Ω of unseen texts is reproducible."""
    import functools

    import gensim.models.doc2vec as d2v
    from gensim.models.keyedvectors import pseudorandom_weak_vector

    original = d2v.pseudorandom_weak_vector
    d2v.pseudorandom_weak_vector = functools.partial(
        pseudorandom_weak_vector, hashfxn=lambda s: zlib.crc32(s.encode("utf-8")))
    try:
        yield
    finally:
        d2v.pseudorandom_weak_vector = original


class Doc2VecSpace(TextSpace):
    """Doc2Vec, distributed memory (PV-DM) with hierarchical softmax, as in §3.3, scaled to short captions.

    Paper (articles of ~59 words, 250k documents): d = 200, window 20, min_count 20, 20 epochs.
    Here (captions of ~10 words, a few thousand documents): d = 48, window 5, min_count 2, 40 epochs — a window
    spanning the whole caption, a vocabulary that keeps the topic words, more passes over a small corpus.
    ``workers=1`` and the seed make training deterministic; inference on unseen texts (test split) is made
    deterministic too (see :func:`_stable_gensim_hash`) and uses a fixed number of epochs.
    """

    name = "doc2vec"

    def __init__(self, seed: int = 0, vector_size: int = 48, window: int = 5, min_count: int = 2,
                 epochs: int = 40):
        self.seed, self.vector_size, self.window, self.min_count, self.epochs = (
            int(seed), int(vector_size), int(window), int(min_count), int(epochs))
        self.model = None

    def fit(self, texts: Sequence[str]) -> "Doc2VecSpace":
        from gensim.models.doc2vec import Doc2Vec, TaggedDocument

        docs = [TaggedDocument(tokenize_words(t), [i]) for i, t in enumerate(texts)]
        self.model = Doc2Vec(docs, dm=1, vector_size=self.vector_size, window=self.window,
                             min_count=self.min_count, epochs=self.epochs, hs=1, negative=0, sample=0,
                             workers=1, seed=self.seed)
        self._train = _l2(np.stack([self.model.dv[i] for i in range(len(docs))]))
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("Doc2VecSpace.embed before fit")
        self.model.random = np.random.RandomState(self.seed)  # gensim keeps an RNG on the model
        with _stable_gensim_hash():
            vecs = [self.model.infer_vector(tokenize_words(t), epochs=self.epochs) for t in texts]
        return _l2(np.stack(vecs))


class TfidfSpace(TextSpace):
    """TF-IDF over word uni- and bi-grams (scikit-learn), sublinear tf, L2-normalised rows."""

    name = "tfidf"

    def __init__(self, ngram_range=(1, 2), min_df: int = 1):
        self.ngram_range, self.min_df = tuple(ngram_range), int(min_df)
        self.vectorizer = None

    def fit(self, texts: Sequence[str]) -> "TfidfSpace":
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(tokenizer=tokenize_words, lowercase=False, token_pattern=None,
                                          ngram_range=self.ngram_range, min_df=self.min_df, sublinear_tf=True)
        self._train = _l2(self.vectorizer.fit_transform(list(texts)).toarray())
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.vectorizer is None:
            raise RuntimeError("TfidfSpace.embed before fit")
        return _l2(self.vectorizer.transform(list(texts)).toarray())


def sentence_transformers_available() -> bool:
    try:
        import sentence_transformers  # noqa: F401
    except Exception:
        return False
    return True


class SentenceSpace(TextSpace):
    """A sentence-transformers encoder (default ``all-MiniLM-L6-v2``); optional, never required.

    Raises ``ImportError`` when the package is missing and whatever the package raises when the model cannot be
    loaded (offline without a local copy): callers fall back to :class:`Doc2VecSpace`.
    """

    name = "sentence"

    def __init__(self, model_name: str = "sentence-transformers/all-MiniLM-L6-v2", device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(model_name, device=device)

    def fit(self, texts: Sequence[str]) -> "SentenceSpace":
        self._train = self.embed(texts)
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return _l2(self.encoder.encode(list(texts), batch_size=128, show_progress_bar=False))


def make_text_space(name: str, seed: int = 0, **kw) -> TextSpace:
    """``"doc2vec"`` | ``"tfidf"`` | ``"sentence"`` (unfitted)."""
    if name == "doc2vec":
        return Doc2VecSpace(seed=seed, **kw)
    if name == "tfidf":
        return TfidfSpace(**kw)
    if name == "sentence":
        return SentenceSpace(**kw)
    raise ValueError(f"text space must be 'doc2vec', 'tfidf' or 'sentence', got {name!r}")


# =========================================================================== k nearest neighbours

def knn(vectors: np.ndarray, k: int, owner: np.ndarray | None = None, method: str = "auto",
        exact_max: int = 20000, seed: int = 0) -> np.ndarray:
    """For each row, the ``k`` nearest other rows by cosine similarity, nearest first, (n, k) int64.

    Rows with the same ``owner`` as the query (itself included) are never returned (default owner: the row
    itself). ``method``: ``"exact"`` (brute force, ties broken by the lower index), ``"hnsw"`` (hnswlib,
    approximate) or ``"auto"`` (exact up to ``exact_max`` rows).
    """
    x = _l2(vectors)
    n = len(x)
    owner = np.arange(n) if owner is None else np.asarray(owner)
    if owner.shape != (n,):
        raise ValueError(f"owner must have one entry per row ({n}), got shape {owner.shape}")
    same = np.bincount(np.unique(owner, return_inverse=True)[1]).max()  # most rows one owner has
    available = n - same
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}] (rows minus the largest owner group), got {k}")
    if method == "auto":
        method = "exact" if n <= exact_max else "hnsw"
    if method == "exact":
        out = np.empty((n, k), dtype=np.int64)
        for start in range(0, n, 1024):
            sims = x[start:start + 1024] @ x.T
            sims[owner[start:start + 1024, None] == owner[None, :]] = -np.inf
            order = np.lexsort((np.broadcast_to(np.arange(n), sims.shape), -sims), axis=1)
            out[start:start + 1024] = order[:, :k]
        return out
    if method == "hnsw":
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=x.shape[1])
        index.init_index(max_elements=n, ef_construction=200, M=16, random_seed=seed)
        index.set_num_threads(1)
        index.add_items(x, np.arange(n))
        want = min(n, k + same)
        index.set_ef(max(2 * want, 100))
        labels, _ = index.knn_query(x, k=want)
        out = np.empty((n, k), dtype=np.int64)
        for i in range(n):
            keep = [j for j in labels[i] if owner[j] != owner[i]][:k]
            if len(keep) < k:  # approximate search came short: top up exactly for this row
                sims = x @ x[i]
                sims[owner == owner[i]] = -np.inf
                extra = [j for j in np.argsort(-sims, kind="stable") if j not in keep]
                keep += extra[: k - len(keep)]
            out[i] = keep
        return out
    raise ValueError(f"method must be 'auto', 'exact' or 'hnsw', got {method!r}")


def pixel_features(dataset, size: int = 8, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Raw-pixel features of every image of ``dataset``: the normalised image average-pooled to ``size``×``size``,
    flattened, PCA-reduced to ``dim`` (the "Img NNs" space before any cross-modal training)."""
    from sklearn.decomposition import PCA

    imgs = torch.stack([dataset[i]["image"] for i in range(len(dataset))]).float()
    pooled = torch.nn.functional.adaptive_avg_pool2d(imgs, size).flatten(1).numpy()
    dim = min(dim, pooled.shape[0], pooled.shape[1])
    return PCA(n_components=dim, random_state=seed).fit_transform(pooled).astype(np.float32)


# =========================================================================== Ψ

@dataclass
class NeighbourTable:
    """The cached result of the k-NN search: Ψ's candidates.

    ``neighbours[u]``: the k units nearest to unit ``u`` (nearest first). A *unit* is a training caption (text
    neighbours) or a training image (image neighbours); ``owner[u]`` is its image's dataset index and
    ``caption[u]`` its text (``None`` for image units). ``space`` names where the neighbours were found.
    """

    neighbours: np.ndarray
    owner: np.ndarray
    caption: list | None
    space: str

    @property
    def k(self) -> int:
        return int(self.neighbours.shape[1])

    @classmethod
    def from_texts(cls, dataset, space: TextSpace, k: int = 200, method: str = "auto",
                   fitted: bool = False) -> "NeighbourTable":
        """Ω over every caption of ``dataset`` (fitting ``space`` on them unless ``fitted``), then k-NN among
        captions of other images."""
        texts, owner = dataset.captions_flat()
        vectors = space.train_vectors() if fitted else space.fit(texts).train_vectors()
        return cls(knn(vectors, k, owner=owner, method=method), owner, list(texts), space.name)

    @classmethod
    def from_images(cls, dataset, features: np.ndarray | None = None, k: int = 200, method: str = "auto",
                    seed: int = 0) -> "NeighbourTable":
        """Neighbours among images (default features: :func:`pixel_features`); never the image itself."""
        feats = pixel_features(dataset, seed=seed) if features is None else np.asarray(features)
        return cls(knn(feats, k, method=method, seed=seed), np.arange(len(feats)), None, "pixels")

    # ------------------------------------------------------------------ Ψ
    def unit_of(self, index: int, caption: str | None) -> int:
        """The unit of the anchor (dataset ``index``, the caption drawn this step)."""
        if self.caption is None:
            return int(index)
        if not hasattr(self, "_lookup"):
            self._lookup = {(int(o), c): u for u, (o, c) in enumerate(zip(self.owner, self.caption))}
            self._first = {}
            for u, o in enumerate(self.owner):
                self._first.setdefault(int(o), u)
        return self._lookup.get((int(index), caption), self._first[int(index)])

    def psi(self, index: int, caption: str | None, rng: np.random.Generator, dataset=None) -> tuple[int, str]:
        r"""Eq. 5: a pair :math:`\langle x_{i'}, y_{i'}\rangle` drawn uniformly from the k nearest neighbours of
        the anchor; returns (dataset index :math:`i'`, caption :math:`y_{i'}`). For image units the caption is
        one of the neighbour image's captions (drawn with the same ``rng``; needs ``dataset``)."""
        u = self.neighbours[self.unit_of(index, caption), int(rng.integers(self.k))]
        i2 = int(self.owner[u])
        if self.caption is not None:
            return i2, self.caption[u]
        captions = dataset.captions_of(i2)
        return i2, captions[int(rng.integers(len(captions)))]

    # ------------------------------------------------------------------ cache on disk
    def save(self, path: str | Path) -> Path:
        """Atomic ``.npz`` write (table, owners, captions, space name)."""
        def write(f):
            np.savez(f, neighbours=self.neighbours, owner=self.owner, space=np.asarray(self.space),
                     caption=np.asarray(self.caption if self.caption is not None else [], dtype=object),
                     has_caption=np.asarray(self.caption is not None))
        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> "NeighbourTable":
        with np.load(path, allow_pickle=True) as z:
            caption = list(z["caption"]) if bool(z["has_caption"]) else None
            return cls(z["neighbours"], z["owner"], caption, str(z["space"]))


class _PairSource:
    """Shared by Ψ and the ground-truth STRUC sampler: per-batch sampling, encoding and the per-batch cache."""

    def __init__(self, dataset, model: torch.nn.Module, tokenizer, seed: int = 0):
        self.dataset = dataset
        self._model = (model,)  # a tuple: not an nn.Module attribute, so never registered as a sub-module
        self.tokenizer = tokenizer
        self.seed = int(seed)
        self.step = 0
        self._cached_batch = None
        self._cached = None

    @property
    def model(self) -> torch.nn.Module:
        return self._model[0]

    def sample(self, index: Sequence[int], caption: Sequence[str], step: int) -> tuple[list[int], list[str]]:
        raise NotImplementedError  # pragma: no cover

    def encode(self, features) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the sampled pairs of this batch (image, text), L2-normalised, with gradients; computed once
        per batch and shared by every term holding this source."""
        batch = features.batch
        if self._cached_batch is batch:
            return self._cached
        index = [int(i) for i in batch["index"].tolist()]
        idx, texts = self.sample(index, list(batch["caption"]), self.step)
        self.step += 1
        device = features.image.device
        images = torch.stack([self.dataset[i]["image"] for i in idx]).to(device)
        tokens = self.tokenizer(texts).to(device)
        x = self.model.encode_image(images, normalize=True).float()
        y = self.model.encode_text(tokens, normalize=True).float()
        self._cached_batch, self._cached = batch, (x, y)
        self.last_sample = (idx, texts)
        return x, y


class NeighbourPairs(_PairSource):
    r""":math:`\Psi` at training time: for each batch row, a neighbour pair from ``table``, sampled with an RNG
    seeded by ``(seed, step, dataset index)`` — reproducible and independent of batch composition."""

    def __init__(self, table: NeighbourTable, dataset, model, tokenizer, seed: int = 0):
        super().__init__(dataset, model, tokenizer, seed)
        self.table = table

    def sample(self, index, caption, step):
        out = [self.table.psi(i, c, np.random.default_rng([self.seed, step, i]), self.dataset)
               for i, c in zip(index, caption)]
        return [o[0] for o in out], [o[1] for o in out]


class SameImageCaptions(_PairSource):
    """STRUC's ground-truth neighbourhood: another caption of the *same* image (the image itself as the image
    side). Needs multi-caption data; with one caption the caption itself is returned."""

    def sample(self, index, caption, step):
        texts = []
        for i, c in zip(index, caption):
            others = [t for t in self.dataset.captions_of(i) if t != c] or [c]
            texts.append(others[int(np.random.default_rng([self.seed, step, i]).integers(len(others)))])
        return list(index), texts
