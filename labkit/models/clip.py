"""Two-tower CLIP models, built by open_clip from JSON configs.

One entry point, :func:`create_model`, mirrors ``open_clip.create_model_and_transforms``:

* ``create_model("labkit-tiny")`` builds a tiny CPU model from ``labkit/models/configs/labkit-tiny.json``
  (the configs shipped with labkit are registered with open_clip on import, so ``open_clip`` itself and
  ``open_clip_train`` see them too);
* ``create_model("ViT-B-16", pretrained="openai")`` takes any open_clip name and pretrained tag. labkit is offline by
  construction: the weights must already be in open_clip's caches (the Hugging Face hub cache, or ``~/.cache/clip``
  for OpenAI's URLs); if they are not, it fails at once with a message naming the cache and how to fill it.
  ``download=True`` (or the environment variable ``LABKIT_DOWNLOAD=1``) lets open_clip download them instead;
* ``create_model("ViT-B-16", checkpoint="/path/to/epoch_10.pt")`` loads a local checkpoint: an open_clip
  state dict, an ``open_clip_train`` checkpoint, or a labkit training checkpoint (all carry ``state_dict``).

Weights are always loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import open_clip
import torch

CONFIG_DIR = Path(__file__).parent / "configs"
open_clip.add_model_config(CONFIG_DIR)

__all__ = ["ClipBundle", "create_model", "list_labkit_models", "encode", "embed_dim_of", "CONFIG_DIR",
           "cached_pretrained"]


@dataclass
class ClipBundle:
    """A model with the image transform and the tokenizer that belong to it."""

    model: torch.nn.Module
    preprocess: Callable  # PIL image -> tensor (3, H, W), eval-time transform
    tokenizer: Callable  # list[str] -> LongTensor (B, context_length)
    name: str

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else int(size)


def list_labkit_models() -> list[str]:
    """Names of the model configs shipped with labkit (tiny, CPU-friendly)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def cached_pretrained(name: str, tag: str, cache_dir: str | None = None) -> tuple[str | None, list[str]]:
    """Where open_clip's weights for ``(name, tag)`` are cached: ``(path or None, the places looked at)``.

    open_clip fetches a tag from the Hugging Face hub when the tag has an ``hf_hub`` entry (its preference), else
    from the tag's URL into ``cache_dir`` or ``~/.cache/clip``; both caches are checked here, nothing is fetched.
    """
    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    looked: list[str] = []
    if "file" in cfg:
        return (cfg["file"] if Path(cfg["file"]).is_file() else None), [cfg["file"]]
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import constants, try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub comes with open_clip
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, filename = os.path.split(hub)
            filename = filename or "open_clip_pytorch_model.bin"
            names = [filename]
            if filename == "open_clip_pytorch_model.bin":
                names.insert(0, "open_clip_model.safetensors")
            elif filename.endswith((".bin", ".pth")):
                names.insert(0, filename[:-4] + ".safetensors")
            for fn in names:
                found = try_to_load_from_cache(repo, fn, cache_dir=cache_dir)
                if isinstance(found, str) and Path(found).is_file():
                    return found, looked
            looked.append(f"the Hugging Face hub cache {cache_dir or constants.HF_HUB_CACHE} (repo {repo}, "
                          f"file {' or '.join(names)})")
    url = cfg.get("url", "")
    if url:
        target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if target.is_file():
            return str(target), looked
        looked.append(str(target))
    return None, looked


def _check_pretrained(name: str, pretrained: str, cache_dir: str | None, download: bool) -> None:
    """A pretrained tag must be known, and (unless downloading is allowed) its weights cached: fail at once."""
    if Path(pretrained).is_file():
        return  # open_clip also accepts a weights file as `pretrained`
    tags = open_clip.list_pretrained_tags_by_model(name)
    if not open_clip.get_pretrained_cfg(name, pretrained):
        raise ValueError(f"pretrained={pretrained!r} is neither a file nor a pretrained tag of {name!r} "
                         f"(tags: {', '.join(tags) or 'none'})")
    if download or os.environ.get("LABKIT_DOWNLOAD") == "1":
        return
    path, looked = cached_pretrained(name, pretrained, cache_dir)
    if path is None:
        raise FileNotFoundError(
            f"the weights of {name} pretrained={pretrained!r} are not cached on this machine (looked in: "
            f"{'; '.join(looked)}), and labkit does not download at run time. Fill the cache on a machine with "
            f"internet — python -c \"from labkit.models import create_model; create_model({name!r}, "
            f"pretrained={pretrained!r}, download=True)\" — and copy that cache folder here (or set HF_HOME to it), "
            f"or pass checkpoint='/path/to/weights.pt' (a local open_clip state dict) instead.")


def create_model(
    name: str = "labkit-tiny",
    pretrained: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    download: bool = False,
    **overrides: Any,
) -> ClipBundle:
    """Build an open_clip two-tower CLIP.

    Args:
        name: an open_clip model name (``open_clip.list_models()``) or a labkit config name.
        pretrained: an open_clip pretrained tag, whose weights must be cached (see :func:`cached_pretrained`), or a
            weights file.
        checkpoint: path to a local checkpoint file; mutually exclusive with ``pretrained``.
        device: where to put the model.
        seed: if given, seeds torch before initialisation so the initial weights are reproducible.
        download: let open_clip download pretrained weights that are not cached (also: ``LABKIT_DOWNLOAD=1``).
        overrides: passed to ``open_clip.create_model_and_transforms`` (e.g. ``force_image_size=64``).
    """
    if name not in open_clip.list_models():
        raise ValueError(
            f"model name {name!r} is neither a labkit config ({', '.join(list_labkit_models())}) "
            f"nor an open_clip model; see open_clip.list_models()"
        )
    if pretrained and checkpoint:
        raise ValueError("give either pretrained (an open_clip tag) or checkpoint (a local file), not both")
    if pretrained:
        _check_pretrained(name, pretrained, overrides.get("cache_dir"), download)
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {checkpoint}")
    if seed is not None:
        torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, device=device, weights_only=True, **overrides
    )
    if checkpoint is not None:
        try:
            open_clip.load_checkpoint(model, str(checkpoint), weights_only=True, device=device)
        except Exception as exc:  # re-raise naming the file: a wrong architecture is the usual cause
            raise ValueError(f"cannot load checkpoint {checkpoint} into model {name!r}: {exc}") from exc
    tokenizer = open_clip.get_tokenizer(name)
    return ClipBundle(model=model, preprocess=preprocess, tokenizer=tokenizer, name=name)


def encode(model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inference path: L2-normalised image and text embeddings and the temperature ``exp(t) = 1/τ``."""
    image = model.encode_image(images, normalize=True)
    text = model.encode_text(tokens, normalize=True)
    return {"image": image, "text": text, "logit_scale": model.logit_scale.exp()}


def embed_dim_of(model_name: str) -> int:
    """The embedding width of an open_clip / labkit model config, without building the model."""
    cfg = open_clip.get_model_config(model_name)
    if cfg is None or "embed_dim" not in cfg:
        raise ValueError(f"no open_clip config with an embed_dim for model {model_name!r}")
    return int(cfg["embed_dim"])
