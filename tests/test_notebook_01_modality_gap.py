"""Notebook 01 runs end to end (tests' ``tiny`` profile): its temperature, the real CLIP beside the toy, its claim."""

import pytest

from labkit.io import read_metrics
from labkit.report import read_claims


@pytest.mark.notebook
def test_notebook_01_runs(run_notebook):
    out, seconds = run_notebook("01_modality_gap")
    m = read_metrics(out / "metrics.json")
    for key in ("gap", "silhouette", "init/gap", "t2i_R@1", "chance/t2i_R@1", "t2i_R@1_over_chance", "cone/init/image",
                "logit_scale_final", "gap_ratio", "seeds/gap", "seeds/gap/std"):
        assert key in m, key
    assert m["real_clip/gap"] == pytest.approx(0.8514, abs=1e-3)  # the shipped real CLIP's gap
    assert m["real_clip/separability"] == 1.0 and m["real_clip_random/gap"] > m["real_clip/gap"]
    claims = read_claims(out / "claims.json")
    assert [c["id"] for c in claims] == ["training_preserves_initial_gap"] and claims[0]["n"] == 2
    if m["t2i_R@1_over_chance"] < 5:
        assert claims[0]["verdict"] == "inconclusive"
    text = (out / "results.md").read_text()
    assert text.startswith("### 01") and "learned temperature" in text
    assert (out / "pca_real_clip.png").is_file()
    src = (out.parent / "01_modality_gap.ipynb").read_text()
    assert "02_gap_physics" in src  # the notebook points to the gap-physics notebook
    print(f"01_modality_gap: {seconds:.1f} s")
