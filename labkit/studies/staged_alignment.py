r"""Notebook 10's study, seed 004 (Rethinking Semantic Contrastive Learning): learn each modality's semantic space
alone, then map images into the text space — against end-to-end CLIP on the same world and budget; zero-shot
transfer to a second world; category-level retrieval with mAP@k.

    settings = study_settings("smoke")
    first, second = make_worlds(settings, seed=0)                # literal captions / "casual" captions (Flickr8k analogue)
    sweep = run_study(first, second, seeds=[0, 1, 2], settings=settings)
    instance_tables(sweep); zero_shot_table(sweep); category_table(sweep); claims(sweep, settings)

**The staged model** (:mod:`labkit.models.staged`): one labkit-tiny CLIP whose towers are trained apart.
Stage 1 trains the text transformer on caption groups (``text_group`` captions of an image per item; captions of
the same image are the positives — the embedded world's "texts of the same semantics"; ``text_positives="topic"``
makes all captions of a topic positives instead). Stage 2 trains the ViT on images, images of the same topic as
positives (seed 004's "images of the same type"; on data without topics, the types are k-means clusters of the
stage-1 caption embeddings). Both stages run through :func:`labkit.train.fit` unchanged
(:class:`~labkit.models.staged.ModalityView`), with :class:`~labkit.losses.IntraModalLoss` (multi-positive InfoNCE
by default; ``kind="eq2"`` is eq. 2/4 as printed). Stage 3 freezes both and fits the linear map image → text space
in closed form (least squares; ``map_method="gradient"`` trains it with Adam instead).

**Same budget**: end-to-end CLIP trains both towers for ``epochs`` epochs, one caption per image per step. The
staged model's image stage runs ``epochs`` epochs over the images; its text stage runs ``epochs / text_group``
epochs over groups of ``text_group`` captions — so each tower encodes as many inputs as in end-to-end training.
Batch size, learning rate, schedule and weight decay are the same.

**The second world** is the ``casual`` caption style (:mod:`labkit.data.caption_styles`): other sentence
structures, and half of the content words unknown to the first world. As in seed 004 (COCO → Flickr8k), it is
smaller: the "supervised" model trains on its ``second_n_pairs × second_split[0]`` training pairs, the zero-shot
model on the first world's larger training split.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import CaptionGroups, GroupTokenizer, make_world
from ..data.groups import WithTopics
from ..evaluate import Embeddings, cone_report, embed_dataset, evaluate_embeddings
from ..losses import IntraModalLoss, Objective
from ..metrics import category_retrieval, chance_recall
from ..models import ModalityView, StagedModel, create_model
from ..report import Claim, paired_verdict
from ..train import TrainConfig, fit
from .recipe import open_source, profile_settings, train_clip, world_is_embedded
from .sweep import Sweep, run_grid

__all__ = ["STUDY_PROFILES", "METHODS", "LABELS", "study_settings", "make_worlds", "StagedResult", "train_staged",
           "train_end_to_end", "evaluate_on", "run_study", "instance_tables", "zero_shot_table", "category_table",
           "loss_comparison", "claims", "results_markdown", "RECALL_KEYS"]

METHODS = ("staged", "end_to_end")
LABELS = {"staged": "staged (text → image → linear map)", "end_to_end": "end-to-end CLIP",
          "staged_eq2": "staged, eq. 2/4 as printed"}
RECALL_KEYS = tuple(f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))
TRAIN_KEYS = ("batch_size", "lr", "warmup_steps", "weight_decay")

STUDY_PROFILES: dict[str, dict[str, Any]] = {
    # smoke: 3 seeds × (staged + end-to-end on the first world, both on the second) ≈ 20 s a seed on 2 CPU cores
    "smoke": {"n_pairs": 1500, "split_fractions": (0.8, 0.0, 0.2), "second_n_pairs": 800,
              "second_split": (0.5, 0.0, 0.5), "second_style": "casual", "image_size": 32, "n_seeds": 3,
              "epochs": 8, "batch_size": 128, "lr": 2e-3, "warmup_steps": 10, "weight_decay": 0.1,
              "model_name": "labkit-tiny", "text_group": 2, "text_positives": "pair_id",
              "image_positives": "topic", "n_types": 8, "map_method": "lstsq", "ridge": 0.0, "map_epochs": 50,
              "k_map": (10, 50), "compare_eq2": True, "torch_threads": None},
    # full: the 1k-image test of Tables 1–2 (Karpathy-style 1 000 test images), a larger second world
    "full": {"n_pairs": 10000, "split_fractions": (0.9, 0.0, 0.1), "second_n_pairs": 3000,
             "second_split": (0.667, 0.0, 0.333), "second_style": "casual", "image_size": 32, "n_seeds": 3,
             "epochs": 30, "batch_size": 256, "lr": 1e-3, "warmup_steps": 100, "weight_decay": 0.1,
             "model_name": "labkit-tiny", "text_group": 2, "text_positives": "pair_id",
             "image_positives": "topic", "n_types": 8, "map_method": "lstsq", "ridge": 0.0, "map_epochs": 200,
             "k_map": (10, 50), "compare_eq2": True, "torch_threads": None},
    # tiny: what the tests execute (runs end to end; the models barely train); one torch thread (see notebook 09's
    # study: on tensors this small a second thread only adds synchronisation)
    "tiny": {"n_pairs": 200, "split_fractions": (0.6, 0.0, 0.4), "second_n_pairs": 120,
             "second_split": (0.5, 0.0, 0.5), "second_style": "casual", "image_size": 32, "n_seeds": 2,
             "epochs": 2, "batch_size": 32, "lr": 2e-3, "warmup_steps": 2, "weight_decay": 0.1,
             "model_name": "labkit-tiny", "text_group": 2, "text_positives": "pair_id",
             "image_positives": "topic", "n_types": 4, "map_method": "lstsq", "ridge": 0.0, "map_epochs": 5,
             "k_map": (10, 50), "compare_eq2": False, "torch_threads": 1},
}


def study_settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """The study's sizes for ``profile`` (:data:`STUDY_PROFILES`), non-None overrides applied."""
    return profile_settings(profile, STUDY_PROFILES, **overrides)


