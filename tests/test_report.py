"""labkit.report: claims.json written and read back field by field, verdicts from paired numbers, claims.md and
the README's results section regenerated from a run folder."""

import json
import math

import pytest

from labkit.report import (BEGIN, END, Claim, combine_verdicts, gather_claims, paired_verdict, read_claims,
                           update_readme, write_claims, write_claims_report, write_results)


def _claim(i="c1", verdict="holds", mean=0.2):
    return Claim(i, "the gap shrinks", "seed 000, Fig. 3", "paired Δgap", mean, 0.05, 3, verdict, "why")


def test_paired_verdict_by_hand():
    assert paired_verdict(0.3, 0.1, "increase") == "holds"
    assert paired_verdict(0.3, 0.1, "decrease") == "does not hold"
    assert paired_verdict(0.15, 0.1, "increase") == "inconclusive"  # 1.5 standard errors
    assert paired_verdict(-0.25, 0.1, "decrease") == "holds"
    assert paired_verdict(0.3, float("nan")) == "inconclusive"
    with pytest.raises(ValueError, match="expect"):
        paired_verdict(0.1, 0.1, "up")
    assert combine_verdicts(["holds", "holds"]) == "holds" and combine_verdicts(["holds", "inconclusive"]) == "mixed"


def test_claims_round_trip_and_the_learned_gate(tmp_path):
    write_claims(tmp_path, [_claim(), _claim("c2", "does not hold", -0.1)])
    back = read_claims(tmp_path / "claims.json")
    assert [c["id"] for c in back] == ["c1", "c2"] and back[0]["mean"] == 0.2 and back[1]["n"] == 3
    write_claims(tmp_path, [_claim()], learned=False, learned_detail="R@1 at chance")
    back = read_claims(tmp_path / "claims.json")
    assert back[0]["verdict"] == "inconclusive" and "R@1 at chance" in back[0]["detail"]


def test_bad_claims_are_named(tmp_path):
    with pytest.raises(ValueError, match="verdict"):
        _claim(verdict="probably")
    with pytest.raises(ValueError, match="'source' is empty"):
        Claim("x", "c", " ", "m", 1.0, 0.1, 3, "holds")
    with pytest.raises(ValueError, match="mean is not finite"):
        _claim(mean=math.nan)
    with pytest.raises(ValueError, match="duplicate ids"):
        write_claims(tmp_path, [_claim(), _claim()])
    (tmp_path / "bad.json").write_text(json.dumps([{"id": "x", "claim": "c"}]))
    with pytest.raises(ValueError, match="bad.json: claim 0 has no field 'source'"):
        read_claims(tmp_path / "bad.json")


def test_claims_report_and_readme_section(tmp_path):
    run = tmp_path / "runs" / "r1"
    for nb, claims in {"01_a": [_claim()], "04_b": [_claim("c9", "inconclusive", 0.01)]}.items():
        (run / nb).mkdir(parents=True)
        write_claims(run / nb, claims)
    write_results(run / "04_b", "### 04 · b\n\n| x | y |\n|---|---|\n| 1 | 2 |")
    (run / "run.json").write_text(json.dumps({"overrides": {}, "notebooks": {"01_a": {"seconds": 3.0}}}))
    assert list(gather_claims(run)) == ["01_a", "04_b"]
    md = write_claims_report(run).read_text()
    assert "| 04_b | the gap shrinks | seed 000, Fig. 3 | paired Δgap | 0.01 ± 0.05 (n=3) | **inconclusive** |" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Results\n\n{BEGIN}\nold text\n{END}\n\n## After\n")
    update_readme(readme, run)
    text = readme.read_text()
    assert "old text" not in text and "### 04 · b" in text and "**holds**" in text and text.endswith("## After\n")
    assert "`r1`" in text
    readme.write_text(f"{text}\n<!-- results:variant:begin -->\nx\n<!-- results:variant:end -->\n")
    update_readme(readme, run, section="variant")
    variant = readme.read_text().split("<!-- results:variant:begin -->")[1]
    assert "### 04 · b" in variant and "\nx\n" not in variant
    assert readme.read_text().split("<!-- results:variant:begin -->")[0] == text + "\n"  # the main section untouched
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no results section"):
        update_readme(readme, run)


def test_markdown_table_joins_two_level_columns_and_keeps_the_index():
    import pandas as pd

    from labkit.report import markdown_table

    df = pd.DataFrame([["0.1 ± 0.0", "3"], ["0.2 ± 0.1", "4"]], index=["λ = 0", "λ = 1"],
                      columns=pd.MultiIndex.from_tuples([("gap", "mean"), ("n", "")]))
    assert markdown_table(df) == ("| | gap · mean | n ·  |\n|---|---|---|\n"
                                  "| λ = 0 | 0.1 ± 0.0 | 3 |\n| λ = 1 | 0.2 ± 0.1 | 4 |")
