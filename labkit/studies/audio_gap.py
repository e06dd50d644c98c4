r"""Notebook 05's study: the CLAP half of seed 000 — the modality gap of an audio–text model next to an image–text
one under the same budget (§4.1, Fig. 2a–b), and the GRL λ sweep on audio (§5.1, §6.1, Fig. 3a–b, Table 1) with
both optimisers the seed used (AdamW for its CLIP, SGD for its CLAP).

    settings = audio_settings("smoke")
    sounds = open_sound_source(n_clips=settings["n_clips"], seed=0, clip_seconds=settings["clip_seconds"])
    sweeps = {opt: audio_lambda_sweep(sounds, optimizer=opt, seeds=(0, 1, 2), **settings) for opt in OPTIMIZERS}
    images = image_baseline(settings, seeds=(0, 1, 2), world_seed=0)
    comparison = modality_comparison(sweeps, images)
    comparison.table(); claims = audio_claims(sweeps, comparison)

Every training goes through :func:`train_audio_clip` (audio) or :func:`labkit.studies.recipe.train_clip` (image):
measure the held-out split at initialisation, :func:`labkit.train.fit`, measure again. The grid × seeds bookkeeping
is :func:`labkit.studies.sweep.run_grid`; the λ sweep's tables and curves are :class:`~labkit.studies.grl_sweep.GrlSweep`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data import AudioCaps, Clotho, make_world
from ..data.sound_world import make_sound_world
from ..losses import Objective
from ..losses.modality import PAPER_LAMBDAS, ModalityLoss, _check_lambda, grl_objective
from ..models import embed_dim_of
from ..models.audio import audio_config, create_audio_model
from ..report import Claim, combine_verdicts, markdown_table, paired_verdict
from ..train import TrainConfig
from .grl_sweep import GrlSweep, _lambda_key
from .recipe import TrainResult, fit_and_measure, profile_settings, train_clip
from .sweep import Sweep, run_grid

__all__ = ["AUDIO_PROFILES", "OPTIMIZERS", "GAP_KEYS", "audio_settings", "open_sound_source", "RealAudioSource",
           "train_audio_clip", "audio_lambda_sweep", "image_baseline", "modality_comparison", "ModalityComparison",
           "audio_claims", "learned_ratio", "LEARNED_RATIO", "classifier_probe"]

OPTIMIZERS = ("adamw", "sgd")
SUMMARY_KEYS = ("gap", "silhouette", "mean_recall", "classifier_acc_test", "classifier_bce_train")
GAP_KEYS = ("gap", "silhouette", "image_to_image_centroid", "image_to_text_centroid", "text_to_text_centroid",
            "text_to_image_centroid", "pc1_variance_share", "pc1_modality_separation")
RECALL_KEYS = tuple(f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))
#: a baseline "learned" when its text→audio R@1 is at least this many times chance (notebook 04's rule)
LEARNED_RATIO = 5.0

# Per-profile sizes. "smoke" (make run, 2 CPU cores, ≤ 2 min for the whole notebook): 4 λ × 2 optimisers × 3 seeds =
# 24 audio trainings plus 3 image trainings, so every run is a few seconds: 800 clips of 1.5 s (480 to train on, 240
# held out: a large test set makes R@1 chance small (0.4 %), so "far above chance" can be told from noise, and steadies
# the gap measures; evaluating costs little next to training), the tiny CNN (32 mel bands, 20 ms hop, 8/16/32
# channels), 8 epochs of 7 steps of 64 (the largest batch that leaves several steps per epoch; seed 000 used 880).
# The image CLIP needs about this many steps to reach 5x chance (measured, 3 seeds: 2.6x with 360 training pairs,
# 5.4x with 480). The image world has the same number of pairs and splits, epochs, batch size and learning rate (the
# same budget), and its CLIP the same text tower. SGD runs at seed 000's CLAP learning rate (5e-3, momentum 0.9), with
# no weight decay (SGD's is an L2 gradient term: AdamW's 0.1 pins the classifier at BCE = ln 2, measured by
# classifier_probe) and the modality classifier at 20x that rate (a fresh 5-layer classifier outputs a near-constant
# logit, and at 5e-3 SGD does not leave that plateau within these 56 steps; seed 000 trained for far longer).
# "full" is a real run (CNN14 layout, 4 s clips; a GPU helps); "tiny" is what the tests execute (it proves that the
# notebook runs, not what it finds).
_COMMON = {"momentum": 0.9, "sgd_lr": 5e-3, "sgd_weight_decay": 0.0, "sgd_classifier_lr_scale": 20.0, "n_seeds": 3, "lambdas": tuple(PAPER_LAMBDAS),
           "model_name": "labkit-audio-tiny", "image_model": "labkit-tiny", "image_size": 32}
AUDIO_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {**_COMMON, "n_clips": 800, "split_fractions": (0.6, 0.1, 0.3), "clip_seconds": 1.5, "epochs": 8,
              "batch_size": 64, "lr": 2e-3, "warmup_steps": 10},
    "full": {**_COMMON, "n_clips": 10000, "split_fractions": (0.8, 0.1, 0.1), "clip_seconds": 4.0, "epochs": 40,
             "batch_size": 256, "lr": 1e-3, "warmup_steps": 200, "model_name": "labkit-audio-cnn14",
             "image_model": "labkit-tiny-64px", "image_size": 64},
    "tiny": {**_COMMON, "n_clips": 120, "split_fractions": (0.7, 0.1, 0.2), "clip_seconds": 1.0, "epochs": 1,
             "batch_size": 32, "lr": 2e-3, "warmup_steps": 2, "n_seeds": 2, "lambdas": (0.0, 1.0)},
}


def audio_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The settings of a profile from :data:`AUDIO_PROFILES`, with any non-None override applied."""
    return profile_settings(profile, AUDIO_PROFILES, **overrides)


