"""Course mode: student notebooks generated from the solution notebooks, one source of truth.

**The convention** is nbgrader's: in a code cell of a notebook under ``notebooks/``, the lines between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` are the solution. The student version replaces them with a stub
that raises ``NotImplementedError`` (same indentation), and keeps everything else — the hint comments written above
the markers included. The same sources therefore also work with nbgrader's own ``ClearSolutions`` preprocessor,
for a course that grades with nbgrader; labkit itself needs only these few lines, not nbgrader and its database.

**The fallback.** An exercise is a small function the student writes, followed by a call to :func:`check`::

    def modality_gap_by_hand(image, text):
        # Hint: normalise the rows, average each modality, take the distance between the two means (eq. 4).
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

    gap = check("Δgap by hand", modality_gap_by_hand, modality_gap, emb.image, emb.paired_text)

:func:`check` runs the student's function and compares it with labkit's implementation: a match prints ✓ and
returns the student's value; a stub (``NotImplementedError``) or a mismatch prints what happened and returns
labkit's value, so an unsolved exercise never breaks the rest of the lesson.

    python -m labkit.course student            # notebooks/*.ipynb → notebooks/student/*.ipynb (git-ignored)
    python -m labkit.course check              # the committed notebooks' exercises are well formed
"""

from __future__ import annotations