def make_worlds(settings: dict, seed: int = 0, dataset: str = "embedded", data_root: str | None = None,
                second_dataset: str = "embedded", second_root: str | None = None):
    """The first world (literal captions; or COCO / Flickr30k) and the second (``casual`` captions, another world
    seed; or Flickr8k) — the zero-shot target."""
    first = (make_world(settings["n_pairs"], seed=seed, image_size=settings["image_size"],
                        split_fractions=settings["split_fractions"])
             if dataset == "embedded" else open_source(dataset, data_root))
    second = (make_world(settings["second_n_pairs"], seed=seed + 10_000, image_size=settings["image_size"],
                         pairing=settings["second_style"], split_fractions=settings["second_split"])
              if second_dataset == "embedded" else open_source(second_dataset, second_root))
    return first, second


@dataclass
class StagedResult:
    """A trained model (staged or end-to-end) with what the notebook shows about it."""

    method: str
    bundle: Any  # ClipBundle of the underlying CLIP
    model: torch.nn.Module  # what embeds: a StagedModel or the CLIP itself
    histories: dict[str, pd.DataFrame]
    seconds: dict[str, float]
    extra: dict = field(default_factory=dict)

    @property
    def train_seconds(self) -> float:
        return float(sum(self.seconds.values()))


def _config(settings: dict, epochs: int, seed: int, device: str, progress: bool) -> TrainConfig:
    return TrainConfig(epochs=max(1, int(epochs)), seed=seed, device=device, progress=progress,
                       **{k: settings[k] for k in TRAIN_KEYS})


def _transform(source, bundle):
    return None if world_is_embedded(source) and bundle.image_size == source.image_size else bundle.preprocess