# =========================================================================== data

class RealAudioSource:
    """AudioCaps or Clotho on disk, seen through the embedded world's ``.split(name, transform)`` door."""

    LOADERS = ("audiocaps", "clotho")

    def __init__(self, dataset: str, data_root: str, clip_seconds: float, sample_rate: int = 16000,
                 missing: str = "skip"):
        if dataset not in self.LOADERS:
            raise ValueError(f"dataset must be 'embedded' or one of {self.LOADERS}, got {dataset!r}")
        self.dataset, self.data_root = dataset, data_root
        self.clip_seconds, self.sample_rate, self.missing = float(clip_seconds), int(sample_rate), missing
        self.topic_names: list[str] = []

    def split(self, name: str, transform=None):
        loader = AudioCaps if self.dataset == "audiocaps" else Clotho
        return loader(self.data_root, split=name, sample_rate=self.sample_rate, clip_seconds=self.clip_seconds,
                      transform=transform, missing=self.missing)


def open_sound_source(dataset: str = "embedded", data_root: str | None = None, n_clips: int = 400, seed: int = 0,
                      pairing: str = "literal", clip_seconds: float = 1.5, sample_rate: int = 16000,
                      split_fractions: Sequence[float] = (0.8, 0.1, 0.1), **_ignored: Any):
    """The audio a notebook runs on: the embedded sound world (default) or AudioCaps / Clotho under ``data_root``
    (clips cut / padded to ``clip_seconds``; files missing on disk are skipped, and counted)."""
    if dataset == "embedded":
        return make_sound_world(n_clips=n_clips, seed=seed, clip_seconds=clip_seconds, sample_rate=sample_rate,
                                pairing=pairing, split_fractions=split_fractions)
    if not data_root:
        raise ValueError(f"dataset={dataset!r} needs data_root (the folder holding its caption CSVs and audio)")
    return RealAudioSource(dataset, data_root, clip_seconds, sample_rate)


# =========================================================================== one training

def _optimizer_settings(optimizer: str, lr: float, sgd_lr: float | None, momentum: float,
                        sgd_weight_decay: float | None = None) -> dict[str, Any]:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "sgd":
        out = {"optimizer": "sgd", "lr": float(sgd_lr if sgd_lr is not None else lr), "momentum": float(momentum)}
        if sgd_weight_decay is not None:
            out["weight_decay"] = float(sgd_weight_decay)
        return out
    return {"optimizer": "adamw", "lr": float(lr)}


def train_audio_clip(
    source,
    seed: int = 0,
    objective: Objective | None = None,
    model_name: str = "labkit-audio-tiny",
    checkpoint: str | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: str = "adamw",
    sgd_lr: float | None = None,
    momentum: float = 0.9,
    sgd_weight_decay: float | None = None,
    device: str = "auto",
    eval_split: str = "test",
    progress: bool = True,
    clip_seconds: float | None = None,
    audio_cfg: Mapping[str, Any] | None = None,
    **train_kwargs: Any,
) -> TrainResult:
    """Train an audio–text CLIP (:func:`~labkit.models.audio.create_audio_model`) on ``source.train`` with
    ``objective`` (default: the CLIP loss alone) and measure ``eval_split`` before and after — the audio twin of
    :func:`labkit.studies.recipe.train_clip`.

    ``optimizer="sgd"`` trains at ``sgd_lr`` (seed 000's CLAP: 5e-3) with ``momentum`` and, when given,
    ``sgd_weight_decay`` (SGD's weight decay is an L2 term added to the gradient, not AdamW's decoupled shrinkage, so
    AdamW's 0.1 does not carry over: it pins the modality classifier at BCE = ln 2, see :func:`classifier_probe`);
    ``"adamw"`` at ``lr``.
    ``clip_seconds`` / ``audio_cfg`` override the audio config; other keyword arguments go to
    :class:`~labkit.train.TrainConfig` (unknown keys such as profile entries are ignored).
    """
    known = set(TrainConfig.__dataclass_fields__)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, device=device, progress=progress,
                         **(opt := _optimizer_settings(optimizer, lr, sgd_lr, momentum, sgd_weight_decay)),
                         **{k: v for k, v in train_kwargs.items() if k in known and k not in ("optimizer", *opt)})
    bundle = create_audio_model(model_name, checkpoint=checkpoint, seed=seed, clip_seconds=clip_seconds,
                                **dict(audio_cfg or {}))
    embedded = hasattr(source, "audio") and hasattr(source, "clip_seconds")
    transform = None if embedded else bundle.preprocess
    train_set, eval_set = source.split("train", transform=transform), source.split(eval_split, transform=transform)
    return fit_and_measure(bundle, objective, train_set, eval_set, config, device)


