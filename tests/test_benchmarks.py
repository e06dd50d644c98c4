"""Every benchmark still runs, at a tiny size, and prints its ratio line.

Nothing here is timed and no speed is asserted (targets live in benchmarks/, figures in README); these tests only
keep the scripts from rotting. metrics_speed.py exits 1 when labkit's result disagrees with its reference, so its
agreement checks (recall identical, silhouette within 1e-5 of scikit-learn) are tested here too."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

CASES = {
    "metrics_speed.py": ["--repeats", "1", "--scale", "0.05"],
    "grl_overhead.py": ["--batch-size", "8", "--steps", "2", "--warmup", "1", "--infer-steps", "2", "--threads", "1"],
    "negatives.py": ["--batch-size", "8", "--queue", "32", "--rerank-n", "4", "--steps", "2", "--warmup", "1",
                     "--threads", "1"],
    "audio_frontend.py": ["--batch-size", "4", "--seconds", "1.0", "--steps", "2", "--warmup", "1", "--threads", "1"],
    "train_throughput.py": ["--batch-size", "8", "--steps", "3", "--warmup-steps", "1", "--lr-warmup", "1",
                            "--rounds", "1", "--max-wait", "0", "--retries", "1", "--threads", "1"],
}
RATIO_LINE = {
    "metrics_speed.py": r"^ratios: recall_speedup=[\d.]+x silhouette_speedup=[\d.]+x$",
    "grl_overhead.py": r"^ratio grl/baseline = [\d.]+x",
    "negatives.py": r"^ratio queue/batch = [\d.]+x",
    "audio_frontend.py": r"^feature extraction = [\d.]+ % of a training step",
    "train_throughput.py": r"^ratio labkit/open_clip_train = [\d.]+x",
}


def test_every_benchmark_is_covered():
    assert sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_at_a_tiny_size(script, tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / script), *CASES[script]], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(RATIO_LINE[script], proc.stdout, re.M), proc.stdout[-2000:]


def test_metrics_benchmark_fails_when_a_result_disagrees(monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("metrics_speed", BENCH / "metrics_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "modality_silhouette", lambda a, b: 0.5)  # a wrong silhouette
    with pytest.raises(SystemExit, match="silhouette differs from scikit-learn"):
        bench.main(["--repeats", "1", "--scale", "0.02", "--skip-large"])
