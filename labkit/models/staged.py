r"""Seed 004's staged model: learn each modality's semantic space alone, then map one into the other (§3, Fig. 1).

1. **Text semantic contrast** (§3.1, eq. 1–2): a transformer text encoder trained on texts only, texts of the same
   semantics as positives. Here: open_clip's text tower (a transformer; its end-of-text token plays the role of the
   paper's [class] token) of a labkit CLIP config.
2. **Image semantic contrast** (§3.2, eq. 3–4): a ViT trained on images only, same-type images as positives.
   Here: the same CLIP's visual tower (open_clip ViT).
3. **Semantic shared space** (§3.3): both encoders frozen, a linear map from one space into the other, "reducing
   the distance between all feature pairs". :class:`LinearMap` fits it in closed form (least squares, the exact
   minimiser of the summed squared distance; **the default**) or by gradient descent on the same squared distance
   (a trained linear layer, as the paper describes; it converges to the closed form — tested).

Stages 1–2 train with :func:`labkit.train.fit` unchanged, through :class:`ModalityView`: a view of the two-tower
model that encodes one modality and returns empty ``(B, 0)`` rows for the other (without running its tower), with
the other tower frozen. Loss terms read the one modality they need (:class:`~labkit.losses.IntraModalLoss`).

    clip = create_model("labkit-tiny", seed=0).model
    with ModalityView(clip, "text") as view:    # stage 1 (the image tower is frozen inside the block)
        fit(view, Objective({"text": IntraModalLoss("text", "pair_id")}), CaptionGroups(train), GroupTokenizer(tok), cfg)
    with ModalityView(clip, "image") as view:   # stage 2
        fit(view, Objective({"image": IntraModalLoss("image", "topic")}), train, tok, cfg)
    staged = StagedModel(clip)                  # stage 3: fit the map on frozen features
    staged.image_map.fit_least_squares(image_features, caption_features)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import DualEncoder

__all__ = ["tower_parameters", "ModalityView", "LinearMap", "StagedModel", "DIRECTIONS", "MAP_METHODS"]

DIRECTIONS = ("image_to_text", "text_to_image")
MAP_METHODS = ("lstsq", "gradient")


def tower_parameters(model: nn.Module, modality: str) -> list[nn.Parameter]:
    """The parameters of one tower of an open_clip CLIP: ``"image"`` = ``visual.*``; ``"text"`` = every other
    parameter except the temperature (``logit_scale``, ``logit_bias``)."""
    if modality not in ("image", "text"):
        raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
    out = []
    for name, p in model.named_parameters():
        if name.startswith(("logit_scale", "logit_bias")):
            continue
        if name.startswith("visual.") == (modality == "image"):
            out.append(p)
    return out


class ModalityView(nn.Module):
    """A two-tower model seen as a one-modality model, for a single-modality training stage.

    ``encode_<modality>`` runs that tower (text: ``(B, L)`` tokens or caption groups ``(B, k, L)`` → ``k·B``
    rows, item-major); the other ``encode_*`` returns an empty ``(B, 0)`` tensor without computing anything. Used
    as a context manager, it freezes the other tower for the duration of the block and restores every
    ``requires_grad`` flag afterwards. ``logit_scale`` is the wrapped model's (the stage's InfoNCE temperature).
    """

    def __init__(self, model: nn.Module, modality: str):
        super().__init__()
        if modality not in ("image", "text"):
            raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
        self.model, self.modality = model, modality
        self._saved: list[tuple[nn.Parameter, bool]] = []

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.model.logit_scale

    def __enter__(self) -> "ModalityView":
        other = "text" if self.modality == "image" else "image"
        self._saved = [(p, p.requires_grad) for p in self.model.parameters()]
        for p in tower_parameters(self.model, other):
            p.requires_grad_(False)
        return self

    def __exit__(self, *exc) -> None:
        for p, flag in self._saved:
            p.requires_grad_(flag)
        self._saved = []

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        if self.modality != "image":
            return image.new_zeros(len(image), 0, dtype=torch.float32)
        return self.model.encode_image(image, normalize=normalize)

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        if self.modality != "text":
            return torch.zeros(len(text), 0, device=text.device)
        if text.ndim == 3:  # caption groups (B, k, L)
            text = text.flatten(0, 1)
        return self.model.encode_text(text, normalize=normalize)


class LinearMap(nn.Linear):
    r"""An affine map ``y ≈ W x + b`` between two embedding spaces (seed 004 §3.3).

    :meth:`fit_least_squares` solves :math:`\min_{W,b} \sum_n \lVert W x_n + b - y_n \rVert^2 + \rho \lVert W
    \rVert_F^2` in closed form (ridge ``ρ``, 0 = ordinary least squares); :meth:`fit_gradient` minimises the same
    mean squared distance with Adam (the "trained linear layer"). Initialised to the identity (``W = I, b = 0``
    when the spaces have the same width), so an untrained map changes nothing.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        with torch.no_grad():
            self.weight.copy_(torch.eye(out_features, in_features))
            self.bias.zero_()

    @staticmethod
    def _check(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise ValueError(f"x and y must be row-aligned (n, d) matrices; got {tuple(x.shape)} and {tuple(y.shape)}")
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            raise ValueError("x or y contains NaN/inf")
        return x, y

    @torch.no_grad()
    def fit_least_squares(self, x: torch.Tensor, y: torch.Tensor, ridge: float = 0.0) -> "LinearMap":
        """Closed-form (ridge) least squares with an unpenalised bias, in float64."""
        x, y = self._check(x, y)
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        x64, y64 = x.double(), y.double()
        mx, my = x64.mean(0), y64.mean(0)
        xc, yc = x64 - mx, y64 - my  # centring handles the bias exactly
        gram = xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=torch.float64)
        w = torch.linalg.lstsq(gram, xc.T @ yc).solution  # (d_in, d_out); lstsq: also fine when gram is singular
        self.weight.copy_(w.T.to(self.weight.dtype))
        self.bias.copy_((my - mx @ w).to(self.bias.dtype))
        return self

    def fit_gradient(self, x: torch.Tensor, y: torch.Tensor, epochs: int = 200, lr: float = 1e-2,
                     batch_size: int = 256, seed: int = 0) -> list[float]:
        """Adam on the mean squared distance ``mean_n ‖W x_n + b − y_n‖²`` over shuffled mini-batches; returns the
        loss of each epoch (on the whole set)."""
        x, y = self._check(x, y)
        device = self.weight.device
        x, y = x.float().to(device), y.float().to(device)
        gen = torch.Generator().manual_seed(int(seed))
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        history = []
        threads = torch.get_num_threads()
        if device.type == "cpu":  # thousands of tiny steps: a second thread only adds synchronisation
            torch.set_num_threads(1)
        try:
            for _ in range(int(epochs)):
                for idx in torch.randperm(len(x), generator=gen).split(int(batch_size)):
                    loss = (self(x[idx]) - y[idx]).pow(2).sum(1).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    history.append(float((self(x) - y).pow(2).sum(1).mean()))
        finally:
            torch.set_num_threads(threads)
        return history


