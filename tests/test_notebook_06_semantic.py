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
    assert list(out.glob("*.png"))
    print(f"06_semantic_neighborhoods: {seconds:.1f} s")