def learned_ratio(metrics: Mapping[str, float], chance: Mapping[str, float]) -> float:
    """Text→audio (text→image) R@1 over chance: the 'did it learn?' number."""
    return float(metrics["t2i_R@1"] / chance["t2i_R@1"])


def _row(result: TrainResult, extra: Mapping[str, float] | None = None) -> dict[str, float]:
    """A sweep row: trained metrics, ``init/…`` metrics, ``chance/…``, the learned ratio, the training time."""
    row = {**result.metrics, **{f"init/{k}": v for k, v in result.metrics_init.items()},
           **{f"chance/{k}": v for k, v in result.chance.items()},
           "t2i_R@1_over_chance": learned_ratio(result.metrics, result.chance),
           "train_seconds": float(result.history["seconds"].sum())}
    row.update(extra or {})
    return row


# =========================================================================== the λ sweep

def audio_lambda_sweep(
    source,
    lambdas: Iterable[float] = PAPER_LAMBDAS,
    seeds: Iterable[int] = (0, 1, 2),
    optimizer: str = "adamw",
    lambda_on: str = "grl",
    classifier: Mapping[str, Any] | None = None,
    model_name: str = "labkit-audio-tiny",
    classifier_lr_scale: float | None = None,
    log: Callable[[str], None] | None = print,
    **train_settings: Any,
) -> GrlSweep:
    """One audio–text CLIP per (λ, seed) trained with :func:`~labkit.losses.grl_objective` (seed 000 eq. 5) and the
    given optimiser, measured on the held-out split. Returns a :class:`~labkit.studies.grl_sweep.GrlSweep` (its
    table: ``lambda``, ``seed``, the gap family, the recalls, ``init/…``, ``chance/…``, ``classifier_acc_train`` /
    ``classifier_acc_test``, ``classifier_bce_train`` (the classifier's BCE over the last epoch: ln 2 ≈ 0.693 means
    it has not learned), ``train_seconds``), so its tables, curves and flat metrics are notebook 04's.

    ``classifier_lr_scale``: the modality classifier trains at the schedule's learning rate times this (the
    ``lr_scale`` seam of :func:`labkit.train.param_groups`; None: the encoders' rate, as seed 000 states it)."""
    lambdas = [_check_lambda(l) for l in lambdas]
    classifier = dict(classifier or {})
    embed_dim = embed_dim_of(audio_config(model_name)["text_model"])

    def run(seed: int, **config: Any):
        lambd = config["lambda"]
        objective = grl_objective(lambd, embed_dim, lambda_on=lambda_on, seed=seed, **classifier)
        if classifier_lr_scale is not None:
            objective.terms["modality"].lr_scale = float(classifier_lr_scale)
        result = train_audio_clip(source, seed=seed, objective=objective, model_name=model_name,
                                  optimizer=optimizer, **train_settings)
        term: ModalityLoss = objective.terms["modality"]
        last = result.history.iloc[-1]
        row = _row(result, {"classifier_acc_train": float(last.get("modality/accuracy", float("nan"))),
                            "classifier_bce_train": float(last.get("modality/bce", float("nan"))),
                            "classifier_acc_test": term.accuracy(result.final.image, result.final.paired_text)})
        if log is not None:
            log(f"{optimizer} λ={_lambda_key(lambd):<4} seed={seed}: gap {row['gap']:.3f}, silhouette "
                f"{row['silhouette']:.3f}, mean recall {row['mean_recall']:.1f}, classifier acc "
                f"{row['classifier_acc_test']:.2f} ({row['train_seconds']:.1f} s)")
        return row, result

    sweep = run_grid(run, {"lambda": lambdas}, seeds, log=None)
    return GrlSweep(sweep.table, sweep.factors, sweep.runs, lambda_on=lambda_on)


# =========================================================================== the image-text side

