r"""Notebook 04's study: seed 000's λ ablation (§6, Fig. 3c–d, Table 2) of the GRL gap reducer, and the GRL beside
other ways of closing the gap.

    settings = sweep_settings("smoke")                   # 1/τ = 100 fixed: the regime where the baseline keeps its gap
    sweep = lambda_sweep(world, lambdas=(0, 0.5, 1, 3), seeds=(0, 1, 2), lambda_on="grl", schedule="dann",
                         classifier_lr_scale=10, **settings)
    sweep.recall_table(); sweep.verdict()["text"]; sweep.claims()
    others = other_gap_closers(world, seeds=(0, 1, 2), **settings)      # uniformity + alignment, a warmer τ
    table = gap_closer_rows(sweep, others, world)                       # + post-hoc centering of the baselines

One CLIP per (λ, seed), trained with :func:`labkit.losses.grl_objective` (eq. 5; optionally with DANN's λ warm-up
and a faster classifier) through :func:`labkit.studies.recipe.train_clip` and measured on the held-out split; the
grid × seeds bookkeeping is :func:`labkit.studies.sweep.run_grid`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..evaluate import embed_dataset, evaluate_embeddings
from ..losses import clip_loss, uniformity_alignment_objective
from ..losses.modality import PAPER_LAMBDAS, ModalityLoss, _check_lambda, grl_objective, stack_modalities
from ..metrics import center_modalities, linear_separability, relative_modality_gap
from ..models import embed_dim_of
from ..report import Claim, paired_verdict
from .recipe import PROFILES, profile_settings, train_clip, world_is_embedded
from .sweep import Sweep, paired_difference, run_grid

__all__ = ["GrlSweep", "lambda_sweep", "sweep_settings", "SWEEP_PROFILES", "RECALL_KEYS", "SUMMARY_KEYS",
           "other_gap_closers", "centred_metrics", "gap_closer_rows", "gap_closer_table", "gap_closer_claims",
           "COMPARISON_KEYS", "gradient_balance"]

RECALL_KEYS = tuple(f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))
SUMMARY_KEYS = ("gap", "silhouette", "relative_gap", "separability", "mean_recall", *RECALL_KEYS,
                "classifier_acc_train", "classifier_acc_test")
COMPARISON_KEYS = ("gap", "relative_gap", "separability", "silhouette", *RECALL_KEYS)
CLAIM_SCORE = {"holds": 1.0, "partly": 0.5, "within noise": 0.5, "does not hold": 0.0}
_CLAIM_VERDICT = {"holds": "holds", "partly": "mixed", "within noise": "inconclusive", "does not hold": "does not hold"}


def _lambda_key(lambd: float) -> str:
    return f"{float(lambd):g}"


@dataclass
class GrlSweep(Sweep):
    """The runs of a λ sweep: ``table`` has one row per (λ, seed); ``runs[(λ, seed)]`` is its
    :class:`~labkit.studies.recipe.TrainResult` (its trained Objective in ``.objective``)."""

    lambda_on: str = "loss"
    schedule: str = "constant"
    classifier_lr_scale: float | None = None

    @property
    def schedule_label(self) -> str:
        """``"λ from step 0"`` or ``"DANN warm-up"`` (+ the classifier's learning-rate multiplier)."""
        label = "DANN warm-up" if self.schedule == "dann" else "λ from step 0"
        return label + (f", classifier lr ×{self.classifier_lr_scale:g}" if self.classifier_lr_scale else "")

    @property
    def lambdas(self) -> list[float]:
        return sorted(self.table["lambda"].unique().tolist())

    @property
    def objectives(self) -> dict:
        return {key: run.objective for key, run in self.runs.items()}

    def recall_table(self) -> pd.DataFrame:
        """Table 2 of seed 000, extended: R@1/R@5/R@10 both directions, mean ± std over seeds, per λ."""
        keys = ["i2t_R@5", "t2i_R@5", "i2t_R@1", "t2i_R@1", "i2t_R@10", "t2i_R@10", "mean_recall"]
        out = self.pm(keys, digits=1)
        out.index = [f"λ = {_lambda_key(l)}" + (" (baseline)" if l == 0 else "") for l in out.index]
        return out

    def best_lambda(self, key: str = "mean_recall") -> float:
        """λ with the highest mean (over seeds) of ``key``."""
        return float(self.table.groupby("lambda")[key].mean().idxmax())

    def metrics(self) -> dict[str, float]:
        """Flat metrics for ``metrics.json``: ``<m>@lambda=<λ>`` (mean over seeds), ``<m>@lambda=<λ>/std`` and
        ``<m>@lambda=<λ>/seed=<s>`` for gap, silhouette, mean_recall, the six recalls and the classifier's
        accuracies."""
        return self.flat_metrics(SUMMARY_KEYS, tag=lambda c: f"lambda={_lambda_key(c['lambda'])}")

    def verdict(self) -> dict[str, Any]:
        """Seed 000's two claims, decided from the numbers.

        (i) *the gap shrinks as λ grows*: ``holds`` if the mean gap decreases at every step of λ and the paired
        (same seed) drop from the smallest to the largest λ is larger than twice its standard error; ``partly`` if
        only the latter; ``does not hold`` otherwise.
        (ii) *retrieval is best at an intermediate λ*: ``holds`` if the best mean ``mean_recall`` is at neither end
        of the λ grid and its paired gain over both ends exceeds twice the standard error; ``within noise`` if it
        is intermediate but a gain does not; ``does not hold`` if the best λ is an endpoint.
        """
        t = self.table
        lambdas = self.lambdas
        if len(lambdas) < 2:
            raise ValueError("a verdict needs at least two values of λ")
        lo, hi = lambdas[0], lambdas[-1]

        means_gap = t.groupby("lambda")["gap"].mean()
        monotone = bool(all(means_gap[b] < means_gap[a] for a, b in zip(lambdas, lambdas[1:])))
        d_gap = self.paired("gap", {"lambda": lo}, {"lambda": hi})
        significant_drop = bool(d_gap.mean < 0 and (not math.isfinite(d_gap.se) or -d_gap.mean > 2 * d_gap.se))
        gap_claim = "holds" if monotone and significant_drop else ("partly" if significant_drop else "does not hold")

        best = self.best_lambda("mean_recall")
        intermediate = best not in (lo, hi)
        gains = {end: self.paired("mean_recall", {"lambda": end}, {"lambda": best}) for end in (lo, hi)}
        clear = all(g.mean > 0 and (not math.isfinite(g.se) or g.mean > 2 * g.se) for g in gains.values())
        rec_claim = ("holds" if intermediate and clear else "within noise" if intermediate else "does not hold")

        def pm(key: str, lambd: float) -> str:
            v = t.loc[t["lambda"] == lambd, key]
            return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"

        gap_line = (f"(i) the gap shrinks as λ grows: {gap_claim.upper()} — mean gap "
                    + " → ".join(f"{pm('gap', l)} (λ={_lambda_key(l)})" for l in lambdas)
                    + f"; paired change λ={_lambda_key(lo)}→{_lambda_key(hi)}: {d_gap.mean:+.3f} ± {d_gap.std:.3f} "
                    f"(mean ± std over seeds); monotone in the means: {monotone}.")
        rec_line = (f"(ii) retrieval is best at an intermediate λ: {rec_claim.upper()} — mean recall "
                    + ", ".join(f"{pm('mean_recall', l)} (λ={_lambda_key(l)})" for l in lambdas)
                    + f"; best λ = {_lambda_key(best)}; its paired gain over λ={_lambda_key(lo)}: "
                    f"{gains[lo].mean:+.2f} ± {gains[lo].std:.2f}, over λ={_lambda_key(hi)}: "
                    f"{gains[hi].mean:+.2f} ± {gains[hi].std:.2f} points.")
        return {
            "gap_claim": gap_claim, "gap_monotone": monotone, "gap_change": d_gap.mean, "gap_change_std": d_gap.std,
            "recall_claim": rec_claim, "best_lambda": best, "recall_gain_vs_low": gains[lo].mean,
            "recall_gain_vs_low_std": gains[lo].std, "recall_gain_vs_high": gains[hi].mean,
            "text": gap_line + "\n" + rec_line,
        }

    def claims(self, source: str = "seed 000, Fig. 3c–d / Table 2", prefix: str = "") -> list[Claim]:
        """The two claims of :meth:`verdict` as :class:`~labkit.report.Claim` records for ``claims.json``."""
        v = self.verdict()
        lo, hi = _lambda_key(self.lambdas[0]), _lambda_key(self.lambdas[-1])
        return [
            Claim(f"{prefix}gap_shrinks_with_lambda", "the modality gap shrinks as λ grows", source,
                  f"paired change of Δgap from λ = {lo} to λ = {hi} (negative = shrinks); monotone in the means: "
                  f"{v['gap_monotone']}", v["gap_change"], v["gap_change_std"], len(self.seeds),
                  _CLAIM_VERDICT[v["gap_claim"]], v["text"].splitlines()[0]),
            Claim(f"{prefix}retrieval_best_at_intermediate_lambda", "mean retrieval is best at an intermediate λ",
                  source, f"paired gain in mean recall (points) of the best λ = {_lambda_key(v['best_lambda'])} "
                  f"over λ = {lo}", v["recall_gain_vs_low"], v["recall_gain_vs_low_std"], len(self.seeds),
                  _CLAIM_VERDICT[v["recall_claim"]], v["text"].splitlines()[1]),
        ]

    def training_curves(self, key: str = "modality/accuracy"):
        """``(epochs, {"λ = …": (mean, std)})`` of a logged training number per epoch (e.g. the classifier's batch
        accuracy, which shows the adversarial game between the classifier and the encoders)."""
        frames = []
        for (lambd, seed), result in self.runs.items():
            if key in result.history:
                frames.append(pd.DataFrame({"lambda": lambd, "seed": seed, "epoch": result.history["epoch"],
                                            "value": result.history[key]}))
        if not frames:
            raise KeyError(f"no run logged {key!r}")
        agg = pd.concat(frames).groupby(["lambda", "epoch"])["value"].agg(["mean", "std"])
        epochs = np.sort(agg.index.get_level_values("epoch").unique().to_numpy())
        ys = {f"λ = {_lambda_key(l)}": (agg.loc[l]["mean"].reindex(epochs).to_numpy(),
                                        agg.loc[l]["std"].fillna(0.0).reindex(epochs).to_numpy())
              for l in sorted(agg.index.get_level_values("lambda").unique())}
        return epochs.astype(float), ys


# Per-profile sizes of the sweep: 4 λ × 3 seeds = 12 trainings, plus 2 × 3 for the other gap closers. The regime is
# the one where the baseline *keeps* its gap: 1/τ fixed at 100, CLIP's final value (notebook 02: the gap stays
# ≥ 0.8 × its initial value there, while at the learned 1/τ ≈ 14 it halves). "smoke" is notebook 02's recipe for
# that arm (labkit-micro, 3000 pairs, batch 32, 4 epochs: ~300 steps, the fewest with which 1/τ = 100 learns well
# above chance); "full" is labkit's full profile at 1/τ = 100; "tiny" is what the tests execute (it checks that the
# notebook runs, not what it finds).
SWEEP_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_pairs": 3000, "model_name": "labkit-micro", "epochs": 4, "batch_size": 32, "lr": 1e-3,
              "warmup_steps": 20, "temperature": 0.01, "n_seeds": 3},
    "full": {**PROFILES["full"], "temperature": 0.01, "n_seeds": 3},
    "tiny": {**PROFILES["tiny"], "model_name": "labkit-micro", "n_pairs": 300, "epochs": 2, "batch_size": 32,
             "temperature": 0.01, "n_seeds": 2},
}


