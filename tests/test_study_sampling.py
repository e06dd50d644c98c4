"""The sampling / gaze studies' bookkeeping: convergence speed, tables, claims on a small real sweep."""

import pandas as pd
import pytest

from labkit.studies.sampling import (Run, config_label, convergence, epochs_to_target, make_study_world,
                                     markdown_table, study_settings, train_run)
from labkit.studies.sweep import run_grid


pytestmark = pytest.mark.usefixtures("one_thread")


def test_epochs_to_target_interpolates_and_censors():
    assert epochs_to_target([0.1, 0.3, 0.5], 0.4) == pytest.approx(2.5)  # halfway between epochs 2 and 3
    assert epochs_to_target([0.5, 0.6], 0.4) == 1.0
    assert epochs_to_target([0.1, 0.2], 0.4) == 3.0  # never reached: censored at epochs + 1


def test_convergence_uses_a_target_every_compared_run_reaches():
    def fake(seed, sampler):
        curve = {"fast": [0.2, 0.4, 0.5], "slow": [0.05, 0.2, 0.4]}[sampler]
        hist = pd.DataFrame({"val/accuracy@64": curve})
        return {"final": curve[-1]}, Run({"sampler": sampler}, seed, hist, {}, 0.0)

    sweep = run_grid(fake, {"sampler": ["fast", "slow"]}, seeds=[0, 1], log=None)
    conv = convergence(sweep, [{"sampler": "fast"}, {"sampler": "slow"}], fraction=0.5,
                       label=lambda c: c["sampler"])
    assert (conv["target"] == 0.2).all()  # 0.5 × min(0.5, 0.4)
    got = conv.groupby("label")["epochs"].agg(list).to_dict()
    assert got == {"fast": [1.0, 1.0], "slow": [2.0, 2.0]}


def test_config_labels_and_markdown_tables():
    assert config_label({"sampler": "batch", "batch_size": 16, "fraction": 0.0, "n": 0}) == "batch 16"
    assert config_label({"sampler": "queue", "batch_size": 64, "fraction": 0.5, "n": 0}) == "queue 0.5"
    assert config_label({"sampler": "rerank", "batch_size": 64, "fraction": 1.0, "n": 8}) == "rerank n=8"
    assert config_label({"batch_size": 48, "p": 0.3}) == "p = 0.3"
    df = pd.DataFrame({("a", "x"): ["1"], ("a", "y"): ["2"]}, index=["row"])
    assert markdown_table(df).splitlines() == ["| | a · x | a · y |", "|---|---|---|", "| row | 1 | 2 |"]


def test_train_run_records_the_seed_numbers_per_epoch_and_is_deterministic():
    s = study_settings("tiny")
    world = make_study_world(s, seed=0, clutter=1)
    a = train_run(world, 0, s, sampler="queue", batch_size=16, fraction=0.5, p=0.5, masked_eval=True)
    b = train_run(world, 0, s, sampler="queue", batch_size=16, fraction=0.5, p=0.5, masked_eval=True)
    assert len(a.history) == s["epochs"]
    for key in ("val/accuracy", "train/accuracy", "val/loss", "train/loss", "val/avg_similarity", "gap/loss",
                f"val/accuracy@{s['eval_batch']}"):
        assert key in a.history and key in a.metrics
    assert {"i2t_R@1", "t2i_R@10", "chance/t2i_R@1", "queue/key_consistency", "val_masked/accuracy"} <= set(a.metrics)
    assert a.metrics["gap/loss"] == pytest.approx(a.metrics["val/loss"] - a.metrics["train/loss"])
    assert a.history["loss"].tolist() == b.history["loss"].tolist()
    assert {k: v for k, v in a.metrics.items() if k != "train_seconds"} == \
        {k: v for k, v in b.metrics.items() if k != "train_seconds"}