def image_baseline(settings: Mapping[str, Any], seeds: Iterable[int], world_seed: int = 0, device: str = "auto",
                   pairing: str = "literal", log: Callable[[str], None] | None = print) -> Sweep:
    """CLIPs on the embedded *image* world with the audio runs' budget: as many pairs as clips, the same epochs,
    batch size, learning rate and warm-up, AdamW, the CLIP loss alone; one per seed (the same seeds as the audio
    runs, so differences pair). Its text tower is the audio model's (same config, same seed, same initial weights)."""
    world = make_world(n_pairs=int(settings["n_clips"]), seed=world_seed, image_size=int(settings["image_size"]),
                       pairing=pairing, split_fractions=settings.get("split_fractions", (0.8, 0.1, 0.1)))
    keys = ("epochs", "batch_size", "lr", "warmup_steps")

    def run(seed: int, **_: Any):
        result = train_clip(world, seed=seed, model_name=settings["image_model"], device=device, progress=False,
                            **{k: settings[k] for k in keys if k in settings})
        row = _row(result)
        if log is not None:
            log(f"image seed={seed}: gap {row['gap']:.3f}, silhouette {row['silhouette']:.3f}, mean recall "
                f"{row['mean_recall']:.1f} ({row['train_seconds']:.1f} s)")
        return row, result

    return run_grid(run, {"world": ["image"]}, seeds, log=None)


@dataclass
class ModalityComparison:
    """Audio–text vs image–text under the same budget: a :class:`~labkit.studies.sweep.Sweep` whose one factor,
    ``world``, is ``"audio (AdamW)"``, ``"audio (SGD)"`` (the λ = 0 runs of the two sweeps) or ``"image (AdamW)"``;
    each row holds the gap family at initialisation (``init/…``) and after training, and the recalls."""

    sweep: Sweep

    AUDIO, AUDIO_SGD, IMAGE = "audio (AdamW)", "audio (SGD)", "image (AdamW)"

    def table(self, keys: Sequence[str] = GAP_KEYS, digits: int = 3) -> pd.DataFrame:
        """The gap family, mean ± std over seeds: rows = measure, columns = (world, init | trained)."""
        cols = {}
        for world in self.sweep.values("world"):
            for when, prefix in (("init", "init/"), ("trained", "")):
                pm = self.sweep.pm([prefix + k for k in keys], digits=digits).loc[world]
                cols[(world, when)] = [pm[prefix + k] for k in keys]
        out = pd.DataFrame(cols, index=list(keys))
        out.columns = pd.MultiIndex.from_tuples(out.columns, names=["world", "when"])
        return out

    def recall_table(self, digits: int = 1) -> pd.DataFrame:
        """R@1/5/10 both directions and the mean, mean ± std over seeds, per world (x2t = audio/image → text)."""
        out = self.sweep.pm([*RECALL_KEYS, "mean_recall", "t2i_R@1_over_chance"], digits=digits)
        return out.rename(columns=lambda c: c.replace("i2t", "x2t").replace("t2i", "t2x"))

    def paired(self, key: str, a: str, b: str):
        return self.sweep.paired(key, {"world": a}, {"world": b})

    def flat_metrics(self) -> dict[str, float]:
        """``<m>@world=<audio|audio_sgd|image>`` (mean), ``…/std``, ``…/seed=<s>`` for the gap family (init and
        trained), the recalls and the learned ratio."""
        short = {self.AUDIO: "audio", self.AUDIO_SGD: "audio_sgd", self.IMAGE: "image"}
        keys = [*GAP_KEYS, *[f"init/{k}" for k in GAP_KEYS], *RECALL_KEYS, "mean_recall", "t2i_R@1_over_chance"]
        return self.sweep.flat_metrics(keys, tag=lambda c: f"world={short.get(c['world'], c['world'])}")


def modality_comparison(sweeps: Mapping[str, GrlSweep], images: Sweep) -> ModalityComparison:
    """Gather the λ = 0 audio runs of each optimiser's sweep and the image baselines into one :class:`ModalityComparison`."""
    names = {"adamw": ModalityComparison.AUDIO, "sgd": ModalityComparison.AUDIO_SGD}
    frames, runs = [], {}
    for opt, sweep in sweeps.items():
        base = sweep.table[sweep.table["lambda"] == 0.0]
        if base.empty:
            raise ValueError(f"the {opt} sweep has no λ = 0 run: the comparison needs the baselines")
        frames.append(base.drop(columns=["lambda"]).assign(world=names[opt]))
        runs.update({(names[opt], s): r for (l, s), r in sweep.runs.items() if l == 0.0})
    frames.append(images.table.assign(world=ModalityComparison.IMAGE))
    runs.update({(ModalityComparison.IMAGE, s): r for (_, s), r in images.runs.items()})
    table = pd.concat(frames, ignore_index=True)
    table = table[["world", "seed", *[c for c in table.columns if c not in ("world", "seed")]]]
    return ModalityComparison(Sweep(table, ("world",), runs))