def _caption_types(model: torch.nn.Module, dataset, tokenizer, n_types: int, seed: int, device: str) -> np.ndarray:
    """Image "types" when the data has no topics: k-means clusters of each image's mean stage-1 caption embedding."""
    from sklearn.cluster import KMeans

    captions, owner = dataset.captions_flat()
    with torch.no_grad():
        text = torch.cat([model.encode_text(tokenizer(captions[s:s + 256]).to(device), normalize=True).cpu()
                          for s in range(0, len(captions), 256)]).numpy()
    means = np.zeros((len(dataset), text.shape[1]))
    np.add.at(means, owner, text)
    k = max(2, min(int(n_types), len(dataset) // 2))
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(means).astype(np.int64)


def train_staged(source, seed: int, settings: dict, device: str = "auto", progress: bool = False,
                 kind: str = "infonce") -> StagedResult:
    """Seed 004's three stages on ``source``'s training split (see the module docstring); ``kind="eq2"`` trains
    both intra-modal stages with eq. 2/4 as printed."""
    from ..train import resolve_device

    dev = resolve_device(device)
    bundle = create_model(settings["model_name"], seed=seed)
    clip, tokenizer = bundle.model, bundle.tokenizer
    train_set = source.split("train", transform=_transform(source, bundle))
    histories, seconds = {}, {}
    group = int(settings["text_group"])

    t0 = time.perf_counter()  # stage 1: texts only, captions of one image (or one topic) as positives
    with ModalityView(clip, "text") as view:
        term = IntraModalLoss("text", settings["text_positives"], kind)
        histories["text"] = fit(view, Objective({"text": term}), CaptionGroups(train_set, group),
                                GroupTokenizer(tokenizer),
                                _config(settings, round(settings["epochs"] / group), seed, device, progress))
    seconds["text"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # stage 2: images only, same-type images as positives
    image_set, positives = train_set, settings["image_positives"]
    if positives == "text_clusters" or (train_set.topics < 0).any():
        clip.to(dev).eval()
        types = _caption_types(clip, train_set, tokenizer, settings["n_types"], seed, str(dev))
        image_set, positives = WithTopics(train_set, types), "text_clusters"
    with ModalityView(clip, "image") as view:
        term = IntraModalLoss("image", "topic", kind)
        histories["image"] = fit(view, Objective({"image": term}), image_set, tokenizer,
                                 _config(settings, settings["epochs"], seed, device, progress))
    seconds["image"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # stage 3: both frozen; the linear map image → text space
    staged = StagedModel(clip)
    for p in clip.parameters():
        p.requires_grad_(False)
    feats = embed_dataset(staged, train_set, tokenizer, device=device)
    x = torch.from_numpy(feats.image[feats.text_to_image])
    y = torch.from_numpy(feats.text)
    if settings["map_method"] == "lstsq":
        staged.fit_map(x, y, "lstsq", ridge=settings["ridge"])
    else:
        staged.fit_map(x, y, "gradient", epochs=settings["map_epochs"], seed=seed)
    staged.to(dev)
    seconds["map"] = time.perf_counter() - t0
    return StagedResult("staged" if kind == "infonce" else "staged_eq2", bundle, staged, histories, seconds,
                        {"train_features": feats, "image_positives": positives, "kind": kind})


def train_end_to_end(source, seed: int, settings: dict, device: str = "auto", progress: bool = False
                     ) -> StagedResult:
    """The baseline: the same CLIP trained end to end with InfoNCE (:func:`labkit.studies.recipe.train_clip`)."""
    result = train_clip(source, seed=seed, model_name=settings["model_name"], device=device, progress=progress,
                        epochs=settings["epochs"], **{k: settings[k] for k in TRAIN_KEYS})
    return StagedResult("end_to_end", result.bundle, result.model, {"clip": result.history},
                        {"clip": float(result.history["seconds"].sum())})


def evaluate_on(result: StagedResult, source, settings: dict, prefix: str, device: str = "auto"
                ) -> tuple[dict[str, float], Embeddings]:
    """R@1/5/10 both ways, chance, the gap family and (with topics) category-level mAP@k / P@k on ``source``'s
    test split; keys prefixed ``"<prefix>/"``."""
    test = source.split("test", transform=_transform(source, result.bundle))
    emb = embed_dataset(result.model, test, result.bundle.tokenizer, device=device)
    numbers = evaluate_embeddings(emb)
    numbers["i2t_mean_recall"] = float(np.mean([numbers[f"i2t_R@{k}"] for k in (1, 5, 10)]))
    per_image = len(emb.text) / len(emb.image)
    for k in (1, 5, 10):
        numbers.update({f"chance/{key}": v for key, v in chance_recall(len(emb.image), per_image, k).items()})
    if (emb.topic >= 0).all():
        cat = category_retrieval(emb.image, emb.text, emb.topic, emb.topic[emb.text_to_image], settings["k_map"])
        numbers.update(cat)
        kmax = max(settings["k_map"])
        numbers[f"mAP@{kmax}"] = 0.5 * (cat[f"i2t_mAP@{kmax}"] + cat[f"t2i_mAP@{kmax}"])
        counts = np.bincount(emb.topic)
        numbers["chance/P"] = float((counts / counts.sum()) @ (counts / counts.sum()))
    return {f"{prefix}/{k}": v for k, v in numbers.items()}, emb


def run_study(first, second, seeds: Sequence[int], settings: dict, device: str = "auto",
              log: Callable[[str], None] | None = print, methods: Sequence[str] = METHODS) -> Sweep:
    """Every (method, training world) × seed through :func:`~labkit.studies.sweep.run_grid`. Models trained on the
    first world are measured on both test splits (the second: zero-shot); models trained on the second world on
    its own ("supervised"). ``sweep.runs[(method, world, seed)]`` keeps each :class:`StagedResult`."""
    worlds = {"first": first, "second": second}

    def run(seed: int, method: str, train_world: str):
        trainer = train_staged if method == "staged" else train_end_to_end
        result = trainer(worlds[train_world], seed, settings, device=device)
        numbers: dict[str, float] = {"train_seconds": result.train_seconds,
                                     **{f"seconds/{k}": v for k, v in result.seconds.items()}}
        embs = {}
        for name in (("first", "second") if train_world == "first" else ("second",)):
            got, embs[name] = evaluate_on(result, worlds[name], settings, name, device)
            numbers.update(got)
        result.extra["embeddings"] = embs
        if log is not None:
            where = ", ".join(f"{n}: mean recall {numbers[f'{n}/mean_recall']:.1f}" for n in embs)
            log(f"{method:<10} trained on {train_world:<6} seed={seed}: {where} ({result.train_seconds:.0f} s)")
        return numbers, result

    grid = [{"method": m, "train_world": w} for w in ("first", "second") for m in methods]
    return run_grid(run, grid, seeds, log=None)


def _pm(values: pd.Series, digits: int = 1, scale: float = 1.0) -> str:
    v = scale * values
    return f"{v.mean():.{digits}f} ± {(v.std() if len(v) > 1 else 0.0):.{digits}f}"


def instance_tables(sweep: Sweep, world: str = "first") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables 1 (image→text) and 2 (text→image) of seed 004: R@1/5/10 on ``world``'s test split, models trained
    on that world, mean ± std over seeds (percent)."""
    tables = []
    for d in ("i2t", "t2i"):
        rows = {}
        for m in sweep.values("method"):
            rows[LABELS[m]] = {f"R@{k}": _pm(sweep.per_seed(f"{world}/{d}_R@{k}", method=m, train_world=world))
                               for k in (1, 5, 10)}
        tables.append(pd.DataFrame(rows).T)
    return tables[0], tables[1]


def zero_shot_table(sweep: Sweep) -> pd.DataFrame:
    """Table 3 of seed 004: image→text R@1/5/10 on the second world's test split, trained on the second world
    ("supervised") or on the first ("zero-shot"), per method (percent)."""
    rows = {}
    for m in sweep.values("method"):
        for label, world in (("supervised", "second"), ("zero-shot", "first")):
            rows[(LABELS[m], label)] = {
                **{f"R@{k}": _pm(sweep.per_seed(f"second/i2t_R@{k}", method=m, train_world=world))
                   for k in (1, 5, 10)},
                "mean R (both ways)": _pm(sweep.per_seed("second/mean_recall", method=m, train_world=world))}
    return pd.DataFrame(rows).T


def category_table(sweep: Sweep, world: str = "first") -> pd.DataFrame:
    """Category-level retrieval (seed 004 eq. 6, NUS-WIDE-10k protocol with topics as categories): mAP@k and P@k
    both ways on ``world``'s test split, mean ± std over seeds."""
    cols = [c.split("/", 1)[1] for c in sweep.table.columns
            if c.startswith(f"{world}/") and ("mAP@" in c or "_P@" in c)]
    rows = {}
    for m in sweep.values("method"):
        rows[LABELS[m]] = {c: _pm(sweep.per_seed(f"{world}/{c}", method=m, train_world=world), 3) for c in cols}
    return pd.DataFrame(rows).T


def loss_comparison(results: dict[str, StagedResult], world, settings: dict, device: str = "auto") -> pd.DataFrame:
    """Eq. 2/4 as printed against the InfoNCE stages (same seed): how the stage-1 text space and stage-2 image
    space look (mean pairwise cosine: 1 = collapsed; share of nearest neighbours that are positives) and what the
    staged model retrieves."""
    rows = []
    for name, res in results.items():
        numbers, emb = evaluate_on(res, world, settings, "x", device)
        tower = res.model.clip
        test = world.split("test", transform=_transform(world, res.bundle))
        raw = embed_dataset(tower, test, res.bundle.tokenizer, device=device)
        cone = cone_report(raw)
        own = raw.text_to_image
        sims = raw.text @ raw.text.T
        np.fill_diagonal(sims, -np.inf)
        nn_same = float((own[sims.argmax(1)] == own).mean())
        rows.append({"stages trained with": LABELS.get(name, name),
                     "text space: mean cosine": round(cone["text"], 3),
                     "text space: nearest caption from the same image": round(nn_same, 3),
                     "image space: mean cosine": round(cone["image"], 3),
                     "mean recall": round(numbers["x/mean_recall"], 2),
                     "final text-stage loss": round(float(res.histories["text"]["loss"].iloc[-1]), 3)})
    return pd.DataFrame(rows).set_index("stages trained with")


def _learned(sweep: Sweep, factor: float = 3.0) -> tuple[bool, str]:
    ok, parts = True, []
    for m in sweep.values("method"):
        for d in ("i2t", "t2i"):
            got = float(sweep.per_seed(f"first/{d}_R@10", method=m, train_world="first").mean())
            chance = float(sweep.per_seed(f"first/chance/{d}_R@10", method=m, train_world="first").mean())
            ok &= got >= factor * chance
            parts.append(f"{m} {d} R@10 {got:.1f} vs chance {chance:.1f}")
    return bool(ok), "; ".join(parts) + f" (first world; learned = every R@10 ≥ {factor:g}× chance)"


def claims(sweep: Sweep, settings: dict) -> tuple[list[Claim], bool, str]:
    """Seed 004's claims as :class:`~labkit.report.Claim` records (paired per seed), and the learned check.

    * *staged beats end-to-end* — instance level: Δ mean recall (R@1/5/10 both ways) on the first world;
      category level: Δ mAP@k (mean of both directions, largest k), when topics are known.
    * *zero-shot beats supervised on the second world*: the staged model trained on the first world against the
      staged model trained on the second, Δ image→text mean of R@1/5/10 on the second world's test split (Table 3
      is image→text).
    """
    out = []
    d = sweep.paired("first/mean_recall", {"method": "end_to_end", "train_world": "first"},
                     {"method": "staged", "train_world": "first"})
    out.append(Claim("staged_beats_end_to_end.instance", "staged training beats end-to-end training",
                     "seed 004, Tables 1–2", "paired Δ mean recall (points, R@1/5/10 both ways), staged − "
                     "end-to-end CLIP, first world", d.mean, d.std, d.n, paired_verdict(d.mean, d.se, "increase"),
                     f"{d.mean:+.2f} ± {d.se:.2f} (SE)", extra={"se": d.se}))
    kmax = max(settings["k_map"])
    if f"first/mAP@{kmax}" in sweep.table:
        d = sweep.paired(f"first/mAP@{kmax}", {"method": "end_to_end", "train_world": "first"},
                         {"method": "staged", "train_world": "first"})
        out.append(Claim("staged_beats_end_to_end.category", "staged training beats end-to-end training "
                         "(category level)", "seed 004, eq. 6 / §4.3 (NUS-WIDE-10k protocol)",
                         f"paired Δ mAP@{kmax} (mean of both directions, topics as categories), staged − end-to-end",
                         d.mean, d.std, d.n, paired_verdict(d.mean, d.se, "increase"),
                         f"{d.mean:+.4f} ± {d.se:.4f} (SE)", extra={"se": d.se}))
    d = sweep.paired("second/i2t_mean_recall", {"method": "staged", "train_world": "second"},
                     {"method": "staged", "train_world": "first"})
    out.append(Claim("zero_shot_beats_supervised", "zero-shot transfer beats supervised training on the second "
                     "world", "seed 004, Table 3", "paired Δ image→text mean of R@1/5/10 (points) on the second "
                     "world, staged trained on the first world − staged trained on the second", d.mean, d.std, d.n,
                     paired_verdict(d.mean, d.se, "increase"), f"{d.mean:+.2f} ± {d.se:.2f} (SE)",
                     extra={"se": d.se}))
    learned, detail = _learned(sweep)
    return out, learned, detail


def results_markdown(sweep: Sweep, claim_list: Sequence[Claim], settings: dict, sizes: dict[str, int]) -> str:
    """The notebook's results.md: Tables 1–3 and the category-level table, one line per claim."""
    t1, t2 = instance_tables(sweep)
    lines = ["### 10 · Staged semantic alignment (seed 004)", "",
             f"Embedded world ({sizes['first_test']} test images), second world with casual captions "
             f"({sizes['second_train']} training / {sizes['second_test']} test images), {len(sweep.seeds)} seeds, "
             "mean ± std, R@K in %.", "",
             "Image → text (Table 1):", "", t1.to_markdown(), "", "Text → image (Table 2):", "", t2.to_markdown(),
             "", "Zero-shot on the second world (Table 3, image → text):", "", zero_shot_table(sweep).to_markdown(),
             ""]
    cat = category_table(sweep)
    if len(cat.columns):
        lines += ["Category-level retrieval, topics as categories (eq. 6):", "", cat.to_markdown(), ""]
    for c in claim_list:
        std = 0.0 if not math.isfinite(c.std) else c.std
        lines.append(f"- **{c.claim}** — {c.verdict}: {c.measured}: {c.mean:+.3g} ± {std:.2g} (n={c.n}).")
    return "\n".join(lines)
