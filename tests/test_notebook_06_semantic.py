"""Notebook 06 runs end to end (tests' ``tiny`` profile) and writes the promised metrics and claims."""

from pathlib import Path

import pytest

from labkit.io import read_metrics
from labkit.report import read_claims
from labkit.studies.semantic_neighbourhoods import METHODS

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_semantic_neighborhoods.ipynb"


@pytest.mark.notebook
def test_notebook_06_runs(run_notebook):
    out, seconds = run_notebook(NOTEBOOK.stem)
    metrics = read_metrics(out / "metrics.json")
    for method in METHODS:
        for world in ("literal", "complementary"):
            for direction in ("i2t", "t2i"):
                assert 0.0 <= metrics[f"nway_R@1/{method}/{world}/{direction}"] <= 1.0
            for modality in ("image", "text"):
                assert f"preservation/{method}/{world}/{modality}" in metrics
    claims = {c["id"]: c for c in read_claims(out / "claims.json")}
    assert {"ours_beats_baseline.literal", "ours_beats_baseline.complementary", "ours_trip_beats_baseline.literal",
            "ours_gain_larger_on_complementary"} <= set(claims)
    assert all(c["source"] == "seed 001, Table 1" for c in claims.values())
    baselines_learn = all(metrics[f"nway_R@1/{m}/{w}/{d}"] > 1.5 * metrics["chance"]
                          for m in ("ang_np_sym", "trip_np_sym") for w in ("literal", "complementary")
                          for d in ("i2t", "t2i"))
    if not baselines_learn:  # a model that has not learned cannot confirm a claim
        assert all(c["verdict"] == "inconclusive" for c in claims.values())
    # the second Ω (Doc2Vec) beside the main one (TF-IDF): its Ω-dependent methods, neighbour quality, claims
    for method in ("ours@doc2vec", "ours_trip@doc2vec"):
        for world in ("literal", "complementary"):
            assert 0.0 <= metrics[f"nway_R@1/{method}/{world}/t2i"] <= 1.0
    assert "psi_same_topic/complementary/text@doc2vec" in metrics and metrics["n_test"] >= 50
    assert "ours_omega_doc2vec_beats_baseline.complementary" in claims
    text = (out / "results.md").read_text()
    assert text.startswith("### 06") and "resolvable" in text
    assert list(out.glob("*.png"))
    print(f"06_semantic_neighborhoods: {seconds:.1f} s")