def classifier_probe(audio: np.ndarray, text: np.ndarray, runs: Mapping[str, tuple[str, float, float]],
                     depth: int = 5, steps: int = 56, batch_size: int = 64, momentum: float = 0.9,
                     seed: int = 0) -> pd.DataFrame:
    """Can seed 000's modality classifier learn under a given optimiser? Train it alone (fresh, seeded) for ``steps``
    on frozen embeddings — ``batch_size`` pairs per step, both modalities, labels 0 = audio, 1 = text — once per
    ``runs`` entry ``name: (optimizer "sgd" | "adamw", lr, weight_decay)``; SGD with ``momentum``, weight decay as each
    optimiser applies it (SGD: L2 added to the gradient; AdamW: decoupled). Returns per run its BCE at the start and
    the end (ln 2 ≈ 0.693: it has not learned), the accuracy at the end, and the logit spread at initialisation."""
    import torch
    import torch.nn.functional as F

    from ..losses.modality import ModalityClassifier

    a = torch.as_tensor(np.asarray(audio), dtype=torch.float32)
    t = torch.as_tensor(np.asarray(text), dtype=torch.float32)
    if a.ndim != 2 or a.shape != t.shape:
        raise ValueError(f"audio and text must be (N, D) and equal in shape, got {tuple(a.shape)}, {tuple(t.shape)}")
    rows = []
    for name, (optimizer, lr, wd) in runs.items():
        clf = ModalityClassifier(a.shape[1], depth=depth, seed=seed)
        params = list(clf.parameters())
        if optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
        elif optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        else:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r} (run {name!r})")
        order = torch.Generator().manual_seed(seed)
        n = min(batch_size, len(a))
        labels = torch.cat([torch.zeros(n), torch.ones(n)])
        with torch.no_grad():
            first = clf.logits(torch.cat([a, t]))
        bce0 = float(F.binary_cross_entropy_with_logits(first, torch.cat([torch.zeros(len(a)), torch.ones(len(t))])))
        for _ in range(steps):
            idx = torch.randperm(len(a), generator=order)[:n]
            loss = F.binary_cross_entropy_with_logits(clf.logits(torch.cat([a[idx], t[idx]])), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = clf.logits(torch.cat([a, t]))
        y = torch.cat([torch.zeros(len(a)), torch.ones(len(t))])
        rows.append({"run": name, "optimizer": optimizer, "lr": lr, "weight_decay": wd,
                     "logit_std_at_init": float(first.std()), "bce_at_init": bce0,
                     "bce_after": float(F.binary_cross_entropy_with_logits(logits, y)),
                     "accuracy_after": float(((logits > 0).float() == y).float().mean())})
    return pd.DataFrame(rows).set_index("run")


# =========================================================================== claims

def _pm(values: pd.Series, digits: int = 3) -> str:
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}" if len(values) > 1 else f"{values.mean():.{digits}f}"


def _learned(table: pd.DataFrame) -> tuple[bool, float]:
    ratio = float(table["t2i_R@1"].mean() / table["chance/t2i_R@1"].mean())
    return ratio >= LEARNED_RATIO, ratio


def _guard(claim: Claim, learned: bool, ratio: float, what: str) -> Claim:
    """A claim measured on runs whose baseline did not learn far above chance is inconclusive, whatever it says."""
    if not learned:
        claim.detail = (f"{what} did not learn far above chance (t2a R@1 {ratio:.1f}x chance < {LEARNED_RATIO:g}x); "
                        f"measured verdict was {claim.verdict!r}. " + claim.detail)
        claim.verdict = "inconclusive"
    return claim


