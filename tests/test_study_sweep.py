"""labkit.studies.sweep: grid × seeds → one tidy table; mean ± std and paired differences by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from labkit.studies.sweep import Paired, paired_difference, run_grid


def _fake_run(seed, method, scale):
    # a deterministic "training": a value per (method, scale), plus a per-seed offset shared by every grid point
    base = {"a": 1.0, "b": 2.0}[method] * scale
    return {"score": base + 0.1 * seed * seed, "other": float(seed)}


def test_grid_runs_every_point_with_every_seed_in_order():
    calls = []
    sweep = run_grid(lambda **kw: calls.append(kw) or _fake_run(**kw), {"method": ["a", "b"], "scale": [1.0, 3.0]},
                     seeds=[0, 1, 2], log=None)
    assert [(c["method"], c["scale"], c["seed"]) for c in calls][:4] == [("a", 1.0, 0), ("a", 1.0, 1),
                                                                          ("a", 1.0, 2), ("a", 3.0, 0)]
    assert len(sweep.table) == 12 and sweep.factors == ("method", "scale") and sweep.seeds == [0, 1, 2]
    assert {"method", "scale", "seed", "score", "other", "run_seconds"} <= set(sweep.table.columns)
    assert sweep.values("method") == ["a", "b"]


def test_summary_mean_std_n_by_hand():
    sweep = run_grid(_fake_run, {"method": ["a", "b"], "scale": [1.0]}, seeds=[0, 1, 2], log=None)
    s = sweep.summary(["score"])
    vals = np.array([1.0, 1.1, 1.4])
    assert s.loc[("a", 1.0), ("score", "mean")] == pytest.approx(vals.mean())
    assert s.loc[("a", 1.0), ("score", "std")] == pytest.approx(vals.std(ddof=1))
    assert s.loc[("a", 1.0), ("score", "n")] == 3
    pm = sweep.pm(["score"], digits=2)
    assert pm.loc[("b", 1.0), "score"] == f"{vals.mean() + 1:.2f} ± {vals.std(ddof=1):.2f}"


def test_paired_difference_removes_the_shared_seed_noise():
    sweep = run_grid(_fake_run, {"method": ["a", "b"], "scale": [1.0]}, seeds=[0, 1, 2], log=None)
    d = sweep.paired("score", {"method": "a", "scale": 1.0}, {"method": "b", "scale": 1.0})
    # b − a is exactly 1.0 for every seed: the per-seed offset cancels
    assert d.mean == pytest.approx(1.0) and d.std == pytest.approx(0.0, abs=1e-12) and d.n == 3
    assert d.resolved() is False or d.se < 1e-9  # zero spread: resolved by any standard
    p = paired_difference([1.0, 2.0, 4.0], [2.0, 2.0, 7.0])
    assert p.mean == pytest.approx(4 / 3) and p.std == pytest.approx(np.std([1, 0, 3], ddof=1))
    assert p.se == pytest.approx(p.std / math.sqrt(3)) and p.values == (1.0, 0.0, 3.0)
    assert Paired(1.0, 0.5, 0.1, 3).resolved() and not Paired(0.1, 0.5, 0.3, 3).resolved()


def test_runs_keep_objects_and_curves_and_flat_metrics():
    class Result:
        def __init__(self, seed, x):
            self.metrics = {"y": x * 2 + seed}

    sweep = run_grid(lambda seed, x: Result(seed, x), {"x": [0.0, 1.0, 2.0]}, seeds=[0, 1], log=None)
    assert isinstance(sweep.runs[(1.0, 1)], Result)
    x, ys = sweep.curves("x", {"twice": "y"})
    assert x.tolist() == [0.0, 1.0, 2.0] and ys["twice"][0].tolist() == [0.5, 2.5, 4.5]
    flat = sweep.flat_metrics(["y"])
    assert flat["y@x=1"] == 2.5 and flat["y@x=1/seed=1"] == 3.0 and "y@x=1/std" in flat


def test_bad_grids_are_named():
    with pytest.raises(ValueError, match="seed"):
        run_grid(_fake_run, {"seed": [0]}, seeds=[0], log=None)
    with pytest.raises(ValueError, match="grid\\['method'\\]"):
        run_grid(_fake_run, {"method": "ab"}, seeds=[0], log=None)
    with pytest.raises(ValueError, match="seeds is empty"):
        run_grid(_fake_run, {"method": ["a"], "scale": [1.0]}, seeds=[], log=None)
    with pytest.raises(TypeError, match="must return"):
        run_grid(lambda seed, m: 3.0, {"m": [1]}, seeds=[0], log=None)
    sweep = run_grid(_fake_run, {"method": ["a"], "scale": [1.0, 2.0]}, seeds=[0, 1], log=None)
    with pytest.raises(ValueError, match="name every factor"):
        sweep.per_seed("score", method="a")
    with pytest.raises(KeyError, match="not factors"):
        sweep.paired("score", {"nope": 1}, {"method": "a"})


def test_explicit_list_of_configurations():
    sweep = run_grid(_fake_run, [{"method": "a", "scale": 1.0}, {"method": "b", "scale": 2.0}], seeds=[0], log=None)
    assert sweep.table[["method", "scale"]].values.tolist() == [["a", 1.0], ["b", 2.0]]
    assert isinstance(sweep.table, pd.DataFrame)


def test_tidy_long_format_by_hand():
    sweep = run_grid(_fake_run, {"method": ["a", "b"], "scale": [1.0]}, seeds=[0, 1, 2], log=None)
    t = sweep.tidy(["score", "other"])
    assert list(t.columns) == ["method", "scale", "metric", "mean", "std", "n"] and len(t) == 4
    row = t[(t.method == "b") & (t.metric == "score")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean([2.0, 2.1, 2.4])) and row["n"] == 3
