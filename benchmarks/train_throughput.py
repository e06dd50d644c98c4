"""Training throughput: labkit's ``fit`` against open_clip's own trainer (``open_clip_train``), CPU, fp32.

    .venv/bin/python benchmarks/train_throughput.py [--batch-size 128 --steps 30 --warmup-steps 5 --rounds 3]

What is compared. The same tiny open_clip config (``labkit-tiny``: 32 px ViT, context length 24, from
``labkit/model_configs/labkit-tiny.json``, registered with open_clip by ``import labkit.models``) is trained
for the same number of steps on the same kind of synthetic batches by

* **labkit**: ``labkit.train.fit(model, Objective(), dataset, tokenizer, TrainConfig(...))``;
* **open_clip_train**: ``open_clip_train.main.main([...])``, called in this process, with
  ``--dataset-type synthetic``.

Both get the same batch size, steps, AdamW (lr, weight decay, betas, eps, the same no-decay groups), the same
linear warm-up + cosine schedule, grad-norm clipping at the same value (labkit's default 1.0; open_clip_train's
``--grad-clip-norm``), fp32 (``--precision fp32``; labkit never autocasts on CPU), ``--device cpu``, the same
``torch.set_num_threads`` (the process-wide setting is made once, before either runs), and each its normal
loader: labkit ``num_workers=0`` (its default), open_clip_train ``--workers 1`` (``--oc-workers``; it cannot do
better on 2 cores with 0 workers either, see the report printed with ``--oc-workers 0``). open_clip_train writes
its log and its final checkpoint to a temporary directory (``--save-frequency 0``, ``--report-to ''``: no
tensorboard/wandb), its default ``--log-every-n-steps 100``; labkit runs with ``progress=False`` (no tqdm bar)
and no checkpoint directory.

The data. open_clip_train's synthetic dataset (``open_clip_train/data.py: SyntheticDataset``) holds one PIL
image of the model's size (``Image.new('RGB', (32, 32))``) and per item applies the model's *train* transform
(RandomResizedCrop, ToTensor, Normalize) to it and tokenises the fixed caption ``"Dummy caption"`` (one
tokenizer call per item). The labkit dataset here does the same per-item image work (the same train transform,
applied to a fixed random-noise 32 px PIL image, giving ``FloatTensor(3, 32, 32)``) and carries the same
caption, ``captions=["Dummy caption"]``; labkit's ``PairCollator`` tokenises it once per batch, which is
labkit's own data path. Items are ``{"image", "captions", "pair_id", "topic": -1, "saliency": None, "index"}``.
``--labkit-images tensor`` instead pre-makes random tensors (no per-item transform) — that is *not* the fair
setting and is only there to show how much the image transform costs.

How it is timed. A global AdamW post-step hook (``torch.optim.optimizer.register_optimizer_step_post_hook``)
stamps ``time.perf_counter()`` after every optimizer step of whichever trainer runs. Throughput of a run is
``(steps - warmup_steps) * batch_size / (stamp[steps-1] - stamp[warmup_steps-1])``: whole loop iterations
(loading, forward, loss, backward, clipping, step, the trainer's logging) after the first ``warmup_steps``,
excluding model construction, loader/worker start-up and anything after the last step (checkpoint, history).
The same clock and rule for both trainers, so neither depends on the other's bookkeeping. open_clip_train's own
``samples/s`` log line is parsed and shown as a cross-check. Runs are interleaved A B, B A, A B, … (``--rounds``
pairs) and the medians are reported; the last line is the ratio of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import logging
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from PIL import Image
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import labkit.models  # noqa: E402  (registers labkit-tiny with open_clip before open_clip_train looks it up)
from labkit.losses import Objective  # noqa: E402
from labkit.train import TrainConfig, fit  # noqa: E402

MODEL = "labkit-tiny"
CAPTION = "Dummy caption"  # open_clip_train's SyntheticDataset caption

# Optimizer settings shared by both trainers.
LR, WD, BETAS, EPS, GRAD_CLIP = 1e-3, 0.1, (0.9, 0.999), 1e-8, 1.0

_STAMPS: list[float] = []


@functools.cache
def _import_open_clip_train_main():
    """``open_clip_train.main.main``. Its ``data.py`` imports ``webdataset`` and ``braceexpand`` (open_clip_torch's
    ``[training]`` extra) at module level but the synthetic dataset never uses them; when they are not installed,
    inert stand-ins are registered so the import succeeds (any real use of them would raise)."""
    import importlib.util
    import types

    missing = [m for m in ("webdataset", "braceexpand") if importlib.util.find_spec(m) is None]
    if missing:

        class _Unavailable:
            def __init__(self, *args, **kwargs):
                raise ImportError(f"{missing} not installed (stand-in used by benchmarks/train_throughput.py)")

        def _getattr(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _Unavailable

        for name in missing + (["webdataset.filters", "webdataset.tariterators"] if "webdataset" in missing else []):
            mod = types.ModuleType(name)
            mod.__getattr__ = _getattr
            sys.modules.setdefault(name, mod)
        print(f"  (not installed: {', '.join(missing)}; inert stand-ins registered, unused by --dataset-type "
              f"synthetic)", flush=True)
    from open_clip_train.main import main

    return main


def _stamp(optimizer, args, kwargs):  # global optimizer post-step hook
    _STAMPS.append(time.perf_counter())


class SyntheticPairs(Dataset):
    """labkit-format twin of open_clip_train's SyntheticDataset: same image size, same per-item transform."""

    def __init__(self, size: int, transform, image_size, images: str = "transform", seed: int = 0):
        rng = np.random.default_rng(seed)
        self.size, self.transform, self.images = size, transform, images
        self.pil = Image.fromarray(rng.integers(0, 256, (*image_size, 3), dtype=np.uint8), "RGB")
        self.tensor = torch.from_numpy(rng.random((3, *image_size), dtype=np.float32))

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        image = self.transform(self.pil) if self.images == "transform" else self.tensor.clone()
        return {"image": image, "captions": [CAPTION], "pair_id": i, "topic": -1, "saliency": None, "index": i}


