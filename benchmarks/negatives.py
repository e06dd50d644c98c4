"""What negatives cost (seed 003 §3.2): training step time with batch, queue and rerank sampling, side by side.

    .venv/bin/python benchmarks/negatives.py [--batch-size 64 --queue 4096 --rerank-n 64 --steps 40 --threads 2]

Setups, all the same model (the student–teacher network of notebook 07, same seeded initial weights) and batch size,
stepped exactly as :func:`labkit.train.fit` steps (encode both towers, the Objective, ``zero_grad``, ``backward``,
gradient clipping at 1, AdamW over labkit's parameter groups, the temperature clamp, ``objective.end_step``):

* ``batch``  — ``InfoNCE(BatchNegatives())``: the other n − 1 keys of the batch;
* ``queue``  — ``InfoNCE(QueueNegatives(model, max_size=--queue))``: MoCo's momentum key encoder (one extra forward
  pass of both towers, no gradient) and a FIFO queue of ``--queue`` keys per modality (filled before timing);
* ``rerank`` — ``InfoNCE(RerankNegatives(QueueNegatives(model, --queue), n=--rerank-n))``: every key of the same
  pool scored, the ``n`` most similar kept per query;
* ``memory`` — ``QueueNegatives(model, --queue, momentum=None)``: the same queue without a key encoder (it stores
  the model's own detached keys, cross-batch memory): what the queue costs without MoCo's extra forward pass.

Calls are interleaved one step at a time (A B C, C B A, …) on the same seeded synthetic batches, so a burst of load
from elsewhere on a shared machine hits every setup alike; medians of the per-step times are compared. Memory: the
queue's buffers (keys of both modalities, pair ids, pointers) and its key encoder, counted from their tensors, and
the transient logits of eq. 1 per step.

The last line is the queue's ratio: ``ratio queue/batch = 1.NNx (target <= 1.15x)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.data import make_world  # noqa: E402
from labkit.data.collate import PairCollator  # noqa: E402
from labkit.losses import Features, InfoNCE, Objective  # noqa: E402
from labkit.models import create_student_teacher  # noqa: E402
from labkit.negatives import BatchNegatives, QueueNegatives, RerankNegatives  # noqa: E402
from labkit.studies.sampling import SAMPLING_PROFILES  # noqa: E402
from labkit.train import LOGIT_SCALE_MAX, param_groups  # noqa: E402


class Setup:
    """A model, its objective and optimiser, stepped like :func:`labkit.train.fit`."""

    def __init__(self, name: str, make_sampler, bundle_factory, lr: float = 1e-3, wd: float = 0.01):
        self.name = name
        self.bundle = bundle_factory()
        self.model = self.bundle.model
        self.objective = Objective({"infonce": InfoNCE(make_sampler(self.model))})
        self.optimizer = torch.optim.AdamW(param_groups([self.model, self.objective], wd), lr=lr)

    def step(self, batch) -> float:
        image = self.model.encode_image(batch["image"], normalize=True)
        text = self.model.encode_text(batch["text"], normalize=True)
        loss, _ = self.objective(Features(image, text, self.model.logit_scale.exp(), batch))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
        self.objective.end_step(self.model)
        return loss.item()


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--queue", type=int, default=4096, help="queue size (also the rerank pool)")
    p.add_argument("--rerank-n", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=40, help="timed steps per setup (interleaved)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()

    world = make_world(n_pairs=max(600, 2 * a.batch_size), seed=a.seed, image_size=a.image_size)
    smoke = SAMPLING_PROFILES["smoke"]

    def bundle():
        return create_student_teacher(world.train, seed=a.seed, context_length=smoke["context_length"],
                                      **smoke["model"])

    def filled_queue(model, momentum=smoke["momentum"]):
        q = QueueNegatives(model, max_size=a.queue, momentum=momentum)
        g = torch.Generator().manual_seed(a.seed)
        image, text = (torch.nn.functional.normalize(torch.randn(a.queue, q.embed_dim, generator=g), dim=1)
                       for _ in range(2))
        q.enqueue(image, text, torch.arange(10**6, 10**6 + a.queue))  # full from the first timed step
        return q

    setups = {
        "batch": Setup("batch", lambda m: BatchNegatives(), bundle),
        "queue": Setup("queue", filled_queue, bundle),
        "memory": Setup("memory", lambda m: filled_queue(m, momentum=None), bundle),
        "rerank": Setup("rerank", lambda m: RerankNegatives(filled_queue(m), n=a.rerank_n), bundle),
    }
    states = [s.model.state_dict() for s in setups.values()]
    assert all(torch.equal(x, y) for st in states[1:] for x, y in zip(states[0].values(), st.values())), \
        "every setup starts from the same weights"
    collate = PairCollator(setups["batch"].bundle.tokenizer, caption="first")
    batches = [collate([world.train[(i * a.batch_size + j) % len(world.train)] for j in range(a.batch_size)])
               for i in range(4)]
    n_model = sum(q.numel() for q in setups["batch"].model.parameters())
    print(f"student–teacher (notebook 07's smoke size, {n_model:,} parameters), {a.image_size}-px images, batch "
          f"{a.batch_size}, queue {a.queue}, rerank n = {a.rerank_n}, CPU fp32, {a.threads} threads, torch "
          f"{torch.__version__}")

    names = list(setups)
    for s in setups.values():
        s.model.train(), s.objective.train()
        for i in range(a.warmup):
            s.step(batches[i % len(batches)])
    times = {n: [] for n in names}
    for i in range(a.steps):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            setups[name].step(batches[i % len(batches)])
            times[name].append(time.perf_counter() - t0)
        if (i + 1) % max(1, a.steps // 4) == 0:
            print(f"  {i + 1:>3}/{a.steps}: median so far " + ", ".join(
                f"{n} {statistics.median(times[n]) * 1e3:6.1f} ms" for n in names), flush=True)

    med = {n: statistics.median(v) for n, v in times.items()}
    queue = setups["queue"].objective.terms["infonce"].sampler
    buffers = tensor_bytes(queue.buffers()) - tensor_bytes(queue.key_encoder.buffers())
    encoder = tensor_bytes(queue.key_encoder.parameters()) + tensor_bytes(queue.key_encoder.buffers())
    n, k = a.batch_size, a.queue
    d = queue.embed_dim  # floats per step of eq. 1 (two directions): logits, and rerank's scores and gathered keys
    logits = {"batch": 2 * n * n * 4, "queue": 2 * n * (1 + n + k) * 4, "memory": 2 * n * (1 + n + k) * 4,
              "rerank": (2 * n * (n + k) + 2 * n * (1 + a.rerank_n) + 2 * n * a.rerank_n * d) * 4}
    print(f"{'':<8} {'step (median)':>14} {'vs batch':>9} {'eq. 1 tensors/step':>19}")
    for name in names:
        print(f"{name:<8} {med[name] * 1e3:11.1f} ms {med[name] / med['batch']:8.2f}x {logits[name] / 2**20:15.2f} MiB")
    print(f"queue memory: buffers {buffers / 2**20:.2f} MiB (2 × {k} keys × {queue.embed_dim} floats + pair ids), "
          f"key encoder {encoder / 2**20:.2f} MiB (a copy of the model); peak extra per step: the logits above")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    print(f"ratio rerank/batch = {med['rerank'] / med['batch']:.2f}x")
    print(f"ratio memory/batch = {med['memory'] / med['batch']:.2f}x (the queue without its key encoder)")
    print(f"ratio queue/batch = {med['queue'] / med['batch']:.2f}x (target <= 1.15x)")


if __name__ == "__main__":
    main()
