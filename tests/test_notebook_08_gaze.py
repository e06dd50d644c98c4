"""Notebook 08 runs end to end (tests' ``tiny`` profile) and writes the promised metrics, claims and figures."""

import pytest

from labkit.io import read_metrics
from labkit.report import read_claims
from labkit.studies.gaze import GAZE_PROFILES, gaze_configs

STEM = "08_gaze_regularization"


@pytest.mark.notebook
def test_notebook_08_runs(run_notebook):
    out, seconds = run_notebook(STEM)
    metrics = read_metrics(out / "metrics.json")
    settings = GAZE_PROFILES["tiny"]
    for c in gaze_configs(settings):
        tag = f"b={c['batch_size']},p={c['p']:g}"
        for key in ("val/accuracy", "val_masked/accuracy", "gap/loss", "train/loss", "t2i_R@1"):
            assert f"{key}@{tag}" in metrics, f"{key}@{tag}"
    big, small = max(settings["gaze_batch_sizes"]), min(settings["gaze_batch_sizes"])
    claims = {c["id"]: c for c in read_claims(out / "claims.json")}
    assert set(claims) == {f"gaze_prevents_overfitting_b{small}", "gaze_converges_faster",
                           f"gaze_lowers_val_accuracy_b{big}"}
    assert all(c["n"] == settings["n_seeds"] for c in claims.values())
    learned = min(metrics["baseline/t2i_R@1_over_chance"],
                  metrics[f"baseline/val_accuracy@{settings['eval_batch']}_over_chance"]) >= 3
    if not learned:
        assert all(c["verdict"] == "inconclusive" for c in claims.values())
    for fig in ("fig4_attention.png", "fig7_gaze_curves.png", "ranked_captions_p0.png", "fig10_text_to_image.png"):
        assert (out / fig).is_file(), fig
    assert metrics["clutter"] == settings["clutter"]
    assert (out / "results.md").read_text().startswith("### 08 ·")
    print(f"{STEM}: {seconds:.1f} s")
