"""Small convolutional backbones shared by labkit's own models.

:class:`ResidualCNN` is a ResNet (He et al. 2016) small enough for CPU runs, built from torchvision's
``BasicBlock``. Two models use it, with different normalisation:

* seed 003's vision student (``norm="batch"``, Kaiming initialisation as in torchvision's ResNets);
* seed 002's single network (``norm="group"``): one network sees photographs and text-as-image captions in the
  same batch, so BatchNorm's batch statistics would mix the two modalities; GroupNorm normalises each sample alone.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, conv1x1

__all__ = ["ResidualCNN", "group_norm", "NORMS"]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with (at most) 8 groups: per-sample statistics, independent of what else is in the batch."""
    return nn.GroupNorm(min(8, channels), channels)


NORMS: dict[str, Callable[[int], nn.Module]] = {"batch": nn.BatchNorm2d, "group": group_norm}


class ResidualCNN(nn.Module):
    """stem (``stem_kernel`` × ``stem_kernel`` conv, stride ``stem_stride``) → one stage per width of
    ``BasicBlock``\\ s (the first block of every stage after the first halves the resolution, with a 1 × 1
    projection on its shortcut) → global average pooling. Output ``(B, widths[-1])``, also ``self.out_dim``.

    ``blocks[k]`` blocks in stage ``k`` (default one each). ``norm``: ``"batch"`` or ``"group"`` (see the module
    docstring). ``kaiming_init``: re-initialise every convolution with Kaiming-normal (fan-out), torchvision's ResNet
    initialisation; otherwise PyTorch's default. With ``stem_kernel == stem_stride`` equal to a visual word's side,
    each stem output reads exactly one word of a text-as-image caption (seed 002).
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64), blocks: Sequence[int] | None = None,
                 stem_kernel: int = 3, stem_stride: int = 1, norm: str = "batch", kaiming_init: bool = True):
        super().__init__()
        widths = tuple(widths)
        blocks = tuple(blocks) if blocks is not None else (1,) * len(widths)
        if not widths or len(widths) != len(blocks):
            raise ValueError(f"widths and blocks must be equally long and non-empty; got {widths} and {blocks}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
        norm_layer = NORMS[norm]
        pad = (stem_kernel - 1) // 2 if stem_stride == 1 else 0
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], stem_kernel, stem_stride, pad, bias=False),
                                  norm_layer(widths[0]), nn.ReLU(inplace=True))
        stages, inplanes = [], widths[0]
        for k, (width, n) in enumerate(zip(widths, blocks)):
            stride = 1 if k == 0 else 2
            first = BasicBlock(inplanes, width, stride, norm_layer=norm_layer)
            if stride != 1 or inplanes != width:  # created after the block's convolutions (the default-init order)
                first.downsample = nn.Sequential(conv1x1(inplanes, width, stride), norm_layer(width))
            stages.append(nn.Sequential(first, *[BasicBlock(width, width, norm_layer=norm_layer)
                                                 for _ in range(n - 1)]))
            inplanes = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = inplanes
        if kaiming_init:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)