class StagedModel(DualEncoder):
    """A two-tower model whose towers were trained apart, plus the linear map of stage 3.

    ``direction="image_to_text"`` (default): ``encode_image(x) = map(image tower(x))`` — images are mapped into the
    text space, where stage 1 separated individual captions; ``"text_to_image"`` maps texts into the image space.
    Inputs of the map are the towers' L2-normalised outputs; outputs are L2-normalised when ``normalize=True``.
    """

    def __init__(self, clip: nn.Module, direction: str = "image_to_text", embed_dim: int | None = None):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.clip, self.direction = clip, direction
        dim = int(embed_dim or _embed_dim(clip))
        self.map = LinearMap(dim, dim)
        self.visual = clip.visual  # what ClipBundle.image_size reads

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.clip.logit_scale

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.clip.encode_image(image, normalize=True)
        if self.direction == "image_to_text":
            z = self.map(z)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.clip.encode_text(text, normalize=True)
        if self.direction == "text_to_image":
            z = self.map(z)
        return F.normalize(z, dim=-1) if normalize else z

    def fit_map(self, image_features: torch.Tensor, text_features: torch.Tensor, method: str = "lstsq",
                **kwargs) -> "StagedModel":
        """Stage 3 on row-aligned frozen features (image ``n``'s features with the features of one of its
        captions): ``method="lstsq"`` (closed form, default; ``ridge=…``) or ``"gradient"`` (Adam; ``epochs=…``)."""
        if method not in MAP_METHODS:
            raise ValueError(f"method must be one of {MAP_METHODS}, got {method!r}")
        x, y = (image_features, text_features) if self.direction == "image_to_text" else (text_features,
                                                                                            image_features)
        if method == "lstsq":
            self.map.fit_least_squares(x, y, **kwargs)
        else:
            self.map.fit_gradient(x, y, **kwargs)
        return self


def _embed_dim(clip: nn.Module) -> int:
    if hasattr(clip, "embed_dim"):
        return int(clip.embed_dim)
    proj = getattr(clip, "text_projection", None)
    if isinstance(proj, nn.Linear):
        return proj.out_features
    if torch.is_tensor(proj):
        return int(proj.shape[1])
    raise ValueError("cannot tell the embedding width of this model; pass embed_dim")

