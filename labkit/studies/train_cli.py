"""Train a labkit recipe outside the notebooks — one process, or many with torchrun.

    python -m labkit.studies.train_cli --recipe clip --profile smoke --seed 0
    torchrun --nproc_per_node=4 -m labkit.studies.train_cli --recipe grl --lambd 1 --profile full --device cuda
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        -m labkit.studies.train_cli --dataset shards --shards 'data/cc3m-{000000..000331}.tar' --n-items 2900000 …

The options are the notebooks' parameters (``seed``, ``profile``, ``device``, ``output_dir`` and the training knobs;
``None``/absent = the profile's value). Recipes (:data:`RECIPES`) build the Objective: ``clip`` (the CLIP loss,
seed 000 eq. 1–3), ``grl`` (seed 000 eq. 5 with ``--lambd`` and ``--lambda-on``); ``--local-loss`` is open_clip's
option. A new recipe (the MoCo queue of issue 8) is one :func:`register_recipe` call.

The run folder (``--output-dir``, default ``runs/train/<timestamp>``) gets ``run.json`` (commit, packages, device,
parameters, seeds), ``history.csv``, ``metrics.json``, ``results.jsonl`` (one line per evaluation) and
``checkpoints/last.pt``. An existing non-empty folder is refused unless ``--resume`` is given: runs never overwrite
each other. SIGTERM / SIGINT write a step checkpoint and exit with status 128 + signal (143 for SIGTERM) and no
traceback; the same command with ``--resume`` continues the run exactly where it stopped.

Under torchrun ``--batch-size`` is the global batch (split over the processes); rank 0 alone writes files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import distributed
from ..evaluate import embed_dataset, evaluate_embeddings
from ..io import append_jsonl, new_run_dir, provenance, write_json, write_metrics
from ..losses import ClipLoss, Objective
from ..losses.modality import LAMBDA_MODES, grl_objective
from ..models import create_model, embed_dim_of
from ..train import TrainConfig, TrainingInterrupted, fit
from .recipe import PROFILES, open_source, profile_settings, world_is_embedded

__all__ = ["main", "RECIPES", "register_recipe", "build_parser"]

#: recipe name → ``builder(args, embed_dim) -> Objective``
RECIPES: dict[str, Callable[[argparse.Namespace, int], Objective]] = {}


def register_recipe(name: str, builder: Callable[[argparse.Namespace, int], Objective]) -> None:
    """Make ``--recipe name`` train with ``builder(args, embed_dim)``'s Objective.

    The MoCo queue of issue 8 registers here: its builder returns an Objective whose queue term gathers the keys of
    the global batch without gradients and enqueues them in ``end_step`` (see :mod:`labkit.train`); nothing else in
    this entry point or in the loop changes.
    """
    if name in RECIPES and RECIPES[name] is not builder:
        raise ValueError(f"recipe {name!r} is already registered")
    RECIPES[name] = builder


register_recipe("clip", lambda args, dim: Objective({"contrastive": ClipLoss(local_loss=args.local_loss)}))


def _grl(args: argparse.Namespace, dim: int) -> Objective:
    objective = grl_objective(args.lambd, dim, lambda_on=args.lambda_on, seed=args.seed)
    objective.terms["contrastive"].local_loss = args.local_loss
    return objective


register_recipe("grl", _grl)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m labkit.studies.train_cli", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--recipe", default="clip", help=f"objective recipe: {', '.join(RECIPES)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="smoke", choices=sorted(PROFILES))
    p.add_argument("--device", default="auto")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", default=None,
                   help="run folder (default: runs/train/<timestamp>)")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="embedded", help="embedded | coco | flickr30k | flickr8k | shards")
    data.add_argument("--data-root", "--data_root", dest="data_root", default=None)
    data.add_argument("--shards", default=None, help="webdataset tar shards, brace pattern or comma list "
                                                     "(--dataset shards)")
    data.add_argument("--eval-shards", default=None, help="shards to evaluate on (--dataset shards)")
    data.add_argument("--n-items", type=int, default=None, help="training items in --shards (for the epoch length)")
    data.add_argument("--n-pairs", "--n_pairs", dest="n_pairs", type=int, default=None)
    data.add_argument("--pairing", default="literal")
    data.add_argument("--eval-split", default="test")
    model = p.add_argument_group("model")
    model.add_argument("--model-name", "--model_name", dest="model_name", default=None)
    model.add_argument("--pretrained", default=None)
    model.add_argument("--checkpoint", default=None)
    train = p.add_argument_group("training")
    for name, kind in (("epochs", int), ("batch_size", int), ("lr", float), ("warmup_steps", int),
                       ("weight_decay", float), ("momentum", float), ("temperature", float), ("num_workers", int)):
        train.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    train.add_argument("--optimizer", default=None, choices=("adamw", "sgd"))
    train.add_argument("--local-loss", action="store_true", help="open_clip's local_loss (under torchrun)")
    train.add_argument("--lambd", type=float, default=1.0, help="λ of the GRL recipe (seed 000 eq. 5)")
    train.add_argument("--lambda-on", default="loss", choices=LAMBDA_MODES)
    run = p.add_argument_group("run")
    run.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its checkpoint")
    run.add_argument("--progress-file", default=None, help="append 'step loss' after every step (rank 0)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _prepare_run_dir(args: argparse.Namespace, info: distributed.DistInfo) -> Path:
    """Rank 0 creates (or, with --resume, reopens) the run folder; every process learns its path or the error."""
    path, error = None, None
    if info.is_main:
        try:
            if args.output_dir is None:
                if args.resume:
                    raise ValueError("--resume needs --output-dir (the run folder to continue)")
                path = new_run_dir(Path("runs") / "train")
            else:
                path = Path(args.output_dir)
                if args.resume:
                    if not (path / "checkpoints" / "last.pt").is_file():
                        raise FileNotFoundError(f"--resume: no checkpoint at {path / 'checkpoints' / 'last.pt'}")
                elif path.exists() and any(path.iterdir()):
                    raise FileExistsError(f"output dir {path} exists and is not empty: runs never overwrite each "
                                          "other (pass --resume to continue it, or choose another --output-dir)")
                path.mkdir(parents=True, exist_ok=True)
        except (ValueError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    path, error = distributed.broadcast_object((str(path) if path else None, error))
    if error:
        raise SystemExit(f"[labkit] {error}")
    return Path(path)


def _data(args: argparse.Namespace, settings: dict[str, Any], bundle):
    """(train set, eval set) for the chosen source, with the model's transform when the images need it."""
    if args.dataset == "shards":
        from ..data.shards import ShardDataset

        if not args.shards:
            raise SystemExit("--dataset shards needs --shards (a brace pattern or comma list of .tar files)")
        train = ShardDataset(args.shards, transform=bundle.preprocess, n_items=args.n_items, shuffle=True,
                             seed=args.seed)
        evaluation = (ShardDataset(args.eval_shards, transform=bundle.preprocess).materialize()
                      if args.eval_shards else None)
        return train, evaluation
    source = open_source(args.dataset, args.data_root, n_pairs=settings["n_pairs"], seed=args.seed,
                         pairing=args.pairing)
    same_size = world_is_embedded(source) and bundle.image_size == source.image_size
    transform = None if same_size else bundle.preprocess
    return source.split("train", transform=transform), source.split(args.eval_split, transform=transform)