def sweep_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """:func:`labkit.studies.recipe.profile_settings` with the sweep's own sizes; non-None overrides win."""
    return profile_settings(profile, SWEEP_PROFILES, **overrides)


def lambda_sweep(
    source,
    lambdas: Iterable[float] = PAPER_LAMBDAS,
    seeds: Iterable[int] = (0, 1, 2),
    lambda_on: str = "loss",
    classifier: Mapping[str, Any] | None = None,
    model_name: str = "labkit-tiny",
    log: Callable[[str], None] | None = print,
    schedule: str = "constant",
    classifier_lr_scale: float | None = None,
    gamma: float = 10.0,
    **train_settings: Any,
) -> GrlSweep:
    """Train one CLIP per (λ, seed) with :func:`~labkit.losses.grl_objective` and measure each on the held-out split.

    Args:
        source: the data (:func:`labkit.studies.recipe.open_source`: the embedded world or a real dataset).
        lambdas: values of λ; λ = 0 is the baseline (its encoders train exactly as with the CLIP loss alone).
        seeds: training seeds (model initialisation, batch order, classifier initialisation).
        lambda_on: where λ lives (``"loss"`` or ``"grl"``, see :mod:`labkit.losses.modality`).
        classifier: ``depth`` / ``hidden`` of the :class:`~labkit.losses.ModalityClassifier`.
        model_name: any labkit or open_clip model (``pretrained`` / ``checkpoint`` go in ``train_settings``).
        log: called with one line per finished run (``None``: silent).
        schedule: ``"constant"`` (λ from step 0, seed 000) or ``"dann"`` (DANN's warm-up λ_p = λ(2/(1+e^{−γp}) − 1)).
        classifier_lr_scale: the classifier's learning-rate multiplier (``None``: the encoders' rate).
        gamma: γ of the DANN warm-up.
        train_settings: passed to :func:`~labkit.studies.recipe.train_clip` (epochs, batch_size, lr, device,
            pretrained, checkpoint, …; unknown keys such as ``n_pairs`` are ignored).

    Returns:
        a :class:`GrlSweep`; its table's columns are ``lambda``, ``seed``, the gap report, the recalls,
        ``classifier_acc_train`` (mean over the last epoch's batches), ``classifier_acc_test`` (held-out split),
        the chance recalls (``chance/…``), ``train_seconds`` and ``run_seconds``. ``temperature=τ`` in
        ``train_settings`` fixes 1/τ (as the smoke profile does, at 100).
    """
    lambdas = [_check_lambda(l) for l in lambdas]
    classifier = dict(classifier or {})
    embed_dim = embed_dim_of(model_name)

    def run(seed: int, **config: Any):
        lambd = config["lambda"]
        objective = grl_objective(lambd, embed_dim, lambda_on=lambda_on, seed=seed, schedule=schedule, gamma=gamma,
                                  classifier_lr_scale=classifier_lr_scale, **classifier)
        result = train_clip(source, seed=seed, objective=objective, model_name=model_name, **train_settings)
        term: ModalityLoss = objective.terms["modality"]
        last = result.history.iloc[-1]
        row = {**result.metrics, **_beyond_centroid(result.final.image, result.final.paired_text, seed),
               "classifier_acc_train": float(last.get("modality/accuracy", float("nan"))),
               "classifier_acc_test": term.accuracy(result.final.image, result.final.paired_text),
               **{f"chance/{k}": v for k, v in result.chance.items()},
               "train_seconds": float(result.history["seconds"].sum())}
        if log is not None:
            log(f"λ={_lambda_key(lambd):<4} seed={seed}: gap {row['gap']:.3f}, silhouette {row['silhouette']:.3f}, "
                f"mean recall {row['mean_recall']:.1f}, classifier acc {row['classifier_acc_test']:.2f} "
                f"({row['train_seconds']:.0f} s)")
        return row, result

    sweep = run_grid(run, {"lambda": lambdas}, seeds, log=None)
    return GrlSweep(sweep.table, sweep.factors, sweep.runs, lambda_on=lambda_on, schedule=schedule,
                    classifier_lr_scale=classifier_lr_scale)


