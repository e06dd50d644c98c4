r"""Notebook 02's study: where the modality gap comes from — temperature, width, initialisation, the loss landscape
along the gap, information imbalance.

    settings = gap_settings("smoke")
    physics = run_gap_physics(settings, seed=0)          # every training of every experiment, one run_grid
    physics.table("temperature")                          # mean ± std per arm: gap at init and trained, R@1, …
    physics.landscape()                                   # loss and R@K along the gap vector (Mind the Gap Table 1)
    toy = toy_sphere()                                    # Mind the Gap's 6 pairs on S², with and without mismatch
    physics.claims(toy)                                   # the literature's expected directions, computed verdicts

Each experiment is a set of *arms* — a temperature, an embedding width, an initialisation, a caption style — and
every arm is one CLIP per seed trained by :func:`labkit.studies.recipe.train_clip`; the arms of all experiments are
one :func:`labkit.studies.sweep.run_grid` (an arm shared by two experiments, such as the 1/τ = 100 random-init run
of the temperature and the init experiments, is trained once). Seeds fix the model's initialisation and the batch
order; every arm of a seed sees the same data, so differences are paired.

The experiments and the direction the literature expects:

* **temperature** (Liang et al., *Mind the Gap*, NeurIPS 2022, supp. Fig. 8): with 1/τ fixed
  (``TrainConfig(temperature=τ)`` freezes ``logit_scale``), the gap is preserved at 1/τ = 100 and shrinks as τ rises.
* **width** (Fahim et al., *It's Not a Modality Gap*, 2024): the gap of plain CLIP training grows with the
  embedding width (0.08–0.13 at 32-d, 0.28–0.37 at 64-d, 0.61–0.69 at 128-d).
* **init** (Mind the Gap §4.2): at 1/τ = 100, an initialisation whose gap was removed by an orthogonal (Procrustes)
  map ends with a much smaller gap than a random one (0.746 vs 1.299), though the gap grows back from 0.039.
* **landscape** (Mind the Gap §4.1, Table 1, Fig. 3): shifting both modalities towards each other along the gap
  vector raises the contrastive loss at a low temperature (the trained gap sits in a minimum of the loss), and moves
  retrieval only a little (≤ ~2 points). Their toy: 6 pairs on S² with two mismatched pairs — at low temperature the
  loss is lowest at a non-zero gap (only mismatched pairs repel), at high temperature at zero gap.
* **imbalance** (Schrodi et al., *Two Effects, One Trigger*, ICLR 2025): the less a caption says about its image,
  the larger the gap — captions naming 1 … 4 of each object's attributes (``pairing="attributes_k"``,
  :mod:`labkit.data.caption_styles_imbalance`).

How the Procrustes-aligned initialisation is realised in a trainable model: at random initialisation, embed the
training split, solve :math:`R^\star = \arg\min_{R^\top R = I}\lVert T R - I\rVert_F` (scipy's
``orthogonal_procrustes``; T, I the text and image embeddings of the training pairs), and fold :math:`R^\star` into
the text tower's last linear map — ``text_projection ← text_projection · R*``. Because the embeddings are
L2-normalised after that map and R* is orthogonal, the new model's text embeddings are *exactly* the old ones
rotated by R* (normalisation commutes with rotations): the gap is gone at step 0 and the model is an ordinary CLIP
(same architecture, same parameter count, saved as a checkpoint that :func:`~labkit.studies.recipe.train_clip`
loads). Mind the Gap instead keeps R* as a frozen matrix after the text tower; the two are the same function at
initialisation, and differ during training only in the coordinates AdamW's per-coordinate step sees.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import make_world
from ..data.caption_styles_imbalance import imbalance_style
from ..evaluate import Embeddings, embed_dataset
from ..io import save_checkpoint
from ..losses import clip_loss
from ..metrics import (gap_dimension_shares, linear_separability, modality_gap, relative_modality_gap,
                       retrieval_recall, shift_along_gap)
from ..metrics.gap import gap_direction
from ..models import create_model, embed_dim_of
from ..report import Claim, paired_verdict
from .recipe import profile_settings, train_clip
from .sweep import Sweep, paired_difference, run_grid

__all__ = ["GAP_PROFILES", "gap_settings", "LEARNED", "LEARNED_FACTOR", "PRESERVED_RATIO", "TEN_X", "EXPERIMENTS",
           "width_model", "inverse_temperature", "procrustes_aligned_checkpoint", "RunRecord", "GapPhysics",
           "run_gap_physics", "gap_landscape", "toy_sphere", "equivalence_verdict", "results_markdown"]

LEARNED = "learned"  # the temperature arm whose 1/τ is learned (CLIP's default, starting at 1/0.07)
LEARNED_FACTOR = 5.0  # a run has learned when its test t2i R@1 is at least this many times chance
PRESERVED_RATIO = 0.8  # "the gap is preserved": trained gap ≥ 0.8 × its value at initialisation
TEN_X = 10.0  # the bar for the 1/τ = 100 baseline: t2i R@1 ≥ 10 × chance
EXPERIMENTS = ("temperature", "width", "init", "imbalance")
SHIFT_RETRIEVAL_BOUND = 2.0  # Mind the Gap Table 1: shifting moves accuracy by at most ~2 points

# Per-profile sizes. All arms share one recipe (world, model, batch, learning rate, epochs): 1/τ = 100 and 1/τ = 1
# learn slowest, so the budget is set by them (small batches: many steps; see the notebook). "smoke" is what
# `make run` executes on 2 CPU cores (a smaller sibling of notebook 01's model, `labkit-micro`, so that the ~30
# trainings fit in about three minutes); "full" uses notebook 01's labkit-tiny on a larger world; "tiny" is what the
# tests execute (it proves the notebook runs end to end; its models barely train). Smoke runs 24 trainings of ~6.6 s
# (36 took 238 s, over the 3-minute budget): 1/τ ∈ {100, 10, 1, learned}, widths 64 and 128 (Fahim et al.'s two
# largest), the imbalance experiment at its two ends (1 and 4 attributes); "full" runs 1/τ = 50, 30, 20 too, widths
# 16 / 32 / 64 / 128 and all five imbalance levels. A 2200-pair world was measured too small: the 1/τ = 100 arm
# reached only 8.4 ± 3.4 × chance there (16.8 ± 1.2 × on 3000 pairs).
GAP_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_pairs": 3000, "model_name": "labkit-micro", "epochs": 4, "batch_size": 32, "lr": 1e-3,
              "warmup_steps": 20, "n_seeds": 3, "temperatures": (100, 10, 1, LEARNED), "widths": (64, 128),
              "side_temperature": LEARNED, "imbalance_levels": (1, 4), "landscape_scales": (100, 30, 10, 1)},
    "full": {"n_pairs": 20000, "model_name": "labkit-tiny", "epochs": 10, "batch_size": 64, "lr": 1e-3,
             "warmup_steps": 100, "n_seeds": 3, "temperatures": (100, 50, 30, 20, 10, 1, LEARNED),
             "widths": (16, 32, 64, 128), "side_temperature": LEARNED, "imbalance_levels": (0, 1, 2, 3, 4),
             "landscape_scales": (100, 30, 10, 1)},
    "tiny": {"n_pairs": 300, "model_name": "labkit-micro", "epochs": 1, "batch_size": 32, "lr": 1e-3,
             "warmup_steps": 2, "n_seeds": 2, "temperatures": (100, 1, LEARNED), "widths": (16, 64),
             "side_temperature": LEARNED, "imbalance_levels": (1, 4), "landscape_scales": (100, 1)},
}


def gap_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The study's sizes for ``profile`` (:data:`GAP_PROFILES`), non-None overrides applied."""
    return profile_settings(profile, GAP_PROFILES, **overrides)


