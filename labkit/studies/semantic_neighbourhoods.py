"""Notebook 06's study, seed 001: Table 1 (methods), Table 3 (neighbourhood preservation), Table 4 (ablation).

    settings = study_settings("smoke")
    ctx = prepare_world(make_world(..., pairing="complementary"), settings, text_space="tfidf",
                        other_spaces=("doc2vec",))                            # Ω and Ψ, once per world
    run = run_method(ctx, "ours", seed=0, settings=settings)                  # fit() + test metrics
    sweep = run_methods(contexts, METHODS, seeds, settings)                   # every (world, method, seed)
    table = summarise(sweep)                                                  # mean ± std over seeds

Every method trains the same :class:`~labkit.models.TwoStreamModel` (fresh, seeded) with
:func:`labkit.train.fit`; only the :class:`~labkit.losses.Objective` differs.

Statistical power. A comparison of two methods is the per-seed paired difference of their N-way R@1 (mean of both
directions) on one test set. Two sources of noise are removed or reduced before the seeds are spent: the random
draw of the N − 1 distractors (the R@1 reported is its exact expectation over all draws,
:func:`labkit.metrics.expected_nway_recall`) and the test set's size (a larger test split than the paper's
proportions). :func:`comparisons` reports each difference with its standard error and the smallest difference the
run can resolve (two standard errors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..data import make_world
from ..losses.metric_learning import baseline_objective, ours_objective
from ..metrics import expected_nway_retrieval, neighbourhood_preservation
from ..models import create_two_stream
from ..neighbours import NeighbourPairs, NeighbourTable, make_text_space, sentence_transformers_available
from ..report import Claim, paired_verdict
from ..train import TrainConfig, fit
from .recipe import profile_settings
from .sweep import Sweep, run_grid

__all__ = ["STUDY_PROFILES", "METHODS", "TABLE1", "TABLE4", "LABELS", "OMEGA_METHODS", "TARGET_DIFFERENCE",
           "study_settings", "make_study_world", "WorldContext", "prepare_world", "RunResult", "run_method",
           "run_methods", "summarise", "pm_table", "encode_pairs", "comparisons", "claims", "other_omega_methods"]

STUDY_PROFILES: dict[str, dict[str, Any]] = {
    # smoke: 2 worlds x SEEDS x (7 methods + 2 with the second Ω) trainings on 2 CPU cores, within two minutes
    "smoke": {"n_pairs": 800, "split_fractions": (0.5, 0.1, 0.4), "image_size": 16, "epochs": 6,
              "batch_size": 32, "lr": 5e-3, "warmup_steps": 5, "k": 15, "k_preserve": 10, "n_way": 5, "seeds": 4,
              "doc2vec_epochs": 30, "model": {"channels": (16, 32, 32), "hidden": 64, "word_dim": 32, "embed_dim": 64},
              "context_length": 16},
    "full": {"n_pairs": 4000, "split_fractions": (0.8, 0.1, 0.1), "image_size": 32, "epochs": 15,
             "batch_size": 64, "lr": 2e-3,
             "warmup_steps": 50, "k": 100, "k_preserve": 40, "n_way": 5, "seeds": 3, "doc2vec_epochs": 40,
             "model": {"channels": (32, 64, 128), "hidden": 128, "word_dim": 64, "embed_dim": 64},
             "context_length": 24},
    "tiny": {"n_pairs": 200, "split_fractions": (0.6, 0.1, 0.3), "image_size": 16, "epochs": 2,
             "batch_size": 32, "lr": 5e-3, "warmup_steps": 2, "k": 5, "k_preserve": 5, "n_way": 5, "seeds": 2,
             "doc2vec_epochs": 5, "model": {"channels": (8, 16, 16), "hidden": 32, "word_dim": 16, "embed_dim": 32},
             "context_length": 16},
}

#: method -> (hinge kind, neighbour source (None | "text" | "image" | "text:<space>"), ours_objective options).
#: "text" takes Ψ from the study's main Ω; "text:<space>" from a second Ω prepared with ``other_spaces``.
METHODS: dict[str, tuple[str, str | None, dict]] = {
    "ang_np_sym": ("angular", None, {}),
    "ours_img_nns": ("angular", "image", {}),
    "ours": ("angular", "text", {}),
    "trip_np_sym": ("triplet", None, {}),
    "ours_trip": ("triplet", "text", {}),
    "ours_minus_text": ("angular", "text", {"text": False}),
    "ours_minus_img": ("angular", "text", {"image": False}),
}
TABLE1 = ["ang_np_sym", "ours_img_nns", "ours", "trip_np_sym", "ours_trip"]
TABLE4 = ["ours", "ours_minus_text", "ours_minus_img"]
LABELS = {"ang_np_sym": "ANG+NP+SYM", "ours_img_nns": "Ours (Img NNs)", "ours": "Ours",
          "trip_np_sym": "TRIP+NP+SYM", "ours_trip": "Ours (TRIP)", "ours_minus_text": "Ours − L_text",
          "ours_minus_img": "Ours − L_img"}
#: the Ω-dependent methods of Table 1 that are also trained with the second Ω
OMEGA_METHODS = ("ours", "ours_trip")


def other_omega_methods(space: str) -> dict[str, tuple[str, str, dict]]:
    """``ours`` and ``ours_trip`` with Ψ from a second text space ``space`` (method names ``<method>@<space>``)."""
    out = {}
    for m in OMEGA_METHODS:
        kind, _, options = METHODS[m]
        out[f"{m}@{space}"] = (kind, f"text:{space}", options)
        LABELS.setdefault(f"{m}@{space}", f"{LABELS[m]} [Ω = {space}]")
    return out


def study_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The study's own profile sizes (:data:`STUDY_PROFILES`), non-None overrides applied."""
    return profile_settings(profile, STUDY_PROFILES, **overrides)


