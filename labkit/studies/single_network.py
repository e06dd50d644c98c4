r"""Notebook 09's study, seed 002 (Revisiting Cross Modal Retrieval): one CNN for images and captions written as
images, trained with the center loss, against a two-tower CLIP on the same world and budget.

    settings = study_settings("smoke")
    source = make_study_source(settings, seed=0)                    # the world, with a test split of the profile's size
    sweep = run_study(source, seeds=[0, 1, 2], settings=settings)   # both models × seeds (studies.sweep.run_grid)
    recall_table(sweep); semantic_table(sweep); claims(sweep, settings)

**Same world, same budget.** Both models train on the same training split for the same number of epochs with
the same batch size (images per step), optimiser (AdamW), learning rate, warm-up and weight decay. Per step the
single network encodes each image *and its five captions* ("config-standard", §4.1: one image + five encoded
captions, all pulled to the pair's centre); the two-tower CLIP encodes each image and one of its captions (a
different one each epoch), as CLIP does. Wall times are reported beside the recalls.

**Retrieval** is Euclidean nearest neighbour on L2-normalised embeddings (§5.2), i.e. the cosine ranking of
:func:`labkit.metrics.retrieval_recall`; R@1/5/10 both ways over the test split (the COCO-1k / Flickr30k
protocol: 1 000 test images × 5 captions in ``full``; the smoke profile uses 510 so that three seeds of both
models fit in two minutes on two CPU cores).

**Semantic metrics** (the seed's §5.3 argument that R@K undervalues semantically right answers, measured where the
truth is known): for each query's top-K answers, the share that shares the query's *topic* (``topicP@K``) and the
share whose image shares at least one drawn (colour, shape) object with the query's (``objectP@K``); and, among the
top-K answers that R@K counts as *wrong* (not the query's own image or captions), the share that still has the
query's topic, next to the share expected by chance (``missed_topic@K`` vs ``chance_missed_topic@K``).
"""

from __future__ import annotations

import math
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..data import CaptionGroups, make_world
from ..data.text_as_image import TextAsImage
from ..evaluate import Embeddings, embed_dataset, evaluate_embeddings
from ..losses import Objective, center_objective
from ..metrics import chance_recall
from ..metrics.ranking import precision_at_k, ranked_relevance
from ..models import create_single_network
from ..report import Claim, paired_verdict
from ..train import TrainConfig, fit
from .recipe import open_source, profile_settings, train_clip, world_is_embedded
from .sweep import Sweep, paired_difference, run_grid

__all__ = ["STUDY_PROFILES", "MODELS", "DIAGNOSTICS", "LABELS", "study_settings", "make_study_source", "RunResult",
           "train_single_network", "train_two_tower", "semantic_metrics", "evaluate_run", "run_study",
           "recall_table", "semantic_table", "timing_table", "comparable_verdict", "claims", "top_captions",
           "plot_encoded_captions", "plot_top_captions", "results_markdown", "RECALL_KEYS"]

MODELS = ("single_network", "two_tower")
DIAGNOSTICS = ("two_cnn", "single_network_infonce")
LABELS = {"single_network": "single network (center loss)", "two_tower": "two-tower CLIP (InfoNCE)",
          "two_cnn": "two CNNs, one per modality (center loss)",
          "single_network_infonce": "single network trained with InfoNCE"}
RECALL_KEYS = tuple(f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))