def _temperature_label(t) -> str:
    if isinstance(t, str):
        if t != LEARNED:
            raise ValueError(f"a temperature arm is 1/τ (a number in [1, 100]) or {LEARNED!r}, got {t!r}")
        return t
    v = float(t)
    if not (1.0 <= v <= 100.0):
        raise ValueError(f"1/τ must be in [1, 100] (CLIP's clamp), got {t!r}")
    return f"{v:g}"


def inverse_temperature(label: str) -> float | None:
    """1/τ of a temperature arm (``None`` for the learned one)."""
    return None if label == LEARNED else float(label)


def width_model(base: str, width: int) -> str:
    """The model config of embedding width ``width`` in ``base``'s family: ``base`` itself, or ``base-dim<width>``
    (JSON configs shipped in ``labkit/models/configs/``)."""
    if embed_dim_of(base) == int(width):
        return base
    name = f"{base}-dim{int(width)}"
    try:
        embed_dim_of(name)
    except ValueError:
        raise ValueError(f"no model config {name!r} for embedding width {width} (base {base!r}); add "
                         f"labkit/models/configs/{name}.json") from None
    return name


def _train_args(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: settings[k] for k in ("epochs", "batch_size", "lr", "warmup_steps") if k in settings}


# ============================================================================ the Procrustes-aligned init


