"""Run every notebook headlessly, in order, with papermill, into one run folder with a summary.

    python -m labkit.runner                              # all notebooks, smoke profile, runs/<timestamp>/
    python -m labkit.runner --name sweep1 profile=full device=cuda
    python -m labkit.runner --only 01,02 seed=3

Layout of ``runs/<name>/``::

    run.json                  what the run was: git commit, package versions, device, parameters and seeds, and
                              per-notebook status and wall time
    results.jsonl             one line per notebook evaluation (appended as each notebook finishes)
    summary.csv, summary.md   every notebook's metrics.json, one row per (notebook, metric)
    claims.md                 every claim the notebooks tested, with its computed verdict (labkit.report)
    01_modality_gap/          the executed notebook, its metrics.json, claims.json, results.md and figures
    02_gap_physics/ …

Runs never overwrite each other: the default name is a timestamp (``-2``, ``-3``… appended if two runs start in the
same second); an explicit ``--name`` that already exists is an error.

Overrides ``key=value`` apply to every notebook that declares ``key`` in its ``parameters`` cell; a key that no
selected notebook declares is an error (a typo must not pass silently). Values are Python literals
(``epochs=3``, ``lambdas=[0,0.5]``) or bare strings (``device=cuda``); a value that starts like a literal (a digit,
a sign, a bracket or a quote) must be one (``lambdas=[0,0.5`` is an error, not a string). ``output_dir`` is set by
the runner.

Kernels run on this machine and talk to the runner over Unix domain sockets (``ipc`` transport) rather than TCP:
nothing listens on a network port, which is also why ipykernel's "running over TCP without encryption" warning
does not appear.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from jupyter_client.manager import AsyncKernelManager

from .io import append_jsonl, atomic_write, new_run_dir, provenance, read_metrics
from .report import write_claims_report

__all__ = ["main", "run_notebooks", "check_overrides", "execute_notebook", "parse_overrides", "notebook_parameters", "find_notebooks",
           "LocalKernelManager"]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESERVED = {"output_dir"}


def find_notebooks(notebook_dir: Path, only: Sequence[str] = ()) -> list[Path]:
    """Notebooks ``NN_name.ipynb`` in order; ``only`` keeps those whose name starts with one of the prefixes."""
    paths = sorted(p for p in Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
        if not paths:
            raise SystemExit(f"--only {' '.join(only)}: no notebook in {notebook_dir} matches")
    if not paths:
        raise SystemExit(f"no notebooks found in {notebook_dir}")
    return paths


_LITERAL_START = tuple("0123456789+-[({'\"")  # not ".": a relative path (data_root=./coco) stays a string


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["seed=3", "device=cuda"]`` → ``{"seed": 3, "device": "cuda"}``.

    A value is a Python literal, or a bare string when it does not start like one (``device=cuda``); a value that
    starts like a literal but is not one (``lambdas=[0,0.5``, ``lr=1e-3x``) is an error naming the parameter.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"parameter override {item!r} is not of the form name=value")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as exc:
            if raw.strip().startswith(_LITERAL_START):
                raise SystemExit(f"parameter {key}: {raw!r} is not a valid Python literal ({exc.__class__.__name__}: "
                                 f"{exc}); quote a string as {key}='\"text\"'") from None
            value = raw
        out[key] = value
    return out


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names and defaults declared in a notebook's ``parameters`` cell (via papermill)."""
    import papermill as pm

    params = pm.inspect_notebook(str(path))
    if not params:
        raise SystemExit(f"{path}: no papermill 'parameters' cell (tag a cell 'parameters')")
    return params


class LocalKernelManager(AsyncKernelManager):
    """A kernel on this machine, reached over Unix domain sockets in Jupyter's private runtime folder (``ipc``)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)


def execute_notebook(notebook: Path, output: Path, parameters: dict[str, Any], kernel_name: str = "python3",
                     log_output: bool = False) -> None:
    """Execute ``notebook`` with papermill into ``output`` (cwd: the notebook's folder, kernel over ipc)."""
    import papermill as pm

    pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
                        cwd=str(Path(notebook).parent), progress_bar=False, log_output=log_output,
                        kernel_manager_class=LocalKernelManager)


