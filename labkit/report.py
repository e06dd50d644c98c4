"""Claims and results, from a notebook's numbers to the README, never typed by hand.

A notebook that tests a claim of a seed paper writes, beside ``metrics.json``:

* ``claims.json`` — a list of :class:`Claim`: the claim, its source (seed paper and figure/table), what was
  measured, mean ± std over n seeds, and a verdict computed from those numbers (:func:`paired_verdict`);
* ``results.md`` — optionally, the notebook's result tables as Markdown, for the README.

The runner gathers every notebook's claims into ``runs/<name>/claims.md``, and

    python -m labkit.report runs/<name> --readme README.md

rewrites the README's results section (between ``<!-- results:begin -->`` and ``<!-- results:end -->``) from a run
folder, so the README cannot drift from what the code measures.

Verdicts: ``holds`` (the effect has the claimed direction and stands out of the seed noise, |mean| > 2 standard
errors), ``does not hold`` (the opposite direction, resolved), ``inconclusive`` (not resolved from zero at this
number of seeds — or the baseline did not learn, so the measurement says nothing), ``mixed`` (a composite claim
whose parts disagree).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .io import atomic_write

__all__ = ["VERDICTS", "Claim", "paired_verdict", "combine_verdicts", "write_claims", "read_claims",
           "write_results", "claims_markdown", "markdown_table", "gather_claims", "update_readme", "main"]

VERDICTS = ("holds", "does not hold", "inconclusive", "mixed")
CLAIMS_FILE, RESULTS_FILE = "claims.json", "results.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


@dataclass
class Claim:
    """One claim of a seed paper, measured here.

    ``measured`` says what the numbers are (e.g. "paired change of Δgap, λ = 0 → 3"); ``mean``/``std``/``n`` are
    over seeds (std with ddof=1; NaN when n = 1); ``detail`` is a sentence of context (the most likely reason when
    a claim does not reproduce, say).
    """

    id: str
    claim: str
    source: str
    measured: str
    mean: float
    std: float
    n: int
    verdict: str
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.id or ""):
            raise ValueError(f"Claim.id must be a short key of letters, digits, '_', '.', '-'; got {self.id!r}")
        for name in ("claim", "source", "measured"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"Claim {self.id!r}: field {name!r} is empty")
        if self.verdict not in VERDICTS:
            raise ValueError(f"Claim {self.id!r}: verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.mean, self.std, self.n = float(self.mean), float(self.std), int(self.n)
        if not math.isfinite(self.mean):
            raise ValueError(f"Claim {self.id!r}: mean is not finite ({self.mean})")
        if self.n < 1:
            raise ValueError(f"Claim {self.id!r}: n must be >= 1, got {self.n}")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["std"] = None if not math.isfinite(self.std) else self.std
        return d


def paired_verdict(mean: float, se: float, expect: str = "increase", k: float = 2.0) -> str:
    """The verdict on a claimed direction from a per-seed paired difference (mean and standard error).

    ``expect``: ``"increase"`` (the claim says b > a) or ``"decrease"``. ``holds`` when the mean lies in that
    direction by more than ``k`` standard errors, ``does not hold`` when it lies the other way by as much,
    ``inconclusive`` otherwise (including a single seed, whose standard error is unknown).
    """
    if expect not in ("increase", "decrease"):
        raise ValueError(f"expect must be 'increase' or 'decrease', got {expect!r}")
    if not (math.isfinite(mean) and math.isfinite(se)):
        return "inconclusive"
    signed = mean if expect == "increase" else -mean
    if signed > k * se:
        return "holds"
    if signed < -k * se:
        return "does not hold"
    return "inconclusive"


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """One verdict for a composite claim: the common one when all parts agree, else ``mixed``."""
    vs = set(verdicts)
    if not vs:
        raise ValueError("combine_verdicts needs at least one verdict")
    return vs.pop() if len(vs) == 1 else "mixed"


def write_claims(output_dir: str | os.PathLike, claims: Sequence[Claim], learned: bool | None = None,
                 learned_detail: str = "") -> Path:
    """Write ``claims.json`` atomically. With ``learned=False`` (the baseline did not learn far above chance) every
    verdict becomes ``inconclusive``, with ``learned_detail`` saying why."""
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"claims: duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}")
    out = []
    for c in claims:
        d = c.as_dict()
        if learned is False:
            d["detail"] = f"baseline did not learn ({learned_detail}); measured verdict was {d['verdict']!r}. " + d["detail"]
            d["verdict"] = "inconclusive"
        out.append(d)
    text = json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(Path(output_dir) / CLAIMS_FILE, lambda f: f.write(text), mode="w")


def read_claims(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and check a ``claims.json``; errors name the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of claims")
    for i, d in enumerate(data):
        for key in ("id", "claim", "source", "measured", "mean", "n", "verdict"):
            if not isinstance(d, dict) or key not in d:
                raise ValueError(f"{path}: claim {i} has no field {key!r}")
        if d["verdict"] not in VERDICTS:
            raise ValueError(f"{path}: claim {d['id']!r} has verdict {d['verdict']!r}, not one of {VERDICTS}")
    return data


def markdown_table(df) -> str:
    """A pandas DataFrame (string cells; two-level columns joined by " · ") as a GitHub Markdown table, index
    first, for ``results.md``."""
    cols = [" · ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for idx, row in df.iterrows():
        lines.append(f"| {idx} | " + " | ".join(str(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


def write_results(output_dir: str | os.PathLike, markdown: str) -> Path:
    """Write the notebook's ``results.md`` (its tables and verdict lines for the README), atomically."""
    return atomic_write(Path(output_dir) / RESULTS_FILE, lambda f: f.write(markdown.strip() + "\n"), mode="w")


