"""labkit.course: student notebooks from the solution notebooks (nbgrader's markers), the fallback that keeps an
unsolved lesson running, and the round trip student + solution text = source."""

import json

import nbformat
import numpy as np
import pytest

from labkit.course import (BEGIN, END, EXERCISE_LOG, STUB, check, count_exercises, exercise_problems, exercise_titles,
                           fill_solutions, make_student, solution_regions)

EXERCISE = f'''import numpy as np

def double(x):
    # Hint: multiply by two.
    {BEGIN}
    y = np.asarray(x) * 2
    return y
    {END}

value = check("double", double, lambda x: np.asarray(x) * 2, [1.0, 2.0])'''


def _notebook(*codes):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\noutput_dir = '.'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params] + [nbformat.v4.new_code_cell(c) for c in codes]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_student_version_replaces_each_region_with_an_indented_stub():
    nb = _notebook("from labkit.course import check\n" + EXERCISE, f"{BEGIN}\nz = 3\n{END}\nprint(z)")
    student = make_student(nb, "t.ipynb")
    src = student.cells[2].source
    assert BEGIN not in src and "y = np.asarray(x) * 2" not in src
    assert f"    {STUB}" in src and "# Hint: multiply by two." in src  # hints above the markers stay
    assert student.cells[3].source == f"{STUB}\nprint(z)"
    assert count_exercises(nb) == 2 and count_exercises(student) == 0
    assert nb.cells[2].source.count(BEGIN) == 1  # the source is untouched


def test_fill_solutions_inverts_make_student_exactly():
    nb = _notebook(EXERCISE, f"a = 1\n{BEGIN}\nb = 2\n{END}\nc = 3\n{BEGIN}\nd = 4\n{END}\n")
    filled = fill_solutions(make_student(nb), nb)
    assert [c.source for c in filled.cells] == [c.source for c in nb.cells]
    assert filled.metadata == nb.metadata


@pytest.mark.parametrize("source, message", [
    (f"{BEGIN}\nx = 1", "never closed"),
    (f"{END}\nx = 1", "without a"),
    (f"{BEGIN}\n{BEGIN}\n{END}", "inside another"),
    (f"x = 1  {BEGIN}\n{END}", "stand alone"),
])
def test_malformed_markers_are_named(source, message):
    with pytest.raises(ValueError, match=message):
        solution_regions(source, "nb.ipynb, cell 3")


def test_check_solved_unsolved_and_wrong(capsys):
    EXERCISE_LOG.clear()

    def unsolved(x):
        raise NotImplementedError

    ref = lambda x: {"a": np.asarray(x) * 2.0}  # noqa: E731
    assert np.allclose(check("ok", lambda x: {"a": np.asarray(x) * 2.0}, ref, [1, 2])["a"], [2, 4])
    assert np.allclose(check("todo", unsolved, ref, [1, 2])["a"], [2, 4])
    assert np.allclose(check("bad", lambda x: {"a": np.asarray(x) * 3.0}, ref, [1, 2])["a"], [2, 4])
    out = capsys.readouterr().out
    assert "ok: ✓" in out and "todo: not solved yet" in out and "bad: ✗ differs" in out and "2" in out
    assert EXERCISE_LOG == [("ok", "solved"), ("todo", "unsolved"), ("bad", "wrong")]


def test_a_student_notebook_runs_to_the_end_on_the_fallback(tmp_path):
    from labkit.runner import execute_notebook

    nb = _notebook("from labkit.course import check, EXERCISE_LOG\n" + EXERCISE,
                   "import json\nopen(output_dir + '/log.json', 'w').write(json.dumps(EXERCISE_LOG))")
    paths = {}
    for name, version in (("solution", nb), ("student", make_student(nb))):
        paths[name] = tmp_path / f"{name}.ipynb"
        nbformat.write(version, paths[name])
        (tmp_path / name).mkdir()
        execute_notebook(paths[name], tmp_path / f"{name}_out.ipynb", {"output_dir": str(tmp_path / name)})
    assert json.loads((tmp_path / "solution" / "log.json").read_text()) == [["double", "solved"]]
    assert json.loads((tmp_path / "student" / "log.json").read_text()) == [["double", "unsolved"]]


def test_exercise_problems_name_what_is_wrong():
    two = [EXERCISE, EXERCISE.replace('check("double"', 'check("double again"')]
    assert exercise_problems(_notebook(*two), "ok.ipynb") == []
    assert exercise_titles(_notebook(*two)) == ["double", "double again"]
    no_check = f"{BEGIN}\nz = 3\n{END}\nprint(z)"
    assert any("without a check" in p for p in exercise_problems(_notebook(EXERCISE, no_check), "a.ipynb"))
    assert any("repeat" in p for p in exercise_problems(_notebook(EXERCISE, EXERCISE), "b.ipynb"))
    assert any("1 exercise(s)" in p for p in exercise_problems(_notebook(EXERCISE), "c.ipynb"))
    assert any("never closed" in p for p in exercise_problems(_notebook(f"{BEGIN}\nx = 1"), "d.ipynb"))
