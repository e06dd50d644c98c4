"""Notebook 04 runs end to end in the smoke profile and writes the promised metrics."""

import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from labkit.io import read_metrics
from labkit.semantic.study import METHODS

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_semantic_neighborhoods.ipynb"


def test_committed_clean_with_parameters():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.cells[0].cell_type == "markdown"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert {"seed", "profile", "device", "output_dir"} <= set(pm.inspect_notebook(str(NOTEBOOK)))


@pytest.mark.notebook
def test_notebook_04_smoke(tmp_path):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / NOTEBOOK.name), kernel_name="python3", cwd=str(NOTEBOOK.parent),
                        parameters={"profile": "smoke", "seed": 0, "device": "cpu", "output_dir": str(out)},
                        progress_bar=False)
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
    print(f"04_semantic_neighborhoods: {time.perf_counter() - t0:.1f} s")