def _throughput(stamps: list[float], steps: int, warmup: int, batch_size: int) -> float:
    if len(stamps) != steps:
        raise RuntimeError(f"expected {steps} optimizer steps, saw {len(stamps)}")
    return (steps - warmup) * batch_size / (stamps[steps - 1] - stamps[warmup - 1])


def run_labkit(a) -> tuple[float, str]:
    bundle = labkit.models.create_model(MODEL, seed=a.seed)
    import open_clip

    _, preprocess_train, _ = open_clip.create_model_and_transforms(MODEL)  # the train transform oc uses
    crop = preprocess_train.transforms[0].size
    data = SyntheticPairs(a.steps * a.batch_size, preprocess_train, crop, images=a.labkit_images, seed=a.seed)
    config = TrainConfig(
        epochs=1, batch_size=a.batch_size, lr=LR, weight_decay=WD, warmup_steps=a.lr_warmup, grad_clip=GRAD_CLIP,
        seed=a.seed, device="cpu", amp=False, num_workers=a.labkit_workers, caption="first", progress=False,
    )
    _STAMPS.clear()
    fit(bundle.model, Objective(), data, bundle.tokenizer, config)
    return _throughput(_STAMPS, a.steps, a.warmup_steps, a.batch_size), ""


def run_open_clip_train(a, logdir: str, k: int) -> tuple[float, str]:
    oc_main = _import_open_clip_train_main()

    name = f"run{k}"
    argv = [
        "--model", MODEL, "--dataset-type", "synthetic", "--train-num-samples", str(a.steps * a.batch_size),
        "--batch-size", str(a.batch_size), "--epochs", "1", "--workers", str(a.oc_workers),
        "--lr", str(LR), "--wd", str(WD), "--beta1", str(BETAS[0]), "--beta2", str(BETAS[1]), "--eps", str(EPS),
        "--warmup", str(a.lr_warmup), "--lr-scheduler", "cosine", "--grad-clip-norm", str(GRAD_CLIP),
        "--precision", "fp32", "--device", "cpu", "--seed", str(a.seed),
        "--logs", logdir, "--name", name, "--save-frequency", "0", "--report-to", "",
        "--zeroshot-frequency", "0", "--val-frequency", "0",
    ]
    # open_clip_train adds a console and a file handler to the root logger on every call and sets every logger
    # (torch's included) to INFO: detach ours meanwhile (its console output goes to a discarded buffer), drop
    # its handlers and restore the levels afterwards. Its log file (out.log) is kept for the cross-check.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: lg.level for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    for h in handlers:
        root.removeHandler(h)
    _STAMPS.clear()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            rc = oc_main(argv)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        for n, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(n, logging.NOTSET))
    if rc not in (None, 0):
        raise RuntimeError(f"open_clip_train.main returned {rc}")
    log = (Path(logdir) / name / "out.log").read_text()
    own = re.findall(r"Batch \(t\): [\d.]+, ([\d.]+)/s", log)
    return _throughput(_STAMPS, a.steps, a.warmup_steps, a.batch_size), (own[-1] if own else "?")