def procrustes_aligned_checkpoint(model_name: str, train_set, seed: int, path: str | Path) -> dict[str, float]:
    """Build ``model_name`` at random initialisation (``seed``), remove its gap on ``train_set`` by an orthogonal map
    folded into ``text_projection`` (see the module docstring), and save it to ``path`` as a checkpoint.

    Returns the gap of the training pairs before and after the rotation.
    """
    from scipy.linalg import orthogonal_procrustes

    bundle = create_model(model_name, seed=seed)
    model = bundle.model
    if not isinstance(getattr(model, "text_projection", None), torch.Tensor):
        raise ValueError(f"model {model_name!r} has no text_projection matrix to fold the rotation into")
    emb = embed_dataset(model, train_set, bundle.tokenizer, device="cpu")
    image, text = emb.image.astype(np.float64), emb.paired_text.astype(np.float64)
    rotation, _ = orthogonal_procrustes(text, image)  # argmin ||T R − I||_F over orthogonal R
    with torch.no_grad():
        model.text_projection.copy_(model.text_projection @ torch.from_numpy(rotation).to(model.text_projection))
    save_checkpoint(path, {"state_dict": model.state_dict()})
    return {"gap_before": modality_gap(image, text), "gap_after": modality_gap(image, text @ rotation)}


# ============================================================================ one training


@dataclass
class RunRecord:
    """What one training leaves for the notebook (the model itself is not kept: ~30 of them would hold ~0.5 GB)."""

    init: Embeddings
    final: Embeddings
    history: pd.DataFrame
    metrics: dict[str, float]


def _extra(emb: Embeddings, seed: int) -> dict[str, float]:
    image, text = emb.image, emb.paired_text
    out = {"relative_gap": relative_modality_gap(image, text), "separability": linear_separability(image, text, seed=seed)}
    out.update(gap_dimension_shares(image, text, ks=(1, 4)))
    return out


def _train_arm(world, seed: int, temperature: str, width: int, init: str, settings: Mapping[str, Any],
               device: str) -> tuple[dict[str, float], RunRecord]:
    model_name = width_model(settings["model_name"], width)
    inv = inverse_temperature(temperature)
    with tempfile.TemporaryDirectory(prefix="labkit-gap-") as tmp:
        checkpoint, aligned = None, {}
        if init == "procrustes":
            checkpoint = Path(tmp) / "aligned_init.pt"
            aligned = procrustes_aligned_checkpoint(model_name, world.train, seed, checkpoint)
        elif init != "random":
            raise ValueError(f"init must be 'random' or 'procrustes', got {init!r}")
        result = train_clip(world, seed=seed, model_name=model_name, checkpoint=checkpoint, device=device,
                            temperature=None if inv is None else 1.0 / inv, progress=False, **_train_args(settings))
    numbers = {**result.metrics, **_extra(result.final, seed)}
    numbers.update({f"init/{k}": v for k, v in {**result.metrics_init, **_extra(result.init, seed)}.items()})
    numbers.update({f"chance/{k}": v for k, v in result.chance.items()})
    numbers["t2i_over_chance"] = result.metrics["t2i_R@1"] / result.chance["t2i_R@1"]
    numbers["gap_ratio"] = result.metrics["gap"] / result.metrics_init["gap"]
    numbers["logit_scale"] = float(result.history["logit_scale"].iloc[-1])
    numbers["train_seconds"] = float(result.history["seconds"].sum())
    if aligned:
        numbers["procrustes/train_gap_before"] = aligned["gap_before"]
        numbers["procrustes/train_gap_after"] = aligned["gap_after"]
    return numbers, RunRecord(result.init, result.final, result.history, numbers)


# ============================================================================ the whole study


