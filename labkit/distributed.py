"""Several processes, one training run: the little torch.distributed glue labkit needs (torchrun does the rest).

``torchrun --nproc_per_node=N -m labkit.studies.train_cli …`` starts N processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each; :func:`init_from_env` reads them, picks the backend
(NCCL on CUDA, gloo on CPU) and pins each process to GPU ``LOCAL_RANK``. Everything else — the data shard of each
process, DistributedDataParallel, gathering embeddings with gradients — is in :func:`labkit.train.fit` and
:func:`labkit.losses.gather_features`, and switches itself on when a process group is initialised.

Without torchrun (a notebook, ``python -m …``) nothing here does anything: one process, world size 1, rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "dist_info", "init_from_env", "shutdown", "is_distributed", "all_reduce_mean",
           "broadcast_module", "all_reduce_grads", "barrier", "broadcast_object", "all_gather_object"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def is_distributed() -> bool:
    """A process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def dist_info() -> DistInfo:
    """Rank and world size of the initialised process group (``DistInfo()`` when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op without ``WORLD_SIZE`` > 1).

    Backend: NCCL when the run uses CUDA (``device`` "auto" with a GPU present, or "cuda…"), gloo otherwise; on CUDA
    each process is pinned to GPU ``LOCAL_RANK`` (``torch.cuda.set_device``), so ``device="cuda"`` means that GPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    for var in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={world_size} but {var} is not set: start the job with torchrun "
                               "(torchrun --nproc_per_node=N -m labkit.studies.train_cli …)")
    local_rank = int(os.environ["LOCAL_RANK"])
    use_cuda = torch.cuda.is_available() and (str(device) == "auto" or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist_info()


def shutdown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(values: Mapping[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """The mean over processes of each number (every process must pass the same keys, in the same order)."""
    if not is_distributed() or not values:
        return dict(values)
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every process's ``module`` (what DDP does at wrap time)."""
    if not is_distributed():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src)


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over processes (those DistributedDataParallel does not own)."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every process."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's picklable ``obj``, in rank order (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