STUDY_PROFILES: dict[str, dict[str, Any]] = {
    # smoke: 3 seeds × 2 models (+ 2 one-seed diagnostics) of ~10 s each on 2 quiet CPU cores; 1 190 train / 510
    # test images
    "smoke": {"n_pairs": 1700, "split_fractions": (0.7, 0.0, 0.3), "image_size": 32, "n_seeds": 3, "epochs": 10,
              "batch_size": 64, "lr": 1e-3, "warmup_steps": 10, "weight_decay": 0.1, "backbone": "resnet-small",
              "channels": (32, 64, 128), "embed_dim": 128, "w2v_epochs": 10, "lambda_c": 1.0, "alpha": 0.5,
              "softmax": "batch", "temperature": 0.1, "clip_model": "labkit-tiny", "k_semantic": 5,
              "margin": 0.10, "tsne_images": 200, "diagnostics": True, "torch_threads": None},
    # full: the COCO-1k protocol (1 000 test images × 5 captions), 64-pixel images, torchvision ResNet-18
    "full": {"n_pairs": 10000, "split_fractions": (0.9, 0.0, 0.1), "image_size": 64, "n_seeds": 3, "epochs": 30,
             "batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "weight_decay": 0.1, "backbone": "resnet18",
             "channels": (32, 64, 128), "embed_dim": 128, "w2v_epochs": 20, "lambda_c": 1.0, "alpha": 0.5,
             "softmax": "batch", "temperature": 0.1, "clip_model": "labkit-tiny-64px", "k_semantic": 5,
             "margin": 0.10, "tsne_images": 1000, "diagnostics": True, "torch_threads": None},
    # tiny: what the tests execute (the notebook runs end to end; the models barely train). One torch thread: on
    # tensors this small a second thread only adds synchronisation, which collapses when other jobs share the cores
    "tiny": {"n_pairs": 200, "split_fractions": (0.6, 0.0, 0.4), "image_size": 32, "n_seeds": 2, "epochs": 2,
             "batch_size": 32, "lr": 2e-3, "warmup_steps": 2, "weight_decay": 0.1, "backbone": "resnet-small",
             "channels": (8, 16, 32), "embed_dim": 32, "w2v_epochs": 2, "lambda_c": 1.0, "alpha": 0.5,
             "softmax": "batch", "temperature": 0.1, "clip_model": "labkit-tiny", "k_semantic": 5,
             "margin": 0.10, "tsne_images": 40, "diagnostics": False, "torch_threads": 1},
}

TRAIN_KEYS = ("epochs", "batch_size", "lr", "warmup_steps", "weight_decay")


def study_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The study's sizes for ``profile`` (:data:`STUDY_PROFILES`), non-None overrides applied."""
    return profile_settings(profile, STUDY_PROFILES, **overrides)


def make_study_source(settings: dict, seed: int = 0, dataset: str = "embedded", data_root: str | None = None):
    """The embedded world with the profile's size and splits (``dataset="embedded"``), or a real dataset
    (``"coco"``, ``"flickr30k"``, ``"flickr8k"`` under ``data_root``: Karpathy splits, its test split as is)."""
    if dataset == "embedded":
        return make_world(n_pairs=settings["n_pairs"], seed=seed, image_size=settings["image_size"],
                          split_fractions=settings["split_fractions"])
    return open_source(dataset, data_root)


@dataclass
class RunResult:
    """One trained model and its test embeddings."""

    model: str
    bundle: Any
    history: pd.DataFrame
    emb: Embeddings
    metrics: dict[str, float]
    encoder: TextAsImage | None = None
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _train_config(settings: dict, seed: int, device: str, progress: bool) -> TrainConfig:
    return TrainConfig(seed=seed, device=device, progress=progress, **{k: settings[k] for k in TRAIN_KEYS})