def _arms(settings: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each experiment's arms as configurations (temperature, width, init, captions)."""
    base_width = embed_dim_of(settings["model_name"])
    side = _temperature_label(settings["side_temperature"])
    arm = lambda t=side, w=base_width, i="random", c="literal": {  # noqa: E731
        "temperature": _temperature_label(t), "width": int(w), "init": i, "captions": c}
    return {
        "temperature": [arm(t=t) for t in settings["temperatures"]],
        "width": [arm(w=w) for w in settings["widths"]],
        "init": [arm(t=100, i="random"), arm(t=100, i="procrustes")],
        "imbalance": [arm(c=imbalance_style(int(k))) for k in settings["imbalance_levels"]],
    }


def run_gap_physics(settings: Mapping[str, Any], seed: int = 0, device: str = "auto",
                    experiments: Sequence[str] = EXPERIMENTS, log: Callable[[str], None] | None = print) -> "GapPhysics":
    """Train every arm of ``experiments`` for seeds ``seed … seed + n_seeds − 1`` on the embedded world of ``seed``.

    One :func:`~labkit.studies.sweep.run_grid` over the union of the arms (shared arms trained once); returns a
    :class:`GapPhysics` whose ``runs[(temperature, width, init, captions, seed)]`` are :class:`RunRecord`.
    """
    unknown = set(experiments) - set(EXPERIMENTS)
    if unknown:
        raise ValueError(f"experiments must be among {EXPERIMENTS}, got {sorted(unknown)}")
    arms = {k: v for k, v in _arms(settings).items() if k in experiments}
    configs: list[dict[str, Any]] = []
    for group in arms.values():
        for c in group:
            if c not in configs:
                configs.append(c)
    worlds: dict[str, Any] = {}

    def world_of(captions: str):
        if captions not in worlds:
            worlds[captions] = make_world(n_pairs=settings["n_pairs"], seed=seed, pairing=captions)
        return worlds[captions]

    def run(seed: int, temperature: str, width: int, init: str, captions: str):
        numbers, record = _train_arm(world_of(captions), seed, temperature, width, init, settings, device)
        if log is not None:
            log(f"1/τ={temperature:>7} d={width:<3} init={init:<10} captions={captions:<12} seed={seed}: "
                f"gap {numbers['init/gap']:.3f} → {numbers['gap']:.3f}, t2i R@1 {numbers['t2i_R@1']:.1f} % "
                f"({numbers['t2i_over_chance']:.0f}× chance), {numbers['train_seconds']:.1f} s")
        return numbers, record

    seeds = [seed + i for i in range(int(settings["n_seeds"]))]
    t0 = time.perf_counter()
    sweep = run_grid(run, configs, seeds, log=None)
    return GapPhysics(sweep.table, sweep.factors, sweep.runs, arms=arms, settings=dict(settings),
                      seconds=time.perf_counter() - t0)


_SHOW = {"gap": "Δgap", "init/gap": "Δgap at init", "gap_ratio": "trained / init", "relative_gap": "relative gap",
         "separability": "separability", "silhouette": "silhouette", "t2i_R@1": "t2i R@1 (%)",
         "i2t_R@1": "i2t R@1 (%)", "t2i_over_chance": "t2i R@1 / chance", "logit_scale": "1/τ at the end"}


@dataclass
class GapPhysics(Sweep):
    """All trainings of the study: ``table`` (one row per arm × seed), ``arms`` (each experiment's configurations)."""

    arms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    # ------------------------------------------------------------------ selection
    def rows(self, experiment: str) -> pd.DataFrame:
        """The rows of one experiment, with an ``arm`` column naming the varied factor's value."""
        if experiment not in self.arms:
            raise KeyError(f"experiment {experiment!r} was not run (ran: {sorted(self.arms)})")
        varied = {"temperature": "temperature", "width": "width", "init": "init", "imbalance": "captions"}[experiment]
        parts = []
        for c in self.arms[experiment]:
            sub = self._select(c).copy()
            sub.insert(0, "arm", c[varied])
            parts.append(sub)
        return pd.concat(parts, ignore_index=True)

    def per_seed_of(self, experiment: str, arm, metric: str) -> pd.Series:
        sub = self.rows(experiment)
        return sub[sub["arm"] == arm].set_index("seed")[metric].sort_index()

    def trend(self, experiment: str, metric: str, levels: list, direction: str):
        """A claimed trend of ``metric`` over ``levels`` (in order) of ``experiment``: the paired change from the
        first level to the last, the per-level means, whether the means move monotonically in ``direction``
        (``"increase"`` | ``"decrease"``), and the verdict ("mixed" where the ends differ but the means zig-zag)."""
        d = self.paired_arms(experiment, metric, levels[0], levels[-1])
        means = [float(self.per_seed_of(experiment, level, metric).mean()) for level in levels]
        step = (lambda a, b: b > a) if direction == "increase" else (lambda a, b: b < a)
        monotone = all(step(a, b) for a, b in zip(means, means[1:]))
        verdict = paired_verdict(d.mean, d.se, direction)
        if verdict == "holds" and not monotone:
            verdict = "mixed"
        return d, means, monotone, verdict

    def paired_arms(self, experiment: str, metric: str, a, b):
        """Per-seed difference ``metric(b) − metric(a)`` between two arms of ``experiment``."""
        va, vb = self.per_seed_of(experiment, a, metric), self.per_seed_of(experiment, b, metric)
        common = va.index.intersection(vb.index)
        return paired_difference(va.loc[common].to_numpy(), vb.loc[common].to_numpy())

    def arm_table(self, experiment: str, metrics: Sequence[str] = ("init/gap", "gap", "gap_ratio", "relative_gap",
                                                               "separability", "silhouette", "t2i_R@1",
                                                               "t2i_over_chance"), digits: int = 3) -> pd.DataFrame:
        """Mean ± std over seeds per arm of ``experiment``."""
        sub = self.rows(experiment)
        g = sub.groupby("arm", sort=False)[list(metrics)]
        mean, std = g.mean(), g.std().fillna(0.0)
        out = pd.DataFrame(index=mean.index)
        for m in metrics:
            d = 1 if m in ("t2i_R@1", "i2t_R@1", "t2i_over_chance", "logit_scale") else digits
            out[_SHOW.get(m, m)] = [f"{a:.{d}f} ± {s:.{d}f}" for a, s in zip(mean[m], std[m])]
        out.index.name = experiment
        return out

    def learned(self, experiment: str, arm) -> tuple[bool, float]:
        """Whether an arm learned (mean t2i R@1 ≥ LEARNED_FACTOR × chance) and its mean factor over chance."""
        v = float(self.per_seed_of(experiment, arm, "t2i_over_chance").mean())
        return v >= LEARNED_FACTOR, v

    def record(self, experiment: str, arm, seed: int) -> RunRecord:
        config = next(c for c in self.arms[experiment]
                      if c[{"temperature": "temperature", "width": "width", "init": "init",
                            "imbalance": "captions"}[experiment]] == arm)
        return self.runs[(*config.values(), seed)]

    # ------------------------------------------------------------------ the landscape along the gap
    def landscape(self, arm: str = "100", deltas: Iterable[float] | None = None,
                  scales: Sequence[float] | None = None) -> pd.DataFrame:
        """:func:`gap_landscape` of every seed's trained test embeddings of a temperature arm (one row per seed ×
        shift), plus a row per seed at the shift that closes the gap (``closing=True``)."""
        scales = tuple(scales or self.settings.get("landscape_scales", (100, 30, 10, 1)))
        frames = []
        for s in self.seeds:
            frame = gap_landscape(self.record("temperature", arm, s).final, deltas=deltas, scales=scales)
            frame.insert(0, "seed", s)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------------ metrics and claims
    def metrics(self) -> dict[str, float]:
        """Flat numbers for ``metrics.json``: ``<metric>@<experiment>=<arm>`` (mean over seeds) and ``…/std``."""
        keys = ("gap", "init/gap", "gap_ratio", "relative_gap", "separability", "silhouette", "t2i_R@1", "i2t_R@1",
                "t2i_R@5", "i2t_R@5", "t2i_over_chance", "logit_scale", "gap_top1_share", "gap_top4_share")
        out: dict[str, float] = {}
        for experiment in self.arms:
            sub = self.rows(experiment)
            for arm, group in sub.groupby("arm", sort=False):
                for m in keys:
                    out[f"{m}@{experiment}={arm}"] = float(group[m].mean())
                    if len(group) > 1:
                        out[f"{m}@{experiment}={arm}/std"] = float(group[m].std())
        out["n_seeds"] = float(len(self.seeds))
        out["n_trainings"] = float(len(self.table))
        out["study_seconds"] = float(self.seconds)
        return out

    def claims(self, toy: pd.DataFrame | None = None, landscape: pd.DataFrame | None = None) -> list[Claim]:
        """The literature's expected directions, one :class:`~labkit.report.Claim` each, verdicts computed from
        the per-seed numbers (an arm that did not learn makes its claims ``inconclusive``)."""
        out: list[Claim] = []

        def gate(claim: Claim, arms: list[tuple[str, Any]]) -> Claim:
            failed = [(e, a, f) for e, a in arms for ok, f in [self.learned(e, a)] if not ok]
            if failed:
                claim.detail = (f"an arm did not learn ({', '.join(f'{e}={a}: {f:.1f}× chance' for e, a, f in failed)}"
                                f", needed {LEARNED_FACTOR:g}×); measured verdict was {claim.verdict!r}. "
                                + claim.detail)
                claim.verdict = "inconclusive"
            return claim

        if "temperature" in self.arms:
            fixed = sorted((a["temperature"] for a in self.arms["temperature"] if a["temperature"] != LEARNED),
                           key=float, reverse=True)  # 1/τ from large (cold) to small (hot)
            if len(fixed) >= 2:
                cold, hot = fixed[0], fixed[-1]
                d, means, monotone, verdict = self.trend("temperature", "gap", fixed, "decrease")
                out.append(gate(Claim(
                    "gap_falls_as_temperature_rises", "the gap shrinks as the temperature τ rises (fixed τ)",
                    "Mind the Gap, supp. Fig. 8", f"paired change of Δgap from 1/τ = {cold} to 1/τ = {hot}; "
                    f"monotone in the means over 1/τ = {', '.join(fixed)}: {monotone}", d.mean, d.std, d.n, verdict,
                    "mean Δgap " + " → ".join(f"{m:.3f} (1/τ={t})" for m, t in zip(means, fixed))),
                    [("temperature", t) for t in fixed]))
            if "100" in [a["temperature"] for a in self.arms["temperature"]]:
                ratio = self.per_seed_of("temperature", "100", "gap_ratio").to_numpy()
                std = float(ratio.std(ddof=1)) if len(ratio) > 1 else float("nan")
                se = std / math.sqrt(len(ratio)) if len(ratio) > 1 else float("nan")
                ok10, factor = self.learned("temperature", "100")
                out.append(gate(Claim(
                    "gap_preserved_at_low_temperature", "at 1/τ = 100 contrastive training preserves the initial gap",
                    "Mind the Gap §4, supp. Fig. 8", f"trained Δgap / Δgap at init at 1/τ = 100 (holds if above "
                    f"{PRESERVED_RATIO:g} by 2 standard errors)", float(ratio.mean()), std, len(ratio),
                    paired_verdict(float(ratio.mean()) - PRESERVED_RATIO, se, "increase"),
                    f"t2i R@1 at 1/τ = 100 is {factor:.1f}× chance (the bar is {TEN_X:g}×)."),
                    [("temperature", "100")]))

        if "width" in self.arms and len(self.arms["width"]) >= 2:
            widths = sorted(a["width"] for a in self.arms["width"])
            d, means, monotone, verdict = self.trend("width", "gap", widths, "increase")
            out.append(gate(Claim(
                "gap_grows_with_width", "the gap of plain CLIP training grows with the embedding width",
                "Fahim et al. 2024 (It's Not a Modality Gap)", f"paired change of Δgap from {widths[0]}-d to "
                f"{widths[-1]}-d at 1/τ = {self.arms['width'][0]['temperature']}; monotone in the means: {monotone}",
                d.mean, d.std, d.n, verdict,
                "mean Δgap " + " → ".join(f"{m:.3f} ({w}-d)" for m, w in zip(means, widths))),
                [("width", w) for w in widths]))

        if "init" in self.arms:
            d = self.paired_arms("init", "gap", "random", "procrustes")
            out.append(gate(Claim(
                "aligned_init_ends_with_smaller_gap", "at 1/τ = 100 an init without a gap (Procrustes-aligned) ends "
                "training with a smaller gap than a random init", "Mind the Gap §4.2 (1.299 vs 0.746)",
                "paired difference of the trained Δgap, aligned − random init", d.mean, d.std, d.n,
                paired_verdict(d.mean, d.se, "decrease"),
                f"Δgap at init: random {self.per_seed_of('init', 'random', 'init/gap').mean():.3f}, aligned "
                f"{self.per_seed_of('init', 'procrustes', 'init/gap').mean():.3f}"),
                [("init", "random"), ("init", "procrustes")]))
            g = self.per_seed_of("init", "procrustes", "gap") - self.per_seed_of("init", "procrustes", "init/gap")
            dg = paired_difference(self.per_seed_of("init", "procrustes", "init/gap").to_numpy(),
                                   self.per_seed_of("init", "procrustes", "gap").to_numpy())
            out.append(gate(Claim(
                "aligned_init_gap_regrows", "from an aligned init, contrastive training at 1/τ = 100 opens a gap again",
                "Mind the Gap §4.2 (0.039 → 0.746)", "paired change of Δgap during training, aligned init",
                dg.mean, dg.std, dg.n, paired_verdict(dg.mean, dg.se, "increase"),
                f"per seed: {', '.join(f'{v:+.3f}' for v in g.to_numpy())}"), [("init", "procrustes")]))

        if landscape is not None and len(landscape):
            closing = landscape[landscape["closing"]].set_index("seed").sort_index()
            start = landscape[landscape["delta"] == 0.0].set_index("seed").sort_index()
            scale = max(s for s in self.settings.get("landscape_scales", (100,)))
            col = f"loss@{scale:g}"
            d = paired_difference(start[col].to_numpy(), closing[col].to_numpy())
            out.append(gate(Claim(
                "closing_gap_raises_loss", f"shifting the modalities along the gap until it closes raises the "
                f"contrastive loss at 1/τ = {scale:g} (the trained gap sits in a loss minimum)",
                "Mind the Gap §4.1, Fig. 3", f"paired change of the test-set contrastive loss at 1/τ = {scale:g}, "
                "gap closed by the shift − unshifted, models trained at 1/τ = 100", d.mean, d.std, d.n,
                paired_verdict(d.mean, d.se, "increase")), [("temperature", "100")]))
            r = paired_difference(start["mean_R@1"].to_numpy(), closing["mean_R@1"].to_numpy())
            out.append(gate(Claim(
                "shift_moves_retrieval_little", f"closing the gap by the shift changes retrieval by at most "
                f"~{SHIFT_RETRIEVAL_BOUND:g} points", "Mind the Gap Table 1",
                "paired change of mean R@1 (i2t, t2i; points), gap closed by the shift − unshifted, models trained "
                f"at 1/τ = 100 (holds if the ±2 se interval lies within ±{SHIFT_RETRIEVAL_BOUND:g})",
                r.mean, r.std, r.n, equivalence_verdict(r.mean, r.se, SHIFT_RETRIEVAL_BOUND)),
                [("temperature", "100")]))

        if toy is not None and len(toy):
            opt = toy.loc[toy.groupby(["mismatched", "scale"])["loss"].idxmin()].set_index(["mismatched", "scale"])
            cold, hot = toy["scale"].max(), toy["scale"].min()
            g_cold, g_hot = abs(opt.loc[(True, cold), "gap"]), abs(opt.loc[(True, hot), "gap"])
            control = float(opt.loc[False, "gap"].abs().max())
            verdict = "holds" if (g_cold > 0.1 and g_hot < 0.05 and control < 0.05) else "does not hold"
            out.append(Claim(
                "toy_mismatch_keeps_gap_at_low_temperature", "with mismatched pairs, the loss is lowest at a non-zero "
                "gap at low temperature and at zero gap at high temperature", "Mind the Gap §4.1, Fig. 3 (3-D sphere)",
                f"|Δgap| at the loss minimum, 6 pairs on S² with 2 mismatched, 1/τ = {cold:g} (deterministic)",
                g_cold, float("nan"), 1, verdict,
                f"|Δgap| at the minimum: {g_cold:.3f} at 1/τ = {cold:g}, {g_hot:.3f} at 1/τ = {hot:g}; without "
                f"mismatched pairs at most {control:.3f} at any temperature."))

        if "imbalance" in self.arms and len(self.arms["imbalance"]) >= 2:
            levels = [a["captions"] for a in self.arms["imbalance"]]
            levels.sort(key=lambda c: int(c.rsplit("_", 1)[1]))
            d, means, monotone, verdict = self.trend("imbalance", "gap", levels, "decrease")
            out.append(gate(Claim(
                "gap_shrinks_as_captions_complete", "the gap shrinks as captions name more of what the image shows "
                "(less information imbalance)", "Schrodi et al. 2025 (Two Effects, One Trigger), §4",
                f"paired change of Δgap from {levels[0]} to {levels[-1]} attributes named; monotone in the means: "
                f"{monotone}", d.mean, d.std, d.n, verdict,
                "mean Δgap " + " → ".join(f"{m:.3f} ({c})" for m, c in zip(means, levels))),
                [("imbalance", c) for c in levels]))

        if "temperature" in self.arms:
            sub = self.rows("temperature")
            by_gap = sub.groupby("arm", sort=False)["gap"].mean()
            arm = by_gap.idxmin()
            sep = self.per_seed_of("temperature", arm, "separability").to_numpy()
            std = float(sep.std(ddof=1)) if len(sep) > 1 else float("nan")
            se = std / math.sqrt(len(sep)) if len(sep) > 1 else float("nan")
            out.append(gate(Claim(
                "small_gap_still_separable", "a small centroid distance does not mean mixed modalities: a linear "
                "classifier still tells them apart", "Fahim et al. 2024 (separability 1.0 at Δgap 0.28)",
                f"held-out linear separability at the arm with the smallest Δgap (1/τ = {arm}, Δgap "
                f"{by_gap[arm]:.3f}); holds if above 0.5 by 2 standard errors", float(sep.mean()), std, len(sep),
                paired_verdict(float(sep.mean()) - 0.5, se, "increase")), [("temperature", arm)]))
        return out


def equivalence_verdict(mean: float, se: float, bound: float, k: float = 2.0) -> str:
    """Verdict on a claim of *no large change*: ``holds`` when ``mean ± k·se`` lies inside ``±bound``, ``does not
    hold`` when it lies entirely outside, ``inconclusive`` otherwise (or when ``se`` is unknown)."""
    if not (math.isfinite(mean) and math.isfinite(se)):
        return "inconclusive"
    lo, hi = mean - k * se, mean + k * se
    if -bound <= lo and hi <= bound:
        return "holds"
    if lo > bound or hi < -bound:
        return "does not hold"
    return "inconclusive"


# ============================================================================ the landscape along the gap


def _signed_gap(image: np.ndarray, text: np.ndarray, g: np.ndarray) -> float:
    diff = image.mean(axis=0) - text.mean(axis=0)
    return float(np.linalg.norm(diff) * np.sign(diff @ g))


def gap_landscape(emb: Embeddings, deltas: Iterable[float] | None = None,
                  scales: Sequence[float] = (100, 30, 10, 1)) -> pd.DataFrame:
    r"""The contrastive loss and retrieval as both modalities move along the gap vector (Mind the Gap §4.1 /
    Table 1, after their ``get_gap_stats``).

    The unit gap direction :math:`g` comes from the image / first-caption pairs; every image moves by
    :math:`-\delta g/2` and every caption by :math:`+\delta g/2`, then all rows are re-normalised
    (:func:`labkit.metrics.shift_along_gap`). For each δ: the signed Δgap (positive while the image centroid is
    still on its own side), the symmetric InfoNCE of the paired test set at each ``1/τ`` in ``scales`` (one batch of
    all pairs: ``loss@<1/τ>``), and retrieval R@1/5/10 both ways over all captions. One more row, ``closing=True``,
    is at the δ that closes the gap (found by root finding on the signed gap).
    """
    from scipy.optimize import brentq

    image, first, text = emb.image.astype(np.float64), emb.paired_text.astype(np.float64), emb.text.astype(np.float64)
    g = gap_direction(image, first)
    deltas = np.linspace(-1.0, 2.5, 36) if deltas is None else np.asarray(list(deltas), dtype=float)
    def along(d: float) -> float:  # the centroid difference's component along g: continuous in δ
        x, y = shift_along_gap(image, first, d, direction=g)
        return float((x.mean(axis=0) - y.mean(axis=0)) @ g)

    hi = 0.5
    while along(hi) > 0 and hi < 8.0:
        hi *= 1.5
    closing = brentq(along, 0.0, hi, xtol=1e-7) if along(hi) <= 0 else float("nan")
    rows = []
    for delta, is_closing in [*((float(d), False) for d in deltas), (closing, True)]:
        if not math.isfinite(delta):
            continue
        x, y = shift_along_gap(image, first, delta, direction=g)
        _, y_all = shift_along_gap(image, text, delta, direction=g)
        row = {"delta": delta, "closing": is_closing, "gap": _signed_gap(x, y, g)}
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        for s in scales:
            row[f"loss@{float(s):g}"] = float(clip_loss(xt, yt, float(s)))
        rec = retrieval_recall(x, y_all, emb.text_to_image, ks=(1, 5, 10))
        row.update(rec)
        row["mean_R@1"] = 0.5 * (rec["i2t_R@1"] + rec["t2i_R@1"])
        rows.append(row)
    return pd.DataFrame(rows)


# ============================================================================ Mind the Gap's toy sphere


def _on_sphere(longitude: float, colatitude: float) -> np.ndarray:
    u, v = math.radians(longitude), math.radians(colatitude)
    return np.array([math.cos(u) * math.sin(v), math.sin(u) * math.sin(v), math.cos(v)])


def toy_sphere(scales: Sequence[float] = (100, 30, 10, 1), angles: Iterable[float] | None = None,
               longitudes: Sequence[float] = (-20, 0, 20, 40, 60, 80)) -> pd.DataFrame:
    """Mind the Gap's simulation (§4.1, Fig. 3): 6 image–text pairs on the unit sphere S².

    The images sit on the equator at the given longitudes; every text sits at its image's longitude, shifted by the
    same angle θ in latitude (θ = 0: no gap; the signed gap grows with θ). With ``mismatched=True`` the first two
    texts are swapped, so two pairs are wrong — the only pairs the contrastive loss pushes apart at low temperature.
    Returns one row per (mismatched, 1/τ, θ): ``theta`` (degrees), the signed ``gap`` (centroid distance) and the
    symmetric InfoNCE ``loss``.
    """
    angles = np.arange(-90.0, 90.01, 1.0) if angles is None else np.asarray(list(angles), dtype=float)
    image = np.stack([_on_sphere(u, 90.0) for u in longitudes])
    rows = []
    for mismatched in (True, False):
        for s in scales:
            for theta in angles:
                text = np.stack([_on_sphere(u, 90.0 + theta) for u in longitudes])
                if mismatched:
                    text[[0, 1]] = text[[1, 0]]
                gap = float(np.linalg.norm(image.mean(0) - text.mean(0)) * np.sign(theta))
                loss = float(clip_loss(torch.from_numpy(image), torch.from_numpy(text), float(s)))
                rows.append({"mismatched": mismatched, "scale": float(s), "theta": float(theta), "gap": gap,
                             "loss": loss})
    return pd.DataFrame(rows)


# ============================================================================ results.md


def results_markdown(physics: GapPhysics, claims: Sequence[Claim], landscape_summary: pd.DataFrame | None = None,
                     title: str = "02 · where the gap comes from") -> str:
    """The notebook's ``results.md``: one table per experiment (mean ± std over seeds) and a verdict per claim."""
    s = physics.settings
    parts = [f"### {title}",
             f"{len(physics.table)} trainings ({len(physics.seeds)} seeds per arm) of `{s['model_name']}` on a "
             f"{s['n_pairs']}-pair embedded world, {s['epochs']} epochs at batch {s['batch_size']}, one recipe for "
             "every arm; test split. Verdicts: paired over seeds (holds = expected direction by > 2 standard errors)."]
    cols = ("init/gap", "gap", "gap_ratio", "relative_gap", "separability", "t2i_R@1", "t2i_over_chance")
    for experiment, label in (("temperature", "1/τ"), ("width", "width"), ("init", "init (1/τ = 100)"),
                              ("imbalance", "captions")):
        if experiment in physics.arms:
            t = physics.arm_table(experiment, cols)
            t.index.name = label
            parts.append(t.to_markdown())
    if landscape_summary is not None and len(landscape_summary):
        m, sd = landscape_summary.mean(), landscape_summary.std().fillna(0.0)
        parts.append("Shift along the gap (models trained at 1/τ = 100): " + "; ".join(
            f"{k} {m[k]:.3f} ± {sd[k]:.3f}" for k in landscape_summary.columns) + ".")
    parts.append("\n".join(f"- **{c.verdict}** — {c.claim} ({c.source}): {c.measured} = {c.mean:+.3f}"
                            + (f" ± {c.std:.3f}" if math.isfinite(c.std) else "") + f" (n = {c.n})" for c in claims))
    return "\n\n".join(parts) + "\n"