def make_study_world(pairing: str, settings: dict, seed: int = 0):
    """The embedded world of the study (a larger test split than the default: R@1 over more queries)."""
    return make_world(n_pairs=settings["n_pairs"], seed=seed, pairing=pairing,
                      split_fractions=settings["split_fractions"], image_size=settings["image_size"])


@torch.no_grad()
def encode_pairs(model, tokenizer, dataset, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of every image of ``dataset`` and of its first caption (row-aligned pairs)."""
    model.eval()
    xs, ys = [], []
    for s in range(0, len(dataset), batch_size):
        idx = range(s, min(s + batch_size, len(dataset)))
        xs.append(model.encode_image(torch.stack([dataset[i]["image"] for i in idx]), normalize=True))
        ys.append(model.encode_text(tokenizer([dataset.captions_of(i)[0] for i in idx]), normalize=True))
    return torch.cat(xs).float().numpy(), torch.cat(ys).float().numpy()


@dataclass
class WorldContext:
    """What is computed once per world, before any training: Ω, Ψ's tables, Ω of the test texts (for the main Ω and
    any second Ω in ``other``: ``{space name: (space, text table, Ω of the test texts)}``)."""

    world: Any
    train: Any
    test: Any
    space: Any
    text_table: NeighbourTable
    image_table: NeighbourTable
    omega_test: np.ndarray  # Ω of each test image's first caption
    seconds: float = 0.0
    other: dict = field(default_factory=dict)

    @property
    def pairing(self) -> str:
        return self.world.pairing


def _text_space(name: str, settings: dict, seed: int):
    if name == "sentence" and not sentence_transformers_available():
        name = "doc2vec"
    kw = {"epochs": settings["doc2vec_epochs"]} if name == "doc2vec" else {}
    try:
        return make_text_space(name, seed=seed, **kw)
    except Exception:  # sentence model not loadable offline
        return make_text_space("doc2vec", seed=seed, epochs=settings["doc2vec_epochs"])


def prepare_world(world, settings: dict, text_space: str = "tfidf", seed: int = 0,
                  other_spaces: tuple[str, ...] = ()) -> WorldContext:
    """Fit Ω on the training captions, build the text (Ψ) and image (Img NNs) neighbour tables, embed the test
    captions in Ω; the same for every space in ``other_spaces`` (a second Ω to compare). ``"sentence"`` falls back
    to Doc2Vec when sentence-transformers is unusable."""
    t0 = time.perf_counter()
    train, test = world.train, world.test
    test_texts = [test.captions_of(i)[0] for i in range(len(test))]
    space = _text_space(text_space, settings, seed)
    text_table = NeighbourTable.from_texts(train, space, k=settings["k"])
    image_table = NeighbourTable.from_images(train, k=settings["k"], seed=seed)
    omega_test = space.embed(test_texts)
    other = {}
    for name in other_spaces:
        if name == text_space:
            continue
        alt = _text_space(name, settings, seed)
        other[name] = (alt, NeighbourTable.from_texts(train, alt, k=settings["k"]), alt.embed(test_texts))
    return WorldContext(world, train, test, space, text_table, image_table, omega_test,
                        time.perf_counter() - t0, other)


@dataclass
class RunResult:
    method: str
    pairing: str
    seed: int
    image: np.ndarray  # test embeddings
    text: np.ndarray
    metrics: dict[str, float]
    history: pd.DataFrame
    seconds: float
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)


def run_method(ctx: WorldContext, method: str, seed: int, settings: dict, keep_model: bool = False,
               device: str = "cpu") -> RunResult:
    """Train ``method`` on ``ctx``'s world with ``seed``; N-way R@1 both ways and neighbourhood preservation."""
    methods = {**METHODS, **{m: spec for name in ctx.other for m, spec in other_omega_methods(name).items()}}
    if method not in methods:
        raise ValueError(f"method must be one of {list(methods)}, got {method!r}")
    kind, source, options = methods[method]
    t0 = time.perf_counter()
    bundle = create_two_stream(ctx.train, seed=seed, context_length=settings["context_length"],
                               **settings["model"])
    if source is None:
        objective = baseline_objective(kind)
    else:
        if source == "text":
            table = ctx.text_table
        elif source == "image":
            table = ctx.image_table
        else:  # "text:<space>"
            table = ctx.other[source.split(":", 1)[1]][1]
        pairs = NeighbourPairs(table, ctx.train, bundle.model, bundle.tokenizer, seed=seed)
        objective = ours_objective(pairs, kind, **options)
    config = TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"], lr=settings["lr"],
                         warmup_steps=settings["warmup_steps"], seed=seed, device=device, progress=False)
    history = fit(bundle.model, objective, ctx.train, bundle.tokenizer, config)
    bundle.model.cpu()
    image, text = encode_pairs(bundle.model, bundle.tokenizer, ctx.test)
    # the N-way R@1 in expectation over the distractor draws: no sampling noise (labkit.metrics.nway)
    metrics = {f"nway_R@1/{d}": v for d, v in expected_nway_retrieval(image, text, settings["n_way"]).items()}
    k = settings["k_preserve"]
    metrics["preservation/image"] = neighbourhood_preservation(ctx.omega_test, image, k)
    metrics["preservation/text"] = neighbourhood_preservation(ctx.omega_test, text, k)
    for name, (_, _, omega) in ctx.other.items():
        metrics[f"preservation@{name}/image"] = neighbourhood_preservation(omega, image, k)
        metrics[f"preservation@{name}/text"] = neighbourhood_preservation(omega, text, k)
    return RunResult(method, ctx.pairing, seed, image, text, metrics, history, time.perf_counter() - t0,
                     bundle.model if keep_model else None, bundle.tokenizer if keep_model else None)


