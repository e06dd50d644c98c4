"""Shared fixtures. Notebooks are expensive: each is executed at most once per test session, in the smoke
profile, and every test that needs its outputs (the generic checks and the notebook-specific ones) shares it."""

import time
from pathlib import Path

import papermill as pm
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory):
    """``run_notebook("03_grl_gap_reducer") -> (output_dir, seconds)``, executed once per session."""
    done: dict[str, tuple[Path, float]] = {}

    def run(stem: str) -> tuple[Path, float]:
        if stem not in done:
            path = NOTEBOOK_DIR / f"{stem}.ipynb"
            work = tmp_path_factory.mktemp(stem)
            out = work / "output"
            t0 = time.perf_counter()
            pm.execute_notebook(str(path), str(work / path.name), kernel_name="python3", cwd=str(NOTEBOOK_DIR),
                                parameters={"profile": "smoke", "seed": 0, "device": "cpu", "output_dir": str(out)},
                                progress_bar=False)
            done[stem] = (out, time.perf_counter() - t0)
        return done[stem]

    return run
