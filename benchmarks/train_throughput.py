"""Training throughput: labkit's ``fit`` against open_clip's own trainer (``open_clip_train``), CPU, fp32.

    .venv/bin/python benchmarks/train_throughput.py [--batch-size 128 --steps 30 --warmup-steps 5 --rounds 5]

The last line printed is ``ratio labkit/open_clip_train = R.RRx (target >= 1.3x)``.

**What is compared.** The same tiny open_clip config (``labkit-tiny``: 32 px ViT-ish image tower, context length
24; ``labkit/models/configs/labkit-tiny.json``, registered with open_clip by ``import labkit.models``) is trained
for the same number of steps on the same kind of synthetic batches by

* labkit: ``labkit.train.fit(model, Objective(), dataset, tokenizer, TrainConfig(...))`` (``ClipLoss`` only);
* open_clip_train: ``open_clip_train.main.main([...])`` called in this process, ``--dataset-type synthetic``.

Both get the same batch size and steps, AdamW with the same lr, weight decay, betas and eps and the same
no-decay groups, the same linear warm-up + cosine schedule, grad-norm clipping at 1.0 (labkit's default;
``--grad-clip-norm 1.0``), fp32 (``--precision fp32``; labkit never autocasts on CPU), ``--device cpu``, the same
``torch.set_num_threads`` (set once for the process, before either runs), and 0 loader workers for both
(labkit's default; for open_clip_train ``--workers 0`` is the faster setting on 2 cores: a worker process
competes with the torch threads for the cores: in interleaved runs here 5-10% faster with 0 workers than
with 1; ``--oc-workers 1`` gives its usual setting). open_clip_train writes its log and its final checkpoint to a
temporary directory (``--save-frequency 0``, ``--report-to ''``: no tensorboard/wandb; the checkpoint is written
after the last step, outside the timing), logging every 100 steps (its default); labkit runs with
``progress=False`` and no checkpoint directory.

**The data.** open_clip_train's synthetic dataset (``open_clip_train/data.py: SyntheticDataset``) holds one PIL
image of the model's size (``Image.new('RGB', (32, 32))``); per item it applies the model's *train* transform
(RandomResizedCrop, ToTensor, Normalize) and tokenises the fixed caption ``"Dummy caption"``. The labkit
dataset here (:class:`SyntheticPairs`) does the same per-item image work (the same train transform, applied to
a fixed random-noise 32 px PIL image, giving a ``FloatTensor(3, 32, 32)``) and carries the same caption; labkit's
``PairCollator`` tokenises it once per batch (labkit's own data path). Items are ``{"image", "captions",
"pair_id", "topic": -1, "saliency": None, "index"}``. ``--labkit-images tensor`` pre-makes the image tensor
instead (no per-item transform): *not* a fair setting, only there to show what the transform costs.

**How it is timed.** A global optimizer post-step hook (``register_optimizer_step_post_hook``) stamps
``time.perf_counter()`` after every optimizer step of whichever trainer runs, so both are timed by the same
clock and rule, independent of their own bookkeeping. A run's throughput is ``batch_size / median step
interval`` over the steps after the first ``--warmup-steps`` (an interval is a whole loop iteration: loading,
forward, loss, backward, clipping, step, the trainer's logging); model construction, loader start-up and all
after the last step are excluded. The median interval rather than the mean keeps a burst of CPU use by another
process from skewing a run; the mean-based figure (``timed steps * batch_size / time``) is printed beside it.
open_clip_train's own last ``samples/s`` log line is shown as a cross-check. Runs are interleaved labkit,
open_clip_train / open_clip_train, labkit / ... (``--rounds`` pairs). Other engineers' jobs share this
machine: before each run the script waits (up to ``--max-wait`` seconds in all) for other processes to leave
the CPU, measures the share of CPU they took during the run (``/proc/stat`` less this process's own time), and
repeats a run during which they took more than 25%, or that ran past ``--run-cap`` seconds and was cut
short (at most ``--retries`` times in all; a cut run kept counts the steps it made).
Reported: the median over runs of each trainer and, last, the ratio of the two medians.
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
from PIL import Image
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import labkit.models  # noqa: E402  (registers labkit-tiny with open_clip before open_clip_train looks it up)
from labkit.losses import Objective  # noqa: E402
from labkit.train import TrainConfig, fit  # noqa: E402

MODEL = "labkit-tiny"
CAPTION = "Dummy caption"  # open_clip_train's SyntheticDataset caption
LR, WD, BETAS, EPS, GRAD_CLIP = 1e-3, 0.1, (0.9, 0.999), 1e-8, 1.0  # shared optimizer settings
TARGET = 1.3

_STAMPS: list[float] = []
_CAP = {"seconds": float("inf")}


class _Cut(Exception):
    """Raised by the step hook to end a run that went past ``--run-cap`` seconds (a busy machine)."""


def _stamp(optimizer, args, kwargs) -> None:  # global optimizer post-step hook
    _STAMPS.append(time.perf_counter())
    if _STAMPS[-1] - _STAMPS[0] > _CAP["seconds"]:
        raise _Cut


def _start_run() -> None:
    _STAMPS.clear()


def _timed(run):
    """``(run(), False)``, or ``(None, True)`` if the run was cut short by ``--run-cap``."""
    try:
        return run(), False
    except _Cut:
        return None, True


class SyntheticPairs(Dataset):
    """labkit-format twin of open_clip_train's SyntheticDataset: same image size, same per-item transform."""

    def __init__(self, size: int, transform, image_size, images: str = "transform", seed: int = 0):
        rng = np.random.default_rng(seed)
        self.size, self.transform, self.images = size, transform, images
        self.pil = Image.fromarray(rng.integers(0, 256, (*image_size, 3), dtype=np.uint8), "RGB")
        self.tensor = torch.from_numpy(rng.random((3, *image_size), dtype=np.float32))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        image = self.transform(self.pil) if self.images == "transform" else self.tensor.clone()
        return {"image": image, "captions": [CAPTION], "pair_id": i, "topic": -1, "saliency": None, "index": i}


