"""Every notebook: committed clean, with the shared parameters, and executed end to end (tests' ``tiny`` profile)."""

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from labkit.io import read_metrics
from labkit.report import read_claims

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SHARED = {"seed", "profile", "device", "output_dir"}


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_shared_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} carries outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    declared = set(pm.inspect_notebook(str(path)))
    assert SHARED <= declared, f"{path.name}: missing shared parameters {SHARED - declared}"
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: start with the story, not code"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(path, run_notebook):
    out, seconds = run_notebook(path.stem)
    metrics = read_metrics(out / "metrics.json")
    assert metrics and all(isinstance(v, (int, float)) for v in metrics.values())
    assert list(out.glob("*.png")), f"{path.name} wrote no figure"
    if (out / "claims.json").exists():  # checked field by field: claim, source, measured, mean, n, verdict
        assert read_claims(out / "claims.json"), f"{path.name} wrote an empty claims.json"
    src = path.read_text()
    if "write_claims" in src:
        assert (out / "claims.json").exists(), f"{path.name} calls write_claims but wrote no claims.json"
    print(f"{path.stem}: {seconds:.1f} s")  # wall times are reported by `make run` (run.json), not asserted