def train_single_network(source, seed: int, settings: dict, device: str = "auto", progress: bool = False,
                         eval_split: str = "test", shared: bool = True, loss: str = "center") -> RunResult:
    """Seed 002's recipe: word2vec on the training captions → text-as-image encoder → one CNN trained on
    config-standard groups (an image and its five encoded captions) with the center loss (eq. 1; Wen et al.'s
    centre update, rate α) and the identity softmax it is trained with; measured on ``eval_split``.

    Diagnostics: ``shared=False`` gives each modality its own copy of the CNN (``"two_cnn"``);
    ``loss="infonce"`` trains the single network with the two-tower baseline's loss instead (CLIP's InfoNCE, one
    caption per image per step, learned temperature; ``"single_infonce"``).
    """
    if loss not in ("center", "infonce"):
        raise ValueError(f"loss must be 'center' or 'infonce', got {loss!r}")
    train_raw = source.split("train")
    texts, _ = train_raw.captions_flat()
    encoder = TextAsImage.fit(texts, image_size=settings["image_size"], seed=seed, epochs=settings["w2v_epochs"])
    bundle = create_single_network(encoder, backbone=settings["backbone"], embed_dim=settings["embed_dim"],
                                   seed=seed, shared=shared, **({"channels": tuple(settings["channels"])}
                                                                if settings["backbone"] == "resnet-small" else {}))
    transform = None if world_is_embedded(source) else bundle.preprocess
    train_set = source.split("train", transform=transform)
    if loss == "center":
        objective = center_objective(train_set.pair_ids, settings["embed_dim"], lambda_c=settings["lambda_c"],
                                     alpha=settings["alpha"], softmax=settings["softmax"],
                                     temperature=settings["temperature"], seed=seed)
        data = CaptionGroups(train_set, 5)
    else:
        bundle.model.logit_scale.requires_grad_(True)
        objective, data = Objective(), train_set
    t0 = time.perf_counter()
    history = fit(bundle.model, objective, data, encoder, _train_config(settings, seed, device, progress))
    seconds = time.perf_counter() - t0
    eval_set = source.split(eval_split, transform=transform)
    emb = embed_dataset(bundle.model, eval_set, encoder, device=device)
    name = "single_network" if shared else "two_cnn"
    name += "" if loss == "center" else "_infonce"
    return RunResult(name, bundle, history, emb, {}, encoder, seconds, {"objective": objective, "eval_set": eval_set})


def train_two_tower(source, seed: int, settings: dict, device: str = "auto", progress: bool = False,
                    eval_split: str = "test") -> RunResult:
    """The baseline: a two-tower CLIP (:func:`labkit.studies.recipe.train_clip`) with the same training budget."""
    result = train_clip(source, seed=seed, model_name=settings["clip_model"], device=device, progress=progress,
                        eval_split=eval_split, **{k: settings[k] for k in TRAIN_KEYS})
    seconds = float(result.history["seconds"].sum())
    transform = None if world_is_embedded(source) and result.bundle.image_size == source.image_size \
        else result.bundle.preprocess
    eval_set = source.split(eval_split, transform=transform)
    return RunResult("two_tower", result.bundle, result.history, result.final, {}, None, seconds,
                     {"eval_set": eval_set})


def _object_sets(scenes: Sequence[dict]) -> np.ndarray:
    """bool (n, |colours|·|shapes|): which (colour, shape) objects each scene draws."""
    from ..data.world import COLOURS, SHAPES

    out = np.zeros((len(scenes), len(COLOURS) * len(SHAPES)), dtype=bool)
    for i, sc in enumerate(scenes):
        for o in sc["objects"]:
            out[i, COLOURS.index(o["colour"]) * len(SHAPES) + SHAPES.index(o["shape"])] = True
    return out


def semantic_metrics(emb: Embeddings, scenes: Sequence[dict] | None = None, k: int = 5) -> dict[str, float]:
    """Topic and object precision of the top-``k`` answers both ways, and the share of R@K's "misses" that share
    the query's topic next to its chance level (percent). Needs topics (``emb.topic`` ≥ 0); objects need scenes."""
    if (emb.topic < 0).any():
        return {}
    t2i = emb.text_to_image
    own = t2i[None, :] == np.arange(len(emb.image))[:, None]  # (images, texts)
    topic = emb.topic[:, None] == emb.topic[t2i][None, :]
    rel = {"topic": topic}
    if scenes is not None:
        objs = _object_sets(scenes).astype(np.float32)
        rel["object"] = (objs @ objs[t2i].T) > 0
    out: dict[str, float] = {}
    for direction, q, g, flip in (("i2t", emb.image, emb.text, False), ("t2i", emb.text, emb.image, True)):
        mats = {name: (m.T if flip else m) for name, m in rel.items()}
        own_d = own.T if flip else own
        for name, m in mats.items():
            top, _ = ranked_relevance(q, g, m, k)
            out[f"{direction}_{name}P@{k}"] = 100 * float(precision_at_k(top).mean())
        top_miss, _ = ranked_relevance(q, g, ~own_d, k)
        top_sem_miss, _ = ranked_relevance(q, g, mats["topic"] & ~own_d, k)
        out[f"{direction}_missed_topic@{k}"] = 100 * float(top_sem_miss.sum() / max(1, top_miss.sum()))
        chance = ((mats["topic"] & ~own_d).sum(1) / np.maximum(1, (~own_d).sum(1))).mean()
        out[f"{direction}_chance_missed_topic@{k}"] = 100 * float(chance)
        out[f"{direction}_chance_topicP@{k}"] = 100 * float(mats["topic"].mean(1).mean())
    return out