def _rates(steps: int, warmup: int, batch_size: int, cut: bool) -> tuple[float, float]:
    """(batch_size / median step interval, timed samples / timed seconds) from the post-step stamps."""
    if len(_STAMPS) != steps and not cut:
        raise RuntimeError(f"expected {steps} optimizer steps, saw {len(_STAMPS)}")
    timed = _STAMPS[warmup - 1:]
    if len(timed) < 3:  # cut before 2 timed steps: nothing to measure
        return float("nan"), float("nan")
    intervals = [b - a for a, b in zip(timed, timed[1:])]
    return batch_size / statistics.median(intervals), batch_size * len(intervals) / (timed[-1] - timed[0])


def run_labkit(a) -> tuple[float, float, bool]:
    import open_clip

    bundle = labkit.models.create_model(MODEL, seed=a.seed)
    _, preprocess_train, _ = open_clip.create_model_and_transforms(MODEL)  # the transform open_clip_train uses
    size = preprocess_train.transforms[0].size  # as SyntheticDataset takes it
    data = SyntheticPairs(a.steps * a.batch_size, preprocess_train, size, images=a.labkit_images, seed=a.seed)
    config = TrainConfig(
        epochs=1, batch_size=a.batch_size, lr=LR, weight_decay=WD, warmup_steps=a.lr_warmup, grad_clip=GRAD_CLIP,
        seed=a.seed, device="cpu", amp=False, num_workers=a.labkit_workers, caption="first", progress=False,
    )
    _start_run()
    _, cut = _timed(lambda: fit(bundle.model, Objective(), data, bundle.tokenizer, config))
    return (*_rates(a.steps, a.warmup_steps, a.batch_size, cut), cut)


@functools.cache
def _open_clip_train_main():
    """``open_clip_train.main.main``. Its ``data.py`` imports ``webdataset`` and ``braceexpand`` (open_clip_torch's
    ``[training]`` extra) at module level, which the synthetic dataset never uses; where they are not installed,
    inert stand-ins are registered so that the import succeeds (any real use of them raises)."""
    import importlib.util
    import types

    missing = [m for m in ("webdataset", "braceexpand") if importlib.util.find_spec(m) is None]
    if missing:

        class _Unavailable:
            def __init__(self, *args, **kwargs):
                raise ImportError(f"{missing} not installed (stand-in from benchmarks/train_throughput.py)")

        def _getattr(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _Unavailable

        for name in missing + (["webdataset.filters", "webdataset.tariterators"] if "webdataset" in missing else []):
            module = types.ModuleType(name)
            module.__getattr__ = _getattr
            sys.modules.setdefault(name, module)
        print(f"  ({', '.join(missing)} not installed: inert stand-ins registered; unused by --dataset-type "
              f"synthetic)", flush=True)
    from open_clip_train.main import main

    return main


def run_open_clip_train(a, logdir: str, name: str) -> tuple[float, float, bool, str]:
    oc_main = _open_clip_train_main()
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
    # (torch's included) to INFO: detach ours meanwhile (its console output goes to a discarded buffer), then
    # drop its handlers and restore the levels. Its log file (out.log) is read for the cross-check.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: lg.level for n, lg in root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    for h in handlers:
        root.removeHandler(h)
    _start_run()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            rc, cut = _timed(lambda: oc_main(argv))
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        for n, lg in root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(n, logging.NOTSET))
    if rc not in (None, 0):
        raise RuntimeError(f"open_clip_train.main returned {rc}")
    own = re.findall(r"Batch \(t\): [\d.]+, ([\d.]+)/s", (Path(logdir) / name / "out.log").read_text())
    return (*_rates(a.steps, a.warmup_steps, a.batch_size, cut), cut, own[-1] if own else "?")