def _beyond_centroid(image, text, seed: int) -> dict[str, float]:
    """Relative gap and linear separability of row-aligned test pairs (:mod:`labkit.metrics.gap`)."""
    return {"relative_gap": relative_modality_gap(image, text), "separability": linear_separability(image, text, seed=seed)}


# ============================================================================ other ways of closing the gap

OTHER_METHODS = ("cua", "cuaxu", "warmer_temperature")
METHOD_NAMES = {"cua": "uniformity + alignment (L_CUA)", "cuaxu": "uniformity + alignment + cross-uniformity (L_CUAXU)",
                "warmer_temperature": "warmer temperature"}


def other_gap_closers(source, seeds: Iterable[int] = (0, 1, 2), model_name: str = "labkit-tiny",
                      warmer_inverse_temperature: float = 10.0, methods: Iterable[str] = OTHER_METHODS,
                      log: Callable[[str], None] | None = print, **train_settings: Any) -> Sweep:
    """The gap closers that need their own training, on the λ sweep's data, recipe and seeds:

    * ``cua`` — CLIP + alignment + in-modality uniformity (Fahim et al.'s L_CUA) at the sweep's temperature;
    * ``cuaxu`` — the same + cross-modal uniformity (Fahim et al.'s L_CUAXU,
      :func:`labkit.losses.uniformity_alignment_objective`), every weight 1;
    * ``warmer_temperature`` — the CLIP loss alone at a fixed, warmer ``1/τ = warmer_inverse_temperature``
      (Mind the Gap: a higher τ closes the gap; notebook 02).

    Returns a :class:`~labkit.studies.sweep.Sweep` with factor ``method``; ``runs[(method, seed)]`` are
    :class:`~labkit.studies.recipe.TrainResult`.
    """
    methods = list(methods)
    unknown = set(methods) - set(OTHER_METHODS)
    if unknown:
        raise ValueError(f"methods must be among {OTHER_METHODS}, got {sorted(unknown)}")

    def run(seed: int, method: str):
        settings = dict(train_settings)
        objective = None
        if method == "cua":
            objective = uniformity_alignment_objective(xuniform=0.0)
        elif method == "cuaxu":
            objective = uniformity_alignment_objective()
        else:
            settings["temperature"] = 1.0 / float(warmer_inverse_temperature)
        result = train_clip(source, seed=seed, objective=objective, model_name=model_name, **settings)
        row = {**result.metrics, **_beyond_centroid(result.final.image, result.final.paired_text, seed),
               **{f"chance/{k}": v for k, v in result.chance.items()},
               "train_seconds": float(result.history["seconds"].sum())}
        if log is not None:
            log(f"{method:<22} seed={seed}: gap {row['gap']:.3f}, mean recall {row['mean_recall']:.1f} "
                f"({row['train_seconds']:.0f} s)")
        return row, result

    return run_grid(run, {"method": methods}, seeds, log=None)


