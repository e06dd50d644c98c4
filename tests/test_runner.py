"""labkit.runner on throw-away notebooks: overrides, unknown parameters, summaries, failures."""

import csv
import json

import nbformat
import pytest

from labkit.runner import main, parse_overrides


def _notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_src)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params, nbformat.v4.new_code_cell(body_src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


WRITE = "from labkit.io import write_metrics\nwrite_metrics(output_dir, {'seed_seen': seed, 'x': x})\n"


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    _notebook(d / "01_a.ipynb", "seed = 0\nx = 1.0\noutput_dir = '.'\n", WRITE)
    _notebook(d / "02_b.ipynb", "seed = 0\nx = 2.0\nonly_b = 'no'\noutput_dir = '.'\n", WRITE + "assert only_b\n")
    return d


def test_parse_overrides():
    assert parse_overrides(["seed=3", "device=cuda", "ls=[0, 0.5]", "flag=True"]) == {
        "seed": 3, "device": "cuda", "ls": [0, 0.5], "flag": True}
    with pytest.raises(SystemExit, match="name=value"):
        parse_overrides(["seed"])


def test_runs_all_notebooks_and_writes_summary(notebooks, tmp_path):
    rc = main(["--notebooks-dir", str(notebooks), "--runs-dir", str(tmp_path / "runs"), "--name", "r",
               "seed=7", "only_b=yes"])
    assert rc == 0
    run = tmp_path / "runs" / "r"
    for stem, x in [("01_a", 1.0), ("02_b", 2.0)]:
        assert (run / stem / f"{stem}.ipynb").exists()
        assert json.loads((run / stem / "metrics.json").read_text()) == {"seed_seen": 7, "x": x}
    rows = list(csv.DictReader(open(run / "summary.csv")))
    assert {(r["notebook"], r["metric"], float(r["value"])) for r in rows} == {
        ("01_a", "seed_seen", 7), ("01_a", "x", 1.0), ("02_b", "seed_seen", 7), ("02_b", "x", 2.0)}
    assert "02_b" in (run / "summary.md").read_text()
    record = json.loads((run / "run.json").read_text())
    assert record["notebooks"]["01_a"]["parameters"].keys() == {"seed", "output_dir"}  # only_b not passed to 01
    # the run explains itself: commit (None without git), package versions, device, parameters and seeds
    assert {"git", "packages", "device", "parameters", "seeds", "created", "command"} <= set(record)
    assert record["seeds"] == {"01_a": 7, "02_b": 7} and record["parameters"] == {"seed": 7, "only_b": "yes"}
    assert record["packages"]["papermill"] and record["device"]["requested"] == "auto"
    assert record["notebooks"]["01_a"]["effective_parameters"]["x"] == 1.0
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [(r["notebook"], r["status"], r["metrics"]["x"]) for r in lines] == [("01_a", "ok", 1.0), ("02_b", "ok", 2.0)]
    assert lines[0]["commit"] == record["git"]["commit"] and lines[1]["parameters"]["only_b"] == "yes"


def test_unknown_parameter_is_an_error(notebooks, tmp_path):
    with pytest.raises(SystemExit, match="unknown parameter.*sede"):
        main(["--notebooks-dir", str(notebooks), "--runs-dir", str(tmp_path / "runs"), "sede=3"])
    with pytest.raises(SystemExit, match="output_dir"):
        main(["--notebooks-dir", str(notebooks), "--runs-dir", str(tmp_path / "runs"), "output_dir=/tmp"])


def test_failing_notebook_is_reported_and_others_still_run(notebooks, tmp_path):
    rc = main(["--notebooks-dir", str(notebooks), "--runs-dir", str(tmp_path / "runs"), "--name", "f",
               "only_b=''"])
    assert rc == 1
    record = json.loads((tmp_path / "runs" / "f" / "run.json").read_text())
    assert record["notebooks"]["01_a"]["status"] == "ok"
    assert record["notebooks"]["02_b"]["status"] == "failed"
    assert "failed" in (tmp_path / "runs" / "f" / "summary.md").read_text()


def test_only_selects_notebooks(notebooks, tmp_path):
    assert main(["--notebooks-dir", str(notebooks), "--runs-dir", str(tmp_path / "runs"), "--name", "o",
                 "--only", "02", "only_b=1"]) == 0
    assert not (tmp_path / "runs" / "o" / "01_a").exists()


def test_runs_never_overwrite_each_other(notebooks, tmp_path):
    from labkit.io import new_run_dir

    runs = tmp_path / "runs"
    (runs / "taken").mkdir(parents=True)
    (runs / "taken" / "keep.txt").write_text("old")
    with pytest.raises(SystemExit, match="taken already exists"):
        main(["--notebooks-dir", str(notebooks), "--runs-dir", str(runs), "--name", "taken"])
    assert (runs / "taken" / "keep.txt").read_text() == "old" and len(list((runs / "taken").iterdir())) == 1
    a, b = new_run_dir(runs), new_run_dir(runs)  # default names: timestamps, made unique within a second
    assert a != b and a.is_dir() and b.is_dir()
