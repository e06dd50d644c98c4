"""The interface every labkit model shares with open_clip's ``CLIP``."""

from __future__ import annotations

import torch.nn as nn

__all__ = ["DualEncoder"]


class DualEncoder(nn.Module):
    """Base of labkit's own two-modality models: a subclass defines ``encode_image(x, normalize)``,
    ``encode_text(tokens, normalize)`` and a ``logit_scale`` parameter (log 1/τ); ``forward`` then returns the dict
    an open_clip ``CLIP`` returns, so the training loop and the losses treat every model alike."""

    def forward(self, image=None, text=None) -> dict:
        return {
            "image_features": self.encode_image(image, normalize=True) if image is not None else None,
            "text_features": self.encode_text(text, normalize=True) if text is not None else None,
            "logit_scale": self.logit_scale.exp(),
        }