import argparse
import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["BEGIN", "END", "STUB", "check", "EXERCISE_LOG", "solution_regions", "make_student", "fill_solutions",
           "build_students", "count_exercises", "exercise_titles", "exercise_problems", "main"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("exercise: write your solution here (see the hint above)")'
REPO = Path(__file__).resolve().parent.parent

#: what :func:`check` saw in this kernel: one ``(name, status)`` per call, status ∈ {"solved", "unsolved", "wrong"}
EXERCISE_LOG: list[tuple[str, str]] = []


# ------------------------------------------------------------------------------------------------ in a notebook


def _close(a: Any, b: Any, rtol: float, atol: float) -> tuple[bool, float]:
    """Whether two results agree (numbers, arrays, tensors, and dicts/lists/tuples of them), and the largest gap."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return False, math.inf
        pairs = [_close(a[k], b[k], rtol, atol) for k in a]
        return all(ok for ok, _ in pairs), max((d for _, d in pairs), default=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) != len(b):
        return False, math.inf
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and a and not np.isscalar(a[0]):
        pairs = [_close(x, y, rtol, atol) for x, y in zip(a, b)]
        return all(ok for ok, _ in pairs), max((d for _, d in pairs), default=0.0)
    try:
        x = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64)
        y = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64)
    except (TypeError, ValueError):
        return a == b, 0.0 if a == b else math.inf
    if x.shape != y.shape:
        return False, math.inf
    diff = float(np.max(np.abs(x - y))) if x.size else 0.0
    return bool(np.allclose(x, y, rtol=rtol, atol=atol)), diff


def check(name: str, student: Callable, reference: Callable, *args: Any, rtol: float = 1e-5, atol: float = 1e-6,
          **kwargs: Any) -> Any:
    """Run an exercise: ``student(*args, **kwargs)`` against labkit's ``reference(*args, **kwargs)``.

    Returns the student's result when it matches the reference (within ``rtol``/``atol``), else the reference's,
    after saying why — so the lesson goes on whatever state the exercise is in. Each call is logged in
    :data:`EXERCISE_LOG`.
    """
    ref_name = f"{getattr(reference, '__module__', '')}.{getattr(reference, '__qualname__', repr(reference))}"
    try:
        mine = student(*args, **kwargs)
    except NotImplementedError:
        EXERCISE_LOG.append((name, "unsolved"))
        print(f"[exercise] {name}: not solved yet — the notebook goes on with labkit's {ref_name}.")
        return reference(*args, **kwargs)
    ref = reference(*args, **kwargs)
    ok, diff = _close(mine, ref, rtol, atol)
    if ok:
        EXERCISE_LOG.append((name, "solved"))
        print(f"[exercise] {name}: ✓ matches labkit's {ref_name}.")
        return mine
    EXERCISE_LOG.append((name, "wrong"))
    print(f"[exercise] {name}: ✗ differs from labkit's {ref_name} (largest difference {diff:.3g}) — the notebook "
          "goes on with labkit's result; compare the two and try again.")
    return ref


# ------------------------------------------------------------------------------------------------ the generator


@dataclass(frozen=True)
class Region:
    """One solution region of a cell: lines ``[begin, end]`` (the marker lines included) and its indentation."""

    begin: int
    end: int
    indent: str


def solution_regions(source: str, where: str = "cell") -> list[Region]:
    """The marked regions of a cell's source; malformed markers (nested, unclosed, stray END) raise ValueError."""
    regions, start = [], None
    for i, line in enumerate(source.split("\n")):
        stripped = line.strip()
        if stripped == BEGIN:
            if start is not None:
                raise ValueError(f"{where}: line {i + 1}: '{BEGIN}' inside another solution region")
            start = (i, line[: len(line) - len(line.lstrip())])
        elif stripped == END:
            if start is None:
                raise ValueError(f"{where}: line {i + 1}: '{END}' without a '{BEGIN}'")
            regions.append(Region(start[0], i, start[1]))
            start = None
        elif BEGIN in line or END in line:
            raise ValueError(f"{where}: line {i + 1}: a solution marker must stand alone on its line")
    if start is not None:
        raise ValueError(f"{where}: line {start[0] + 1}: '{BEGIN}' is never closed by '{END}'")
    return regions


def _cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def count_exercises(nb) -> int:
    """How many solution regions a notebook holds."""
    return sum(len(solution_regions(c.source, f"cell {i}")) for i, c in enumerate(_cells(nb)))


_CHECK_CALL = re.compile(r"""\bcheck\(\s*(?P<q>["'])(?P<title>.+?)(?P=q)""")


def exercise_titles(nb) -> list[str]:
    """The titles of the exercises, i.e. of the ``check("title", ...)`` calls in cells that hold a solution region."""
    titles = []
    for i, cell in enumerate(_cells(nb)):
        if solution_regions(cell.source, f"cell {i}"):
            titles += [m.group("title") for m in _CHECK_CALL.finditer(cell.source)]
    return titles


def exercise_problems(nb, name: str = "notebook", minimum: int = 2, maximum: int = 4) -> list[str]:
    """What is wrong with a source notebook's exercises (empty: well formed). Each cell with a solution region must
    call :func:`check` after its last region (so an unsolved exercise falls back to labkit), titles are unique, and
    a lesson holds ``minimum``–``maximum`` exercises."""
    problems = []
    for i, cell in enumerate(_cells(nb)):
        try:
            regions = solution_regions(cell.source, f"{name}, code cell {i}")
        except ValueError as err:
            problems.append(str(err))
            continue
        if regions:
            after = "\n".join(cell.source.split("\n")[regions[-1].end + 1:])
            if not _CHECK_CALL.search(after):
                problems.append(f"{name}, code cell {i}: a solution region without a check(\"title\", ...) after it")
    titles = exercise_titles(nb) if not problems else []
    if len(set(titles)) != len(titles):
        problems.append(f"{name}: exercise titles repeat: {sorted(t for t in set(titles) if titles.count(t) > 1)}")
    if not problems and not minimum <= len(titles) <= maximum:
        problems.append(f"{name}: {len(titles)} exercise(s); a lesson holds {minimum}–{maximum}")
    return problems


def make_student(nb, name: str = "notebook"):
    """The student version: each solution region replaced by :data:`STUB` at its indentation; outputs cleared."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        regions = solution_regions(cell.source, f"{name}, cell {i}")
        if not regions:
            continue
        lines = cell.source.split("\n")
        for r in reversed(regions):
            lines[r.begin:r.end + 1] = [r.indent + STUB]
        cell.source = "\n".join(lines)
    out.metadata["labkit"] = {"generated_from": name, "edit": "do not edit: generated by python -m labkit.course"}
    return out


def fill_solutions(student, source):
    """Put the source's solution regions back into a student notebook (the inverse of :func:`make_student`)."""
    out = copy.deepcopy(student)
    src_cells, stu_cells = _cells(source), _cells(out)
    if len(src_cells) != len(stu_cells):
        raise ValueError(f"the student notebook has {len(stu_cells)} code cells, the source {len(src_cells)}")
    for k, (src, stu) in enumerate(zip(src_cells, stu_cells)):
        regions = solution_regions(src.source, f"source cell {k}")
        if not regions:
            continue
        src_lines, stu_lines = src.source.split("\n"), stu.source.split("\n")
        stubs = [i for i, line in enumerate(stu_lines) if line.strip() == STUB]
        if len(stubs) != len(regions):
            raise ValueError(f"code cell {k}: {len(stubs)} stubs for {len(regions)} solution regions")
        for r, s in reversed(list(zip(regions, stubs))):
            stu_lines[s:s + 1] = src_lines[r.begin:r.end + 1]
        stu.source = "\n".join(stu_lines)
    out.metadata.pop("labkit", None)
    return out


def build_students(notebook_dir: Path = REPO / "notebooks", out_dir: Path | None = None,
                   only: Sequence[str] = ()) -> list[Path]:
    """Write the student version of every ``NN_*.ipynb`` of ``notebook_dir`` into ``out_dir`` (default
    ``<notebook_dir>/student``), atomically; returns the written paths."""
    import nbformat

    from .io import atomic_write

    notebook_dir = Path(notebook_dir)
    out_dir = Path(out_dir) if out_dir is not None else notebook_dir / "student"
    written = []
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        if only and not any(path.stem.startswith(o) for o in only):
            continue
        student = make_student(nbformat.read(path, as_version=4), path.name)
        text = nbformat.writes(student)
        written.append(atomic_write(out_dir / path.name, lambda f: f.write(text), mode="w"))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(prog="python -m labkit.course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="generate the student notebooks")
    s.add_argument("--notebooks-dir", default=str(REPO / "notebooks"))
    s.add_argument("--out", default=None, help="output folder (default: <notebooks-dir>/student)")
    s.add_argument("--only", default="", help="comma-separated notebook prefixes")
    c = sub.add_parser("check", help="check the exercises of the source notebooks")
    c.add_argument("--notebooks-dir", default=str(REPO / "notebooks"))
    args = parser.parse_args(argv)
    if args.command == "student":
        paths = build_students(Path(args.notebooks_dir), Path(args.out) if args.out else None,
                               [o for o in args.only.split(",") if o])
        for p in paths:
            print(f"[course] {p}")
        return 0
    failed = 0
    for path in sorted(Path(args.notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        problems = exercise_problems(nb, path.name)
        failed += bool(problems)
        print("[course] " + ("; ".join(problems) if problems else
                             f"{path.name}: {', '.join(exercise_titles(nb))}"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
