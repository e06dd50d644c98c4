"""Notebook 03 runs end to end (tests' ``tiny`` profile): its projections, the real CLIP beside the toy, its claim."""

import pytest

from labkit.io import read_metrics
from labkit.report import read_claims


@pytest.mark.notebook
def test_notebook_03_runs(run_notebook):
    out, seconds = run_notebook("03_projections")
    m = read_metrics(out / "metrics.json")
    for key in ("literal/gap", "complementary/gap", "literal/t2i_R@1_over_chance", "complementary/pc1_modality_separation"):
        assert key in m, key
    assert m["real_clip/gap"] == pytest.approx(0.8514, abs=1e-3) and m["real_clip/pc1_modality_separation"] == 1.0
    claims = read_claims(out / "claims.json")
    assert [c["id"] for c in claims] == ["pc1_separates_modalities_in_clip"] and claims[0]["verdict"] == "holds"
    assert (out / "results.md").read_text().startswith("### 03")
    assert (out / "projections_real_clip.png").is_file()
    print(f"03_projections: {seconds:.1f} s")