class _OthersCPU:
    """Share of the machine's CPU time used by *other* processes since construction (Linux; None elsewhere)."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                jiffies = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        t = os.times()  # this process and its reaped children (loader workers)
        idle = jiffies[3] + (jiffies[4] if len(jiffies) > 4 else 0)
        return sum(jiffies), sum(jiffies) - idle, t.user + t.system + t.children_user + t.children_system

    def share(self) -> float | None:
        end = self._sample()
        if end is None or self.start is None:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        total, busy, mine = (e - s for e, s in zip(end, self.start))
        return max(0.0, (busy / hz - mine) / (total / hz)) if total else None


def _wait_for_quiet(budget: list[float], threshold: float = 0.15, probe: float = 1.0) -> None:
    """Wait, drawing on ``budget[0]`` seconds, until other processes use < ``threshold`` of the CPU."""
    while budget[0] > 0:
        others = _OthersCPU()
        time.sleep(probe)
        share = others.share()
        if share is None or share < threshold:
            return
        budget[0] -= probe


class _DropNoise(logging.Filter):
    def filter(self, record) -> bool:  # open_clip warns on every model built without pretrained weights
        return "No pretrained weights loaded" not in record.getMessage()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per run (one epoch)")
    p.add_argument("--warmup-steps", type=int, default=5, help="first steps left out of the timing")
    p.add_argument("--lr-warmup", type=int, default=10, help="learning-rate warm-up steps (both trainers)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved (labkit, open_clip_train) pairs of runs")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch.set_num_threads")
    p.add_argument("--oc-workers", type=int, default=0, help="open_clip_train --workers")
    p.add_argument("--labkit-workers", type=int, default=0, help="labkit TrainConfig.num_workers")
    p.add_argument("--labkit-images", choices=["transform", "tensor"], default="transform")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-wait", type=float, default=60.0,
                   help="seconds in all to wait, before runs, for other processes to leave the CPU (0: never)")
    p.add_argument("--run-cap", type=float, default=12.0,
                   help="a run still going this many seconds after its first step is cut short (busy machine)")
    p.add_argument("--retries", type=int, default=3,
                   help="runs cut short, or during which other processes took > 25%% of the CPU, are repeated, "
                        "this many times in all")
    a = p.parse_args(argv)
    if not 2 <= a.warmup_steps + 1 < a.steps:
        p.error("need 1 <= --warmup-steps < --steps - 1")

    torch.set_num_threads(a.threads)
    register_optimizer_step_post_hook(_stamp)
    _CAP["seconds"] = a.run_cap
    console = logging.StreamHandler()
    console.addFilter(_DropNoise())
    logging.basicConfig(level=logging.WARNING, handlers=[console])
    print(f"{MODEL}: batch {a.batch_size}, {a.steps} steps/run ({a.warmup_steps} untimed), fp32 CPU, "
          f"{a.threads} torch threads, loader workers labkit {a.labkit_workers} / open_clip_train {a.oc_workers}, "
          f"torch {torch.__version__}")

    results: dict[str, list[float]] = {"labkit": [], "open_clip_train": []}
    busiest, budget, retries, t_start = 0.0, [a.max_wait], a.retries, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as logdir:
        for r in range(a.rounds):
            for who in ("labkit", "open_clip_train")[:: 1 if r % 2 == 0 else -1]:
                while True:
                    _wait_for_quiet(budget)
                    others, t0 = _OthersCPU(), time.perf_counter()
                    if who == "labkit":
                        rate, mean_rate, cut = run_labkit(a)
                        note = ""
                    else:
                        rate, mean_rate, cut, own = run_open_clip_train(a, logdir, f"run{len(os.listdir(logdir))}")
                        note = f", its own log {own}/s"
                    share = others.share()
                    note = (f"mean-based {mean_rate:.1f}, run {time.perf_counter() - t0:.0f} s"
                            + (f", cut after {len(_STAMPS)} steps" if cut else "")
                            + ("" if share is None else f", other processes {100 * share:.0f}% CPU") + note)
                    again = retries > 0 and (cut or (share is not None and share > 0.25))
                    print(f"  round {r + 1}  {who:<16} {rate:7.1f} samples/s  ({note})"
                          + ("  -> discarded, run again" if again else ""), flush=True)
                    if not again:
                        break
                    retries -= 1
                busiest = max(busiest, share or 0.0)
                results[who].append(rate)

    med = {k: statistics.median([x for x in v if x == x] or [float("nan")]) for k, v in results.items()}
    print(f"{'trainer':<16} {'samples/s (median)':>19}   runs")
    for k, v in results.items():
        print(f"{k:<16} {med[k]:19.1f}   " + ", ".join(f"{x:.1f}" for x in v))
    pairs = [x / y for x, y in zip(results["labkit"], results["open_clip_train"]) if x == x and y == y]
    paired = f"{statistics.median(pairs):.2f}x" if pairs else "n/a"
    print(f"median of the per-round ratios: {paired}; total {time.perf_counter() - t_start:.0f} s")
    if busiest > 0.1:
        print(f"NOTE: other processes took up to {100 * busiest:.0f}% of the CPU during a kept run: noisy numbers")
    print(f"ratio labkit/open_clip_train = {med['labkit'] / med['open_clip_train']:.2f}x (target >= {TARGET}x)")


if __name__ == "__main__":
    main()
