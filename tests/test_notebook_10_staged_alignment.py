"""Notebook 10 runs end to end (tests' ``tiny`` profile) and writes the promised metrics, claims and figures."""

from labkit.io import read_metrics
from labkit.report import read_claims

import pytest

STEM = "10_staged_alignment"


@pytest.mark.notebook
def test_notebook_10_runs(run_notebook):
    out, seconds = run_notebook(STEM)
    metrics = read_metrics(out / "metrics.json")
    for method in ("staged", "end_to_end"):
        for world in ("first", "second"):
            assert 0.0 <= metrics[f"second/i2t_R@1@{method},{world}"] <= 100.0  # Table 3 (zero-shot / supervised)
        for key in ("i2t_R@1", "i2t_R@10", "t2i_R@5", "mean_recall", "i2t_mAP@10", "t2i_mAP@50", "i2t_P@10"):
            assert f"first/{key}@{method},first" in metrics, key
    assert 0.0 < metrics["second_world_known_word_share"] < 1.0
    assert {"map/lstsq/mean_recall", "map/gradient/mean_recall"} <= set(metrics)
    claims = {c["id"]: c for c in read_claims(out / "claims.json")}
    assert set(claims) == {"staged_beats_end_to_end.instance", "staged_beats_end_to_end.category",
                           "zero_shot_beats_supervised"}
    assert all(c["source"].startswith("seed 004") for c in claims.values())
    if not metrics["learned"]:
        assert all(c["verdict"] == "inconclusive" for c in claims.values())
    assert (out / "staged_vs_end_to_end.png").stat().st_size > 0
    assert (out / "results.md").read_text().startswith("### 10")
    print(f"{STEM}: {seconds:.1f} s")
