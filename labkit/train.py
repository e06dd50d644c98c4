"""One training loop for every notebook: read it top to bottom in one sitting.

    history = fit(model, objective, train_set, tokenizer, TrainConfig(epochs=20, seed=0))

What it does, per step: tell the :class:`~labkit.losses.Objective` where training stands (``begin_step``), encode
both modalities (``model.encode_image`` — or ``encode_audio`` — and ``encode_text``, L2-normalised), hand the
embeddings to the Objective (which owns every loss term, their parameters and any cross-process gathering),
backpropagate, clip, step AdamW with a warm-up + cosine learning rate (times each group's ``lr_scale``), clamp the
temperature as CLIP does (``1/τ ≤ 100``), and let the Objective update what lives outside the gradient
(``end_step``: a momentum encoder, a queue of negatives).

Determinism: the seed fixes the batch order (:class:`EpochSampler`: a permutation seeded by ``(seed, epoch)``), the
caption picked per image (:class:`~labkit.data.collate.PairCollator`), and the torch RNG used by dropout (re-seeded at
each epoch start). Because everything an epoch does depends only on the seed, the epoch number and the weights,
resuming from an epoch checkpoint gives the same numbers as an uninterrupted run (on CPU; cuDNN/cuBLAS may differ in
last bits).

Preemption: with a ``checkpoint_dir``, SIGTERM or SIGINT (a scheduler preempting the job, Ctrl-C, a notebook's
interrupt) lets the current step finish, writes a *step* checkpoint atomically to ``last.pt`` — weights, objective
(its buffers: a queue), optimiser, the position in the epoch's batch order, the partial epoch sums and every RNG state
— and raises :class:`TrainingInterrupted`. ``fit(..., resume=True)`` continues from that step and ends with exactly
the numbers of an uninterrupted run (CPU). A second signal aborts at once, without a checkpoint.

Devices: ``device="auto"`` picks cuda → mps → cpu. On CUDA the forward pass runs under bf16 autocast (``amp``) and
AdamW/SGD use their fused kernels.

Several processes (``torchrun --nproc_per_node=N``, see :mod:`labkit.distributed` and
:mod:`labkit.studies.train_cli`): when a process group is initialised, ``batch_size`` stays the *global* batch; each
process takes its contiguous block of every global batch (:class:`EpochSampler`, a seeded ``DistributedSampler``),
the towers run under ``DistributedDataParallel`` (gradients averaged), the Objective gathers the embeddings with
gradients (:func:`~labkit.losses.gather_features`), the Objective's own parameters (a GRL classifier) are averaged by
hand, and the logged numbers are averaged over processes. One process on the global batch and N processes give the
same losses, gradients and weights up to float rounding (tested with gloo). Rank 0 alone logs, evaluates and writes
checkpoints. The MoCo queue (issue 8) plugs in here without a loop change: its term computes keys on the local rows,
gathers them and their pair ids *without* gradients (an all-gather in rank order), and enqueues the gathered keys in
``end_step`` so that every process holds the same queue; being a buffer of the Objective, it is in every checkpoint.
"""

from __future__ import annotations

import itertools
import math
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from . import distributed as ddp
from .data.collate import PairCollator
from .io import load_checkpoint, save_checkpoint
from .losses import Features, Objective

__all__ = ["TrainConfig", "fit", "resolve_device", "seed_everything", "param_groups", "encode_batch",
           "EpochSampler", "TrainingInterrupted"]

LOGIT_SCALE_MAX = math.log(100.0)
OPTIMIZERS = ("adamw", "sgd")


@dataclass
class TrainConfig:
    """Hyper-parameters of one run. Defaults suit the tiny models on the embedded world."""

    epochs: int = 10
    batch_size: int = 128  # the global batch: split evenly over the processes under torchrun
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
    checkpoint_dir: str | None = None  # last.pt, written atomically after each epoch and on SIGTERM/SIGINT
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


class EpochSampler(DistributedSampler):
    """The batch order of an epoch, for one of ``num_replicas`` processes, resumable at any step.

    Epoch ``e`` visits the items in a permutation seeded by ``seed + e`` — the same order whether one process or
    ``W`` train. Global batch ``i`` is ``order[i·B : (i+1)·B]`` (``B = batch_size``, the global batch); process ``r``
    takes the contiguous block ``r`` of it (``B/W`` rows), so gathering the ``W`` blocks in rank order rebuilds exactly
    the batch one process would see. With ``drop_last`` the last incomplete batch is dropped (always, under torchrun:
    every process must contribute equally many rows to the all-gather). ``start_step`` skips the steps a resumed run
    has already done, without loading their items.

    A ``DistributedSampler`` (``set_epoch``, ``num_replicas``, ``rank``) whose order differs from torch's: torch's
    strides the permutation over processes (process ``r`` gets items ``r, r+W, …``), which would give each process's
    batches a different mix of items than the single-process run.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, num_replicas: int = 1, rank: int = 0,
                 drop_last: bool = True):
        if batch_size < 1 or batch_size % num_replicas:
            raise ValueError(f"batch_size (the global batch) must be a positive multiple of the number of processes "
                             f"({num_replicas}), got {batch_size}")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=drop_last)
        self.n_items = len(dataset)  # type: ignore[arg-type]
        self.batch_size = int(batch_size)
        self.local_batch = self.batch_size // num_replicas
        self.start_step = 0
        if num_replicas > 1 and not drop_last:
            raise ValueError("with several processes the last incomplete batch must be dropped (drop_last=True)")

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.n_items, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self) -> torch.Tensor:
        """This epoch's permutation of the items (identical on every process)."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        # Two int64 draws precede the permutation, as in labkit 0.1, whose loop shuffled with
        # DataLoader(shuffle=True, generator=g) inside tqdm.auto: each DataLoader iterator draws its workers' base seed
        # from g, and tqdm.auto's asyncio base class made one extra iterator. Kept so every seed gives the same batches.
        torch.empty((2,), dtype=torch.int64).random_(generator=g)
        return torch.randperm(self.n_items, generator=g)

    def __iter__(self) -> Iterator[int]:
        order = self.order().tolist()
        lo, hi = self.rank * self.local_batch, (self.rank + 1) * self.local_batch
        for i in range(self.start_step, self.steps_per_epoch):
            block = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield from (block if self.num_replicas == 1 else block[lo:hi])

    def __len__(self) -> int:
        steps = self.steps_per_epoch - self.start_step
        if self.num_replicas > 1 or self.drop_last or self.n_items % self.batch_size == 0:
            return max(0, steps) * self.local_batch
        return max(0, steps - 1) * self.local_batch + self.n_items % self.batch_size


class TrainingInterrupted(Exception):
    """``fit`` stopped on SIGTERM / SIGINT after writing a step checkpoint; ``fit(..., resume=True)`` continues it."""

    def __init__(self, checkpoint: Path, signum: int, epoch: int, step: int):
        self.checkpoint, self.signum, self.epoch, self.step = Path(checkpoint), signum, epoch, step
        name = signal.Signals(signum).name
        where = f"after step {step} of epoch {epoch + 1}" if step else f"at the end of epoch {epoch}"
        super().__init__(f"{name} received: stopped {where}; checkpoint written to {checkpoint} (resume=True "
                         "continues from there)")


