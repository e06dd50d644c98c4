r"""Notebook 08's study, seed 003 §3.3 / §4.1: gaze regularisation (eq. 2) with attention probability p.

    settings = study_settings("smoke")
    world = make_study_world(settings, seed=0, clutter=settings["clutter"])   # distractors no caption mentions
    sweep = gaze_sweep(world, seeds=(0, 1, 2), settings=settings)            # Tables 4 (batch 64) and 5 (batch 48)
    table(sweep, rows_at(64, settings)); claims(sweep, settings)

Every run is :func:`labkit.studies.sampling.train_run` with batch sampling; the training set is wrapped in
:class:`~labkit.data.GazeRegularized` (p = 0 included, so every run draws the same random numbers), validation and
test images are never masked. On the embedded world with ``clutter``, each scene carries distractor shapes in its
corners that no caption mentions, while the saliency map covers the objects the captions talk about — the setting
in which attention *could* help a model ignore what the text never describes.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..data import attention_mask, gaze_modulate
from ..gallery import to_display
from ..report import Claim, paired_verdict
from .recipe import profile_settings
from .sampling import (SAMPLING_PROFILES, Run, convergence, embed_pairs, epoch_curves, make_study_world,
                       own_plateau, table, train_run)
from .sweep import Sweep, paired_difference, run_grid

__all__ = ["GAZE_PROFILES", "study_settings", "make_study_world", "gaze_configs", "rows_at", "gaze_sweep",
           "table", "epoch_curves", "claims", "show_gaze_examples", "rank_captions", "show_ranked_captions",
           "rank_images"]

# smoke: 2 batch sizes × 4 values of p × 3 seeds = 24 trainings, about a minute on two CPU cores; the sampling
# study's world and model, with two distractors per image (16-px images: a distractor is a blob of 2-3 pixels, as
# small as a small object).
GAZE_PROFILES: dict[str, dict[str, Any]] = {
    name: {**SAMPLING_PROFILES[name], "clutter": 2, "gaze_batch_sizes": (64, 48), "ps": (0.0, 0.3, 0.5, 0.7)}
    for name in SAMPLING_PROFILES
}
GAZE_PROFILES["tiny"].update(gaze_batch_sizes=(32, 16), ps=(0.0, 0.5))


def study_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The study's profile sizes (:data:`GAZE_PROFILES`), non-None overrides applied."""
    return profile_settings(profile, GAZE_PROFILES, **overrides)


