"""Notebook 07 runs end to end (tests' ``tiny`` profile) and writes the promised metrics, claims and figures."""

import pytest

from labkit.io import read_metrics
from labkit.report import read_claims
from labkit.studies.sampling import SAMPLING_PROFILES, config_label, sampling_configs

STEM = "07_sampling_negatives"


@pytest.mark.notebook
def test_notebook_07_runs(run_notebook):
    out, seconds = run_notebook(STEM)
    metrics = read_metrics(out / "metrics.json")
    settings = SAMPLING_PROFILES["tiny"]
    for config in sampling_configs(settings):
        tag = config_label(config).replace(" ", "_")
        for key in ("val/accuracy", "train/loss", "gap/loss", "i2t_R@1", "t2i_R@1",
                    f"val/accuracy@{settings['eval_batch']}"):
            assert f"{key}@{tag}" in metrics, f"{key}@{tag}"
        assert 0.0 <= metrics[f"val/accuracy@{tag}"] <= 1.0
    assert {"baseline/t2i_R@1_over_chance", "moco_literal/val_accuracy", "sweep_seconds"} <= set(metrics)
    claims = {c["id"]: c for c in read_claims(out / "claims.json")}
    assert {"batch_size_increases_val_accuracy", "small_batches_overfit", "larger_queue_better",
            "queue_prevents_overfitting", "queue_converges_slower", "rerank_needs_large_n"} <= set(claims)
    assert all(c["source"].startswith("seed 003") and c["n"] == settings["n_seeds"] for c in claims.values())
    for c in claims.values():
        assert metrics[f"claim/{c['id']}"] == pytest.approx(c["mean"])
    learned = min(metrics["baseline/t2i_R@1_over_chance"],
                  metrics[f"baseline/val_accuracy@{settings['eval_batch']}_over_chance"]) >= 3
    if not learned:  # a model that has not learned cannot confirm or refute a claim
        assert all(c["verdict"] == "inconclusive" for c in claims.values())
    for fig in ("examples.png", "fig5_batch_size.png", "fig6_queue_size.png", "rerank_n.png"):
        assert (out / fig).is_file(), fig
    results = (out / "results.md").read_text()
    assert results.startswith("### 07 ·") and "Table 2" in results and "Table 3" in results
    print(f"{STEM}: {seconds:.1f} s")
