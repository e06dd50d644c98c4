"""One process of the MoCo-queue DDP test (tests/test_distributed_queue.py), started by torchrun — or imported by the
test to compute the single-process reference with the very same code.

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_queue_worker.py OUT   # writes OUT.rank0, OUT.rank1

Same model, data and schedule as tests/ddp_worker.py (labkit's tiny CLIP, 48 items, global batch 16, 2 epochs: 6
steps), with seed 003's InfoNCE over a queue of 24 keys (smaller than an epoch: it wraps around twice, and from the
second epoch on it holds keys of the very pairs in the batch, which the pair-id mask must exclude). Each process
records, step by step, the logged numbers, the gradients, and the queue (keys oldest first, their pair ids), plus the
final weights and objective state (queue buffers and key encoder). Scenarios:

* ``moco``: a momentum key encoder (m = 0.9) fills the queue;
* ``xbm``: no key encoder (``momentum=None``): the queue stores the model's own detached keys;
* ``moco_resumed``: ``moco`` stopped by a signal after step 4 (mid-epoch 2, a step checkpoint), then resumed by a
  fresh model and objective (built with another seed, so nothing survives but the checkpoint).
"""

import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_worker import BATCH, EPOCHS, DEVICE, GradRecorder, Squares  # noqa: E402

from labkit.losses import InfoNCE, Objective  # noqa: E402
from labkit.models import create_model  # noqa: E402
from labkit.negatives import QueueNegatives  # noqa: E402
from labkit.train import TrainConfig, TrainingInterrupted, fit  # noqa: E402

SCENARIOS = ("moco", "xbm", "moco_resumed")


class NamedSquares(Squares):
    """tests/ddp_worker.py's squares, each caption naming its item: no two pairs share a caption, so no stored key
    ties a positive exactly (with shared captions the top-1 accuracy would count exact ties, which two processes
    round differently)."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        return {**item, "captions": [f"{c} number {i}" for c in item["captions"]]}
QUEUE = 24
STOP_AFTER = 4  # global steps done when the signal arrives (epoch 2, step 1 of 3)


def _build(momentum, model_seed=0):
    bundle = create_model("labkit-tiny", seed=model_seed)
    queue = QueueNegatives(bundle.model, max_size=QUEUE, momentum=momentum)
    objective = Objective({"contrastive": InfoNCE(queue)})
    recorder = GradRecorder()
    objective.terms["recorder"] = recorder
    objective.weights["recorder"] = 0.0
    recorder.owner = (objective,)
    return bundle, objective, queue, recorder


def run(name: str, checkpoint_dir: str | None = None) -> dict:
    """Train one scenario in this process (one of several under torchrun, or alone)."""
    momentum = None if name == "xbm" else 0.9
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=1e-3, warmup_steps=2, seed=0, device=DEVICE, amp=False,
                         progress=False, checkpoint_dir=checkpoint_dir)
    step_logs, queues, grads = [], [], []

    def record(queue):
        def on_step(step, logs):
            step_logs.append(dict(logs))
            keys, pid = queue.ordered("text")
            queues.append({"text": keys.cpu().clone(), "image": queue.ordered("image")[0].cpu().clone(),
                           "pair_id": pid.cpu().clone()})
            if name == "moco_resumed" and step + 1 == STOP_AFTER:
                os.kill(os.getpid(), signal.SIGTERM)  # one process receives it; fit makes every process stop here
        return on_step

    bundle, objective, queue, recorder = _build(momentum)
    if name == "moco_resumed":
        if checkpoint_dir is None:
            raise ValueError("moco_resumed needs a checkpoint_dir")
        try:
            fit(bundle.model, objective, NamedSquares(), bundle.tokenizer, config, on_step=record(queue))
            raise AssertionError("the run was not interrupted")
        except TrainingInterrupted as stopped:
            assert (stopped.epoch, stopped.step) == (1, 1), (stopped.epoch, stopped.step)
        grads += recorder.grads
        bundle, objective, queue, recorder = _build(momentum, model_seed=123)  # a fresh process's objects
        history = fit(bundle.model, objective, NamedSquares(), bundle.tokenizer, config, on_step=record(queue),
                      resume=True)
    else:
        history = fit(bundle.model, objective, NamedSquares(), bundle.tokenizer, config, on_step=record(queue))
    grads += recorder.grads
    return {
        "step_logs": step_logs,
        "queues": queues,
        "history": history.drop(columns=["seconds", "samples_per_s"]).to_dict("list"),
        "grads": [{k: v.cpu() for k, v in g.items()} for g in grads],
        "weights": {k: v.detach().cpu().clone() for k, v in bundle.model.state_dict().items()},
        "objective": {k: v.detach().cpu().clone() for k, v in objective.state_dict().items()},
    }


def main(out: str) -> None:
    from labkit import distributed

    info = distributed.init_from_env(DEVICE)
    assert info.world_size > 1, "start me with torchrun --nproc_per_node=2"
    results = {}
    for name in SCENARIOS:
        ckpt = Path(f"{out}.ckpt") if name == "moco_resumed" else None  # shared by the processes (rank 0 writes)
        results[name] = run(name, str(ckpt) if ckpt else None)
    torch.save({"world_size": info.world_size, "rank": info.rank, **results}, f"{out}.rank{info.rank}")
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