def _pm(d: Mapping[str, Any]) -> str:
    std = d.get("std")
    s = f"{d['mean']:.3g}" if std is None else f"{d['mean']:.3g} ± {std:.2g}"
    return f"{s} (n={d['n']})"


def claims_markdown(claims_by_notebook: Mapping[str, list[dict[str, Any]]]) -> str:
    """One Markdown table of every claim: notebook, claim, source, what was measured, mean ± std, verdict."""
    lines = ["| notebook | claim | source | measured | mean ± std (n) | verdict |", "|---|---|---|---|---|---|"]
    for nb, claims in claims_by_notebook.items():
        for d in claims:
            cells = [nb, d["claim"], d["source"], d["measured"], _pm(d), f"**{d['verdict']}**"]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def gather_claims(run_dir: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """``{notebook: claims}`` for every ``<run_dir>/<notebook>/claims.json``, in notebook order."""
    run_dir = Path(run_dir)
    return {p.parent.name: read_claims(p) for p in sorted(run_dir.glob(f"*/{CLAIMS_FILE}"))}


def write_claims_report(run_dir: str | os.PathLike) -> Path | None:
    """``<run_dir>/claims.md`` from the notebooks' claims (None when no notebook wrote any)."""
    claims = gather_claims(run_dir)
    if not claims:
        return None
    text = "# Claims measured in this run\n\n" + claims_markdown(claims)
    for nb, cs in claims.items():
        details = [f"- **{d['id']}** ({d['verdict']}): {d['detail']}" for d in cs if d.get("detail")]
        if details:
            text += f"\n## {nb}\n\n" + "\n".join(details) + "\n"
    return atomic_write(Path(run_dir) / "claims.md", lambda f: f.write(text), mode="w")


def results_section(run_dir: str | os.PathLike, section: str | None = None) -> str:
    """The README's results section for a run: its provenance, each notebook's results.md, the claims table."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    nbs = record.get("notebooks", {})
    times = ", ".join(f"{nb.split('_')[0]} {info.get('seconds', 0):.0f} s" for nb, info in nbs.items())
    commit = (record.get("git") or {}).get("commit")
    device = record.get("device") or {}
    where = ", ".join(x for x in (
        f"commit `{commit[:10]}`" + (" + local changes" if (record.get("git") or {}).get("dirty") else "")
        if commit else "",
        f"device {device.get('resolved')} ({device.get('cpu_count')} CPU cores, {device.get('torch_threads')} "
        "torch threads)" if device else "") if x)
    total = sum(info.get("seconds", 0) for info in nbs.values())
    option = f" --section {section}" if section else ""
    parts = [f"Generated by `python -m labkit.report {run_dir.name} --readme README.md{option}` from the run "
             f"`{run_dir.name}` (overrides: `{record.get('overrides') or 'none'}`"
             + (f"; {where}" if where else "")
             + (f"; wall time per notebook: {times}; total {total / 60:.1f} min" if times else "") + ")."]
    for md in sorted(run_dir.glob(f"*/{RESULTS_FILE}")):
        parts.append(md.read_text().strip())
    claims = gather_claims(run_dir)
    if claims:
        parts.append("### Every claim tested, with its computed verdict\n\n" + claims_markdown(claims).strip())
    return "\n\n".join(parts) + "\n"


def markers(section: str | None = None) -> tuple[str, str]:
    """The README markers of the main results section, or of a named one (``<!-- results:NAME:begin -->`` …): a
    second run — a variant of one notebook, say — gets its own generated section."""
    return (BEGIN, END) if not section else (f"<!-- results:{section}:begin -->", f"<!-- results:{section}:end -->")


def update_readme(readme: str | os.PathLike, run_dir: str | os.PathLike, section: str | None = None) -> Path:
    """Replace the text between the results markers of ``readme`` (see :func:`markers`) with
    :func:`results_section` of ``run_dir``."""
    readme = Path(readme)
    text = readme.read_text()
    begin, end = markers(section)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"{readme}: no results section marked once by {begin} … {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = head + begin + "\n" + results_section(run_dir, section) + end + tail
    return atomic_write(readme, lambda f: f.write(new), mode="w")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.report",
                                     description="claims.md and the README's results section from a run folder")
    parser.add_argument("run_dir", help="a run folder (runs/<name>), or just its name under runs/")
    parser.add_argument("--readme", default=None, help="README to rewrite between the results markers")
    parser.add_argument("--section", default=None,
                        help="a named section (<!-- results:NAME:begin --> … end) instead of the main one")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        run_dir = Path(__file__).resolve().parent.parent / "runs" / args.run_dir
    if not run_dir.is_dir():
        raise SystemExit(f"run folder not found: {args.run_dir}")
    path = write_claims_report(run_dir)
    print(f"claims: {path or 'no notebook wrote claims.json'}")
    if args.readme:
        print(f"results section rewritten: {update_readme(args.readme, run_dir, args.section)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
