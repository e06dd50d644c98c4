r"""Seed 002's single network: ONE CNN embeds both images and captions written as images (§3.2, Fig. 2).

Paper: InceptionResNet-V1 (facenet's), 256 × 256 inputs, 128-d embeddings, center loss, Adam at 1e-3, 45 images
a batch, each with its five encoded captions ("config-standard"). Here:

* ``backbone="resnet-small"`` (smoke / tiny): a small residual CNN — a stem whose kernel and stride are one
  visual word of the text layout (4 × 4 at 32 px), then one basic residual block per stage (channels 32-64-128 by
  default, stride 2 between stages), global average pooling;
* ``backbone="resnet18"`` (``full``), or any torchvision classification model name: built by
  ``torchvision.models.get_model(name, weights=None)`` with its classifier replaced by the embedding head.

Normalisation layers are GroupNorm, not BatchNorm: :func:`labkit.train.fit` calls ``encode_image`` and
``encode_text`` separately, and BatchNorm would normalise each modality with its own batch statistics in training
but with a mixture of both at evaluation; GroupNorm treats every input alone, as the single-network idea wants.

Retrieval is Euclidean nearest neighbour (§5.2). Embeddings are L2-normalised, where
:math:`\|a - b\|^2 = 2 - 2\,a\cdot b`, so the Euclidean ranking *is* the cosine ranking that
:func:`labkit.metrics.retrieval_recall` computes (tested).

    encoder = TextAsImage.fit(train_captions, image_size=32, seed=0)
    bundle = create_single_network(encoder, backbone="resnet-small", seed=0)
    bundle.model.encode_image(images)            # (B, 128), unit rows
    bundle.model.encode_text(bundle.tokenizer(captions))   # the same CNN on the encoded captions
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.text_as_image import TextAsImage
from .backbones import ResidualCNN, group_norm
from .base import DualEncoder
from .clip import ClipBundle

__all__ = ["SingleNetwork", "create_single_network", "BACKBONES"]

BACKBONES = ("resnet-small", "resnet18")


def _torchvision_backbone(name: str) -> tuple[nn.Module, int]:
    import torchvision

    resnet = name.startswith(("resnet", "resnext", "wide_resnet"))  # their norm_layer is a BatchNorm2d stand-in
    try:
        net = torchvision.models.get_model(name, weights=None, **({"norm_layer": group_norm} if resnet else {}))
    except ValueError as exc:
        raise ValueError(f"backbone {name!r} is neither one of {BACKBONES} nor a torchvision model: {exc}") from exc
    for attr in ("fc", "classifier", "head", "heads"):
        head = getattr(net, attr, None)
        if head is None:
            continue
        last = head if isinstance(head, nn.Linear) else [m for m in head.modules() if isinstance(m, nn.Linear)][-1]
        width = last.in_features
        setattr(net, attr, nn.Identity())
        return net, width
    raise ValueError(f"torchvision model {name!r}: no fc/classifier/head to replace with the embedding head")


class SingleNetwork(DualEncoder):
    """One backbone, one linear head to ``embed_dim``, for both modalities.

    ``encode_text`` takes encoded captions ``(B, 3, H, W)`` or caption groups ``(B, k, 3, H, W)`` (returning
    ``k·B`` rows, item-major). ``logit_scale`` exists for the training loop's interface and is frozen: the center
    loss does not use a temperature.

    ``shared=False`` is the diagnostic counterpart: the same architecture twice, one copy per modality (two CNN
    towers on the same inputs), which separates the effect of *sharing* one network from that of the encoding.
    """

    def __init__(self, backbone: str = "resnet-small", embed_dim: int = 128, image_size: int = 32,
                 channels: Sequence[int] = (32, 64, 128), stem_kernel: int = 3, stem_stride: int = 1,
                 shared: bool = True):
        super().__init__()

        def make() -> tuple[nn.Module, nn.Module]:
            if backbone == "resnet-small":
                net = ResidualCNN(channels, stem_kernel=stem_kernel, stem_stride=stem_stride, norm="group",
                                  kaiming_init=False)
                width = net.out_dim
            else:
                net, width = _torchvision_backbone(backbone)
            return net, nn.Linear(width, embed_dim)

        self.backbone, self.head = make()
        self.backbone.image_size = image_size  # what ClipBundle.image_size reads (via .visual)
        self.shared = bool(shared)
        if not self.shared:
            self.text_backbone, self.text_head = make()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)), requires_grad=False)
        self.backbone_name, self.embed_dim, self.image_size = backbone, embed_dim, image_size

    @property
    def visual(self) -> nn.Module:
        return self.backbone

    def embed(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """The shared network on any batch of (3, H, W) inputs, photographs or encoded captions alike."""
        z = self.head(self.backbone(x))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self.embed(image, normalize)

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        if text.ndim == 5:  # caption groups (B, k, 3, H, W) → k·B rows, item-major
            text = text.flatten(0, 1)
        if text.ndim != 4:
            raise ValueError(f"encoded captions must be (B, 3, H, W) or (B, k, 3, H, W), got {tuple(text.shape)}")
        if not self.shared:
            z = self.text_head(self.text_backbone(text))
            return F.normalize(z, dim=-1) if normalize else z
        return self.embed(text, normalize)


def _preprocess(image_size: int):
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(),
        transforms.Normalize(OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)])


def create_single_network(encoder: TextAsImage, backbone: str = "resnet-small", embed_dim: int = 128,
                          seed: int | None = None, **kw) -> ClipBundle:
    """A seeded :class:`SingleNetwork` for ``encoder``'s image size, as a :class:`~labkit.models.ClipBundle` whose
    tokenizer is the text-as-image ``encoder`` and whose ``preprocess`` resizes real photographs to that size."""
    if not isinstance(encoder, TextAsImage):
        raise TypeError(f"encoder must be a TextAsImage, got {type(encoder).__name__}")
    if backbone == "resnet-small" and "stem_kernel" not in kw:  # one stem step = one visual word
        kw.update(stem_kernel=encoder.layout.word_px, stem_stride=encoder.layout.word_px)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = SingleNetwork(backbone, embed_dim, encoder.image_size, **kw)
    return ClipBundle(model=model, preprocess=_preprocess(encoder.image_size), tokenizer=encoder,
                      name=f"single-network-{backbone}")
