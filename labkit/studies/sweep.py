"""Grid × seeds → one tidy table: the multi-seed runner every study shares.

    sweep = run_grid(train_one, {"lambda": [0, 0.5, 1, 3]}, seeds=[0, 1, 2])
    sweep.table                           # one row per (λ, seed): the factors, the seed, every number returned
    sweep.summary(["gap", "mean_recall"]) # mean, std (ddof=1) and n over seeds, per grid point
    sweep.pm(["gap"])                     # the same as display strings "0.877 ± 0.062"
    sweep.paired("gap", {"lambda": 0}, {"lambda": 3})   # per-seed difference b − a: mean ± std, standard error

``run(seed=s, **config)`` trains and measures one grid point; it returns a mapping of numbers, or an object with
a ``metrics`` mapping (a :class:`~labkit.studies.recipe.TrainResult`, say), or ``(numbers, object)``. Objects are
kept in ``sweep.runs[(*config values, seed)]`` for the notebook's figures.

*Paired differences.* Two grid points run with the same seeds share the data, the initialisation and the batch
order wherever the recipe lets the seed fix them, so the per-seed difference removes that shared noise: its mean
± std over seeds (and the standard error, std/√n) is what a verdict is computed from
(:func:`labkit.report.paired_verdict`).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["run_grid", "Sweep", "Paired", "paired_difference"]


@dataclass(frozen=True)
class Paired:
    """Per-seed differences ``b − a``: their mean, standard deviation (ddof=1), standard error and count."""

    mean: float
    std: float
    se: float
    n: int
    values: tuple[float, ...] = ()

    def resolved(self, k: float = 2.0) -> bool:
        """True when ``|mean| > k · se`` (the difference stands out of the seed-to-seed noise)."""
        return self.n > 1 and abs(self.mean) > k * self.se

    def __str__(self) -> str:
        return f"{self.mean:+.3f} ± {self.std:.3f} (n={self.n})"


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Paired:
    """:class:`Paired` statistics of ``b[i] − a[i]`` (row ``i`` of both from the same seed)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"a and b must be equal-length 1-D sequences of per-seed values; got {a.shape}, {b.shape}")
    d = b - a
    n = len(d)
    std = float(d.std(ddof=1)) if n > 1 else float("nan")
    return Paired(float(d.mean()), std, std / math.sqrt(n) if n > 1 else float("nan"), n, tuple(map(float, d)))


def _configs(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]]) -> tuple[tuple[str, ...], list[dict]]:
    if isinstance(grid, Mapping):
        factors = tuple(grid)
        if not factors:
            raise ValueError("grid: give at least one factor, e.g. {'lambda': [0, 1]}")
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise ValueError(f"grid[{name!r}] must be a list of values, got {values!r}")
        configs = [dict(zip(factors, combo)) for combo in itertools.product(*(list(v) for v in grid.values()))]
    else:
        configs = [dict(c) for c in grid]
        if not configs:
            raise ValueError("grid: the list of configurations is empty")
        factors = tuple(configs[0])
        if any(tuple(c) != factors for c in configs):
            raise ValueError(f"grid: every configuration needs the same keys {factors}")
    if "seed" in factors:
        raise ValueError("grid: 'seed' is not a factor (pass seeds=...)")
    if not configs:
        raise ValueError("grid: a factor has no values")
    return factors, configs


def _numbers(out: Any) -> tuple[Mapping[str, float], Any]:
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Mapping):
        return out[0], out[1]
    if isinstance(out, Mapping):
        return out, None
    if hasattr(out, "metrics") and isinstance(out.metrics, Mapping):
        return out.metrics, out
    raise TypeError("run(...) must return a mapping of numbers, an object with a .metrics mapping, or "
                    f"(numbers, object); got {type(out).__name__}")


def run_grid(run: Callable[..., Any], grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]],
             seeds: Iterable[int], log: Callable[[str], None] | None = print, keep: bool = True) -> "Sweep":
    """Call ``run(seed=s, **config)`` for every grid point (outer loop, in order) and seed (inner loop).

    Args:
        grid: ``{factor: values}`` (their Cartesian product) or an explicit list of configuration dicts.
        seeds: the seeds; each grid point runs with every one of them, so differences can be paired.
        log: called with one line per finished run (``None``: silent).
        keep: keep what ``run`` returned besides its numbers in :attr:`Sweep.runs`.
    """
    factors, configs = _configs(grid)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    rows, runs = [], {}
    for config in configs:
        for seed in seeds:
            t0 = time.perf_counter()
            numbers, obj = _numbers(run(seed=seed, **config))
            seconds = time.perf_counter() - t0
            row = {**config, "seed": seed, **{k: v for k, v in numbers.items() if k not in config and k != "seed"}}
            row.setdefault("run_seconds", seconds)
            rows.append(row)
            if keep and obj is not None:
                runs[(*config.values(), seed)] = obj
            if log is not None:
                shown = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                  for k, v in config.items())
                log(f"{shown} seed={seed}: done in {seconds:.1f} s")
    return Sweep(pd.DataFrame(rows), factors, runs)


