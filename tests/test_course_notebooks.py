"""Course mode on the real notebooks (issue 13): every lesson holds well-formed exercises; its student version —
generated, never committed — runs to the end on labkit's fallbacks; the solution version solves every exercise; and
a student notebook filled with the solution text is the source and gives the solution's metrics."""

import json
from pathlib import Path

import nbformat
import pytest

from labkit.course import exercise_problems, exercise_titles, fill_solutions, make_student
from labkit.runner import execute_notebook

from conftest import NOTEBOOK_DIR, TEST_PROFILE, offline

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
STEMS = [p.stem for p in NOTEBOOKS]


def _read(stem: str):
    return nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4)


def _printed(executed: Path) -> str:
    """Everything a notebook's code cells printed (stdout streams)."""
    nb = nbformat.read(executed, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


def _execute(nb, work: Path, offline_log: Path) -> tuple[Path, Path]:
    """Write ``nb`` into ``work`` and execute it at the test profile; returns (executed notebook, output_dir)."""
    work.mkdir(parents=True, exist_ok=True)
    src, executed, out = work / "lesson.ipynb", work / "executed.ipynb", work / "output"
    nbformat.write(nb, src)
    with offline(offline_log):
        execute_notebook(src, executed, {"profile": TEST_PROFILE, "seed": 0, "device": "cpu", "output_dir": str(out)})
    return executed, out


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("stem", STEMS)
def test_exercises_are_well_formed(stem):
    assert exercise_problems(_read(stem), f"{stem}.ipynb") == []


@pytest.mark.parametrize("stem", STEMS)
def test_student_version_round_trips_to_the_source(stem):
    source = _read(stem)
    student = make_student(source, f"{stem}.ipynb")
    assert "### BEGIN SOLUTION" not in nbformat.writes(student)
    filled = fill_solutions(student, source)
    assert [c.source for c in filled.cells] == [c.source for c in source.cells]


@pytest.mark.parametrize("stem", STEMS)
def test_solution_version_solves_every_exercise(stem, run_notebook):
    out, _ = run_notebook(stem)
    printed = _printed(out.parent / f"{stem}.ipynb")
    for title in exercise_titles(_read(stem)):
        assert f"[exercise] {title}: ✓" in printed, f"{stem}: the solution does not pass exercise {title!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_student_version_runs_to_the_end_on_the_fallbacks(stem, tmp_path, offline_log):
    source = _read(stem)
    executed, out = _execute(make_student(source, f"{stem}.ipynb"), tmp_path, offline_log)
    printed = _printed(executed)
    for title in exercise_titles(source):
        assert f"[exercise] {title}: not solved yet" in printed, f"{stem}: no fallback announced for {title!r}"
        assert f"[exercise] {title}: ✓" not in printed, f"{stem}: a stub passed exercise {title!r}"
    assert (out / "metrics.json").is_file(), f"{stem}: the student version did not reach its end (no metrics.json)"


def test_filled_student_notebook_gives_the_solutions_metrics(tmp_path, offline_log, run_notebook):
    stem = STEMS[0]
    source = _read(stem)
    filled = fill_solutions(make_student(source, f"{stem}.ipynb"), source)
    _, out = _execute(filled, tmp_path, offline_log)
    solution_out, _ = run_notebook(stem)
    # wall-clock durations (``train_seconds``, ``notebook_seconds`` …) are measurements of the machine, not results
    mine, theirs = ({k: v for k, v in json.loads((d / "metrics.json").read_text()).items() if "seconds" not in k}
                    for d in (out, solution_out))
    assert len(mine) > 10
    assert mine.keys() == theirs.keys()
    different = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k] and not (mine[k] != mine[k] and
                                                                                       theirs[k] != theirs[k])}
    assert not different, f"{stem}: filled student ≠ solution for {different}"