def evaluate_run(run: RunResult, k: int = 5) -> dict[str, float]:
    """The numbers of one run: the gap family and R@1/5/10 both ways (percent), chance recalls, semantic metrics,
    the training time."""
    emb = run.emb
    numbers = evaluate_embeddings(emb)
    per_image = len(emb.text) / len(emb.image)
    for kk in (1, 5, 10):
        numbers.update({f"chance/{key}": v for key, v in chance_recall(len(emb.image), per_image, kk).items()})
    eval_set = run.extra.get("eval_set")
    scenes = getattr(eval_set, "scenes", None)
    numbers.update(semantic_metrics(emb, scenes, k))
    numbers["train_seconds"] = run.train_seconds
    run.metrics = numbers
    return numbers


def run_study(source, seeds: Sequence[int], settings: dict, device: str = "auto",
              log: Callable[[str], None] | None = print, models: Sequence[str] = MODELS) -> Sweep:
    """Every model × seed through :func:`labkit.studies.sweep.run_grid`; ``sweep.runs[(model, seed)]`` keeps each
    :class:`RunResult`."""
    trainers = {"single_network": train_single_network, "two_tower": train_two_tower,
                "two_cnn": lambda *a, **kw: train_single_network(*a, shared=False, **kw),
                "single_network_infonce": lambda *a, **kw: train_single_network(*a, loss="infonce", **kw)}
    unknown = set(models) - set(trainers)
    if unknown:
        raise ValueError(f"models must be among {(*MODELS, *DIAGNOSTICS)}, got {sorted(unknown)}")

    def run(seed: int, model: str):
        result = trainers[model](source, seed, settings, device=device)
        numbers = evaluate_run(result, settings["k_semantic"])
        if log is not None:
            log(f"{model:<22} seed={seed}: mean recall {numbers['mean_recall']:.1f}, "
                f"R@10 i2t {numbers['i2t_R@10']:.1f} / t2i {numbers['t2i_R@10']:.1f} "
                f"(chance {numbers['chance/t2i_R@10']:.1f}), {result.train_seconds:.0f} s")
        return numbers, result

    return run_grid(run, {"model": list(models)}, seeds, log=None)


def _pm_table(sweep: Sweep, keys: Sequence[str], digits: int = 1) -> pd.DataFrame:
    table = sweep.pm(list(keys), digits=digits)
    table.index = [LABELS.get(m, m) for m in table.index]
    return table


def recall_table(sweep: Sweep) -> pd.DataFrame:
    """Tables 1–2 of seed 002: R@1/5/10 image→sentence and sentence→image, mean ± std over seeds (percent)."""
    table = _pm_table(sweep, [*RECALL_KEYS, "mean_recall"])
    table.columns = pd.MultiIndex.from_tuples(
        [("image→sentence", c.split("_")[1]) if c.startswith("i2t") else
         ("sentence→image", c.split("_")[1]) if c.startswith("t2i") else ("", "mean R") for c in table.columns])
    return table


def semantic_table(sweep: Sweep, k: int = 5) -> pd.DataFrame:
    """R@K next to the semantic view of the same top-K answers (percent, mean ± std over seeds)."""
    keys = [f"i2t_R@{k}", f"i2t_topicP@{k}", f"i2t_objectP@{k}", f"i2t_missed_topic@{k}",
            f"i2t_chance_missed_topic@{k}", f"t2i_R@{k}", f"t2i_topicP@{k}", f"t2i_objectP@{k}",
            f"t2i_missed_topic@{k}", f"t2i_chance_missed_topic@{k}"]
    keys = [key for key in keys if key in sweep.table]
    return _pm_table(sweep, keys)


def timing_table(sweep: Sweep) -> pd.DataFrame:
    """Training wall time per run (s), mean ± std over seeds."""
    return _pm_table(sweep, ["train_seconds"], digits=1)


