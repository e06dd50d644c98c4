r"""Gaze regularisation (seed 003 §3.3, eq. 2): each training image multiplied, channel by channel, by its attention map,

.. math::
    g'_c(x_i) = M(x_i)\cdot g_c(x_i), \qquad c = 1, …, C,          \qquad (2)

applied to a training image with the *attention probability* p (the seed's Tables 4–5: p ∈ {0, 0.3, 0.5, 0.7}).

* **The map M.** A dataset's ``saliency`` (the embedded world's model of where viewers look, or a SALICON map) is a
  distribution summing to 1; eq. 2 needs a mask, so M is that map divided by its maximum: 1 where attention peaks,
  near 0 where nobody looks (SALICON's grey-level maps, 255 at the peak, are the same thing up to the /255).
* **Which pixels.** The product is taken on the pixel intensities in [0, 1], as the seed's Fig. 4 shows it (images go
  dark where nobody looks), then the dataset's normalisation is applied again: for a normalised tensor
  ``x̂ = (x − μ)/σ`` that is ``x̂' = (M·(σx̂ + μ) − μ)/σ`` per channel (:func:`gaze_modulate` with ``mean``/``std``);
  without them the product is taken on the tensor as given.
* **When.** :class:`GazeRegularized` wraps a training set: each time an item is served, one uniform number u is drawn
  and the image is modulated iff ``u < p``. The draw comes from torch's global generator, which
  :func:`labkit.train.fit` re-seeds from ``(seed, epoch)`` at every epoch start, so the masked images are a
  function of the run's seed: the same seed gives the same images, a resumed run the same as an uninterrupted one,
  and runs with different p draw the *same* u's (one per item, whatever p), so the images masked at p = 0.3 are a
  subset of those masked at p = 0.7 — paired comparisons across p differ only in p. Pass a ``generator`` to draw
  from it instead. Validation and test sets are never wrapped: the model is evaluated on plain images.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset

__all__ = ["gaze_modulate", "attention_mask", "GazeRegularized", "OPENAI_MEAN", "OPENAI_STD"]

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's OPENAI_DATASET_MEAN (the embedded world's)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def attention_mask(saliency: torch.Tensor) -> torch.Tensor:
    """M of eq. 2 from a saliency map (H, W) or (B, H, W): scaled so that its maximum is 1 (per map)."""
    if saliency.ndim not in (2, 3):
        raise ValueError(f"saliency must be (H, W) or (B, H, W), got shape {tuple(saliency.shape)}")
    if not torch.isfinite(saliency).all() or (saliency < 0).any():
        raise ValueError("saliency must be finite and non-negative")
    peak = saliency.amax(dim=(-2, -1), keepdim=True)
    if (peak <= 0).any():
        raise ValueError("a saliency map is all zeros: it has no attention to scale")
    return saliency / peak


def gaze_modulate(image: torch.Tensor, saliency: torch.Tensor, mean: Sequence[float] | None = OPENAI_MEAN,
                  std: Sequence[float] | None = OPENAI_STD) -> torch.Tensor:
    """Eq. 2 on one image (C, H, W) or a batch (B, C, H, W): every channel times ``M = saliency / max``.

    With ``mean``/``std`` (the normalisation the image tensor carries) the product is taken on intensities:
    ``x̂' = (M·(σ·x̂ + μ) − μ)/σ``; with ``mean=std=None`` on the tensor as it is."""
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    m = attention_mask(saliency).to(image.dtype)
    if m.shape[-2:] != image.shape[-2:] or (image.ndim == 4 and m.ndim == 3 and len(m) != len(image)):
        raise ValueError(f"saliency {tuple(saliency.shape)} does not match image {tuple(image.shape)}")
    m = m.unsqueeze(-3)  # broadcast over channels: (1, H, W) or (B, 1, H, W)
    if mean is None and std is None:
        return m * image
    if mean is None or std is None:
        raise ValueError("give both mean and std (the image's normalisation) or neither")
    shape = (-1, 1, 1)
    mu = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(shape)
    sigma = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(shape)
    if len(mu) != image.shape[-3] or len(sigma) != image.shape[-3]:
        raise ValueError(f"mean/std have {len(mu)}/{len(sigma)} entries for {image.shape[-3]} channels")
    return (m * (image * sigma + mu) - mu) / sigma


class GazeRegularized(Dataset):
    """A training set whose images are modulated by their attention maps (eq. 2) with probability ``p``.

    Args:
        dataset: an :class:`~labkit.data.ImageTextDataset` whose items carry ``saliency`` (the embedded world,
            :class:`~labkit.data.salicon.SaliconCaptions`).
        p: the attention probability, in [0, 1].
        mean, std: the normalisation of the dataset's image tensors (default: open_clip's OpenAI constants, which
            the embedded world and labkit's default transform use); ``None, None`` multiplies the tensor as is.
        generator: draw the per-item decision from it instead of torch's global generator (see the module doc).

    Everything else (``captions_flat``, ``pair_ids``, ``world``, …) is the wrapped dataset's.
    """

    def __init__(self, dataset, p: float, mean: Sequence[float] | None = OPENAI_MEAN,
                 std: Sequence[float] | None = OPENAI_STD, generator: torch.Generator | None = None):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p (the attention probability) must be in [0, 1], got {p!r}")
        self.dataset, self.p = dataset, float(p)
        self.mean, self.std, self.generator = mean, std, generator
        self.n_modulated = 0  # items served with eq. 2 applied (a running count, for checks)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # captions_flat, pair_ids, topic_names, world, … of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"GazeRegularized({self.dataset!r}, p={self.p:g})"

    def __getitem__(self, i: int) -> dict:
        item = self.dataset[i]
        u = float(torch.rand((), generator=self.generator))  # always one draw per item, whatever p
        if u < self.p:
            if item.get("saliency") is None:
                raise ValueError(f"{type(self.dataset).__name__} item {i} has no saliency map: gaze regularisation "
                                 "needs one per training image")
            item = {**item, "image": gaze_modulate(item["image"], item["saliency"], self.mean, self.std)}
            self.n_modulated += 1
        return item