class _OthersCPU:
    """Share of the machine's CPU time used by *other* processes between two points (Linux; None elsewhere)."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                j = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        t = os.times()
        idle = j[3] + (j[4] if len(j) > 4 else 0)
        return sum(j), sum(j) - idle, t.user + t.system + t.children_user + t.children_system

    def share(self) -> float | None:
        end = self._sample()
        if end is None or self.start is None:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        total, busy, mine = (e - s for e, s in zip(end, self.start))
        return max(0.0, (busy / hz - mine) / (total / hz)) if total else None


def _wait_for_quiet(budget: list[float], threshold: float = 0.15, probe: float = 1.0) -> None:
    """Wait (drawing on the shared ``budget`` of seconds) until other processes use < ``threshold`` of the CPU."""
    while budget[0] > 0:
        others = _OthersCPU()
        time.sleep(probe)
        share = others.share()
        if share is None or share < threshold:
            return
        budget[0] -= probe


class _DropNoise(logging.Filter):
    def filter(self, record):  # create_model(pretrained=None) warns on every call
        return "No pretrained weights loaded" not in record.getMessage()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per run (one epoch)")
    p.add_argument("--warmup-steps", type=int, default=5, help="first steps excluded from the timing")
    p.add_argument("--lr-warmup", type=int, default=10, help="LR warm-up steps (both trainers)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved (labkit, open_clip_train) pairs")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--oc-workers", type=int, default=1, help="open_clip_train --workers")
    p.add_argument("--labkit-workers", type=int, default=0, help="labkit TrainConfig.num_workers")
    p.add_argument("--labkit-images", choices=["transform", "tensor"], default="transform")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-wait", type=float, default=60.0,
                   help="seconds in all to wait, before runs, for other processes to leave the CPU (0: never)")
    a = p.parse_args(argv)
    if not 1 <= a.warmup_steps < a.steps:
        p.error("need 1 <= --warmup-steps < --steps")

    torch.set_num_threads(a.threads)
    register_optimizer_step_post_hook(_stamp)
    console = logging.StreamHandler()
    console.addFilter(_DropNoise())
    logging.basicConfig(level=logging.WARNING, handlers=[console])
    print(f"{MODEL}, batch {a.batch_size}, {a.steps} steps/run (first {a.warmup_steps} untimed), "
          f"torch {torch.__version__}, {a.threads} threads, labkit workers {a.labkit_workers}, "
          f"open_clip_train workers {a.oc_workers}, labkit images: {a.labkit_images}")

    results: dict[str, list[float]] = {"labkit": [], "open_clip_train": []}
    busy: list[float] = []
    wait_budget = [a.max_wait]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as logdir:
        for r in range(a.rounds):
            order = ["labkit", "open_clip_train"] if r % 2 == 0 else ["open_clip_train", "labkit"]
            for who in order:
                _wait_for_quiet(wait_budget)
                others = _OthersCPU()
                if who == "labkit":
                    sps, note = run_labkit(a)
                else:
                    sps, own = run_open_clip_train(a, logdir, r)
                    note = f"  (its own log: {own}/s)"
                share = others.share()
                if share is not None:
                    busy.append(share)
                    note = f"  other processes: {100 * share:3.0f}% CPU" + note
                results[who].append(sps)
                print(f"  round {r + 1} {who:<16} {sps:8.1f} samples/s{note}", flush=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{'trainer':<16} {'median samples/s':>17}   runs")
    for k, v in results.items():
        print(f"{k:<16} {med[k]:17.1f}   " + ", ".join(f"{x:.1f}" for x in v))
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if busy and max(busy) > 0.1:
        print(f"WARNING: other processes used up to {100 * max(busy):.0f}% of the CPU during a run: "
              f"the numbers are noisy; rerun on a quiet machine (or with more --rounds)")
    ratio = med["labkit"] / med["open_clip_train"]
    print(f"ratio labkit/open_clip_train = {ratio:.2f}x (target >= 1.3x)")


if __name__ == "__main__":
    main()