@dataclass
class Sweep:
    """The runs of a grid × seeds: ``table`` has one row per run (factor columns, ``seed``, the numbers)."""

    table: pd.DataFrame
    factors: tuple[str, ...]
    runs: dict = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.table["seed"].unique())

    def values(self, factor: str) -> list:
        """The values a factor takes, in run order."""
        if factor not in self.factors:
            raise KeyError(f"{factor!r} is not a factor of this sweep ({', '.join(self.factors)})")
        return list(dict.fromkeys(self.table[factor].tolist()))

    def _select(self, where: Mapping[str, Any]) -> pd.DataFrame:
        unknown = set(where) - set(self.factors)
        if unknown:
            raise KeyError(f"not factors of this sweep: {sorted(unknown)} (factors: {', '.join(self.factors)})")
        mask = np.ones(len(self.table), dtype=bool)
        for k, v in where.items():
            mask &= (self.table[k] == v).to_numpy()
        return self.table[mask]

    def per_seed(self, metric: str, **where: Any) -> pd.Series:
        """``metric`` indexed by seed at the grid point ``where`` (every factor named, or one row per seed)."""
        sub = self._select(where)
        if sub["seed"].duplicated().any():
            raise ValueError(f"{where} does not pin one run per seed; name every factor of {self.factors}")
        return sub.set_index("seed")[metric].sort_index()

    def summary(self, metrics: Sequence[str] | None = None, by: Sequence[str] | None = None) -> pd.DataFrame:
        """Mean, std (ddof=1) and n over seeds of each metric, per grid point: columns ``(metric, mean|std|n)``."""
        by = list(self.factors if by is None else by)
        if metrics is None:
            metrics = [c for c in self.table.columns
                       if c not in (*self.factors, "seed") and pd.api.types.is_numeric_dtype(self.table[c])]
        missing = [m for m in metrics if m not in self.table]
        if missing:
            raise KeyError(f"no such column(s) in the sweep table: {missing}")
        return self.table.groupby(by, sort=False)[list(metrics)].agg(["mean", "std", "count"]).rename(
            columns={"count": "n"}, level=1)

    def tidy(self, metrics: Sequence[str]) -> pd.DataFrame:
        """Long format: one row per (grid point, metric) with ``mean``, ``std`` (ddof=1) and ``n`` over seeds."""
        long = self.table.melt(id_vars=[*self.factors, "seed"], value_vars=list(metrics), var_name="metric")
        out = long.groupby([*self.factors, "metric"], sort=False)["value"].agg(["mean", "std", "count"])
        return out.reset_index().rename(columns={"count": "n"})

    def pm(self, metrics: Sequence[str], digits: int = 3, scale: float = 1.0, by: Sequence[str] | None = None,
           ) -> pd.DataFrame:
        """:meth:`summary` as display strings ``mean ± std`` (one column per metric)."""
        s = self.summary(metrics, by)
        out = pd.DataFrame(index=s.index)
        for m in metrics:
            mean, std = scale * s[(m, "mean")], scale * s[(m, "std")].fillna(0.0)
            out[m] = [f"{a:.{digits}f} ± {b:.{digits}f}" for a, b in zip(mean, std)]
        return out

    def paired(self, metric: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> Paired:
        """Per-seed difference of ``metric`` between grid points ``b`` and ``a`` (``b − a``), on the seeds both ran."""
        va, vb = self.per_seed(metric, **a), self.per_seed(metric, **b)
        common = va.index.intersection(vb.index)
        if len(common) == 0:
            raise ValueError(f"grid points {dict(a)} and {dict(b)} share no seed")
        return paired_difference(va.loc[common].to_numpy(), vb.loc[common].to_numpy())

    def curves(self, factor: str, keys: Mapping[str, str] | Sequence[str], scale: float = 1.0,
               **where: Any) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """``(x, {name: (mean, std)})`` of columns against a numeric ``factor`` for
        :func:`labkit.viz.plot_metric_curve`; ``keys`` are columns or ``{legend name: column}``; ``where`` fixes
        the other factors."""
        keys = dict(keys) if isinstance(keys, Mapping) else {k: k for k in keys}
        sub = Sweep(self._select(where), self.factors, self.runs)
        s = sub.summary(list(keys.values()), by=[factor]).sort_index()
        ys = {name: (scale * s[(col, "mean")].to_numpy(), scale * s[(col, "std")].fillna(0.0).to_numpy())
              for name, col in keys.items()}
        return s.index.to_numpy(dtype=float), ys

    def flat_metrics(self, metrics: Sequence[str], per_seed: bool = True,
                     tag: Callable[[Mapping[str, Any]], str] | None = None) -> dict[str, float]:
        """Flat numbers for ``metrics.json``: ``<metric>@<tag>`` (mean over seeds), ``…/std`` and, with
        ``per_seed``, ``…/seed=<s>``. ``tag(config)`` names a grid point (default ``f1=v1,f2=v2``)."""
        tag = tag or (lambda c: ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.items()))
        out: dict[str, float] = {}
        for values, group in self.table.groupby(list(self.factors), sort=False):
            values = values if isinstance(values, tuple) else (values,)
            name = tag(dict(zip(self.factors, values)))
            for m in metrics:
                if m not in group or group[m].isna().any():
                    continue
                out[f"{m}@{name}"] = float(group[m].mean())
                if len(group) > 1:
                    out[f"{m}@{name}/std"] = float(group[m].std())
                if per_seed:
                    for seed, v in zip(group["seed"], group[m]):
                        out[f"{m}@{name}/seed={int(seed)}"] = float(v)
        return out