def run(args: argparse.Namespace) -> int:
    info = distributed.init_from_env(args.device)
    try:
        return _run(args, info)
    except TrainingInterrupted as exc:
        if info.is_main:
            print(f"[labkit] {exc}", file=sys.stderr, flush=True)
        return 128 + exc.signum
    finally:
        distributed.shutdown()


def _run(args: argparse.Namespace, info: distributed.DistInfo) -> int:
    if args.recipe not in RECIPES:
        raise SystemExit(f"--recipe {args.recipe!r} is unknown; recipes: {', '.join(RECIPES)}")
    known = set(TrainConfig.__dataclass_fields__)
    overrides = {k: v for k, v in vars(args).items() if k in known | {"n_pairs", "model_name"} and v is not None}
    settings = profile_settings(args.profile, **overrides)
    out = _prepare_run_dir(args, info)
    log = print if info.is_main else (lambda *a, **k: None)

    bundle = create_model(settings["model_name"], pretrained=args.pretrained, checkpoint=args.checkpoint,
                          seed=args.seed)
    train_set, eval_set = _data(args, settings, bundle)
    objective = RECIPES[args.recipe](args, embed_dim_of(settings["model_name"]))
    config = TrainConfig(seed=args.seed, device=args.device, progress=not args.no_progress,
                         checkpoint_dir=str(out / "checkpoints"),
                         **{k: v for k, v in settings.items() if k in known and k not in ("seed", "device")})
    parameters = {**vars(args), "settings": settings, "world_size": info.world_size}
    if info.is_main:
        record = {**provenance(parameters, seeds={"seed": args.seed}, device=args.device), "status": "running"}
        write_json(out / "run.json", record)
    log(f"[labkit] {args.recipe} · {settings} · {info.world_size} process(es) → {out}", flush=True)

    def evaluate(model: torch.nn.Module, epoch: int) -> dict[str, float]:
        if eval_set is None:
            return {}
        numbers = evaluate_embeddings(embed_dataset(model, eval_set, bundle.tokenizer, device=args.device))
        append_jsonl(out / "results.jsonl", {"epoch": epoch, "split": args.eval_split, "recipe": args.recipe,
                                            "seed": args.seed, "time": time.time(), **numbers})
        return numbers

    progress = open(args.progress_file, "a", buffering=1) if args.progress_file and info.is_main else None

    def on_step(step: int, logs) -> None:
        if progress is not None:
            progress.write(f"{step} {logs['loss']:.6f}\n")

    try:
        history = fit(bundle.model, objective, train_set, bundle.tokenizer, config, evaluate=evaluate,
                      resume=args.resume, on_step=on_step)
    except TrainingInterrupted:
        if info.is_main:
            record["status"] = "interrupted"
            write_json(out / "run.json", record)
        raise
    finally:
        if progress is not None:
            progress.close()
    if info.is_main:
        history.to_csv(out / "history.csv", index=False)
        last = history.iloc[-1].to_dict()
        write_metrics(out, {k: v for k, v in last.items() if isinstance(v, (int, float)) and v == v})
        record["status"] = "finished"
        write_json(out / "run.json", record)
        log(f"[labkit] done: loss {last['loss']:.4f}" + (f", i2t_R@1 {last['i2t_R@1']:.1f}" if "i2t_R@1" in last
                                                          else "") + f" → {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