def _split(source, name: str, bundle):
    transform = None if world_is_embedded(source) and bundle.image_size == source.image_size else bundle.preprocess
    return source.split(name, transform=transform)


def centred_metrics(result, source, seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """Post-hoc centering (DrML / C3) of a trained model's test embeddings: each modality's mean is estimated on the
    *training* split (images, and all captions), subtracted from the test embeddings, which are re-normalised
    (:func:`labkit.metrics.center_modalities`); then the gap family and retrieval on the centred embeddings."""
    bundle = result.bundle
    train = embed_dataset(bundle.model, _split(source, "train", bundle), bundle.tokenizer, device=device)
    image_mean, text_mean = train.image.mean(axis=0), train.text.mean(axis=0)
    emb = result.final
    image, text = center_modalities(emb.image, emb.text, image_mean=image_mean, text_mean=text_mean)
    centred = type(emb)(image=image.astype(np.float32), text=text.astype(np.float32),
                        text_to_image=emb.text_to_image, topic=emb.topic)
    out = evaluate_embeddings(centred)
    out.update(_beyond_centroid(centred.image, centred.paired_text, seed))
    return out


_BASELINE = "CLIP (baseline)"


def gap_closer_rows(sweep: GrlSweep, others: Sweep | None, source, device: str = "cpu") -> pd.DataFrame:
    """One row per (method, seed): the baseline (λ = 0), the GRL at every λ > 0, post-hoc centering of the baseline
    models, and the ``others`` (uniformity + alignment, a warmer temperature); columns :data:`COMPARISON_KEYS`."""
    rows = []
    keys = list(COMPARISON_KEYS)
    base = sweep.table[sweep.table["lambda"] == 0.0]
    if base.empty:
        raise ValueError("the λ sweep has no λ = 0 baseline to compare with")
    for _, r in base.iterrows():
        rows.append({"method": _BASELINE, "seed": int(r["seed"]), **{k: float(r[k]) for k in keys}})
    for lambd in [l for l in sweep.lambdas if l > 0]:
        for _, r in sweep.table[sweep.table["lambda"] == lambd].iterrows():
            rows.append({"method": f"GRL λ = {_lambda_key(lambd)} ({sweep.schedule_label})", "seed": int(r["seed"]),
                         **{k: float(r[k]) for k in keys}})
    for _, r in base.iterrows():
        m = centred_metrics(sweep.runs[(0.0, int(r["seed"]))], source, seed=int(r["seed"]), device=device)
        rows.append({"method": "post-hoc centering of the baseline", "seed": int(r["seed"]), **{k: m[k] for k in keys}})
    if others is not None:
        for _, r in others.table.iterrows():
            rows.append({"method": METHOD_NAMES[r["method"]], "seed": int(r["seed"]), **{k: float(r[k]) for k in keys}})
    return pd.DataFrame(rows)


def gap_closer_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std per method, plus the paired change of Δgap against the baseline (same seeds)."""
    base = rows[rows["method"] == _BASELINE].set_index("seed")["gap"]
    out = []
    for method, g in rows.groupby("method", sort=False):
        d = paired_difference(base.loc[g["seed"]].to_numpy(), g.set_index("seed")["gap"].loc[g["seed"]].to_numpy())
        cell = {"method": method, "Δgap vs baseline": "—" if method == _BASELINE else
                f"{d.mean:+.3f} ± {0.0 if not math.isfinite(d.std) else d.std:.3f}"}
        for k in COMPARISON_KEYS:
            mean, std = g[k].mean(), g[k].std()
            d_ = 1 if "R@" in k else 3
            cell[k] = f"{mean:.{d_}f} ± {0.0 if not math.isfinite(std) else std:.{d_}f}"
        out.append(cell)
    return pd.DataFrame(out).set_index("method")


def gap_closer_claims(rows: pd.DataFrame, learned: bool = True) -> list[Claim]:
    """Each method's expected effect on the gap, against the baseline (paired over seeds)."""
    base = rows[rows["method"] == _BASELINE].set_index("seed")
    specs = [
        ("post-hoc centering of the baseline", "centering_closes_gap",
         "subtracting each modality's mean removes most of the gap (post hoc)", "DrML (Zhang et al. 2023), C3 (2024)"),
        (METHOD_NAMES["cua"], "cua_closes_gap",
         "adding alignment and uniformity terms to the CLIP loss (L_CUA) shrinks the gap", "Fahim et al. 2024"),
        (METHOD_NAMES["cuaxu"], "cuaxu_closes_gap",
         "adding alignment, uniformity and cross-uniformity terms (L_CUAXU) shrinks the gap", "Fahim et al. 2024"),
        (METHOD_NAMES["warmer_temperature"], "warmer_temperature_closes_gap",
         "a warmer (fixed) temperature shrinks the gap", "Mind the Gap, supp. Fig. 8"),
    ]
    out = []
    for method, cid, text, source in specs:
        g = rows[rows["method"] == method].set_index("seed")
        if g.empty:
            continue
        seeds = g.index.intersection(base.index)
        d = paired_difference(base.loc[seeds, "gap"].to_numpy(), g.loc[seeds, "gap"].to_numpy())
        r = paired_difference(base.loc[seeds, "t2i_R@1"].to_numpy(), g.loc[seeds, "t2i_R@1"].to_numpy())
        verdict = paired_verdict(d.mean, d.se, "decrease") if learned else "inconclusive"
        out.append(Claim(cid, text, source, f"paired change of Δgap, {method} − baseline, 1/τ of the sweep",
                         d.mean, d.std, d.n, verdict,
                         f"paired change of t2i R@1: {r.mean:+.1f} ± {0.0 if not math.isfinite(r.std) else r.std:.1f} "
                         "points" + ("" if learned else "; the baseline did not learn")))
    return out


# ============================================================================ a diagnostic: who wins the gradient


def gradient_balance(result, source, scales=(100.0, 14.3), n_batches: int = 4, batch_size: int = 32,
                     seed: int = 0) -> dict[str, float]:
    r"""How strong the reversed gradient is next to the contrastive one, at the embeddings of a trained run.

    On ``n_batches`` random training batches (images and first captions, the run's trained model and modality
    classifier), the ratio :math:`\lVert\partial L_m/\partial e\rVert / \lVert\partial L_c/\partial e\rVert` of the
    gradients the encoders receive at their (L2-normalised) outputs from the modality BCE and from the contrastive
    loss at each ``1/τ`` in ``scales``; the encoders get λ times the first. Under Adam, a parameter's step follows the
    *sum* of its gradients divided by their running RMS, so a term whose gradient is a small fraction of the other's
    barely steers the encoders. Keys ``ratio@<1/τ>`` (mean over batches) and ``classifier_bce``.
    """
    term = result.objective.terms["modality"] if result.objective is not None else None
    if term is None or not hasattr(term, "classifier"):
        raise ValueError("the run has no modality classifier (train it with grl_objective)")
    bundle = result.bundle
    model = bundle.model.eval()
    split = _split(source, "train", bundle)
    rng = np.random.default_rng(seed)
    ratios = {float(s): [] for s in scales}
    bces = []
    for _ in range(n_batches):
        idx = rng.choice(len(split), size=min(batch_size, len(split)), replace=False)
        items = [split[int(i)] for i in idx]
        with torch.no_grad():
            x = model.encode_image(torch.stack([it["image"] for it in items]), normalize=True).float()
            y = model.encode_text(bundle.tokenizer([it["captions"][0] for it in items]), normalize=True).float()
        x.requires_grad_(True)
        y.requires_grad_(True)
        stacked, labels = stack_modalities(x, y)
        bce = F.binary_cross_entropy_with_logits(term.classifier.mlp(stacked).squeeze(-1), labels)
        gm = torch.cat(torch.autograd.grad(bce, [x, y]))
        bces.append(float(bce.detach()))
        for s in ratios:
            gc = torch.cat(torch.autograd.grad(clip_loss(x, y, s), [x, y]))
            ratios[s].append(float(gm.norm() / gc.norm()))
    return {**{f"ratio@{s:g}": float(np.mean(v)) for s, v in ratios.items()}, "classifier_bce": float(np.mean(bces))}
