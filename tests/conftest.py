"""Shared fixtures. Notebooks are expensive: each is executed at most once per test session, in the ``tiny``
profile (smaller than ``make run``'s ``smoke``: the tests prove that a notebook runs end to end and writes what it
promises; what it finds is measured by ``make run``), and every test that needs its outputs shares it."""

import time
from pathlib import Path

import pytest

from labkit.runner import execute_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
TEST_PROFILE = "tiny"


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory):
    """``run_notebook("04_grl_gap_reducer") -> (output_dir, seconds)``, executed once per session."""
    done: dict[str, tuple[Path, float]] = {}

    def run(stem: str) -> tuple[Path, float]:
        if stem not in done:
            path = NOTEBOOK_DIR / f"{stem}.ipynb"
            work = tmp_path_factory.mktemp(stem)
            out = work / "output"
            t0 = time.perf_counter()
            execute_notebook(path, work / path.name,
                             {"profile": TEST_PROFILE, "seed": 0, "device": "cpu", "output_dir": str(out)})
            done[stem] = (out, time.perf_counter() - t0)
        return done[stem]

    return run
