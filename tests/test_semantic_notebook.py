"""Notebook 04 runs end to end in the smoke profile and writes the promised metrics."""

from pathlib import Path

import pytest

from labkit.io import read_metrics
from labkit.semantic.study import METHODS

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_semantic_neighborhoods.ipynb"


@pytest.mark.notebook
def test_notebook_04_smoke(run_notebook):
    out, seconds = run_notebook(NOTEBOOK.stem)
    metrics = read_metrics(out / "metrics.json")
    for method in METHODS:
        for world in ("literal", "complementary"):
            for direction in ("i2t", "t2i"):
                assert 0.0 <= metrics[f"nway_R@1/{method}/{world}/{direction}"] <= 1.0
            for modality in ("image", "text"):
                assert f"preservation/{method}/{world}/{modality}" in metrics
    # the baseline learns: far above chance (1/N) in both worlds
    for world in ("literal", "complementary"):
        assert metrics[f"nway_R@1/trip_np_sym/{world}/i2t"] > 1.5 * metrics["chance"]
    assert list(out.glob("*.png"))
    print(f"04_semantic_neighborhoods: {seconds:.1f} s")
