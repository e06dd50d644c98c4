"""Preemption-safe resume: SIGTERM a real training subprocess mid-epoch; it writes a step checkpoint and exits cleanly;
resuming ends with exactly the numbers (history and weights, bit for bit) of an uninterrupted run. Also the entry
point's run folder: run.json, results.jsonl, no overwriting."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from labkit.io import load_checkpoint, read_jsonl
from labkit.studies.train_cli import main

ROOT = Path(__file__).resolve().parent.parent
# 320 training pairs, global batch 16: 20 steps per epoch, 40 in all; the test split (40 pairs) is evaluated at the end
ARGS = ["--recipe", "grl", "--lambd", "0.5", "--lambda-on", "grl", "--profile", "tiny", "--n-pairs", "400",
        "--epochs", "2", "--batch-size", "16", "--warmup-steps", "2", "--device", "cpu", "--seed", "4",
        "--no-progress"]
KILL_AT = 22  # the 23rd step: epoch 2, step 3 of 20 (17 steps of margin before the epoch ends)


def _history(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "history.csv").drop(columns=["seconds", "samples_per_s"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    assert main(ARGS + ["--output-dir", str(out)]) == 0
    return out


def test_sigterm_mid_epoch_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
    out, progress = tmp_path / "run", tmp_path / "progress.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "labkit.studies.train_cli", *ARGS, "--output-dir", str(out),
                             "--progress-file", str(progress)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (progress.exists() and len(progress.read_text().splitlines()) > KILL_AT):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the training subprocess made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM received" in stderr and "Traceback" not in stderr
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and 0 < state["partial"]["step"] < 20  # mid-epoch 2: a step checkpoint
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.pt"]  # nothing half-written beside it

    assert main(ARGS + ["--output-dir", str(out), "--resume"]) == 0
    pd.testing.assert_frame_equal(_history(out), _history(uninterrupted), check_exact=True)
    a = load_checkpoint(out / "checkpoints" / "last.pt")
    b = load_checkpoint(uninterrupted / "checkpoints" / "last.pt")
    for part in ("state_dict", "objective"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    timing = {"seconds", "samples_per_s"}
    metrics = [{k: v for k, v in json.loads((run / "metrics.json").read_text()).items() if k not in timing}
               for run in (out, uninterrupted)]
    assert metrics[0] == metrics[1] and "i2t_R@1" in metrics[0]


def test_run_folder_explains_itself_and_is_never_overwritten(uninterrupted):
    record = json.loads((uninterrupted / "run.json").read_text())
    assert record["status"] == "finished"
    assert {"git", "packages", "device", "parameters", "seeds", "command", "created"} <= set(record)
    assert record["packages"]["torch"] == torch.__version__.split("+")[0]
    assert record["parameters"]["recipe"] == "grl" and record["seeds"] == {"seed": 4}
    assert record["device"]["resolved"] == "cpu"
    results = read_jsonl(uninterrupted / "results.jsonl")
    assert len(results) == 1 and results[0]["epoch"] == 2 and "i2t_R@1" in results[0]
    with pytest.raises(SystemExit, match="exists and is not empty.*--resume"):
        main(ARGS + ["--output-dir", str(uninterrupted)])
    with pytest.raises(SystemExit, match="unknown.*recipes: clip, grl"):
        main(["--recipe", "moco", "--output-dir", str(uninterrupted.parent / "other")])


def test_torchrun_sigterm_then_resume_matches_one_process(uninterrupted, tmp_path):
    """Two gloo processes under torchrun: SIGTERM to torchrun (which forwards it) stops both at the same step, rank 0
    writes one step checkpoint with both processes' RNG states; resuming with torchrun ends where one uninterrupted
    process does (to float tolerance: two processes sum in another order)."""
    out, progress = tmp_path / "run", tmp_path / "progress.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "labkit.studies.train_cli", *ARGS, "--output-dir", str(out)]
    proc = subprocess.Popen(cmd + ["--progress-file", str(progress)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (progress.exists() and len(progress.read_text().splitlines()) > KILL_AT):
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the torchrun job made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
    assert "SIGTERM received" in output, output[-3000:]
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["partial"]["rng"]) == 2
    assert state["epoch"] == 1 and 0 < state["partial"]["step"] < 20

    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    pd.testing.assert_frame_equal(_history(out), _history(uninterrupted), check_exact=False, rtol=1e-4, atol=1e-5)