def comparable_verdict(mean: float, se: float, margin: float) -> str:
    """Equivalence within ``±margin`` (two one-sided checks, each :func:`~labkit.report.paired_verdict` at 2 SE):
    ``holds`` when the paired difference is resolved above ``−margin`` and below ``+margin``; ``does not hold``
    when it is resolved outside the band on either side; ``inconclusive`` otherwise."""
    above = paired_verdict(mean + margin, se, "increase")  # d > −margin?
    below = paired_verdict(mean - margin, se, "decrease")  # d < +margin?
    if above == "holds" and below == "holds":
        return "holds"
    if "does not hold" in (above, below):
        return "does not hold"
    return "inconclusive"


def _learned(sweep: Sweep, factor: float = 3.0) -> tuple[bool, str]:
    parts, ok = [], True
    for model in sweep.values("model"):
        for d in ("i2t", "t2i"):
            got = float(sweep.per_seed(f"{d}_R@10", model=model).mean())
            chance = float(sweep.per_seed(f"chance/{d}_R@10", model=model).mean())
            ok &= got >= factor * chance
            parts.append(f"{model} {d} R@10 {got:.1f} vs chance {chance:.1f}")
    return bool(ok), "; ".join(parts) + f" (learned = every R@10 ≥ {factor:g}× chance)"


def claims(sweep: Sweep, settings: dict) -> tuple[list[Claim], bool, str]:
    """Seed 002's two claims as :class:`~labkit.report.Claim` records, with the "learned far above chance" check.

    * *one network is comparable to two towers*: per-seed paired difference of the mean recall (mean of R@1/5/10
      both ways), single − two-tower; comparable = equivalent within ``±margin × the two-tower's mean recall``
      (``settings["margin"]``, 10 %), decided by :func:`comparable_verdict`.
    * *R@K undervalues semantic matches*: for the single network, the share of the top-K image→sentence answers
      that R@K counts as wrong but that share the query's topic, minus that share's chance level (points);
      ``holds`` when it is resolved above zero.
    """
    source = "seed 002, Tables 1–2 / §5.3"
    k = settings["k_semantic"]
    d = sweep.paired("mean_recall", {"model": "two_tower"}, {"model": "single_network"})
    base = float(sweep.per_seed("mean_recall", model="two_tower").mean())
    margin = settings["margin"] * base
    verdict = comparable_verdict(d.mean, d.se, margin)
    out = [Claim("one_network_comparable_to_two_towers", "one network is comparable to two towers", source,
                 f"paired Δ mean recall (points), single network − two-tower CLIP; comparable = within "
                 f"±{margin:.2f} (= {settings['margin']:.0%} of the two-tower's {base:.1f})",
                 d.mean, d.std, d.n, verdict,
                 f"equivalence band ±{margin:.2f}; difference {d.mean:+.2f} ± {d.se:.2f} (SE)",
                 extra={"margin": margin, "two_tower_mean_recall": base, "se": d.se})]
    key = f"i2t_missed_topic@{k}"
    if key in sweep.table:
        share = sweep.per_seed(key, model="single_network")
        chance = sweep.per_seed(f"i2t_chance_missed_topic@{k}", model="single_network")
        p = paired_difference(chance.to_numpy(), share.to_numpy())
        out.append(Claim("recall_undervalues_semantic_matches", "R@K undervalues semantically right answers",
                         "seed 002, §5.3 / Table 3",
                         f"single network, top-{k} image→sentence answers R@{k} counts wrong: share with the "
                         f"query's topic minus chance (points)", p.mean, p.std, p.n,
                         paired_verdict(p.mean, p.se, "increase"),
                         f"{share.mean():.1f} % of R@{k}'s misses share the query's topic vs {chance.mean():.1f} % "
                         "by chance", extra={"share": float(share.mean()), "chance": float(chance.mean())}))
    learned, detail = _learned(sweep)
    return out, learned, detail


