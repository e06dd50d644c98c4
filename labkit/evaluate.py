"""Encode a dataset with a model and measure it: the modality gap family and retrieval R@K.

    emb = embed_dataset(model, test_set, tokenizer)           # every image, every caption
    numbers = evaluate_embeddings(emb)                           # gap, silhouette, …, i2t_R@1 … t2i_R@10

Each image is encoded once; every one of its captions is encoded (COCO style: 1 image, 5 captions), and
``text_to_image`` records which image each caption belongs to. Gap metrics pair each image with its first
caption (equal-sized modalities, rows paired, as in Mind the Gap's figures); retrieval uses all captions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .metrics import chance_recall, gap_report, retrieval_recall
from .train import resolve_device

__all__ = ["Embeddings", "embed_dataset", "evaluate_embeddings", "chance_recall", "mean_pairwise_cosine", "cone_report"]


@dataclass
class Embeddings:
    """L2-normalised embeddings of a dataset: ``image`` (N, D), ``text`` (M, D), ``text_to_image`` (M,)."""

    image: np.ndarray
    text: np.ndarray
    text_to_image: np.ndarray
    topic: np.ndarray  # (N,) topic of each image, -1 when unknown

    @property
    def paired_text(self) -> np.ndarray:
        """The first caption's embedding of each image, row-aligned with ``image``."""
        first = np.full(len(self.image), -1, dtype=np.int64)
        for j in range(len(self.text_to_image) - 1, -1, -1):
            first[self.text_to_image[j]] = j
        return self.text[first]


def _as_list(batch):
    return batch


@torch.no_grad()
def embed_dataset(model: torch.nn.Module, dataset: Dataset, tokenizer, device: str = "auto",
                  batch_size: int = 256) -> Embeddings:
    """Encode every item and every caption of ``dataset`` (an :class:`~labkit.data.ImageTextDataset`; items with
    ``audio`` instead of ``image`` go through ``model.encode_audio``)."""
    dev = resolve_device(device)
    model.eval().to(dev)
    images, topics = [], []
    for items in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=_as_list):
        key = "audio" if "audio" in items[0] else "image"
        encode = model.encode_audio if key == "audio" else model.encode_image
        images.append(encode(torch.stack([it[key] for it in items]).to(dev), normalize=True).float().cpu())
        topics.extend(int(it.get("topic", -1)) for it in items)
    captions, text_to_image = dataset.captions_flat()
    texts = []
    for start in range(0, len(captions), batch_size):
        tokens = tokenizer(captions[start:start + batch_size]).to(dev)
        texts.append(model.encode_text(tokens, normalize=True).float().cpu())
    return Embeddings(
        image=torch.cat(images).numpy(),
        text=torch.cat(texts).numpy(),
        text_to_image=np.asarray(text_to_image, dtype=np.int64),
        topic=np.asarray(topics, dtype=np.int64),
    )


def evaluate_embeddings(emb: Embeddings, ks=(1, 5, 10)) -> dict[str, float]:
    """Gap metrics on image/first-caption pairs, then retrieval recall over all captions (percent)."""
    numbers = gap_report(emb.image, emb.paired_text)
    numbers.update(retrieval_recall(emb.image, emb.text, emb.text_to_image, ks=ks))
    return numbers


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine similarity over all pairs i ≠ j of the rows of ``x`` — how narrow a cone they occupy.

    For unit rows, ``Σ_{i≠j} x_i·x_j = ‖Σ_i x_i‖² − n``, so no n×n matrix is needed.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x must be (n >= 2, d); got shape {x.shape}")
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    total = x.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def cone_report(emb: Embeddings) -> dict[str, float]:
    """The cone effect (Mind the Gap §3): mean pairwise cosine within the images and within the texts."""
    return {"image": mean_pairwise_cosine(emb.image), "text": mean_pairwise_cosine(emb.paired_text)}