def _gap_claims(cmp: ModalityComparison) -> list[Claim]:
    src = "seed 000, §4.1 / Fig. 2"
    t = cmp.sweep.table
    n = len(cmp.sweep.seeds)
    out = []
    audio_ok, audio_ratio = _learned(t[t["world"] == cmp.AUDIO])
    image_ok, image_ratio = _learned(t[t["world"] == cmp.IMAGE])

    def world(name, key):
        return t.loc[t["world"] == name, key]

    d = cmp.paired("gap", cmp.IMAGE, cmp.AUDIO)
    d_init = cmp.paired("init/gap", cmp.IMAGE, cmp.AUDIO)
    shrink = {w: (world(w, "gap").mean() - world(w, "init/gap").mean()) for w in (cmp.AUDIO, cmp.IMAGE)}
    verdict = paired_verdict(d.mean, d.se, "increase")
    detail = (f"trained Δgap audio {_pm(world(cmp.AUDIO, 'gap'))} vs image {_pm(world(cmp.IMAGE, 'gap'))}; at "
              f"initialisation audio {_pm(world(cmp.AUDIO, 'init/gap'))} vs image {_pm(world(cmp.IMAGE, 'init/gap'))} "
              f"(paired audio − image {d_init.mean:+.3f} ± {d_init.std:.3f}). Training moved the gap by "
              f"{shrink[cmp.AUDIO]:+.3f} (audio) and {shrink[cmp.IMAGE]:+.3f} (image) while reaching mean recall "
              f"{world(cmp.AUDIO, 'mean_recall').mean():.1f} (audio) vs {world(cmp.IMAGE, 'mean_recall').mean():.1f} "
              f"(image).")
    claim = Claim("audio_gap_larger", "the modality gap is larger for audio–text than for image–text (0.871 vs "
                  "0.822)", src, "paired Δgap(audio) − Δgap(image), same seeds, same budget, AdamW for both",
                  d.mean, d.std, n, verdict, detail, extra={"se": d.se, "init_difference": d_init.mean})
    out.append(_guard(claim, audio_ok and image_ok, min(audio_ratio, image_ratio), "a baseline"))

    if cmp.AUDIO_SGD in cmp.sweep.values("world"):
        sgd_ok, sgd_ratio = _learned(t[t["world"] == cmp.AUDIO_SGD])
        d2 = cmp.paired("gap", cmp.IMAGE, cmp.AUDIO_SGD)
        claim = Claim("audio_gap_larger.seed_optimisers", "the modality gap is larger for audio–text than for "
                      "image–text, each trained with the seed's optimiser (CLAP: SGD, CLIP: AdamW)", src,
                      "paired Δgap(audio, SGD lr 5e-3) − Δgap(image, AdamW)", d2.mean, d2.std, n,
                      paired_verdict(d2.mean, d2.se, "increase"),
                      f"audio (SGD) Δgap {_pm(world(cmp.AUDIO_SGD, 'gap'))} at mean recall "
                      f"{world(cmp.AUDIO_SGD, 'mean_recall').mean():.1f}; image (AdamW) "
                      f"{_pm(world(cmp.IMAGE, 'gap'))} at {world(cmp.IMAGE, 'mean_recall').mean():.1f}.",
                      extra={"se": d2.se})
        out.append(_guard(claim, sgd_ok and image_ok, min(sgd_ratio, image_ratio), "a baseline"))

    d3 = cmp.paired("pc1_modality_separation", cmp.IMAGE, cmp.AUDIO)
    claim = Claim("audio_pc1_separates_more", "PC1 is more devoted to separating the modalities for audio–text "
                  "than for image–text", src, "paired PC1 modality separation (balanced accuracy of a threshold on "
                  "PC1), audio − image, AdamW for both", d3.mean, d3.std, n, paired_verdict(d3.mean, d3.se, "increase"),
                  f"PC1 separation audio {_pm(world(cmp.AUDIO, 'pc1_modality_separation'))} vs image "
                  f"{_pm(world(cmp.IMAGE, 'pc1_modality_separation'))}; PC1 variance share audio "
                  f"{_pm(world(cmp.AUDIO, 'pc1_variance_share'))} vs image "
                  f"{_pm(world(cmp.IMAGE, 'pc1_variance_share'))}.", extra={"se": d3.se})
    out.append(_guard(claim, audio_ok and image_ok, min(audio_ratio, image_ratio), "a baseline"))
    return out