def top_captions(run: RunResult, queries: Sequence[int], k: int = 5) -> pd.DataFrame:
    """Table 3 of seed 002: the top-``k`` captions retrieved (Euclidean NN) for some query images, each marked
    ✓ (one of the query's own captions) and with its image's topic."""
    emb, eval_set = run.emb, run.extra["eval_set"]
    captions, owner = eval_set.captions_flat()
    names = list(getattr(eval_set, "topic_names", []))
    rows = []
    for q in queries:
        dist = np.linalg.norm(emb.text - emb.image[q], axis=1)  # Euclidean, as §5.2 retrieves
        for rank, j in enumerate(np.argsort(dist, kind="stable")[:k], start=1):
            t = int(emb.topic[owner[j]])
            rows.append({"query": int(q), "query topic": names[emb.topic[q]] if names and emb.topic[q] >= 0 else "",
                         "rank": rank, "retrieved caption": captions[j], "own": "✓" if owner[j] == q else "",
                         "topic": names[t] if names and t >= 0 else "",
                         "same topic": bool(t == emb.topic[q] and t >= 0)})
    return pd.DataFrame(rows)


def plot_encoded_captions(dataset, encoder: TextAsImage, n: int = 4, seed: int = 0, captions: int = 3):
    """Images next to some of their captions written as images (rows: one image, then ``captions`` encodings)."""
    import matplotlib.pyplot as plt

    from ..gallery import to_display

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    fig, axes = plt.subplots(len(idx), captions + 1, figsize=(2.3 * (captions + 1), 2.4 * len(idx)), squeeze=False)
    for r, i in enumerate(idx):
        item = dataset[int(i)]
        axes[r, 0].imshow(to_display(item["image"]), interpolation="nearest")
        axes[r, 0].set_title("image", fontsize=8)
        for c, cap in enumerate(item["captions"][:captions], start=1):
            axes[r, c].imshow(encoder.to_display(encoder([cap])[0]), interpolation="nearest")
            axes[r, c].set_title(textwrap.fill(cap, 30), fontsize=6)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_top_captions(run: RunResult, table: pd.DataFrame, width: int = 60):
    """Table 3 as a figure: each query image beside its top captions (✓ own caption, topic in brackets)."""
    import matplotlib.pyplot as plt

    from ..gallery import to_display

    eval_set = run.extra["eval_set"]
    queries = list(dict.fromkeys(table["query"]))
    fig, axes = plt.subplots(len(queries), 2, figsize=(9, 1.9 * len(queries)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 4]})
    for r, q in enumerate(queries):
        axes[r, 0].imshow(to_display(eval_set[q]["image"]), interpolation="nearest")
        axes[r, 0].set_title(f"query [{table[table['query'] == q]['query topic'].iloc[0]}]", fontsize=8)
        axes[r, 0].axis("off")
        lines = [f"{row['own'] or '·'} {textwrap.shorten(row['retrieved caption'], width)} [{row['topic']}]"
                 for _, row in table[table["query"] == q].iterrows()]
        axes[r, 1].text(0, 0.5, "\n".join(lines), fontsize=7, va="center", family="monospace")
        axes[r, 1].axis("off")
    fig.tight_layout()
    return fig


def results_markdown(sweep: Sweep, claim_list: Sequence[Claim], settings: dict, n_test: int) -> str:
    """The notebook's results.md: Tables 1–2, the semantic view and one line per claim."""
    k = settings["k_semantic"]
    rec = recall_table(sweep)
    rec.columns = [f"{a} {b}".strip() for a, b in rec.columns]
    lines = ["### 09 · One network for both modalities (seed 002)",
             "",
             f"Embedded world, {n_test} test images × 5 captions, {len(sweep.seeds)} seeds (mean ± std); R@K in %.",
             "",
             rec.to_markdown(),
             "",
             f"Semantic view of the same top-{k} answers (%): topic / object precision, and the share of R@{k}'s "
             "misses that share the query's topic (vs chance):",
             "",
             semantic_table(sweep, k).to_markdown(),
             ""]
    for c in claim_list:
        lines.append(f"- **{c.claim}** — {c.verdict}: {c.measured}: {c.mean:+.2f} ± "
                     f"{0.0 if not math.isfinite(c.std) else c.std:.2f} (n={c.n}). {c.detail}")
    return "\n".join(lines)

