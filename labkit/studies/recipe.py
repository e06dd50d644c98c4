"""The recipe the CLIP notebooks share, in one place: build the world and the model, measure at initialisation,
train, measure again.

    settings = profile_settings("smoke")
    world = make_world(n_pairs=settings["n_pairs"], seed=seed)
    result = train_clip(world, seed=seed, objective=None, **settings)
    result.metrics_init["gap"], result.metrics["gap"], result.metrics["i2t_R@1"]

Profiles: ``smoke`` runs on 2 CPU cores in about a minute per model and is what ``make run`` executes; ``full`` is
a larger world and longer training for a real run (a GPU helps but is not required); ``tiny`` is what the test suite
executes — it proves a notebook runs end to end, not what it finds (its models barely train).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from ..data import make_world
from ..evaluate import Embeddings, chance_recall, cone_report, embed_dataset, evaluate_embeddings
from ..losses import Objective
from ..models import ClipBundle, create_model
from ..train import TrainConfig, fit

__all__ = ["PROFILES", "profile_settings", "open_source", "RealSource", "TrainResult", "train_clip"]

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_pairs": 2000, "epochs": 12, "batch_size": 128, "lr": 2e-3, "model_name": "labkit-tiny"},
    "full": {"n_pairs": 20000, "epochs": 40, "batch_size": 256, "lr": 1e-3, "model_name": "labkit-tiny"},
    "tiny": {"n_pairs": 500, "epochs": 3, "batch_size": 64, "lr": 2e-3, "model_name": "labkit-tiny", "warmup_steps": 5},
}


def profile_settings(profile: str, profiles: dict[str, dict[str, Any]] | None = None,
                     **overrides: Any) -> dict[str, Any]:
    """The settings of a profile (``smoke``, ``full`` or ``tiny``) from ``profiles`` (default: :data:`PROFILES`; a notebook
    with its own sizes passes its own table), with any non-None override applied."""
    profiles = PROFILES if profiles is None else profiles
    if profile not in profiles:
        raise ValueError(f"profile must be one of {sorted(profiles)}, got {profile!r}")
    settings = dict(profiles[profile])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


class RealSource:
    """A real dataset on disk seen through the same ``.split(name, transform)`` door as the embedded world."""

    LOADERS = ("coco", "flickr30k", "flickr8k")

    def __init__(self, dataset: str, data_root: str):
        from ..data import coco_karpathy, flickr8k, flickr30k

        if dataset not in self.LOADERS:
            raise ValueError(f"dataset must be 'embedded' or one of {self.LOADERS}, got {dataset!r}")
        self.dataset, self.data_root = dataset, data_root
        self._load = {"coco": coco_karpathy, "flickr30k": flickr30k, "flickr8k": flickr8k}[dataset]

    def split(self, name: str, transform=None):
        return self._load(self.data_root, split=name, transform=transform)


def open_source(dataset: str = "embedded", data_root: str | None = None, n_pairs: int = 2000, seed: int = 0,
                pairing: str = "literal", image_size: int = 32, **_ignored: Any):
    """The data a notebook runs on: the embedded world (default) or a real dataset under ``data_root``."""
    if dataset == "embedded":
        return make_world(n_pairs=n_pairs, seed=seed, image_size=image_size, pairing=pairing)
    if not data_root:
        raise ValueError(f"dataset={dataset!r} needs data_root (the folder holding its images and Karpathy JSON)")
    return RealSource(dataset, data_root)


@dataclass
class TrainResult:
    """What one training run leaves behind."""

    bundle: ClipBundle
    history: pd.DataFrame
    init: Embeddings  # test-split embeddings at random initialisation
    final: Embeddings  # and after training
    metrics_init: dict[str, float]
    metrics: dict[str, float]
    chance: dict[str, float] = field(default_factory=dict)
    topic_names: list[str] = field(default_factory=list)
    objective: Objective | None = None  # the trained objective (a GRL classifier, a queue, …)

    @property
    def cone_init(self) -> dict[str, float]:
        """Mean within-modality cosine at initialisation (the cone effect)."""
        return cone_report(self.init)

    @property
    def cone(self) -> dict[str, float]:
        """Mean within-modality cosine after training."""
        return cone_report(self.final)

    @property
    def model(self) -> torch.nn.Module:
        return self.bundle.model


def train_clip(
    world,
    seed: int = 0,
    objective: Objective | None = None,
    model_name: str = "labkit-tiny",
    checkpoint: str | None = None,
    pretrained: str | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str = "auto",
    eval_split: str = "test",
    progress: bool = True,
    **train_kwargs: Any,
) -> TrainResult:
    """Train a CLIP on ``world.train`` with ``objective`` (default: the CLIP loss alone); measure ``eval_split``.

    Extra keyword arguments go to :class:`~labkit.train.TrainConfig` (e.g. ``checkpoint_dir``, ``weight_decay``);
    unknown keys (such as profile entries that are not training settings, like ``n_pairs``) are ignored.
    """
    known = set(TrainConfig.__dataclass_fields__)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress,
                         **{k: v for k, v in train_kwargs.items() if k in known})
    bundle = create_model(model_name, pretrained=pretrained, checkpoint=checkpoint, seed=seed)
    transform = None if world_is_embedded(world) and bundle.image_size == world.image_size else bundle.preprocess
    train_set, eval_set = world.split("train", transform=transform), world.split(eval_split, transform=transform)
    return fit_and_measure(bundle, objective, train_set, eval_set, config, device)


def fit_and_measure(bundle, objective: Objective | None, train_set, eval_set, config: TrainConfig,
                    device: str = "auto") -> TrainResult:
    """Embed ``eval_set`` at initialisation, ``fit`` on ``train_set``, embed again; metrics and chance recall of both.

    The one train-and-evaluate step every study shares (image–text and audio–text alike)."""
    objective = objective if objective is not None else Objective()
    init = embed_dataset(bundle.model, eval_set, bundle.tokenizer, device=device)
    metrics_init = evaluate_embeddings(init)
    history = fit(bundle.model, objective, train_set, bundle.tokenizer, config)
    final = embed_dataset(bundle.model, eval_set, bundle.tokenizer, device=device)
    metrics = evaluate_embeddings(final)
    per_item = len(final.text) / len(final.image)
    chance: dict[str, float] = {}
    for k in (1, 5, 10):
        chance.update(chance_recall(len(final.image), per_item, k))
    return TrainResult(bundle, history, init, final, metrics_init, metrics, chance,
                       topic_names=list(getattr(eval_set, "topic_names", [])), objective=objective)


def world_is_embedded(world) -> bool:
    return hasattr(world, "pairing") and hasattr(world, "image_size")
