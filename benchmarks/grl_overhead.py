"""Cost of the GRL gap reducer (seed 000 §4.2): training step time with and without it, and inference time.

    .venv/bin/python benchmarks/grl_overhead.py [--batch-size 128 --steps 60 --infer-steps 100 --threads 2]

Seed 000 claims "minimal computational overhead during training and no additional cost at inference". Measured:

* **Training step** (forward + backward + optimiser step) of ``labkit-tiny`` on the same seeded synthetic batches
  (random 32 px images, random captions of the embedded world's vocabulary tokenised once), CPU, fp32, as
  :func:`labkit.train.fit` does a step: encode both modalities (L2-normalised), the Objective, ``zero_grad``,
  ``backward``, grad-norm clipping of the model at 1.0, AdamW (labkit's parameter groups) over model + objective,
  temperature clamp. Setup A: ``Objective({"contrastive": ClipLoss()})``. Setup B: ``grl_objective(λ=1)``
  (5-layer MLP classifier of width ``embed_dim`` behind the GRL, BCE on the 2N stacked embeddings). Both start from
  the same weights (``create_model(..., seed)``). Runs are interleaved A B, B A, A B, … one step at a time, A B B A A B …
  (``--steps`` timed steps each, after ``--warmup`` untimed ones), step i of both setups on the same batch; the
  medians of the per-step times are compared (medians, and one-step interleaving, because a shared 2-core machine
  sees bursts of load from elsewhere; the median of the back-to-back paired ratios is printed as a cross-check).
* **Inference** (``model.encode_image`` + ``model.encode_text`` under ``no_grad``, eval mode): the classifier
  lives in the objective, not in the model, so the inference path is the same code on a model with the same
  parameters. This is asserted (no classifier parameter is a model parameter; both models have the same state-dict
  keys) and the two setups' models are timed interleaved as well.

The last line is the training ratio: ``ratio grl/baseline = 1.0Nx (target <= 1.05x)``.
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

from labkit.losses import grl_objective  # noqa: E402
from labkit.losses import Features, Objective  # noqa: E402
from labkit.models import create_model  # noqa: E402
from labkit.train import LOGIT_SCALE_MAX, param_groups  # noqa: E402

WORDS = ("a the red blue green yellow small large circle square triangle star ring cross left right of above "
         "below next to two three").split()


def make_batches(n: int, batch_size: int, image_size: int, tokenizer, seed: int) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        images = torch.randn(batch_size, 3, image_size, image_size, generator=g)
        words = torch.randint(len(WORDS), (batch_size, 6), generator=g).tolist()
        tokens = tokenizer([" ".join(WORDS[i] for i in row) for row in words])
        batches.append((images, tokens))
    return batches


class Setup:
    """A model, its objective and its optimiser, stepped exactly like labkit.train.fit does."""

    def __init__(self, name: str, objective: Objective, model_seed: int, lr: float = 1e-3, wd: float = 0.1):
        self.name = name
        self.bundle = create_model("labkit-tiny", seed=model_seed)
        self.model, self.objective = self.bundle.model, objective
        self.optimizer = torch.optim.AdamW(param_groups([self.model, self.objective], wd), lr=lr)

    def step(self, images: torch.Tensor, tokens: torch.Tensor) -> float:
        image = self.model.encode_image(images, normalize=True)
        text = self.model.encode_text(tokens, normalize=True)
        loss, _ = self.objective(Features(image, text, self.model.logit_scale.exp()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
        return loss.item()

    @torch.no_grad()
    def infer(self, images: torch.Tensor, tokens: torch.Tensor) -> None:
        self.model.encode_image(images, normalize=True)
        self.model.encode_text(tokens, normalize=True)


def interleaved(setups: dict[str, Setup], method: str, batches, steps: int, warmup: int,
                label: str) -> dict[str, list[float]]:
    """Per-call seconds of ``setup.<method>`` for each setup, calls interleaved A B B A A B … one at a time, so
    that a burst of load from elsewhere on the machine hits both setups alike; ``warmup`` untimed calls each first.
    """
    names = list(setups)
    for setup in setups.values():
        setup.model.train(method == "step")
        for i in range(warmup):
            getattr(setup, method)(*batches[i % len(batches)])
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(steps):
        batch = batches[i % len(batches)]  # the same batch for both setups at step i
        for name in names if i % 2 == 0 else names[::-1]:
            fn = getattr(setups[name], method)
            t0 = time.perf_counter()
            fn(*batch)
            times[name].append(time.perf_counter() - t0)
        if (i + 1) % max(1, steps // 4) == 0:
            print(f"  {label} {i + 1:>3}/{steps}: median so far " + ", ".join(
                f"{n} {statistics.median(times[n]) * 1e3:6.1f} ms" for n in names), flush=True)
    return times


def paired_ratio(times: dict[str, list[float]]) -> float:
    """Median over steps of t_grl(i) / t_baseline(i): each pair ran back to back under the same load."""
    return statistics.median(g / b for g, b in zip(times["grl"], times["baseline"]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=60, help="timed training steps per setup (interleaved)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per setup first")
    p.add_argument("--infer-steps", type=int, default=100, help="timed inference calls per setup (interleaved)")
    p.add_argument("--lambd", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()

    baseline = Setup("baseline", Objective(), a.seed)
    grl = Setup("grl", grl_objective(a.lambd, baseline.model.text_projection.shape[1], seed=a.seed), a.seed)
    assert all(torch.equal(x, y) for x, y in zip(baseline.model.state_dict().values(),
                                                   grl.model.state_dict().values())), "same initial weights"
    model_params = {id(q) for q in grl.model.parameters()}
    clf_params = list(grl.objective.terms["modality"].parameters())
    assert clf_params and not any(id(q) in model_params for q in clf_params), "classifier leaked into the model"
    assert baseline.model.state_dict().keys() == grl.model.state_dict().keys(), "the models differ in parameters"
    n_clf = sum(q.numel() for q in clf_params)
    n_model = sum(q.numel() for q in grl.model.parameters())

    batches = make_batches(4, a.batch_size, baseline.bundle.image_size, baseline.bundle.tokenizer, a.seed)
    print(f"labkit-tiny ({n_model:,} parameters), batch {a.batch_size}, CPU fp32, {a.threads} threads, torch "
          f"{torch.__version__}; GRL head λ={a.lambd}: {n_clf:,} parameters in the objective, none in the model")
    setups = {"baseline": baseline, "grl": grl}
    train = interleaved(setups, "step", batches, a.steps, a.warmup, "train")
    infer = interleaved(setups, "infer", batches, a.infer_steps, a.warmup, "infer")

    med_t = {k: statistics.median(v) for k, v in train.items()}
    med_i = {k: statistics.median(v) for k, v in infer.items()}
    print(f"{'':<10} {'train step (median)':>20} {'inference (median)':>20}   ({a.steps} / {a.infer_steps} "
          f"interleaved calls each)")
    for k in setups:
        print(f"{k:<10} {med_t[k] * 1e3:17.1f} ms {med_i[k] * 1e3:17.1f} ms")
    print(f"inference: same path (model.encode_image/encode_text), same parameters, classifier not in the model; "
          f"ratio grl/baseline = {med_i['grl'] / med_i['baseline']:.2f}x (identical by construction: timing noise)")
    print(f"train step, median of back-to-back paired ratios: {paired_ratio(train):.3f}x")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    print(f"ratio grl/baseline = {med_t['grl'] / med_t['baseline']:.2f}x (target <= 1.05x)")


if __name__ == "__main__":
    main()
