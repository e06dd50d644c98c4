"""Notebook 09 runs end to end (tests' ``tiny`` profile) and writes the promised metrics, claims and figures."""

from labkit.io import read_metrics
from labkit.report import read_claims

import pytest

STEM = "09_single_network"


@pytest.mark.notebook
def test_notebook_09_runs(run_notebook):
    out, seconds = run_notebook(STEM)
    metrics = read_metrics(out / "metrics.json")
    for model in ("single_network", "two_tower"):
        for key in ("i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@10", "mean_recall", "i2t_topicP@5",
                    "i2t_missed_topic@5", "i2t_chance_missed_topic@5", "t2i_objectP@5"):
            assert f"{key}@{model}" in metrics, key
            assert 0.0 <= metrics[f"{key}@{model}"] <= 100.0
    assert "learned" in metrics and metrics["n_test_images"] > 0
    claims = {c["id"]: c for c in read_claims(out / "claims.json")}
    assert set(claims) == {"one_network_comparable_to_two_towers", "recall_undervalues_semantic_matches"}
    assert all(c["source"].startswith("seed 002") and c["n"] >= 2 for c in claims.values())
    if not metrics["learned"]:  # a model that has not learned cannot confirm or refute a claim
        assert all(c["verdict"] == "inconclusive" for c in claims.values())
    for figure in ("encoded_captions.png", "tsne_both_modalities.png", "table3_top_captions.png"):
        assert (out / figure).stat().st_size > 0
    assert (out / "results.md").read_text().startswith("### 09")
    print(f"{STEM}: {seconds:.1f} s")