def _sweep_claims(sweep: GrlSweep, optimizer: str) -> list[Claim]:
    """Seed 000's CLAP claims on one optimiser's λ sweep (Fig. 3a–b, Table 1), each from per-seed paired differences."""
    src = "seed 000, Fig. 3a–b / Table 1"
    t = sweep.table
    lambdas = sweep.lambdas
    n = len(sweep.seeds)
    lo, hi = lambdas[0], lambdas[-1]
    learned, ratio = _learned(t[t["lambda"] == lo])
    name = {"adamw": "AdamW", "sgd": "SGD"}[optimizer]
    means = t.groupby("lambda")[["gap", "mean_recall", "classifier_acc_test", "classifier_bce_train"]].mean()
    probe = ("modality classifier, held-out accuracy / last-epoch BCE: " + ", ".join(
        f"λ={_lambda_key(l)}: {means.loc[l, 'classifier_acc_test']:.2f} / {means.loc[l, 'classifier_bce_train']:.3f}"
        for l in lambdas) + " (accuracy 0.5 with BCE ln 2 = 0.693: the classifier has not learned, so the GRL "
        "reverses nothing)")
    curve = ", ".join(f"{means.loc[l, 'gap']:.3f} (λ={_lambda_key(l)})" for l in lambdas)
    rec = ", ".join(f"{means.loc[l, 'mean_recall']:.1f} (λ={_lambda_key(l)})" for l in lambdas)
    out = []

    d = sweep.paired("gap", {"lambda": lo}, {"lambda": hi})
    monotone = bool(all(means.loc[b, "gap"] < means.loc[a, "gap"] for a, b in zip(lambdas, lambdas[1:])))
    out.append(Claim(f"{optimizer}.gap_shrinks_with_lambda", "increasing λ reduces the modality gap", src,
                     f"{name}: paired change of Δgap from λ = {_lambda_key(lo)} to λ = {_lambda_key(hi)} "
                     f"(negative = shrinks)", d.mean, d.std, n, paired_verdict(d.mean, d.se, "decrease"),
                     f"mean Δgap {curve}; monotone in the means: {monotone}. {probe}.",
                     extra={"se": d.se, "monotone": float(monotone)}))
    if 1.0 in lambdas and lo == 0.0:
        d1 = sweep.paired("gap", {"lambda": 0.0}, {"lambda": 1.0})
        out.append(Claim(f"{optimizer}.lambda1_smaller_gap", "λ = 1 gives a smaller gap than the baseline (seed: "
                         "−0.06)", src, f"{name}: paired Δgap(λ = 1) − Δgap(λ = 0)", d1.mean, d1.std, n,
                         paired_verdict(d1.mean, d1.se, "decrease"), f"mean Δgap {curve}. {probe}.",
                         extra={"se": d1.se}))
        r1 = sweep.paired("mean_recall", {"lambda": 0.0}, {"lambda": 1.0})
        out.append(Claim(f"{optimizer}.lambda1_beats_baseline", "λ = 1 improves mean retrieval over the baseline "
                         "(Table 1: 56.4 → 57.2 T-A, 61.6 → 63.5 A-T)", src,
                         f"{name}: paired mean recall (points) λ = 1 − λ = 0", r1.mean, r1.std, n,
                         paired_verdict(r1.mean, r1.se, "increase"), f"mean recall {rec}.", extra={"se": r1.se}))
        others = [l for l in lambdas if l != 1.0]
        gains = {l: sweep.paired("mean_recall", {"lambda": l}, {"lambda": 1.0}) for l in others}
        parts = [paired_verdict(g.mean, g.se, "increase") for g in gains.values()]
        worst = min(gains.values(), key=lambda g: g.mean)
        best = sweep.best_lambda("mean_recall")
        out.append(Claim(f"{optimizer}.lambda1_best", "mean retrieval is best at λ = 1 (Fig. 3a)", src,
                         f"{name}: smallest paired gain in mean recall (points) of λ = 1 over another λ; the verdict "
                         f"combines λ = 1 vs each other λ", worst.mean, worst.std, n, combine_verdicts(parts),
                         f"best λ by mean = {_lambda_key(best)}; gains of λ = 1 over "
                         + ", ".join(f"λ={_lambda_key(l)}: {g.mean:+.2f} ± {g.std:.2f}" for l, g in gains.items())
                         + f" ({'/'.join(parts)}).", extra={"best_lambda": best}))
    return [_guard(c, learned, ratio, f"the {name} baseline (λ = {_lambda_key(lo)})") for c in out]


def audio_claims(sweeps: Mapping[str, GrlSweep], comparison: ModalityComparison) -> list[Claim]:
    """Every claim notebook 05 tests: the gap comparison (§4.1) and, per optimiser, the λ sweep (Fig. 3a–b, Table 1)."""
    claims = _gap_claims(comparison)
    for opt, sweep in sweeps.items():
        claims += _sweep_claims(sweep, opt)
    return claims


# =========================================================================== figures and the README section

def plot_clips(world, indices: Sequence[int], frontend=None, caption: int = 0):
    """Waveform (top) and log-mel spectrogram (bottom, what the audio tower sees) of a few clips of a sound world,
    titled with one of their captions. ``frontend``: a :class:`~labkit.models.audio.LogMel` (default: 64 bands,
    10 ms hop)."""
    import matplotlib.pyplot as plt
    import textwrap

    import torch

    from ..models.audio import LogMel

    frontend = frontend or LogMel(world.sample_rate, n_fft=512, hop_length=160, n_mels=64, fmin=50.0)
    indices = list(indices)
    fig, axes = plt.subplots(2, len(indices), figsize=(3.2 * len(indices), 4.2), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 2]}, layout="constrained")
    for col, i in enumerate(indices):
        wave = world.waveform(i)
        t = np.arange(len(wave)) / world.sample_rate
        block = max(1, world.sample_rate // 200)  # the envelope (min / max per 5 ms): light to draw and to store
        n = len(wave) // block * block
        lo, hi = wave[:n].reshape(-1, block).min(axis=1), wave[:n].reshape(-1, block).max(axis=1)
        axes[0, col].fill_between(t[:n:block], lo, hi, color="0.25", linewidth=0)
        axes[0, col].set_xlim(0, t[-1])
        axes[0, col].set_ylim(-1, 1)
        axes[0, col].set_title("\n".join(textwrap.wrap(world.captions[i][caption], 34)), fontsize=8)
        with torch.no_grad():
            mel = frontend(torch.from_numpy(wave)).numpy()
        axes[1, col].imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=mel.max() - 50, vmax=mel.max(),
                            interpolation="nearest",
                            extent=(0, t[-1], 0, mel.shape[0]))
        axes[1, col].set_xlabel("seconds")
        if col == 0:
            axes[0, col].set_ylabel("amplitude")
            axes[1, col].set_ylabel("mel band")
    return fig


