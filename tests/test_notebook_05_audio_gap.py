"""Notebook 05 runs end to end (tests' ``tiny`` profile) and writes the promised metrics, claims and results."""

from pathlib import Path

import pytest

from labkit.io import read_metrics
from labkit.report import read_claims

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_audio_text_gap.ipynb"
CLAIMS = {"audio_gap_larger", "audio_gap_larger.seed_optimisers", "audio_pc1_separates_more",
          *(f"{opt}.{c}" for opt in ("adamw", "sgd")
            for c in ("gap_shrinks_with_lambda", "lambda1_smaller_gap", "lambda1_beats_baseline", "lambda1_best"))}


@pytest.mark.notebook
def test_notebook_05_runs(run_notebook):
    out, seconds = run_notebook(NOTEBOOK.stem)
    metrics = read_metrics(out / "metrics.json")
    for world in ("audio", "audio_sgd", "image"):
        for key in ("gap", "init/gap", "silhouette", "init/silhouette", "pc1_modality_separation", "mean_recall"):
            assert f"{key}@world={world}" in metrics
    for opt in ("adamw", "sgd"):
        for lambd in ("0", "1"):
            assert f"{opt}/gap@lambda={lambd}" in metrics and f"{opt}/mean_recall@lambda={lambd}" in metrics
    assert metrics["frontend_max_abs_error_db"] < 1e-2  # the front end equals librosa's reference
    assert metrics["baseline/t2a_R@1_over_chance"] >= 0
    claims = {c["id"]: c for c in read_claims(out / "claims.json")}
    assert set(claims) == CLAIMS
    assert all(c["source"].startswith("seed 000") and c["n"] >= 2 for c in claims.values())
    if metrics["baseline/t2a_R@1_over_chance"] < 5:  # a model that has not learned cannot confirm a claim
        assert all(c["verdict"] == "inconclusive" for c in claims.values())
    results = (out / "results.md").read_text()
    assert results.startswith("### 05") and "audio (AdamW)" in results and "image (AdamW)" in results
    assert {p.name for p in out.glob("*.png")} >= {"clips.png", "gap_audio_vs_image.png",
                                                    "projections_audio_vs_image.png", "lambda_sweep_audio.png"}
    executed = out.parent / NOTEBOOK.name
    assert executed.stat().st_size < 1_500_000, "the executed notebook (audio players, figures) must stay small"
    print(f"05_audio_text_gap: {seconds:.1f} s")