def gaze_configs(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every (batch size, p) of the study: factors ``batch_size`` and ``p``."""
    return [{"batch_size": int(b), "p": float(p)} for b in settings["gaze_batch_sizes"] for p in settings["ps"]]


def rows_at(batch_size: int, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The grid points of one table (Table 4: batch 64, Table 5: batch 48)."""
    return [{"batch_size": int(batch_size), "p": float(p)} for p in settings["ps"]]


def gaze_sweep(world, seeds: Iterable[int], settings: Mapping[str, Any], device: str = "cpu",
               keep_models: Callable[[Mapping[str, Any], int], bool] | None = None,
               log: Callable[[str], None] | None = print) -> Sweep:
    """Every (batch size, p) × seed with batch sampling; ``sweep.runs[(batch_size, p, seed)]`` is the
    :class:`~labkit.studies.sampling.Run`; its numbers include ``val_masked/accuracy`` (the validation images masked
    by eq. 2: how the model does on the kind of input it was regularised with)."""

    def one(seed: int, batch_size: int, p: float):
        keep = bool(keep_models and keep_models({"batch_size": batch_size, "p": p}, seed))
        run: Run = train_run(world, seed, settings, sampler="batch", batch_size=batch_size, p=p, device=device,
                             keep_model=keep, masked_eval=True)
        if log is not None:
            m = run.metrics
            log(f"batch {batch_size} p={p:g} seed {seed}: val acc {m['val/accuracy']:.3f} "
                f"(masked images {m['val_masked/accuracy']:.3f}), val−train loss {m['gap/loss']:+.2f}, "
                f"R@1 i2t {m['i2t_R@1']:.1f} t2i {m['t2i_R@1']:.1f} ({run.seconds:.1f} s)")
        return run.metrics, run

    return run_grid(one, gaze_configs(settings), seeds, log=None)


# ------------------------------------------------------------------------------------------------------- claims

def _per_seed_mean(sweep: Sweep, key: str, rows: Sequence[Mapping[str, Any]]) -> pd.Series:
    """Per seed, the mean of ``key`` over the grid points ``rows``."""
    return pd.concat([sweep.per_seed(key, **r) for r in rows], axis=1).mean(axis=1)


def _pm(v: pd.Series, digits: int = 3) -> str:
    return f"{v.mean():.{digits}f} ± {v.std() if len(v) > 1 else 0.0:.{digits}f}"


def claims(sweep: Sweep, settings: Mapping[str, Any]) -> list[Claim]:
    """Seed 003's claims about gaze regularisation (Tables 4–5, Fig. 7, §4.1), each from per-seed paired
    differences between the mean over p > 0 and p = 0 (same seed, same batch size):

    1. at batch 48 (Table 5) gaze prevents overfitting: the validation − training loss gap shrinks;
    2. gaze converges faster: fewer epochs to the target validation accuracy (mean over both batch sizes);
    3. at batch 64 (Table 4) gaze lowers the validation accuracy.

    ``detail`` carries the numbers per p and a measured diagnostic: the validation accuracy of the same models on
    *masked* validation images, which tells whether a loss on plain images comes from the train/test mismatch.
    """
    eb = settings["eval_batch"]
    big, small = max(settings["gaze_batch_sizes"]), min(settings["gaze_batch_sizes"])
    ps = sorted(settings["ps"])
    if ps[0] != 0.0 or len(ps) < 2:
        raise ValueError("the gaze claims compare p > 0 with p = 0: ps must start at 0 and have another value")
    source = "seed 003, §4.1 / Tables 4–5 / Fig. 7"
    out = []

    def rows(b, positive=True):
        return [{"batch_size": b, "p": p} for p in ps if (p > 0) == positive]

    def per_p(key, b):
        return "; ".join(f"p = {p:g}: {_pm(sweep.per_seed(key, batch_size=b, p=p))}" for p in ps)

    # 1. overfitting at the small batch
    base = sweep.per_seed("gap/loss", batch_size=small, p=0.0)
    gaze = _per_seed_mean(sweep, "gap/loss", rows(small))
    d = paired_difference(base.to_numpy(), gaze.loc[base.index].to_numpy())
    detail = (f"validation − training loss at batch {small} — {per_p('gap/loss', small)}; training − validation "
              f"accuracy — {per_p('gap/accuracy', small)}.")
    out.append(Claim(f"gaze_prevents_overfitting_b{small}", f"gaze regularisation prevents overfitting at batch "
                     f"{small}", source, f"paired change of (validation − training loss), p = 0 → mean over p > 0, "
                     f"batch {small}", d.mean, d.std, d.n, paired_verdict(d.mean, d.se, "decrease"), detail))

    # 2. convergence speed, both batch sizes
    diffs, parts, plateau = [], [], []
    for b in settings["gaze_batch_sizes"]:
        conv = convergence(sweep, rows(b, False) + rows(b), f"val/accuracy@{eb}", settings["target_fraction"])
        conv["p"] = [float(lab.split("=")[1]) for lab in conv["label"]]
        e0 = conv[conv.p == 0].set_index("seed")["epochs"].sort_index()
        eg = conv[conv.p > 0].groupby("seed")["epochs"].mean().loc[e0.index]
        diffs.append(eg.to_numpy() - e0.to_numpy())
        parts.append(f"batch {b}: " + "; ".join(f"p = {p:g}: {_pm(g['epochs'], 2)}" for p, g in conv.groupby("p"))
                     + f" (target {conv['target'].mean():.3f})")
        plateau.append(f"batch {b}: " + "; ".join(
            f"p = {r['p']:g}: {_pm(own_plateau(sweep, r, f'val/accuracy@{eb}', settings['target_fraction']), 2)}"
            for r in rows(b, False) + rows(b)))
    per_seed = np.mean(diffs, axis=0)
    d = paired_difference(np.zeros_like(per_seed), per_seed)
    detail = (f"epochs to {settings['target_fraction']:g} × the lowest final validation accuracy@{eb} among the p of "
              f"a batch size (per seed) — " + " | ".join(parts) + f". Epochs to {settings['target_fraction']:g} × "
              f"each run's own final accuracy (its plateau, whatever its height) — " + " | ".join(plateau) + ".")
    out.append(Claim("gaze_converges_faster", "gaze regularisation converges faster", source,
                     "paired change of epochs to the target validation accuracy, p = 0 → mean over p > 0, averaged "
                     f"over batch {big} and {small}", d.mean, d.std, d.n, paired_verdict(d.mean, d.se, "decrease"),
                     detail))

    # 3. validation accuracy at the large batch
    base = sweep.per_seed("val/accuracy", batch_size=big, p=0.0)
    gaze = _per_seed_mean(sweep, "val/accuracy", rows(big))
    d = paired_difference(base.to_numpy(), gaze.loc[base.index].to_numpy())
    masked0 = sweep.per_seed("val_masked/accuracy", batch_size=big, p=0.0)
    masked = _per_seed_mean(sweep, "val_masked/accuracy", rows(big))
    dm = paired_difference(masked0.to_numpy(), masked.loc[masked0.index].to_numpy())
    detail = (f"validation accuracy at batch {big} — {per_p('val/accuracy', big)}. Diagnostic — the same models on "
              f"validation images masked by eq. 2: {per_p('val_masked/accuracy', big)} (paired change p = 0 → p > 0: "
              f"{dm}); test t2i R@1 — {per_p('t2i_R@1', big)}.")
    out.append(Claim(f"gaze_lowers_val_accuracy_b{big}", f"gaze regularisation lowers the validation accuracy at "
                     f"batch {big}", source, f"paired change of validation accuracy, p = 0 → mean over p > 0, "
                     f"batch {big}", d.mean, d.std, d.n, paired_verdict(d.mean, d.se, "decrease"), detail))
    return out


# ------------------------------------------------------------------------------------------------------ figures

def show_gaze_examples(dataset, n: int = 6, seed: int = 0) -> plt.Figure:
    """The seed's Fig. 4: images (first row), their attention maps M (second row) and eq. 2's product (third)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    fig, axes = plt.subplots(3, len(idx), figsize=(1.9 * len(idx), 6.0), squeeze=False)
    for col, i in enumerate(idx):
        item = dataset[int(i)]
        m = attention_mask(item["saliency"])
        panels = (to_display(item["image"]), m.numpy(), to_display(gaze_modulate(item["image"], item["saliency"])))
        for row, (img, name) in enumerate(zip(panels, ("image", "attention map M", "M ⊙ image (eq. 2)"))):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray" if row == 1 else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name, fontsize=8)
        axes[0, col].set_title(textwrap.fill(item["captions"][0], 24), fontsize=6.5, loc="left")
    fig.tight_layout()
    return fig


@torch.no_grad()
def rank_captions(model, tokenizer, dataset) -> tuple[np.ndarray, list[str]]:
    """For every image of ``dataset``, its candidates ranked by similarity: ``ranked[i]`` lists item indices, best
    first, whose first captions (one sentence per image, as in the seed's data) are the candidates."""
    img, txt = embed_pairs(model, dataset, tokenizer)
    ranked = np.argsort(-(img @ txt.T), axis=1, kind="stable")
    return ranked, [dataset.captions_of(i)[0] for i in range(len(dataset))]


def rank_images(model, tokenizer, dataset) -> np.ndarray:
    """For every caption (first caption of each item), the images ranked by similarity, best first (Fig. 10)."""
    img, txt = embed_pairs(model, dataset, tokenizer)
    return np.argsort(-(txt @ img.T), axis=1, kind="stable")


def show_ranked_captions(dataset, ranked: np.ndarray, captions: Sequence[str], indices: Sequence[int],
                         k: int = 5, width: int = 72) -> plt.Figure:
    """The seed's Figs. 8–9: an image and its top-``k`` captions; the ground truth in bold with its rank."""
    fig, axes = plt.subplots(len(indices), 2, figsize=(8.5, 1.9 * len(indices)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 3.2]})
    for row, i in enumerate(indices):
        axes[row, 0].imshow(to_display(dataset[int(i)]["image"]), interpolation="nearest")
        axes[row, 0].axis("off")
        rank = int(np.flatnonzero(ranked[i] == i)[0]) + 1
        ax = axes[row, 1]
        ax.axis("off")
        lines = [(r + 1, int(j)) for r, j in enumerate(ranked[i][:k])]
        y = 0.95
        for r, j in lines:
            ax.text(0.0, y, textwrap.shorten(f"{r}. {captions[j]}", width), fontsize=7.5, va="top",
                    weight="bold" if j == i else "normal", color="tab:green" if j == i else "black",
                    transform=ax.transAxes)
            y -= 0.16
        if rank > k:
            ax.text(0.0, y, textwrap.shorten(f"{rank}. {captions[i]}  (ground truth)", width), fontsize=7.5,
                    va="top", weight="bold", color="tab:red", transform=ax.transAxes)
        axes[row, 0].set_title(f"ground truth at rank {rank} of {len(captions)}", fontsize=7.5, loc="left")
    fig.tight_layout()
    return fig
