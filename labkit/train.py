"""One training loop for every notebook: read it top to bottom in one sitting.

    history = fit(model, objective, train_set, tokenizer, TrainConfig(epochs=20, seed=0))

What it does, per step: tell the :class:`~labkit.losses.Objective` where training stands (``begin_step``), encode
both modalities (``model.encode_image`` — or ``encode_audio`` — and ``encode_text``, L2-normalised), hand the
embeddings to the Objective (which owns every loss term, their parameters and any cross-process gathering),
backpropagate, clip, step AdamW with a warm-up + cosine learning rate (times each group's ``lr_scale``), clamp the
temperature as CLIP does (``1/τ ≤ 100``), and let the Objective update what lives outside the gradient
(``end_step``: a momentum encoder, a queue of negatives).

Determinism: the seed fixes the batch order (a generator seeded by ``seed + epoch``), the caption picked per image
(:class:`~labkit.data.collate.PairCollator`), and the torch RNG used by dropout (re-seeded at each epoch start).
Because everything an epoch does depends only on the seed, the epoch number and the weights, resuming from an
epoch checkpoint gives the same numbers as an uninterrupted run (on CPU; cuDNN/cuBLAS may differ in last bits).

Devices: ``device="auto"`` picks cuda → mps → cpu. On CUDA the forward pass runs under bf16 autocast (``amp``).
Distributed data parallel is a later addition: the loop keeps the seam (a ``DistributedSampler`` in place of
the seeded permutation, ``gather_features`` already in the loss); nothing else here needs to change.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .data.collate import PairCollator
from .io import load_checkpoint, save_checkpoint
from .losses import Features, Objective

__all__ = ["TrainConfig", "fit", "resolve_device", "seed_everything", "param_groups", "encode_batch"]

LOGIT_SCALE_MAX = math.log(100.0)
OPTIMIZERS = ("adamw", "sgd")


@dataclass
class TrainConfig:
    """Hyper-parameters of one run. Defaults suit the tiny models on the embedded world."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    optimizer: str = "adamw"  # "adamw" (CLIP's) | "sgd" (with momentum; seed 000's CLAP run)
    momentum: float = 0.9  # SGD only
    temperature: float | None = None  # fix τ (1/τ = logit_scale.exp(), frozen); None: learned, as in CLIP
    warmup_steps: int = 50
    grad_clip: float | None = 1.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    num_workers: int = 0
    caption: str = "random"  # which caption of a multi-caption image a step uses: "random" | "first"
    eval_every: int = 0  # run the evaluate hook every k epochs (0: only after the last epoch)
    checkpoint_dir: str | None = None  # where last.pt is written (atomically) after each epoch
    progress: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.temperature is not None and not (1.0 / 100.0 <= self.temperature <= 1.0):
            raise ValueError(f"TrainConfig.temperature must be in [0.01, 1] (1/τ in [1, 100], CLIP's clamp), "
                             f"got {self.temperature!r}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → cuda if available, else mps, else cpu; anything else is passed to ``torch.device``."""
    if str(device) != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} requested but CUDA is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's RNGs (CPU and all GPUs)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def param_groups(modules: list[torch.nn.Module], weight_decay: float) -> list[dict]:
    """AdamW groups as in CLIP: no weight decay on gains, biases, embeddings' scale and the temperature.

    A sub-module with an ``lr_scale`` attribute (a GRL classifier that must learn faster than the encoders, the
    centres of a center loss) puts its parameters into groups of their own whose learning rate is the schedule's
    times ``lr_scale`` (the nearest such module up the tree decides). Every group carries ``lr_scale`` (1 by
    default); the two plain groups come first.
    """
    groups: dict[tuple[float, bool], list] = {(1.0, False): [], (1.0, True): []}
    seen = set()
    for module in modules:
        scale_of: dict[int, float] = {}
        for sub in module.modules():  # pre-order: a deeper module's lr_scale overrides its ancestors'
            scale = getattr(sub, "lr_scale", None)
            if scale is not None:
                if not (isinstance(scale, (int, float)) and scale > 0):
                    raise ValueError(f"{type(sub).__name__}.lr_scale must be a positive number, got {scale!r}")
                scale_of.update({id(p): float(scale) for p in sub.parameters()})
        for name, p in module.named_parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
            groups.setdefault((scale_of.get(id(p), 1.0), not exclude), []).append(p)
    return [{"params": params, "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
            for (scale, decay), params in groups.items() if params or scale == 1.0]


def cosine_lr(step: int, total_steps: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warm-up to ``base_lr``, then cosine decay to 0 (open_clip's default schedule)."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def encode_batch(model: torch.nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Both towers on a batch, L2-normalised: the first modality — ``batch["image"]`` through ``encode_image``, or
    ``batch["audio"]`` through ``encode_audio`` for an audio–text model — and ``batch["text"]``."""
    if "audio" in batch:
        first = model.encode_audio(batch["audio"], normalize=True)
    else:
        first = model.encode_image(batch["image"], normalize=True)
    return first, model.encode_text(batch["text"], normalize=True)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def fit(
    model: torch.nn.Module,
    objective: Objective,
    train_set: Dataset,
    tokenizer: Callable,
    config: TrainConfig,
    evaluate: Callable[[torch.nn.Module, int], Mapping[str, float]] | None = None,
    resume: bool = False,
) -> pd.DataFrame:
    """Train ``model`` (an open_clip CLIP) on ``train_set`` with ``objective``; return the history.

    Args:
        evaluate: optional hook ``evaluate(model, epoch) -> {name: number}``, called in eval mode without
            gradients every ``config.eval_every`` epochs and after the last; its numbers join the history.
        resume: continue from ``config.checkpoint_dir/last.pt`` if it exists.

    Returns:
        one row per epoch: the mean of every logged number over the epoch's steps (``loss``, ``loss/<term>``, …),
        ``lr``, ``logit_scale``, ``seconds``, ``samples_per_s`` and the evaluate hook's numbers.
    """
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    objective.to(device)
    use_amp = config.amp and device.type == "cuda"

    collate = PairCollator(tokenizer, caption=config.caption, seed=config.seed)
    order = torch.Generator()
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        generator=order,
        drop_last=len(train_set) >= 2 * config.batch_size,  # full batches only, unless the set is tiny
        collate_fn=collate,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    steps_per_epoch = len(loader)
    total_steps = config.epochs * steps_per_epoch
    if config.temperature is not None:  # a fixed temperature: 1/τ set once and frozen (Mind the Gap's τ ablation)
        with torch.no_grad():
            model.logit_scale.fill_(math.log(1.0 / config.temperature))
        model.logit_scale.requires_grad_(False)
    groups = param_groups([model, objective], config.weight_decay)
    fused = device.type in ("cpu", "cuda") or None  # one kernel for all parameters (≈ 4x faster steps on CPU)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, fused=fused)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=fused)
    objective_params = [p for p in objective.parameters() if p.requires_grad]

    history: list[dict] = []
    start_epoch = 0
    ckpt_path = Path(config.checkpoint_dir) / "last.pt" if config.checkpoint_dir else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(state["state_dict"])
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])

    for epoch in range(start_epoch, config.epochs):
        model.train()
        objective.train()
        order.manual_seed(config.seed * 100_003 + epoch)  # batch order of this epoch
        torch.manual_seed(config.seed * 100_003 + epoch + 1)  # dropout & friends
        collate.set_epoch(epoch)
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress, leave=False)
        for i, batch in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = cosine_lr(step, total_steps, config.lr, config.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            objective.begin_step(step, total_steps)  # terms that schedule themselves (a λ warm-up) look here

            batch = _to_device(batch, device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                image, text = encode_batch(model, batch)
            features = Features(image.float(), text.float(), model.logit_scale.exp(), batch)
            loss, logs = objective(features)

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:  # clipped separately, so a loss term's own parameters never rescale the encoders'
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                if objective_params:
                    torch.nn.utils.clip_grad_norm_(objective_params, config.grad_clip)
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
            objective.end_step(model)  # state outside the gradient (a momentum encoder, a queue) updates here

            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{logs['loss']:.3f}")

        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()}}
        row.update(lr=lr, logit_scale=model.logit_scale.exp().item(), seconds=seconds,
                   samples_per_s=steps_per_epoch * config.batch_size / seconds)
        last = epoch + 1 == config.epochs
        if evaluate is not None and (last or (config.eval_every and (epoch + 1) % config.eval_every == 0)):
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model, epoch + 1))
        history.append(row)

        if ckpt_path is not None:
            save_checkpoint(ckpt_path, {
                "state_dict": model.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "config": asdict(config),
            })

    model.eval()
    return pd.DataFrame(history)
