r"""Notebook 07's study, seed 003 §3.2 / §4.1: batch, queue and rerank negatives for the student–teacher network.

    settings = study_settings("smoke")
    world = make_study_world(settings, seed=0)
    sweep = sampling_sweep(world, seeds=(0, 1, 2), settings=settings)   # Table 2, Table 3, the rerank-n sweep
    table(sweep, TABLE2_ROWS(settings)); epoch_curves(sweep, "val/accuracy", rows); claims(sweep, settings)

One :class:`~labkit.models.StudentTeacher` per (configuration, seed), trained by :func:`labkit.train.fit` with
:class:`~labkit.losses.InfoNCE` (eq. 1, symmetric, fixed τ) and one sampler of :mod:`labkit.negatives`; the grid ×
seeds bookkeeping is :func:`labkit.studies.sweep.run_grid`. After every epoch (fit's ``evaluate`` hook) the seed's
numbers (:func:`labkit.metrics.batch_metrics`: accuracy, loss, average similarity within batches of the run's batch
size) are measured on the validation set and on an equally large, fixed subset of the training set — both in eval
mode, on plain images with their first caption, so the train–validation difference is an overfitting measure with
nothing else changed. At the end, R@1/5/10 over the whole test split in both directions (batch accuracy depends
on the batch size; R@K does not). Notebook 08 (:mod:`labkit.studies.gaze`) reuses :func:`train_run`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import GazeRegularized, make_world
from ..evaluate import embed_dataset
from ..losses import InfoNCE, Objective
from ..metrics import batch_metrics, chance_recall, retrieval_recall
from ..models import create_student_teacher
from ..negatives import BatchNegatives, QueueNegatives, RerankNegatives
from ..report import Claim, markdown_table, paired_verdict  # markdown_table: re-exported for the notebooks
from ..train import TrainConfig, fit
from .recipe import profile_settings
from .sweep import Paired, Sweep, paired_difference, run_grid

__all__ = ["SAMPLING_PROFILES", "study_settings", "make_study_world", "Run", "embed_pairs", "make_sampler",
           "train_run", "sampling_configs", "sampling_sweep", "table", "epoch_curves", "epochs_to_target",
           "convergence", "own_plateau", "claims", "learned_check", "RECALL_KEYS", "config_label", "markdown_table",
           "verdict_lines"]

RECALL_KEYS = tuple(f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))

# smoke: 10 configurations × 3 seeds = 30 trainings in about 1.5 minutes on two CPU cores: 16-px images (the
# embedded world's shapes and colours stay legible), 2 000 training pairs with one caption each (the seed's dataset
# has as many sentences as images), 5 epochs (more pairs for fewer epochs generalise better at the same cost: with
# 1 000 pairs × 8 epochs the baseline reached half the validation accuracy); validation 320 pairs (5 batches of 64).
# "full" is a real run (GPU welcome): the seed's 10 000 training pairs, ResNet-50 + 768-d LSTM, 50 epochs. "tiny"
# only proves the notebook runs.
_SMOKE_MODEL = {"widths": (8, 16, 32), "blocks": (1, 1, 1), "hidden": 64, "word_dim": 32, "teacher_hidden": 128,
                "dropout": 0.1}
SAMPLING_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_pairs": 2600, "split_fractions": (0.77, 0.123, 0.107), "image_size": 16, "epochs": 5,
              "lr": 5e-3, "weight_decay": 0.01, "warmup_steps": 10, "temperature": 0.07, "caption": "first",
              "momentum": 0.99, "positives": "online", "batch_sizes": (16, 32, 48, 64),
              "queue_fractions": (0.3, 0.5, 0.7, 1.0), "queue_batch": 64, "rerank_ns": (8, 64), "rerank_fraction": 1.0,
              "model_size": "tiny", "model": _SMOKE_MODEL, "context_length": 16, "eval_pairs": 320,
              "eval_batch": 64, "n_seeds": 3, "target_fraction": 0.8},
    "full": {"n_pairs": 12000, "split_fractions": (0.8, 0.1, 0.1), "image_size": 64, "epochs": 50,
             "lr": 1e-3, "weight_decay": 1e-4, "warmup_steps": 200, "temperature": 0.07, "caption": "first",
             "momentum": 0.999, "positives": "online", "batch_sizes": (16, 32, 48, 64),
             "queue_fractions": (0.3, 0.5, 0.7, 1.0), "queue_batch": 64, "rerank_ns": (8, 64, 256),
             "rerank_fraction": 1.0, "model_size": "full", "model": {}, "context_length": 24, "eval_pairs": 1024,
             "eval_batch": 64, "n_seeds": 3, "target_fraction": 0.8},
    "tiny": {"n_pairs": 240, "split_fractions": (0.6, 0.2, 0.2), "image_size": 16, "epochs": 2,
             "lr": 5e-3, "weight_decay": 0.01, "warmup_steps": 2, "temperature": 0.07, "caption": "first",
             "momentum": 0.9, "positives": "online", "batch_sizes": (16, 32), "queue_fractions": (0.5, 1.0),
             "queue_batch": 32, "rerank_ns": (4, 16), "rerank_fraction": 1.0, "model_size": "tiny",
             "model": {"widths": (4, 8, 8), "blocks": (1, 1, 1), "hidden": 16, "word_dim": 8, "teacher_hidden": 16,
                       "dropout": 0.1},
             "context_length": 12, "eval_pairs": 48, "eval_batch": 16, "n_seeds": 2, "target_fraction": 0.8},
}


def study_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The study's profile sizes (:data:`SAMPLING_PROFILES`), non-None overrides applied."""
    return profile_settings(profile, SAMPLING_PROFILES, **overrides)