def check_overrides(notebooks: Sequence[Path], overrides: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Each notebook's declared parameters; an override no selected notebook declares is an error naming it."""
    declared = {nb: notebook_parameters(nb) for nb in notebooks}
    bad = sorted(k for k in overrides if k in RESERVED or not any(k in p for p in declared.values()))
    if bad:
        known = sorted(set().union(*declared.values()) - RESERVED)
        raise SystemExit(f"unknown parameter(s) {', '.join(bad)}; the notebooks declare: {', '.join(known)}")
    return declared


def run_notebooks(
    notebooks: Sequence[Path],
    run_dir: Path,
    overrides: dict[str, Any],
    kernel_name: str = "python3",
    log_output: bool = False,
) -> dict[str, Any]:
    """Execute each notebook into ``run_dir/<stem>/`` and write the run summary. Returns the run record."""
    declared = check_overrides(notebooks, overrides)

    run_dir.mkdir(parents=True, exist_ok=True)
    seeds = {nb.stem: overrides.get("seed", _default(declared[nb], "seed")) for nb in notebooks}
    record: dict[str, Any] = {"run_dir": str(run_dir), "overrides": overrides,
                              **provenance(overrides, seeds, device=str(overrides.get("device", "auto"))),
                              "notebooks": {}}
    for nb in notebooks:
        out_dir = run_dir / nb.stem
        out_dir.mkdir(parents=True, exist_ok=True)
        params = {k: v for k, v in overrides.items() if k in declared[nb]}
        params["output_dir"] = str(out_dir.resolve())
        print(f"[labkit] {nb.name} {params}", flush=True)
        t0 = time.perf_counter()
        status, error = "ok", None
        try:
            execute_notebook(nb, out_dir / nb.name, params, kernel_name=kernel_name, log_output=log_output)
        except Exception as exc:  # keep going: one failing notebook must not hide the others' results
            status, error = "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            print(f"[labkit] {nb.name} FAILED: {error}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t0
        metrics_path = out_dir / "metrics.json"
        metrics = read_metrics(metrics_path) if status == "ok" and metrics_path.exists() else {}
        if status == "ok" and not metrics:
            status, error = "failed", "notebook wrote no metrics.json"
        effective = {name: _default(declared[nb], name) for name in declared[nb]}
        effective.update(params)
        record["notebooks"][nb.stem] = {"status": status, "seconds": round(seconds, 1), "parameters": params,
                                        "effective_parameters": effective, "error": error, "metrics": metrics}
        append_jsonl(run_dir / "results.jsonl", {"run": run_dir.name, "notebook": nb.stem, "status": status,
                                                 "seconds": round(seconds, 1), "commit": record["git"]["commit"],
                                                 "parameters": effective, "error": error, "metrics": metrics})
        print(f"[labkit] {nb.name}: {status} in {seconds:.1f} s, {len(metrics)} metrics", flush=True)
    write_summary(run_dir, record)
    write_claims_report(run_dir)
    return record


def _default(declared: dict[str, Any], name: str) -> Any:
    """A notebook's declared default for ``name`` as a Python value (papermill reports its source text)."""
    source = declared.get(name, {}).get("default") if isinstance(declared.get(name), dict) else None
    if source is None:
        return None
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source


def write_summary(run_dir: Path, record: dict[str, Any]) -> None:
    """run.json, summary.csv (notebook, metric, value) and summary.md, each written atomically."""
    atomic_write(run_dir / "run.json", lambda f: json.dump(record, f, indent=2, default=str), mode="w")

    def write_csv(f):
        w = csv.writer(f)
        w.writerow(["notebook", "metric", "value"])
        for nb, info in record["notebooks"].items():
            for k, v in sorted(info["metrics"].items()):
                w.writerow([nb, k, v])

    atomic_write(run_dir / "summary.csv", write_csv, mode="w")
    lines = [f"# labkit run `{run_dir.name}`", "", f"Overrides: `{record['overrides'] or 'none'}`", "",
             "| notebook | status | seconds | metrics |", "|---|---|---|---|"]
    for nb, info in record["notebooks"].items():
        lines.append(f"| {nb} | {info['status']} | {info['seconds']} | {len(info['metrics'])} |")
    for nb, info in record["notebooks"].items():
        lines += ["", f"## {nb}", ""]
        if info["error"]:
            lines += [f"**failed**: `{info['error']}`", ""]
        if info["metrics"]:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.4g} |" for k, v in sorted(info["metrics"].items())]
    atomic_write(run_dir / "summary.md", lambda f: f.write("\n".join(lines) + "\n"), mode="w")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.runner", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="name=value", help="parameter overrides for all notebooks")
    parser.add_argument("--name", default=None, help="run folder name under --runs-dir (default: a timestamp); "
                        "an existing folder is an error: runs never overwrite each other")
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs"))
    parser.add_argument("--notebooks-dir", default=str(REPO_ROOT / "notebooks"))
    parser.add_argument("--only", default="", help="comma-separated notebook name prefixes, e.g. 01,03")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--log-output", action="store_true", help="stream the notebooks' output")
    args = parser.parse_args(argv)

    overrides = parse_overrides(args.overrides)
    notebooks = find_notebooks(Path(args.notebooks_dir), [o for o in args.only.split(",") if o])
    check_overrides(notebooks, overrides)  # refused before a run folder is created
    try:
        run_dir = new_run_dir(args.runs_dir, args.name)
    except (FileExistsError, ValueError) as exc:
        raise SystemExit(f"[labkit] {exc}") from None
    record = run_notebooks(notebooks, run_dir, overrides, kernel_name=args.kernel, log_output=args.log_output)
    failed = [nb for nb, info in record["notebooks"].items() if info["status"] != "ok"]
    print(f"[labkit] run folder: {run_dir}\n[labkit] summary: {run_dir / 'summary.md'}")
    if (run_dir / "claims.md").exists():
        print(f"[labkit] claims: {run_dir / 'claims.md'}  (README's results: python -m labkit.report {run_dir} "
              "--readme README.md)")
    if failed:
        print(f"[labkit] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
