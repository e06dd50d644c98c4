"""Shared fixtures. Notebooks are expensive: each is executed at most once per test session, in the ``tiny``
profile (smaller than ``make run``'s ``smoke``: the tests prove that a notebook runs end to end and writes what it
promises; what it finds is measured by ``make run``), and every test that needs its outputs shares it.

Every notebook runs *offline by construction*: its kernel starts with ``tests/offline`` on ``PYTHONPATH`` and
``LABKIT_OFFLINE=1``, so a ``sitecustomize`` installs a guard that refuses any non-loopback connection or name lookup
and logs the attempt (``offline_log``; tests/test_offline.py checks that it stays empty)."""

import contextlib
import os
import sys
import time
from pathlib import Path

import pytest

from labkit.runner import execute_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
OFFLINE_DIR = Path(__file__).resolve().parent / "offline"
TEST_PROFILE = "tiny"


@contextlib.contextmanager
def offline(log: Path):
    """Outbound network refused in this process and in every Python it starts (kernels) while the block runs."""
    sys.path.insert(0, str(OFFLINE_DIR))
    import labkit_offline_guard as guard

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "LABKIT_OFFLINE", "LABKIT_OFFLINE_LOG")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(OFFLINE_DIR), saved["PYTHONPATH"]) if p)
    os.environ["LABKIT_OFFLINE"], os.environ["LABKIT_OFFLINE_LOG"] = "1", str(log)
    guard.install(log=str(log))
    try:
        yield
    finally:
        guard.uninstall()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        sys.path.remove(str(OFFLINE_DIR))


@pytest.fixture(scope="session")
def offline_log(tmp_path_factory) -> Path:
    """Where the guard logs refused connection attempts during the session's notebook runs (absent: none)."""
    return tmp_path_factory.mktemp("offline") / "refused.log"


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory, offline_log):
    """``run_notebook("04_grl_gap_reducer") -> (output_dir, seconds)``, executed once per session, offline."""
    done: dict[str, tuple[Path, float]] = {}

    def run(stem: str) -> tuple[Path, float]:
        if stem not in done:
            path = NOTEBOOK_DIR / f"{stem}.ipynb"
            work = tmp_path_factory.mktemp(stem)
            out = work / "output"
            t0 = time.perf_counter()
            with offline(offline_log):
                execute_notebook(path, work / path.name,
                                 {"profile": TEST_PROFILE, "seed": 0, "device": "cpu", "output_dir": str(out)})
            done[stem] = (out, time.perf_counter() - t0)
        return done[stem]

    return run


@pytest.fixture
def one_thread():
    """Tiny models and tensors: one thread is as fast, and immune to other jobs oversubscribing the cores (the
    previous thread count is restored after the test)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