def make_study_world(settings: Mapping[str, Any], seed: int = 0, clutter: int = 0, pairing: str = "literal"):
    """The embedded world at the study's size (``clutter``: distractors for the gaze study)."""
    return make_world(n_pairs=settings["n_pairs"], seed=seed, image_size=settings["image_size"], pairing=pairing,
                      split_fractions=settings["split_fractions"], clutter=clutter)


@dataclass
class Run:
    """One training: per-epoch history (fit's logs + the evaluate hook's numbers), final numbers, optionally the
    model (for figures)."""

    config: dict
    seed: int
    history: pd.DataFrame
    metrics: dict[str, float]
    seconds: float
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)
    objective: Any = field(default=None, repr=False)


@torch.no_grad()
def embed_pairs(model, dataset, tokenizer, n: int | None = None, batch_size: int = 256,
                transform: Callable[[dict], torch.Tensor] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of the first ``n`` items of ``dataset`` and of their first captions (row-aligned;
    the model's own device). ``transform(item) -> image`` replaces the item's image (e.g. eq. 2 at p = 1)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n = len(dataset) if n is None else min(n, len(dataset))
    xs, ys = [], []
    for s in range(0, n, batch_size):
        items = [dataset[i] for i in range(s, min(s + batch_size, n))]
        images = torch.stack([transform(it) if transform else it["image"] for it in items]).to(device)
        xs.append(model.encode_image(images, normalize=True).float().cpu())
        ys.append(model.encode_text(tokenizer([it["captions"][0] for it in items]).to(device),
                                    normalize=True).float().cpu())
    model.train(was_training)
    return torch.cat(xs).numpy(), torch.cat(ys).numpy()


def make_sampler(kind: str, model, n_train: int, fraction: float = 1.0, n: int = 64, momentum: float = 0.99,
                 positives: str = "online"):
    """``"batch"`` → :class:`BatchNegatives`; ``"queue"`` → :class:`QueueNegatives` of ``fraction`` × ``n_train``
    keys; ``"rerank"`` → :class:`RerankNegatives` keeping ``n`` of a queue of ``fraction`` × ``n_train`` keys."""
    if kind == "batch":
        return BatchNegatives()
    if kind == "queue":
        return QueueNegatives(model, max_size=n_train, fraction=fraction, momentum=momentum, positives=positives)
    if kind == "rerank":
        pool = QueueNegatives(model, max_size=n_train, fraction=fraction, momentum=momentum, positives=positives)
        return RerankNegatives(pool, n=int(n))
    raise ValueError(f"sampler must be 'batch', 'queue' or 'rerank', got {kind!r}")


def _key_consistency(sampler, model, dataset, tokenizer, n: int) -> float:
    """Mean cosine between the key encoder's and the model's text embeddings of ``n`` items: how far the queue's
    key encoder lags behind (1 = identical)."""
    pool = getattr(sampler, "pool", sampler)
    if getattr(pool, "key_encoder", None) is None:
        return float("nan")
    _, online = embed_pairs(model, dataset, tokenizer, n)
    _, keys = embed_pairs(pool.key_encoder, dataset, tokenizer, n)
    return float(np.mean(np.sum(online * keys, axis=1)))


@torch.no_grad()
def _queue_staleness(sampler, model, world, tokenizer, caption: str = "first") -> float:
    """Mean cosine between the text keys stored in the queue and the model's current embedding of the same
    captions (1 = the queue's negatives are what the model would make now; lower = older, staler keys). Needs the
    embedded world, whose pair ids index ``world.captions``; with ``caption="random"`` the stored caption is
    unknown and NaN is returned."""
    pool = getattr(sampler, "pool", sampler)
    if not hasattr(pool, "ordered") or caption != "first" or int(pool.count) == 0:
        return float("nan")
    keys, pids = pool.ordered("text")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    fresh = torch.cat([model.encode_text(tokenizer([world.captions[int(i)][0] for i in pids[s:s + 512]]).to(device),
                                         normalize=True).float().cpu() for s in range(0, len(pids), 512)])
    model.train(was_training)
    return float((fresh * keys.cpu()).sum(1).mean())


def train_run(world, seed: int, settings: Mapping[str, Any], sampler: str = "batch", batch_size: int = 64,
              fraction: float = 1.0, n: int = 64, p: float | None = None, device: str = "cpu",
              keep_model: bool = False, masked_eval: bool = False) -> Run:
    """Train one student–teacher network on ``world.train`` and measure it.

    Args:
        sampler, batch_size, fraction, n: the negatives (:func:`make_sampler`) and the batch size.
        p: gaze regularisation — the training set is wrapped in :class:`~labkit.data.GazeRegularized` with
            attention probability ``p`` (``None``: not wrapped; ``0``: wrapped, never masked, so its random draws
            match the ``p > 0`` runs').
        masked_eval: also measure the validation accuracy on masked images (eq. 2 applied to every one).

    Per-epoch history columns: fit's logs and ``val/<m>``, ``train/<m>`` for the seed's numbers at the run's batch
    size, ``val/<m>@<eval_batch>`` at the fixed evaluation batch size, ``gap/loss`` (val − train loss) and
    ``gap/accuracy`` (train − val accuracy). Final numbers: the last epoch's, R@K on the test split, chance levels.
    """
    t0 = time.perf_counter()
    bundle = create_student_teacher(world.train, size=settings["model_size"], seed=seed,
                                    context_length=settings["context_length"],
                                    temperature=settings["temperature"], **settings["model"])
    model, tokenizer = bundle.model, bundle.tokenizer
    negatives = make_sampler(sampler, model, len(world.train), fraction, n, settings["momentum"],
                             settings.get("positives", "online"))
    objective = Objective({"infonce": InfoNCE(negatives, symmetric=True)})
    train_set = world.train if p is None else GazeRegularized(world.train, p)
    tau, eval_batch, n_eval = settings["temperature"], settings["eval_batch"], settings["eval_pairs"]

    def evaluate(m, epoch: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, ds in (("val", world.val), ("train", world.train)):
            img, txt = embed_pairs(m, ds, tokenizer, n_eval)
            own = batch_metrics(img, txt, batch_size, temperature=tau)
            out.update({f"{name}/{k}": own[k] for k in ("accuracy", "accuracy_t2i", "loss", "avg_similarity",
                                                         "avg_similarity_negatives", "chance_accuracy")})
            fixed = batch_metrics(img, txt, eval_batch, temperature=tau)
            out.update({f"{name}/{k}@{eval_batch}": fixed[k] for k in ("accuracy", "loss")})
        out["gap/loss"] = out["val/loss"] - out["train/loss"]
        out["gap/accuracy"] = out["train/accuracy"] - out["val/accuracy"]
        return out

    config = TrainConfig(epochs=settings["epochs"], batch_size=batch_size, lr=settings["lr"],
                         weight_decay=settings["weight_decay"], warmup_steps=settings["warmup_steps"],
                         temperature=tau, caption=settings["caption"], seed=seed, device=device, progress=False,
                         eval_every=1)
    history = fit(model, objective, train_set, tokenizer, config, evaluate=evaluate)
    model.cpu()
    objective.cpu()
    last = history.iloc[-1]
    metrics = {k: float(last[k]) for k in history.columns if "/" in k and k.split("/")[0] in ("val", "train", "gap")}
    test = embed_dataset(model, world.test, tokenizer, device="cpu")
    metrics.update(retrieval_recall(test.image, test.text, test.text_to_image))
    per_image = len(test.text) / len(test.image)
    for k in (1, 5, 10):
        metrics.update({f"chance/{key}": v for key, v in chance_recall(len(test.image), per_image, k).items()})
    metrics["train_seconds"] = float(history["seconds"].sum())
    n_train = len(train_set)  # fit drops the last partial batch unless the set is tiny
    per_epoch = n_train // batch_size if n_train >= 2 * batch_size else math.ceil(n_train / batch_size)
    metrics["steps"] = float(len(history) * per_epoch)
    if sampler != "batch":
        metrics["queue/key_consistency"] = _key_consistency(negatives, model, world.val, tokenizer, n_eval)
        metrics["queue/staleness"] = _queue_staleness(negatives, model, world, tokenizer, settings["caption"])
    if masked_eval:
        from ..data import gaze_modulate

        img, txt = embed_pairs(model, world.val, tokenizer, n_eval,
                               transform=lambda it: gaze_modulate(it["image"], it["saliency"]))
        metrics["val_masked/accuracy"] = batch_metrics(img, txt, batch_size, temperature=tau)["accuracy"]
    run = Run({"sampler": sampler, "batch_size": batch_size, "fraction": fraction, "n": n, "p": p}, seed, history,
              metrics, time.perf_counter() - t0)
    if keep_model:
        run.model, run.tokenizer, run.objective = model, tokenizer, objective
    return run


def sampling_configs(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The grid of notebook 07: batch sampling at every batch size (Table 2), the queue at every fraction with
    ``queue_batch`` (Table 3), rerank at every n (pool: the queue at ``rerank_fraction``). Factors: ``sampler``,
    ``batch_size``, ``fraction`` (0 for batch), ``n`` (0 unless rerank)."""
    qb = settings["queue_batch"]
    rows = [{"sampler": "batch", "batch_size": b, "fraction": 0.0, "n": 0} for b in settings["batch_sizes"]]
    if qb not in settings["batch_sizes"]:
        rows.append({"sampler": "batch", "batch_size": qb, "fraction": 0.0, "n": 0})
    rows += [{"sampler": "queue", "batch_size": qb, "fraction": float(f), "n": 0} for f in settings["queue_fractions"]]
    rows += [{"sampler": "rerank", "batch_size": qb, "fraction": float(settings["rerank_fraction"]), "n": int(n)}
             for n in settings["rerank_ns"]]
    return rows


def config_label(config: Mapping[str, Any]) -> str:
    """A short name: ``batch 64``, ``queue 0.5``, ``rerank n=8``, ``p = 0.3`` (a gaze grid point)."""
    if "p" in config and "sampler" not in config:
        return f"p = {float(config['p']):g}"
    s = config["sampler"]
    if s == "batch":
        return f"batch {config['batch_size']}"
    if s == "queue":
        return f"queue {float(config['fraction']):g}"
    return f"rerank n={config['n']}"


def sampling_sweep(world, seeds: Iterable[int], settings: Mapping[str, Any],
                   configs: Sequence[Mapping[str, Any]] | None = None, device: str = "cpu",
                   keep_models: Callable[[Mapping[str, Any], int], bool] | None = None,
                   log: Callable[[str], None] | None = print) -> Sweep:
    """Every configuration (default :func:`sampling_configs`) × seed; ``sweep.runs[(*config values, seed)]`` is
    the :class:`Run`."""
    configs = list(configs) if configs is not None else sampling_configs(settings)

    def one(seed: int, **config):
        keep = bool(keep_models and keep_models(config, seed))
        run = train_run(world, seed, settings, device=device, keep_model=keep, **config)
        if log is not None:
            m, fixed = run.metrics, f"val/accuracy@{settings['eval_batch']}"
            log(f"{config_label(config):14s} seed {seed}: val acc {m['val/accuracy']:.3f} "
                f"(@{settings['eval_batch']} {m[fixed]:.3f}), "
                f"val−train loss {m['gap/loss']:+.2f}, R@1 i2t {m['i2t_R@1']:.1f} t2i {m['t2i_R@1']:.1f} "
                f"({run.seconds:.1f} s)")
        return run.metrics, run

    return run_grid(one, configs, seeds, log=None)


# ------------------------------------------------------------------------------------------------ tables, curves

TABLE_METRICS = (("validation", "accuracy", "val/accuracy"), ("validation", "loss", "val/loss"),
                 ("validation", "avg similarity", "val/avg_similarity"), ("training", "accuracy", "train/accuracy"),
                 ("training", "loss", "train/loss"), ("training", "avg similarity", "train/avg_similarity"))


def table(sweep: Sweep, rows: Sequence[Mapping[str, Any]], label: Callable[[Mapping], str] = config_label,
          eval_batch: int = 64, digits: int = 3) -> pd.DataFrame:
    """The seed's Tables 2–5 layout (accuracy, loss, average similarity on validation and training sets, at each
    run's batch size), plus the validation accuracy at the common batch size ``eval_batch`` and test R@1 both ways:
    ``mean ± std`` over seeds, one row per grid point in ``rows``."""
    extra = ((f"validation @{eval_batch}", "accuracy", f"val/accuracy@{eval_batch}"),
             ("test (all captions)", "R@1 i2t", "i2t_R@1"), ("test (all captions)", "R@1 t2i", "t2i_R@1"))
    cells, index = {}, []
    for row in rows:
        index.append(label(row))
        for group, name, key in (*TABLE_METRICS, *extra):
            v = sweep.per_seed(key, **row)
            d = 1 if key.endswith("R@1") else digits
            std = v.std() if len(v) > 1 else float("nan")
            cells.setdefault((group, name), []).append(
                f"{v.mean():.{d}f} ± {std:.{d}f}" if math.isfinite(std) else f"{v.mean():.{d}f}")
    return pd.DataFrame(cells, index=index)


def epoch_curves(sweep: Sweep, key: str, rows: Sequence[Mapping[str, Any]],
                 label: Callable[[Mapping], str] = config_label) -> tuple[np.ndarray, dict[str, tuple]]:
    """``(epochs, {label: (mean, std)})`` of a per-epoch history column over seeds, for
    :func:`labkit.viz.plot_metric_curve` (the seed's Figs. 5–7)."""
    out, epochs = {}, None
    for row in rows:
        series = []
        for seed in sweep.seeds:
            run = sweep.runs.get((*row.values(), seed))
            if run is not None:
                series.append(run.history[key].to_numpy(dtype=float))
        if not series:
            raise KeyError(f"no kept run for {dict(row)}")
        arr = np.vstack(series)
        epochs = np.arange(1, arr.shape[1] + 1, dtype=float)
        std = arr.std(0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
        out[label(row)] = (arr.mean(0), std)
    return epochs, out


def epochs_to_target(values: Sequence[float], target: float) -> float:
    """Epochs until a per-epoch curve (``values[0]`` measured after epoch 1) first reaches ``target``, linearly
    interpolated between epochs; 1.0 when epoch 1 already reaches it. A curve that never reaches it is censored at
    ``len(values) + 1``."""
    v = np.asarray(values, dtype=float)
    hit = np.flatnonzero(v >= target)
    if len(hit) == 0:
        return float(len(v) + 1)
    k = int(hit[0])
    if k == 0:
        return 1.0
    lo, hi = v[k - 1], v[k]
    return float(k + (target - lo) / (hi - lo)) if hi > lo else float(k + 1)


def convergence(sweep: Sweep, rows: Sequence[Mapping[str, Any]], key: str = "val/accuracy@64",
                fraction: float = 0.8, label: Callable[[Mapping], str] = config_label) -> pd.DataFrame:
    """Convergence speed: per seed, the target is ``fraction`` × the lowest final value of ``key`` among ``rows``
    (so every compared run reaches it); each run's epochs to that target (:func:`epochs_to_target`).
    One row per (grid point, seed): ``label``, ``seed``, ``target``, ``epochs``."""
    out = []
    for seed in sweep.seeds:
        runs = {label(r): sweep.runs[(*r.values(), seed)] for r in rows}
        target = fraction * min(float(r.history[key].iloc[-1]) for r in runs.values())
        for name, r in runs.items():
            out.append({"label": name, "seed": seed, "target": target,
                        "epochs": epochs_to_target(r.history[key].to_numpy(), target)})
    return pd.DataFrame(out)


def own_plateau(sweep: Sweep, row: Mapping[str, Any], key: str = "val/accuracy@64", fraction: float = 0.8) -> pd.Series:
    """Per seed, epochs until a run first reaches ``fraction`` × its *own* final value of ``key`` — how fast it
    reaches its plateau, whatever the plateau's height (a second reading of "converges faster")."""
    out = {}
    for seed in sweep.seeds:
        curve = sweep.runs[(*row.values(), seed)].history[key].to_numpy(dtype=float)
        out[seed] = epochs_to_target(curve, fraction * curve[-1])
    return pd.Series(out, name="epochs")


def _paired_convergence(conv: pd.DataFrame, a: str, b: str) -> Paired:
    va = conv[conv.label == a].set_index("seed")["epochs"].sort_index()
    vb = conv[conv.label == b].set_index("seed")["epochs"].sort_index()
    return paired_difference(va.to_numpy(), vb.loc[va.index].to_numpy())


# ------------------------------------------------------------------------------------------------------- claims

def learned_check(sweep: Sweep, row: Mapping[str, Any], factor: float = 3.0,
                  eval_batch: int = 64) -> tuple[bool, str, dict[str, float]]:
    """Did the baseline learn far above chance? Its test t2i R@1 and its validation accuracy at batch
    ``eval_batch`` must both exceed ``factor`` × chance (mean over seeds)."""
    r1 = sweep.per_seed("t2i_R@1", **row).mean()
    r1_chance = sweep.per_seed("chance/t2i_R@1", **row).mean()
    acc = sweep.per_seed(f"val/accuracy@{eval_batch}", **row).mean()
    acc_chance = 1.0 / eval_batch
    ratios = {"t2i_R@1_over_chance": r1 / r1_chance, f"val_accuracy@{eval_batch}_over_chance": acc / acc_chance}
    ok = all(v >= factor for v in ratios.values())
    text = (f"baseline ({config_label(row)}): test t2i R@1 {r1:.1f}% vs chance {r1_chance:.2f}% "
            f"({ratios['t2i_R@1_over_chance']:.1f}×); validation accuracy in batches of {eval_batch} {acc:.3f} vs "
            f"chance {acc_chance:.3f} ({ratios[f'val_accuracy@{eval_batch}_over_chance']:.1f}×)")
    return ok, text, ratios


def _claim(cid: str, claim: str, source: str, measured: str, d: Paired, expect: str, detail: str) -> Claim:
    return Claim(cid, claim, source, measured, d.mean, d.std, d.n, paired_verdict(d.mean, d.se, expect), detail)


def _means(sweep: Sweep, key: str, rows: Sequence[Mapping[str, Any]], digits: int = 3) -> str:
    parts = []
    for r in rows:
        v = sweep.per_seed(key, **r)
        parts.append(f"{config_label(r)}: {v.mean():.{digits}f} ± {v.std() if len(v) > 1 else 0:.{digits}f}")
    return "; ".join(parts)


def claims(sweep: Sweep, settings: Mapping[str, Any]) -> list[Claim]:
    """Seed 003's claims about sampling (Tables 2–3, Figs. 5–6, §3.2), each a per-seed paired difference with a
    computed verdict, and in ``detail`` the numbers behind it plus a measured diagnostic.

    1. a larger batch gives a higher validation accuracy (Table 2, Fig. 5): accuracy at batch max − at batch min;
    2. small batches overfit (Table 2): the validation − training loss gap, at batch max − at batch min (expected
       smaller);
    3. a larger queue is better (Table 3, Fig. 6): accuracy at the largest − the smallest queue fraction;
    4. the queue prevents overfitting (§4.1): loss gap of the largest queue − batch sampling at the same batch size;
    5. the queue converges more slowly (§4.1): epochs to reach the target validation accuracy, queue − batch;
    6. rerank needs n large enough (§3.2): accuracy at the largest − the smallest n.
    """
    eb = settings["eval_batch"]
    bs = list(settings["batch_sizes"])
    qb = settings["queue_batch"]
    lo, hi = ({"sampler": "batch", "batch_size": b, "fraction": 0.0, "n": 0} for b in (min(bs), max(bs)))
    batch_rows = [{"sampler": "batch", "batch_size": b, "fraction": 0.0, "n": 0} for b in sorted(bs)]
    base = {"sampler": "batch", "batch_size": qb, "fraction": 0.0, "n": 0}
    fr = sorted(settings["queue_fractions"])
    q_rows = [{"sampler": "queue", "batch_size": qb, "fraction": float(f), "n": 0} for f in fr]
    q_lo, q_hi = q_rows[0], q_rows[-1]
    out: list[Claim] = []

    # 1. batch size -> validation accuracy
    d = sweep.paired("val/accuracy", lo, hi)
    d_fixed = sweep.paired(f"val/accuracy@{eb}", lo, hi)
    d_r1 = sweep.paired("t2i_R@1", lo, hi)
    steps_lo, steps_hi = (sweep.per_seed("steps", **r).mean() for r in (lo, hi))
    eq = _equal_steps(sweep, lo, hi, f"val/accuracy@{eb}")
    detail = (f"validation accuracy at each run's batch size — {_means(sweep, 'val/accuracy', batch_rows)}. "
              f"Diagnostics: chance is 1/n, so the task is harder at larger n; at the common batch size {eb} the "
              f"paired change is {d_fixed}, test t2i R@1 {d_r1} points; batch {min(bs)} takes {steps_lo:.0f} "
              f"optimiser steps vs {steps_hi:.0f} at {max(bs)}" + (f", and at equal steps (epoch {eq[0]} of batch "
              f"{min(bs)} vs the last of batch {max(bs)}) the accuracy@{eb} change is {eq[1]}" if eq else "") + ".")
    out.append(_claim("batch_size_increases_val_accuracy", f"a larger batch gives a higher validation accuracy "
                      f"({min(bs)} → {max(bs)})", "seed 003, Table 2 / Fig. 5",
                      f"paired change of validation accuracy (within batches of the run's size), batch {min(bs)} → "
                      f"{max(bs)}", d, "increase", detail))

    # 2. small batches overfit
    d = sweep.paired("gap/loss", lo, hi)
    train_lo = sweep.per_seed("train/accuracy", **lo)
    detail = (f"validation − training loss: {_means(sweep, 'gap/loss', batch_rows)}; training − validation "
              f"accuracy: {_means(sweep, 'gap/accuracy', batch_rows)}. How far training went: the training accuracy "
              f"at batch {min(bs)} is {train_lo.mean():.3f} after {settings['epochs']} epochs (the seed's, after 50: "
              f"0.858 at batch 16)" + (" — far from memorising the training set, the regime where the seed saw "
                                        "small batches overfit." if train_lo.mean() < 0.6 else "."))
    out.append(_claim("small_batches_overfit", f"small batches overfit: the validation − training loss gap "
                      f"shrinks from batch {min(bs)} to {max(bs)}", "seed 003, Table 2",
                      f"paired change of (validation − training loss), batch {min(bs)} → {max(bs)}", d, "decrease",
                      detail))

    # 3. larger queue -> better
    d = sweep.paired("val/accuracy", q_lo, q_hi)
    d_base = sweep.paired("val/accuracy", base, q_hi)
    consistency = _means(sweep, "queue/key_consistency", q_rows)
    staleness = _means(sweep, "queue/staleness", q_rows)
    detail = (f"validation accuracy at batch {qb} — {_means(sweep, 'val/accuracy', [base] + q_rows)}; the largest "
              f"queue vs batch sampling: {d_base}. Diagnostics — how much the stored negatives agree with what the "
              f"model makes of the same captions at the end (mean cosine, 1 = fresh): {staleness}; the momentum key "
              f"encoder vs the model on validation captions: {consistency}.")
    out.append(_claim("larger_queue_better", f"a larger queue gives a higher validation accuracy "
                      f"({fr[0]:g} → {fr[-1]:g} of the maximum)", "seed 003, Table 3 / Fig. 6",
                      f"paired change of validation accuracy, queue fraction {fr[0]:g} → {fr[-1]:g}, batch {qb}",
                      d, "increase", detail))

    # 4. queue prevents overfitting
    d = sweep.paired("gap/loss", base, q_hi)
    base_gap = sweep.per_seed("gap/loss", **base)
    detail = (f"validation − training loss: batch {qb} {base_gap.mean():+.3f} ± {base_gap.std():.3f}, "
              f"{_means(sweep, 'gap/loss', q_rows)} (a baseline gap near 0 leaves nothing to prevent).")
    out.append(_claim("queue_prevents_overfitting", "the queue prevents overfitting (smaller validation − training "
                      "loss gap than batch sampling)", "seed 003, §4.1 / Table 3",
                      f"paired change of (validation − training loss), batch sampling → queue {fr[-1]:g}, batch {qb}",
                      d, "decrease", detail))

    # 5. queue converges slower
    conv = convergence(sweep, [base, q_hi], f"val/accuracy@{eb}", settings["target_fraction"])
    d = _paired_convergence(conv, config_label(base), config_label(q_hi))
    plateau = {config_label(r): own_plateau(sweep, r, f"val/accuracy@{eb}", settings["target_fraction"])
               for r in (base, q_hi)}
    detail = (f"target: {settings['target_fraction']:g} × the lower final validation accuracy@{eb} of the two "
              f"(per seed, mean {conv['target'].mean():.3f}); epochs to reach it — "
              + "; ".join(f"{lab}: {g['epochs'].mean():.2f} ± {g['epochs'].std():.2f}"
                          for lab, g in conv.groupby("label", sort=False))
              + f". Epochs to {settings['target_fraction']:g} × each run's own final accuracy (its plateau) — "
              + "; ".join(f"{lab}: {v.mean():.2f} ± {v.std():.2f}" for lab, v in plateau.items()) + ".")
    out.append(_claim("queue_converges_slower", "the queue converges more slowly than batch sampling",
                      "seed 003, §4.1 / Fig. 6", f"paired change of epochs to the target validation accuracy, "
                      f"batch sampling → queue {fr[-1]:g}, batch {qb}", d, "increase", detail))

    # 6. rerank needs n large enough
    ns = sorted(settings["rerank_ns"])
    if len(ns) >= 2:
        r_rows = [{"sampler": "rerank", "batch_size": qb, "fraction": float(settings["rerank_fraction"]), "n": n}
                  for n in ns]
        d = sweep.paired("val/accuracy", r_rows[0], r_rows[-1])
        detail = (f"validation accuracy at batch {qb} — {_means(sweep, 'val/accuracy', r_rows + [base, q_hi])}.")
        out.append(_claim("rerank_needs_large_n", f"rerank sampling needs n large enough (n = {ns[0]} → {ns[-1]})",
                          "seed 003, §3.2", f"paired change of validation accuracy, rerank n = {ns[0]} → {ns[-1]}, "
                          f"batch {qb}", d, "increase", detail))
    return out


def _equal_steps(sweep: Sweep, lo: Mapping[str, Any], hi: Mapping[str, Any], key: str):
    """The small batch's epoch with about as many optimiser steps as the large batch's whole run, and the paired
    change of ``key`` between that epoch (small batch) and the large batch's last epoch."""
    steps_lo = sweep.per_seed("steps", **lo).iloc[0]
    steps_hi = sweep.per_seed("steps", **hi).iloc[0]
    seeds = sweep.seeds
    first = sweep.runs.get((*lo.values(), seeds[0]))
    if first is None:
        return None
    epochs = len(first.history)
    epoch = int(round(epochs * steps_hi / steps_lo))
    if not 1 <= epoch <= epochs:
        return None
    a = [float(sweep.runs[(*lo.values(), s)].history[key].iloc[epoch - 1]) for s in seeds]
    b = [float(sweep.runs[(*hi.values(), s)].history[key].iloc[-1]) for s in seeds]
    return epoch, paired_difference(a, b)


def verdict_lines(claim_list: Sequence[Claim]) -> str:
    """One line per claim: the claim, the paired difference (mean ± std, n) and the computed verdict."""
    return "\n".join(f"- {c.claim}: {c.measured} = {c.mean:+.3f} ± {c.std:.3f} (n = {c.n}) → **{c.verdict}**"
                     for c in claim_list)