def run_methods(contexts: dict[str, WorldContext], methods, seeds, settings: dict, device: str = "cpu",
                keep_models: Callable[[str, str, int], bool] | None = None,
                log: Callable[[str], None] | None = print) -> Sweep:
    """Every (world, method) × seed: a :class:`~labkit.studies.sweep.Sweep` with factors ``pairing`` and ``method``,
    whose rows carry ``nway_R@1/i2t``, ``nway_R@1/t2i``, their mean ``nway_R@1/mean`` and the preservation figures.
    ``keep_models(pairing, method, seed)`` says which runs keep their model for qualitative examples."""

    def one(seed: int, pairing: str, method: str):
        keep = bool(keep_models and keep_models(pairing, method, seed))
        r = run_method(contexts[pairing], method, seed, settings, keep_model=keep, device=device)
        numbers = {**r.metrics, "nway_R@1/mean": (r.metrics["nway_R@1/i2t"] + r.metrics["nway_R@1/t2i"]) / 2,
                   "train_seconds": r.seconds}
        if log is not None:
            log(f"{pairing:13s} seed {seed}  {LABELS[method]:16s} {r.seconds:5.1f} s  "
                f"I→T {r.metrics['nway_R@1/i2t']:.3f}  T→I {r.metrics['nway_R@1/t2i']:.3f}")
        return numbers, r

    return run_grid(one, {"pairing": list(contexts), "method": list(methods)}, seeds, log=None)


METRICS = ("nway_R@1/i2t", "nway_R@1/t2i", "preservation/image", "preservation/text")


def summarise(sweep: Sweep, metrics=METRICS) -> pd.DataFrame:
    """One row per (pairing, method, metric): mean, std (ddof=1) and n over seeds."""
    return sweep.tidy(metrics)


def pm_table(summary: pd.DataFrame, methods: list[str], metrics: list[str], pairings=("literal", "complementary"),
             digits: int = 3) -> pd.DataFrame:
    """A display table: rows = methods, columns = (pairing, metric), cells ``mean ± std``."""
    cells = {}
    for p in pairings:
        for m in metrics:
            col = []
            for meth in methods:
                row = summary[(summary.pairing == p) & (summary.method == meth) & (summary.metric == m)]
                col.append(f"{row['mean'].iloc[0]:.{digits}f} ± {row['std'].iloc[0]:.{digits}f}" if len(row) else "")
            cells[(p, m)] = col
    return pd.DataFrame(cells, index=[LABELS.get(m, m) for m in methods])


#: (ours, its baseline): the comparisons of Table 1 behind the claim, and the image-neighbour variant
COMPARISONS = (("ours", "ang_np_sym"), ("ours_trip", "trip_np_sym"), ("ours_img_nns", "ang_np_sym"))
#: the difference the study must be able to resolve (issue: "until a difference of 0.03 is resolvable")
TARGET_DIFFERENCE = 0.03


