"""Look at the data: image grids with their captions, and retrieval results shown as images and texts."""

from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

__all__ = ["to_display", "show_examples", "show_text_to_image"]


def to_display(image: torch.Tensor) -> np.ndarray:
    """Undo the CLIP normalisation of a (3, H, W) tensor: an (H, W, 3) array in [0, 1] for ``imshow``."""
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1)
    return (image.detach().cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def show_examples(dataset, n: int = 8, seed: int = 0, captions: int = 2, saliency: bool = False,
                  width: int = 28) -> plt.Figure:
    """A row of ``n`` random items of an :class:`~labkit.data.ImageTextDataset` with ``captions`` of each's captions.

    With ``saliency=True`` (datasets that carry saliency maps) a second row overlays where a viewer looks.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    items = [dataset[int(i)] for i in idx]
    rows = 2 if saliency and all(it.get("saliency") is not None for it in items) else 1
    fig, axes = plt.subplots(rows, len(items), figsize=(2.2 * len(items), 2.2 * rows + 1.4), squeeze=False)
    topic_names = getattr(dataset, "topic_names", [])
    for col, item in enumerate(items):
        ax = axes[0, col]
        ax.imshow(to_display(item["image"]), interpolation="nearest")
        text = "\n".join(textwrap.fill(c, width) for c in item["captions"][:captions])
        topic = topic_names[item["topic"]] if 0 <= item.get("topic", -1) < len(topic_names) else None
        ax.set_title((f"[{topic}]\n" if topic else "") + text, fontsize=7, loc="left")
        ax.axis("off")
        if rows == 2:
            axes[1, col].imshow(to_display(item["image"]), interpolation="nearest")
            axes[1, col].imshow(item["saliency"].numpy(), cmap="magma", alpha=0.6, interpolation="bilinear")
            axes[1, col].axis("off")
    fig.tight_layout()
    return fig


def show_text_to_image(dataset, queries: Sequence[str], ranked: np.ndarray, correct: Sequence[int] | None = None,
                       k: int = 5, width: int = 40) -> plt.Figure:
    """For each text query, its top-``k`` retrieved images (``ranked[q]``: dataset indices, best first);
    the right image, when ``correct`` is given, is framed in green."""
    fig, axes = plt.subplots(len(queries), k, figsize=(1.8 * k, 2.0 * len(queries)), squeeze=False)
    for q, query in enumerate(queries):
        for j in range(k):
            ax = axes[q, j]
            idx = int(ranked[q][j])
            ax.imshow(to_display(dataset[idx]["image"]), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if correct is not None and idx == correct[q]:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:green"), spine.set_linewidth(3)
        axes[q, 0].set_ylabel(textwrap.fill(query, width), fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig
