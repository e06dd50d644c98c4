r"""Where InfoNCE's negative keys come from (seed 003 §3.2): batch, queue and rerank sampling as swappable objects.

A contrastive loss and the way its negatives are sampled are two different things (the lesson of
pytorch-metric-learning, whose miners are not losses): :class:`~labkit.losses.infonce.InfoNCE` computes eq. 1 for
whatever :class:`Candidates` a sampler hands it, and the sampler decides which keys those are::

    InfoNCE(BatchNegatives())                                   # the other n − 1 items of the batch (Batch-NCE)
    InfoNCE(QueueNegatives(model, max_size=len(train), fraction=0.5))   # MoCo: momentum encoder + FIFO queue
    InfoNCE(RerankNegatives(QueueNegatives(model, 4096), n=64))          # score the whole pool, keep the top n
    InfoNCE(RerankNegatives(MemoryBank(model, len(train)), n=64))        # … the whole embedded training set

Each direction of the loss has queries of one modality and keys of the other: ``"i2t"`` (eq. 1: image queries, text
keys) and ``"t2i"`` (text queries, image keys; the symmetric variant uses both). ``sampler.sample(features,
directions)`` returns, per direction, the positive key of each query and its negatives (shared ``(M, D)`` or
per-query ``(N, M, D)``) with a validity mask. **A key of the query's own pair — the same image, any of its
captions — is never a negative**: every sampler masks by ``pair_id``, in the batch and in the queue or bank, however
large the pool (a queue longer than an epoch holds keys of the same image from earlier epochs).

**Momentum samplers** (:class:`QueueNegatives`, :class:`MemoryBank`; MoCo, He et al. 2020) own a *key encoder*: a
copy of the model made at construction, never trained by the optimiser (its parameters have
``requires_grad=False``) but moved towards the model after every optimiser step,
``θ_k ← m·θ_k + (1 − m)·θ_q`` (:func:`ema_update_`). Every *stored* key comes from it. Where the positive key and
the current batch's other keys come from is the ``positives`` option:

* ``"online"`` (default): from the model being trained, with gradients — the current batch is exactly batch
  sampling and the queue adds its momentum keys as extra negatives, so a queue of fraction → 0 *is* batch
  sampling and the ablation isolates what the queued keys add. Both towers learn from either direction of the loss.
* ``"momentum"``: MoCo's literal choice, from the key encoder, so the query cannot tell positives from stored
  negatives by the encoder that made them. In a cross-modal model each tower then learns only to discriminate the
  *other* tower's momentum keys (the ``i2t`` direction trains the image tower, ``t2i`` the text tower, so the loss
  must be symmetric — :class:`~labkit.losses.infonce.InfoNCE` refuses one direction). Trained from scratch this
  deadlocks: at initialisation a tower's keys barely differ from one another, so there is little to discriminate
  and the keys never learn to spread (unimodal MoCo trains query and key tower as one network; ALBEF's momentum
  queue starts from pretrained towers). Notebook 07 measures it.

The key encoder runs in eval mode (no dropout; BatchNorm with running statistics, copied from the model at each
update), which makes the keys deterministic and leaves nothing of the current batch's statistics in them — MoCo's
shuffled BatchNorm exists to prevent exactly that leak across GPUs. It costs one extra forward pass of both towers
per step (``benchmarks/negatives.py``); ``momentum=None`` drops it and stores the model's own detached keys instead
(cross-batch memory, Wang et al. 2020): cheaper, with keys from an older model the older they are.

**Order of a step** (MoCo's Algorithm 1, through the loop's seams): the loss calls ``sample`` (keys of the current
batch from the key encoder; negatives from the queue); the optimiser steps; then ``end_step(model)`` applies the EMA
update and enqueues the keys computed in that step (the oldest ones drop out). The queue, its pair ids, its write
pointer and the key encoder are buffers and sub-modules of the loss term, hence of the
:class:`~labkit.losses.Objective`: they are in :func:`labkit.train.fit`'s checkpoint and a resumed run continues
exactly.

**One device or many.** Nothing here needs ``torch.distributed``. Under DDP the Objective gathers the embeddings of
every process; :func:`gather_keys` is the hook that gathers the key encoder's keys and the pair ids the same way
(identity in one process), and the queue always enqueues the *gathered* keys, so every process keeps the same
queue — bit for bit (tests/test_distributed_queue.py: two gloo processes under torchrun hold identical queues after
every step, match one process on the same global batch to float tolerance, and a run stopped mid-epoch and resumed
ends bit for bit where an uninterrupted one does). With BatchNorm in the model (the student–teacher network) two
processes normalise over their local half of the batch, as DDP always does without ``SyncBatchNorm``, and each key
encoder copies its own process's running statistics: the queue stays identical (its keys are gathered), the key
encoders' BatchNorm buffers do not.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = ["Candidates", "NegativeSampler", "BatchNegatives", "QueueNegatives", "MemoryBank", "RerankNegatives",
           "rerank", "ema_update_", "gather_keys", "DIRECTIONS"]

#: direction → (query modality, key modality)
DIRECTIONS: dict[str, tuple[str, str]] = {"i2t": ("image", "text"), "t2i": ("text", "image")}


@dataclass
class Candidates:
    """What a query row sees in eq. 1: its positive key and its negative keys.

    ``positive``: (N, D). ``negatives``: (M, D) shared by every query, or (N, M, D) one set per query.
    ``mask``: (N, M) bool, ``True`` where a negative counts (``None``: all count).
    """

    positive: torch.Tensor
    negatives: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def n_negatives(self) -> torch.Tensor:
        """Valid negatives per query, (N,)."""
        n, m = self.positive.shape[0], self.negatives.shape[-2]
        if self.mask is None:
            return torch.full((n,), m, device=self.positive.device)
        return self.mask.sum(1)


def gather_keys(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process in rank order, without gradients (keys, pair ids).

    Identity when ``torch.distributed`` is not initialised or has one process. Every process must pass the same
    shape (a ``DistributedSampler`` pads its shards to equal sizes)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def ema_update_(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """MoCo's momentum update, in place: ``θ_target ← m·θ_target + (1 − m)·θ_source`` for every parameter;
    buffers (BatchNorm statistics) are copied. ``source`` may be wrapped (``DistributedDataParallel.module``)."""
    source = getattr(source, "module", source)
    t_params, s_params = list(target.parameters()), list(source.parameters())
    if len(t_params) != len(s_params):
        raise ValueError("key encoder and model differ in their parameters: the key encoder must be a copy of the "
                         "model the loss trains")
    for pt, ps in zip(t_params, s_params):
        if pt.shape != ps.shape:
            raise ValueError(f"key encoder parameter of shape {tuple(pt.shape)} faces model parameter of shape "
                             f"{tuple(ps.shape)}")
        pt.mul_(momentum).add_(ps.detach().to(pt.dtype), alpha=1.0 - momentum)
    for bt, bs in zip(target.buffers(), source.buffers()):
        bt.copy_(bs)


def _pair_ids(features, n: int) -> torch.Tensor:
    """Pair ids of the ``n`` rows of ``features`` (gathered across processes when the embeddings were)."""
    batch = features.batch
    if "pair_id" not in batch:
        raise ValueError("the batch has no 'pair_id': negatives are masked by pair id, so the collated batch needs "
                         "one (labkit's PairCollator provides it)")
    pid = torch.as_tensor(batch["pair_id"], device=features.image.device).long()
    if len(pid) != n:
        pid = gather_keys(pid)
    if len(pid) != n:
        raise ValueError(f"{len(pid)} pair ids for {n} embedding rows")
    return pid


class NegativeSampler(nn.Module):
    """The interface: ``sample(features, directions) -> {direction: Candidates}`` and an optional
    ``end_step(model)`` the training loop calls after each optimiser step (through the Objective).

    ``positives_detached``: whether the positive keys carry no gradient (momentum samplers), so a one-directional
    loss would leave the key tower untrained."""

    positives_detached: bool = False

    def sample(self, features, directions: Sequence[str] = ("i2t",)) -> dict[str, Candidates]:
        raise NotImplementedError

    def end_step(self, model: nn.Module) -> None:  # noqa: B027 - optional hook
        pass


class BatchNegatives(NegativeSampler):
    """Batch sampling (§3.2, Batch-NCE): each query's positive is its paired key; the other n − 1 keys of the
    batch are its negatives (all with gradients, as in CLIP). Keys sharing the query's ``pair_id`` are masked."""

    def sample(self, features, directions: Sequence[str] = ("i2t",)) -> dict[str, Candidates]:
        n = features.image.shape[0]
        pid = _pair_ids(features, n)
        mask = pid[:, None] != pid[None, :]  # the diagonal (the positive itself) and same-pair rows are out
        out = {}
        for d in directions:
            _, key_modality = DIRECTIONS[d]
            keys = getattr(features, key_modality)
            out[d] = Candidates(keys, keys, mask)
        return out


class _MomentumKeys(NegativeSampler):
    """Shared by the queue and the memory bank: the key encoder, its EMA update, keys of the current batch."""

    positives_detached = True

    def __init__(self, model: nn.Module, momentum: float | None = 0.99, embed_dim: int | None = None,
                 include_batch: bool = True, positives: str = "online"):
        super().__init__()
        if positives not in ("momentum", "online"):
            raise ValueError(f"positives must be 'momentum' or 'online', got {positives!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] (or None: no key encoder), got {momentum}")
        if momentum is None and positives == "momentum":
            raise ValueError("positives='momentum' needs a key encoder: give a momentum in [0, 1]")
        self.positives = positives
        self.positives_detached = positives == "momentum"
        model = getattr(model, "module", model)
        self.momentum = None if momentum is None else float(momentum)
        self.include_batch = bool(include_batch)
        self.key_encoder = None
        if momentum is not None:
            self.key_encoder = copy.deepcopy(model)
            for p in self.key_encoder.parameters():
                p.requires_grad_(False)
            self.key_encoder.eval()
        self.embed_dim = int(embed_dim) if embed_dim is not None else _infer_embed_dim(model)
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def train(self, mode: bool = True):
        super().train(mode)
        if self.key_encoder is not None:
            self.key_encoder.eval()  # keys are always computed in eval mode (see the module docstring)
        return self

    @torch.no_grad()
    def encode_keys(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Both modalities of ``batch`` through the key encoder, L2-normalised (local rows, not gathered)."""
        ke = self.key_encoder
        first = ke.encode_audio(batch["audio"], normalize=True) if "audio" in batch else \
            ke.encode_image(batch["image"], normalize=True)
        return {"image": first.float(), "text": ke.encode_text(batch["text"], normalize=True).float()}

    def _current(self, features) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Keys and pair ids of the current batch, row-aligned with ``features`` (gathered when they are); the
        globally gathered copy is remembered for :meth:`end_step`."""
        if self.key_encoder is None:  # cross-batch memory: the model's own keys of this step, detached
            return self._current_own(features)
        local = self.encode_keys(features.batch)
        pid_local = torch.as_tensor(features.batch["pair_id"], device=local["text"].device).long()
        index = features.batch.get("index")
        index = None if index is None else torch.as_tensor(index, device=pid_local.device).long()
        glob = {k: gather_keys(v) for k, v in local.items()}
        pid_glob = gather_keys(pid_local)
        index_glob = None if index is None else gather_keys(index)
        if self.training:
            self._pending.append((glob["image"], glob["text"], pid_glob, index_glob))
        n = features.image.shape[0]
        if n == len(pid_glob):
            return glob, pid_glob
        if n == len(pid_local):
            return local, pid_local
        raise ValueError(f"{n} embedding rows but {len(pid_local)} local / {len(pid_glob)} gathered batch rows")

    def _current_own(self, features) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        n = features.image.shape[0]
        pid = _pair_ids(features, n)
        keys = {"image": features.image.detach(), "text": features.text.detach()}
        index = features.batch.get("index")
        index = None if index is None else torch.as_tensor(index, device=pid.device).long()
        if self.training:
            local = len(torch.as_tensor(features.batch["pair_id"])) == n  # not gathered by the Objective
            store = {k: gather_keys(v) for k, v in keys.items()} if local else keys
            pid_store = gather_keys(pid) if local else pid
            if index is not None and len(index) != len(pid_store):
                index = gather_keys(index)
            self._pending.append((store["image"], store["text"], pid_store, index))
        return keys, pid

    def _stored(self, modality: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(keys, pair ids, valid) of the pool for ``modality``."""
        raise NotImplementedError

    def _store(self, image: torch.Tensor, text: torch.Tensor, pid: torch.Tensor, index: torch.Tensor | None) -> None:
        raise NotImplementedError

    def sample(self, features, directions: Sequence[str] = ("i2t",)) -> dict[str, Candidates]:
        keys, pid = self._current(features)
        out = {}
        for d in directions:
            _, key_modality = DIRECTIONS[d]
            stored, stored_pid, valid = self._stored(key_modality)
            positive = keys[key_modality] if self.positives == "momentum" else getattr(features, key_modality)
            if self.include_batch:
                negatives = torch.cat([positive, stored])
                neg_pid = torch.cat([pid, stored_pid])
                neg_valid = torch.cat([torch.ones_like(pid, dtype=torch.bool), valid])
            else:
                negatives, neg_pid, neg_valid = stored, stored_pid, valid
            mask = (pid[:, None] != neg_pid[None, :]) & neg_valid[None, :]
            out[d] = Candidates(positive, negatives, mask)
        return out

    @torch.no_grad()
    def end_step(self, model: nn.Module) -> None:
        """MoCo's order: momentum-update the key encoder, then enqueue the keys this step computed."""
        if self.key_encoder is not None:
            ema_update_(self.key_encoder, model, self.momentum)
        for image, text, pid, index in self._pending:
            self._store(image, text, pid, index)
        self._pending.clear()


def _infer_embed_dim(model: nn.Module) -> int:
    dim = getattr(model, "embed_dim", None)
    if dim is None and getattr(model, "text_projection", None) is not None:  # open_clip CLIP
        proj = model.text_projection
        dim = proj.shape[1] if isinstance(proj, torch.Tensor) else getattr(proj, "out_features", None)
    if dim is None:
        raise ValueError(f"cannot infer the embedding width of {type(model).__name__}: pass embed_dim=")
    return int(dim)


class QueueNegatives(_MomentumKeys):
    """Queue sampling (§3.2): MoCo's FIFO queue of past keys from a momentum key encoder.

    Args:
        model: the model being trained; the key encoder starts as its copy.
        max_size: the *maximum* queue length; the queue holds ``size = round(fraction · max_size)`` keys. The
            seed's sizes 0.3 / 0.5 / 0.7 / 1.0 are such fractions; labkit's studies set ``max_size`` to the number
            of training pairs, so ``fraction = 1`` is one epoch of keys (every training pair's latest key).
        fraction: in (0, 1].
        momentum: ``m`` of the EMA update (MoCo: 0.999 for 200 epochs of ImageNet; short runs need a smaller one).
            ``None``: no key encoder — the queue stores the model's own keys of each step, detached (cross-batch
            memory, Wang et al. 2020): no extra forward pass, but older keys come from an older model.
        embed_dim: width of the keys (inferred from ``model.embed_dim`` / ``text_projection`` when omitted).
        include_batch: the current batch's other keys are negatives too (as in ALBEF's queue), so a fresh, empty
            queue still gives n − 1 negatives at the first step (MoCo instead fills the queue with random vectors;
            an empty slot here is never a negative).
        positives: ``"online"`` or ``"momentum"`` (see the module docstring).

    One queue per key modality (text keys for image queries, image keys for text queries), each ``(size, D)``
    with the pair id of every key; a write pointer wraps around, so any batch size works — a batch that does not
    divide the size, the last partial batch of an epoch, a batch larger than the queue (only its last ``size``
    keys stay). :meth:`ordered` returns the keys oldest first.
    """

    def __init__(self, model: nn.Module, max_size: int, fraction: float = 1.0, momentum: float | None = 0.99,
                 embed_dim: int | None = None, include_batch: bool = True, positives: str = "online"):
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1] (a share of max_size), got {fraction!r}")
        super().__init__(model, momentum, embed_dim, include_batch, positives)
        self.max_size, self.fraction = max_size, float(fraction)
        self.size = max(1, int(round(fraction * max_size)))
        for modality in ("image", "text"):
            self.register_buffer(f"{modality}_queue", torch.zeros(self.size, self.embed_dim))
        self.register_buffer("queue_pair_id", torch.full((self.size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # next slot to write
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # slots written so far (≤ size)

    def extra_repr(self) -> str:
        m = "None (no key encoder)" if self.momentum is None else f"{self.momentum:g}"
        return f"size={self.size} (fraction {self.fraction:g} of {self.max_size}), momentum={m}"

    def _stored(self, modality: str):
        valid = torch.arange(self.size, device=self.queue_pair_id.device) < self.count
        return getattr(self, f"{modality}_queue"), self.queue_pair_id, valid

    @torch.no_grad()
    def enqueue(self, image: torch.Tensor, text: torch.Tensor, pair_id: torch.Tensor) -> None:
        """Write a batch of keys at the pointer (wrapping around), overwriting the oldest."""
        n = len(pair_id)
        if not (len(image) == len(text) == n):
            raise ValueError(f"enqueue: {len(image)} image keys, {len(text)} text keys, {n} pair ids")
        if n > self.size:  # only the newest `size` keys can stay
            image, text, pair_id = image[-self.size:], text[-self.size:], pair_id[-self.size:]
            n = self.size
        slots = (self.ptr + torch.arange(n, device=self.ptr.device)) % self.size
        self.image_queue[slots] = image.to(self.image_queue.dtype)
        self.text_queue[slots] = text.to(self.text_queue.dtype)
        self.queue_pair_id[slots] = pair_id.to(self.queue_pair_id.device)
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    def _store(self, image, text, pid, index) -> None:
        self.enqueue(image, text, pid)

    def ordered(self, modality: str = "text") -> tuple[torch.Tensor, torch.Tensor]:
        """The stored keys and their pair ids, oldest first."""
        count = int(self.count)
        start = int(self.ptr) - count
        slots = torch.arange(start, start + count, device=self.ptr.device) % self.size
        return getattr(self, f"{modality}_queue")[slots], self.queue_pair_id[slots]


class MemoryBank(_MomentumKeys):
    """The whole embedded training set as a pool: one slot per training item (``batch["index"]``), holding the
    latest key the key encoder gave it; a slot counts once written (after one epoch, every item's).

    Used as the pool of :class:`RerankNegatives` ("scores all vectors in the space"); ``n_items`` = the size of
    the training set. Same key encoder, EMA and masking as :class:`QueueNegatives`."""

    def __init__(self, model: nn.Module, n_items: int, momentum: float | None = 0.99, embed_dim: int | None = None,
                 include_batch: bool = True, positives: str = "online"):
        if not isinstance(n_items, int) or isinstance(n_items, bool) or n_items < 1:
            raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
        super().__init__(model, momentum, embed_dim, include_batch, positives)
        self.n_items = n_items
        for modality in ("image", "text"):
            self.register_buffer(f"{modality}_bank", torch.zeros(n_items, self.embed_dim))
        self.register_buffer("bank_pair_id", torch.full((n_items,), -1, dtype=torch.long))
        self.register_buffer("written", torch.zeros(n_items, dtype=torch.bool))

    def extra_repr(self) -> str:
        return f"n_items={self.n_items}, momentum={self.momentum}"

    def _stored(self, modality: str):
        return getattr(self, f"{modality}_bank"), self.bank_pair_id, self.written

    @torch.no_grad()
    def _store(self, image, text, pid, index) -> None:
        if index is None:
            raise ValueError("MemoryBank needs batch['index'] (the training item's position)")
        if int(index.min()) < 0 or int(index.max()) >= self.n_items:
            raise ValueError(f"batch index outside [0, {self.n_items}): is n_items the training set's size?")
        self.image_bank[index] = image.to(self.image_bank.dtype)
        self.text_bank[index] = text.to(self.text_bank.dtype)
        self.bank_pair_id[index] = pid
        self.written[index] = True


class RerankNegatives(NegativeSampler):
    """Rerank sampling (§3.2, after Ma & Collins 2018): score every candidate of a pool against the query and keep
    only the ``n`` highest-scoring (most similar) valid negatives — "scores all vectors, samples only n".

    Args:
        pool: where candidates come from — a :class:`QueueNegatives` (the queue), a :class:`MemoryBank` (the whole
            embedded training set) or :class:`BatchNegatives` (hard negatives within the batch).
        n: negatives kept per query (the knob; the seed: "requires n large enough to be effective").

    Scores are cosine similarities computed without gradient; ties are broken by ``torch.topk``. A query with fewer
    than ``n`` valid candidates keeps all of them. The positive key is the pool's.
    """

    def __init__(self, pool: NegativeSampler, n: int = 64):
        super().__init__()
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self.pool, self.n = pool, n
        self.positives_detached = pool.positives_detached

    def extra_repr(self) -> str:
        return f"n={self.n}"

    def sample(self, features, directions: Sequence[str] = ("i2t",)) -> dict[str, Candidates]:
        pooled = self.pool.sample(features, directions)
        out = {}
        for d, c in pooled.items():
            query = getattr(features, DIRECTIONS[d][0])
            out[d] = rerank(query, c, self.n)
        return out

    def end_step(self, model: nn.Module) -> None:
        self.pool.end_step(model)


def rerank(query: torch.Tensor, candidates: Candidates, n: int) -> Candidates:
    """Keep the ``n`` valid negatives most similar to each query (fewer where a query has fewer valid ones).

    Shared ``(M, D)`` negatives stay shared: the result is the same pool with a mask that keeps each query's top
    ``n`` (eq. 1 then costs one ``N × M`` product, and no gather whose backward would accumulate the gradients of a
    key picked by several queries in a thread-dependent order). Per-query ``(N, M, D)`` negatives are gathered into
    ``(N, n', D)``, ``n' = min(n, M)``, with a mask for the missing ones.
    """
    with torch.no_grad():
        neg = candidates.negatives
        if neg.ndim == 2:
            scores = query.detach() @ neg.T
        else:
            scores = torch.einsum("nd,nmd->nm", query.detach(), neg)
        if candidates.mask is not None:
            scores = scores.masked_fill(~candidates.mask, float("-inf"))
        k = min(n, scores.shape[1])
        top, idx = scores.topk(k, dim=1)
        keep = torch.isfinite(top)
        if neg.ndim == 2:
            mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, idx, keep)
            return Candidates(candidates.positive, neg, mask)
    picked = torch.gather(neg, 1, idx[..., None].expand(-1, -1, neg.shape[-1]))  # rows distinct within a query
    return Candidates(candidates.positive, picked, keep)