def comparisons(sweep: Sweep, pairings=("literal", "complementary"), other_spaces: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per-seed paired differences ours − baseline of the N-way R@1 averaged over both directions, per world.

    Columns: the difference's mean, std, standard error and n over seeds; ``resolvable`` = 2 standard errors, the
    smallest difference this run separates from zero; ``resolves_target`` whether that is below
    :data:`TARGET_DIFFERENCE`; ``distinguishable`` whether this difference stands out (|mean| > 2 se).
    """
    pairs = list(COMPARISONS) + [(f"{m}@{space}", b) for space in other_spaces for m, b in COMPARISONS
                                 if m in OMEGA_METHODS]
    rows = []
    for method, baseline in pairs:
        for p in pairings:
            d = sweep.paired("nway_R@1/mean", {"pairing": p, "method": baseline}, {"pairing": p, "method": method})
            std = 0.0 if not np.isfinite(d.std) else d.std
            se = d.se if np.isfinite(d.se) else float("nan")
            rows.append({"comparison": f"{LABELS.get(method, method)} − {LABELS[baseline]}", "method": method,
                         "world": p, "Δ R@1 (mean ± std)": f"{d.mean:+.3f} ± {std:.3f}", "mean": d.mean, "std": std,
                         "se": se, "n": d.n, "resolvable": 2 * se, "resolves_target": bool(2 * se < TARGET_DIFFERENCE),
                         "distinguishable": bool(abs(d.mean) > max(2 * se, 1e-9))})
    return pd.DataFrame(rows)


def claims(table: pd.DataFrame) -> tuple[list[Claim], str]:
    """Seed 001's claim, "ours beats the baselines, more on complementary than on literal data", from
    :func:`comparisons`: one :class:`~labkit.report.Claim` per (hinge, world) that ours beats its baseline, one per
    hinge that the gain is larger on complementary data (for the main Ω, and for a second Ω if the table has it:
    ids ``<method>_omega_<space>…``), and a summary line for the main Ω."""
    source = "seed 001, Table 1"
    out: list[Claim] = []
    ours = table[table.method.str.split("@").str[0].isin(OMEGA_METHODS)]
    for row in ours.itertuples():
        out.append(Claim(f"{row.method}_beats_baseline/{row.world}".replace("/", ".").replace("@", "_omega_"),
                         f"{LABELS.get(row.method, row.method)} beats its baseline on {row.world} data", source,
                         f"paired Δ N-way R@1 ({row.comparison}, mean of both directions)", row.mean, row.std, row.n,
                         paired_verdict(row.mean, row.se, "increase"),
                         f"2 standard errors = {row.resolvable:.3f} (the smallest difference this run resolves)"))
    for method in dict.fromkeys(ours.method):
        sub = ours[ours.method == method].set_index("world")
        if not {"literal", "complementary"} <= set(sub.index):
            continue
        lit, comp = sub.loc["literal"], sub.loc["complementary"]
        diff = comp["mean"] - lit["mean"]
        se = float(np.hypot(comp["se"], lit["se"]))
        out.append(Claim(f"{method}_gain_larger_on_complementary".replace("@", "_omega_"),
                         f"{LABELS.get(method, method)}'s gain is larger on complementary than on literal data",
                         source, "difference of the paired gains, complementary − literal (std: the two stds combined)",
                         diff, float(np.hypot(comp["std"], lit["std"])), int(comp["n"]),
                         paired_verdict(diff, se, "increase")))
    main = table[table.method.isin(["ours", "ours_trip"])]
    d = {(r.method, r.world): r for r in main.itertuples()}
    beats = {p: all(d[(m, p)].mean > 0 for m in ("ours", "ours_trip")) for p in ("literal", "complementary")}
    more = all(d[(m, "complementary")].mean > d[(m, "literal")].mean for m in ("ours", "ours_trip"))
    robust = all(r.distinguishable for r in main.itertuples())
    holds = beats["complementary"] and beats["literal"] and more
    worst = float(main["resolvable"].max())
    text = (f"ours beats its baseline on literal data: {beats['literal']}; on complementary data: "
            f"{beats['complementary']}; larger gain on complementary: {more}.\n=> in the means the claim "
            + ("HOLDS" if holds else "DOES NOT HOLD") + " here "
            + ("(every difference stands out of the seed noise by more than 2 standard errors)." if robust else
               "— but at least one difference is within 2 standard errors of zero, so this run cannot settle it.")
            + f"\nResolution: this run separates differences larger than {worst:.3f} (2 standard errors, worst "
            f"comparison); a difference of {TARGET_DIFFERENCE:g} is "
            + ("resolvable." if worst < TARGET_DIFFERENCE else "NOT resolvable at this number of seeds."))
    return out, text