class _StopRequest:
    """SIGTERM / SIGINT set a flag that the loop reads between steps (installed only in the main thread, and only
    while a checkpoint can be written); a second signal falls back to the previous handler (abort at once)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signum:  # the second signal: no checkpoint, stop now
            previous = self._previous.get(signum)
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)
        self.signum = signum

    def __enter__(self):
        if self.enabled:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        return False

    def agreed(self, device: torch.device) -> int:
        """The signal any process received (all processes agree, so they stop at the same step); 0 if none."""
        if not ddp.is_distributed():
            return self.signum
        t = torch.tensor([self.signum], dtype=torch.int64, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item())


def _rng_state() -> dict[str, Any]:
    """Every RNG a step may draw from (torch CPU and CUDA, numpy's global, Python's), in checkpointable types."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                        int(has_gauss), float(cached)),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class _Towers(torch.nn.Module):
    """``encode_batch`` as a module's forward, so that DistributedDataParallel can wrap any labkit model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_batch(self.model, batch)


def _device_for(device: str | torch.device, info: ddp.DistInfo) -> torch.device:
    dev = resolve_device(device)
    if dev.type == "cuda" and info.distributed:
        if dev.index is not None and dev.index != info.local_rank:
            raise ValueError(f"device={device!r} under torchrun: each process uses GPU LOCAL_RANK "
                             f"({info.local_rank}); pass device='cuda' or 'auto'")
        return torch.device("cuda", info.local_rank)
    return dev


def fit(
    model: torch.nn.Module,
    objective: Objective,
    train_set: Dataset,
    tokenizer: Callable,
    config: TrainConfig,
    evaluate: Callable[[torch.nn.Module, int], Mapping[str, float]] | None = None,
    resume: bool = False,
    on_step: Callable[[int, Mapping[str, float]], None] | None = None,
) -> pd.DataFrame:
    """Train ``model`` (an open_clip CLIP) on ``train_set`` with ``objective``; return the history.

    Args:
        evaluate: optional hook ``evaluate(model, epoch) -> {name: number}``, called in eval mode without
            gradients every ``config.eval_every`` epochs and after the last; its numbers join the history
            (on rank 0 only under torchrun; the numbers are then sent to every process).
        resume: continue from ``config.checkpoint_dir/last.pt`` if it exists (an epoch or a step checkpoint).
        on_step: optional ``on_step(step, logs)`` after every optimiser step (global step number, logs averaged
            over processes); e.g. a progress file.

    Returns:
        one row per epoch: the mean of every logged number over the epoch's steps (``loss``, ``loss/<term>``, …),
        ``lr``, ``logit_scale``, ``seconds``, ``samples_per_s`` and the evaluate hook's numbers.

    Raises:
        TrainingInterrupted: SIGTERM / SIGINT arrived (with a ``checkpoint_dir``); the step checkpoint is written.
    """
    info = ddp.dist_info()
    device = _device_for(config.device, info)
    seed_everything(config.seed)
    model.to(device)
    objective.to(device)
    use_amp = config.amp and device.type == "cuda"
    if config.batch_size % info.world_size:
        raise ValueError(f"TrainConfig.batch_size ({config.batch_size}, the global batch) must be divisible by the "
                         f"number of processes ({info.world_size})")
    local_batch = config.batch_size // info.world_size

    collate = PairCollator(tokenizer, caption=config.caption, seed=config.seed)
    order = torch.Generator()  # the loader's own generator (its workers' base seed); the order is the sampler's
    streamed = isinstance(train_set, IterableDataset)
    sampler = None
    if streamed:  # webdataset shards: the stream splits itself over processes and workers, epoch by epoch
        loader = DataLoader(train_set, batch_size=local_batch, drop_last=True, collate_fn=collate,
                            num_workers=config.num_workers, pin_memory=device.type == "cuda")
        steps_per_epoch = len(loader)
    else:
        if info.distributed and len(train_set) < config.batch_size:
            raise ValueError(f"{len(train_set)} training items are fewer than one global batch "
                             f"({config.batch_size}): nothing to train on with {info.world_size} processes")
        drop_last = info.distributed or len(train_set) >= 2 * config.batch_size  # full batches, unless tiny
        sampler = EpochSampler(train_set, config.batch_size, seed=config.seed * 100_003,
                               num_replicas=info.world_size, rank=info.rank, drop_last=drop_last)
        loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, drop_last=drop_last,
                            generator=order, collate_fn=collate, num_workers=config.num_workers,
                            pin_memory=device.type == "cuda")
        steps_per_epoch = sampler.steps_per_epoch
    if steps_per_epoch < 1:
        raise ValueError(f"train_set yields no complete batch of {config.batch_size}")
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

    towers: torch.nn.Module | None = None
    averaged_by_hand = objective_params  # what DistributedDataParallel does not average
    if info.distributed:
        # DDP averages the towers' gradients. The temperature is used by the loss only, outside the towers' forward:
        # a hinge loss never uses it, which DDP would take for an error, so it is averaged by hand with the
        # Objective's own parameters (a GRL classifier).
        wrapped = _Towers(model)
        DDP = torch.nn.parallel.DistributedDataParallel
        outside = [f"model.{n}" for n, _ in model.named_parameters()
                   if n.split(".")[-1] in ("logit_scale", "logit_bias")]
        if outside and hasattr(DDP, "_set_params_and_buffers_to_ignore_for_model"):
            DDP._set_params_and_buffers_to_ignore_for_model(wrapped, outside)
            params = dict(wrapped.named_parameters())
            averaged_by_hand = [params[n] for n in outside if params[n].requires_grad] + objective_params
            for name in outside:
                torch.distributed.broadcast(params[name].data, src=0)
        towers = DDP(wrapped, device_ids=[device.index] if device.type == "cuda" else None)
        ddp.broadcast_module(objective)

    history: list[dict] = []
    start_epoch, partial = 0, None
    ckpt_path = Path(config.checkpoint_dir) / "last.pt" if config.checkpoint_dir else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(state["state_dict"])
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        partial = state.get("partial")

    def save(epoch_done: int, extra: Mapping[str, Any] | None = None) -> None:
        if info.is_main:
            save_checkpoint(ckpt_path, {
                "state_dict": model.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch_done,
                "history": history,
                "config": asdict(config),
                "world_size": info.world_size,
                **(extra or {}),
            })
        ddp.barrier()

    stop = _StopRequest(enabled=ckpt_path is not None)
    with stop:
        for epoch in range(start_epoch, config.epochs):
            model.train()
            objective.train()
            order.manual_seed(config.seed * 100_003 + epoch)
            torch.manual_seed(config.seed * 100_003 + epoch + 1 + 1_000_003 * info.rank)  # dropout & friends
            collate.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
                sampler.start_step = 0
            elif hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            sums: dict[str, float] = {}
            first, seconds_before = 0, 0.0
            if partial is not None:  # resuming a step checkpoint: this epoch continues where it stopped
                first, sums, seconds_before = int(partial["step"]), dict(partial["sums"]), float(partial["seconds"])
                states = partial["rng"]
                _set_rng_state(states[info.rank] if len(states) == info.world_size else states[0])
                partial = None
                if sampler is not None:
                    sampler.start_step = first
            batches = iter(loader)
            if streamed and first:  # a stream cannot seek: the steps already done are read and skipped
                batches = itertools.islice(batches, first, None)
            t0 = time.perf_counter()
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", total=steps_per_epoch, initial=first,
                       disable=not (config.progress and info.is_main), leave=False)
            lr = cosine_lr(epoch * steps_per_epoch + first, total_steps, config.lr, config.warmup_steps)
            for i, batch in enumerate(bar, start=first):
                step = epoch * steps_per_epoch + i
                lr = cosine_lr(step, total_steps, config.lr, config.warmup_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
                objective.begin_step(step, total_steps)  # terms that schedule themselves (a λ warm-up) look here

                batch = _to_device(batch, device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                    image, text = towers(batch) if towers is not None else encode_batch(model, batch)
                features = Features(image.float(), text.float(), model.logit_scale.exp(), batch)
                loss, logs = objective(features)

                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                ddp.all_reduce_grads(averaged_by_hand)  # DDP averaged the towers'; the temperature and the terms' here
                if config.grad_clip:  # clipped separately, so a loss term's own parameters never rescale the encoders'
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    if objective_params:
                        torch.nn.utils.clip_grad_norm_(objective_params, config.grad_clip)
                optimizer.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
                objective.end_step(model)  # state outside the gradient (a momentum encoder, a queue) updates here

                logs = ddp.all_reduce_mean(logs, device)  # the global batch's numbers (identity in one process)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
                if on_step is not None:
                    on_step(step, logs)
                signum = stop.agreed(device) if stop.enabled else 0
                if signum and i + 1 < steps_per_epoch:  # mid-epoch: a step checkpoint, then stop
                    bar.close()
                    rng = ddp.all_gather_object(_rng_state())
                    save(epoch, {"partial": {"step": i + 1, "sums": sums, "rng": rng,
                                             "seconds": seconds_before + time.perf_counter() - t0}})
                    raise TrainingInterrupted(ckpt_path, signum, epoch, i + 1)
            bar.close()

            seconds = seconds_before + time.perf_counter() - t0
            row = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()}}
            row.update(lr=lr, logit_scale=model.logit_scale.exp().item(), seconds=seconds,
                       samples_per_s=steps_per_epoch * config.batch_size / seconds)
            last = epoch + 1 == config.epochs
            if evaluate is not None and (last or (config.eval_every and (epoch + 1) % config.eval_every == 0)):
                model.eval()
                numbers = None
                if info.is_main:
                    with torch.no_grad():
                        numbers = dict(evaluate(model, epoch + 1))
                row.update(ddp.broadcast_object(numbers))
            history.append(row)

            if ckpt_path is not None:
                save(epoch + 1)
                signum = stop.agreed(device) if stop.enabled else 0
                if signum and not last:
                    raise TrainingInterrupted(ckpt_path, signum, epoch + 1, 0)

    model.eval()
    return pd.DataFrame(history)
