r"""Notebook 04's study: seed 000's λ ablation (§6, Fig. 3c–d, Table 2) of the GRL gap reducer.

    settings = sweep_settings("smoke")
    sweep = lambda_sweep(world, lambdas=(0, 0.5, 1, 3), seeds=(0, 1, 2), lambda_on="grl", **settings)
    sweep.recall_table(); sweep.verdict()["text"]; sweep.claims()

One CLIP per (λ, seed), trained with :func:`labkit.losses.grl_objective` (eq. 5) through
:func:`labkit.studies.recipe.train_clip` and measured on the held-out split; the grid × seeds bookkeeping is
:func:`labkit.studies.sweep.run_grid`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..losses.modality import PAPER_LAMBDAS, ModalityLoss, _check_lambda, grl_objective
from ..models import embed_dim_of
from ..report import Claim
from .recipe import PROFILES, profile_settings, train_clip
from .sweep import Sweep, run_grid

__all__ = ["GrlSweep", "lambda_sweep", "sweep_settings", "SWEEP_PROFILES", "RECALL_KEYS", "SUMMARY_KEYS"]

RECALL_KEYS = tuple(f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))
SUMMARY_KEYS = ("gap", "silhouette", "mean_recall", *RECALL_KEYS, "classifier_acc_train", "classifier_acc_test")
CLAIM_SCORE = {"holds": 1.0, "partly": 0.5, "within noise": 0.5, "does not hold": 0.0}
_CLAIM_VERDICT = {"holds": "holds", "partly": "mixed", "within noise": "inconclusive", "does not hold": "does not hold"}


def _lambda_key(lambd: float) -> str:
    return f"{float(lambd):g}"


@dataclass
class GrlSweep(Sweep):
    """The runs of a λ sweep: ``table`` has one row per (λ, seed); ``runs[(λ, seed)]`` is its
    :class:`~labkit.studies.recipe.TrainResult` (its trained Objective in ``.objective``)."""

    lambda_on: str = "loss"

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


# Per-profile sizes of the sweep: 4 λ × 3 seeds = 12 trainings. "smoke" must finish in about 3 minutes on two
# CPU cores, so it uses a smaller world and fewer epochs than the single-run smoke profile (a short warm-up, as
# the run has only ~60 steps); the baseline still learns far above chance. "full" is labkit's full profile;
# "tiny" is what the tests execute (it checks that the notebook runs, not what it finds).
SWEEP_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {**PROFILES["smoke"], "n_pairs": 1000, "epochs": 10, "warmup_steps": 10, "n_seeds": 3},
    "full": {**PROFILES["full"], "n_seeds": 3},
    "tiny": {**PROFILES["tiny"], "n_seeds": 2},
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
        train_settings: passed to :func:`~labkit.studies.recipe.train_clip` (epochs, batch_size, lr, device,
            pretrained, checkpoint, …; unknown keys such as ``n_pairs`` are ignored).

    Returns:
        a :class:`GrlSweep`; its table's columns are ``lambda``, ``seed``, the gap report, the recalls,
        ``classifier_acc_train`` (mean over the last epoch's batches), ``classifier_acc_test`` (held-out split),
        the chance recalls (``chance/…``), ``train_seconds`` and ``run_seconds``.
    """
    lambdas = [_check_lambda(l) for l in lambdas]
    classifier = dict(classifier or {})
    embed_dim = embed_dim_of(model_name)

    def run(seed: int, **config: Any):
        lambd = config["lambda"]
        objective = grl_objective(lambd, embed_dim, lambda_on=lambda_on, seed=seed, **classifier)
        result = train_clip(source, seed=seed, objective=objective, model_name=model_name, **train_settings)
        term: ModalityLoss = objective.terms["modality"]
        last = result.history.iloc[-1]
        row = {**result.metrics,
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
    return GrlSweep(sweep.table, sweep.factors, sweep.runs, lambda_on=lambda_on)