def plot_lambda_curves(sweeps: Mapping[str, GrlSweep]):
    """Seed 000 Fig. 3a–b for each optimiser: mean retrieval (left) and Δgap / silhouette (right) against λ, mean ±
    std over seeds."""
    import matplotlib.pyplot as plt

    from ..viz import plot_metric_curve

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    rec, geo = {}, {}
    for opt, sweep in sweeps.items():
        x, ys = sweep.curves("lambda", {"mean recall": "mean_recall"})
        rec[f"mean recall ({opt})"] = ys["mean recall"]
        _, ys = sweep.curves("lambda", {"gap": "gap", "silhouette": "silhouette"})
        geo[f"Δgap ({opt})"] = ys["gap"]
        geo[f"silhouette ({opt})"] = ys["silhouette"]
    plot_metric_curve(x, rec, xlabel="λ", ylabel="mean recall (%)", title="(a) audio–text retrieval vs λ", ax=axes[0])
    plot_metric_curve(x, geo, xlabel="λ", ylabel="value", title="(b) modality gap and silhouette vs λ", ax=axes[1])
    for ax in axes:
        ax.set_xticks(x)
    return fig


def table1(sweep: GrlSweep, digits: int = 1) -> pd.DataFrame:
    """Seed 000 Table 1's layout for one sweep: T-A and A-T R@1/5/10 and their averages, mean ± std over seeds."""
    t = sweep.table.assign(**{"T-A avg": sweep.table[[f"t2i_R@{k}" for k in (1, 5, 10)]].mean(axis=1),
                              "A-T avg": sweep.table[[f"i2t_R@{k}" for k in (1, 5, 10)]].mean(axis=1)})
    keys = [*(f"t2i_R@{k}" for k in (1, 5, 10)), *(f"i2t_R@{k}" for k in (1, 5, 10)), "T-A avg", "A-T avg"]
    out = Sweep(t, sweep.factors).pm(keys, digits=digits)
    out.index = [f"λ = {_lambda_key(l)}" + (" (baseline)" if l == 0 else "") for l in out.index]
    return out.rename(columns=lambda c: c.replace("t2i_", "T-A ").replace("i2t_", "A-T "))


def results_markdown(comparison: ModalityComparison, sweeps: Mapping[str, GrlSweep], claims: Sequence[Claim],
                     settings: Mapping[str, Any]) -> str:
    """notebook 05's section of the README's results: the audio vs image gap table, the λ sweeps, the verdicts."""
    n = len(comparison.sweep.seeds)
    gap = comparison.table(("gap", "silhouette", "pc1_modality_separation", "pc1_variance_share"))
    rec = comparison.recall_table()
    lines = ["### 05 · Audio–text vs image–text: the gap and the GRL on audio (seed 000, CLAP half)", "",
             f"Embedded sound world, {settings['n_clips']} clips of {settings['clip_seconds']:g} s (image world: "
             f"{settings['n_clips']} pairs), {settings['epochs']} epochs, batch {settings['batch_size']}, "
             f"{n} seeds, mean ± std; AdamW lr {settings['lr']:g}, SGD lr {settings['sgd_lr']:g} (weight decay "
             f"{settings.get('sgd_weight_decay', 0.1):g}, classifier lr x{settings.get('sgd_classifier_lr_scale') or 1:g}) "
             f"(momentum {settings['momentum']:g}).", "",
             "**Gap family, audio vs image (same budget).**", "", markdown_table(gap), "",
             "**Retrieval (test split; x = audio or image).**", "", markdown_table(rec), ""]
    for opt, sweep in sweeps.items():
        lines += [f"**GRL λ sweep on audio, {opt}.**", "",
                  markdown_table(sweep.pm(list(SUMMARY_KEYS), digits=3)), ""]
    lines += ["**Verdicts.**", ""]
    lines += [f"- `{c.id}` — {c.claim}: **{c.verdict}** ({c.measured}: {c.mean:+.3f} ± {c.std:.3f}, n={c.n})"
              for c in claims]
    return "\n".join(lines)
