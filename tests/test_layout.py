"""The package layout: one home per concept, studies on top. Nothing below ``labkit.studies`` imports a study."""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import labkit

PACKAGE = Path(labkit.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def test_no_concept_module_imports_a_study():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "studies" in path.relative_to(PACKAGE).parts:
            continue
        bad = sorted(n for n in _imports(path) if n == "labkit.studies" or n.startswith("labkit.studies."))
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE.parent)}: {bad}")
    assert not offenders, "modules below labkit.studies import studies:\n" + "\n".join(offenders)


def test_the_import_rule_check_catches_a_violation(tmp_path, monkeypatch):
    fake = PACKAGE / "metrics" / "gap.py"
    names = _imports(fake)
    assert "labkit.metrics._validate" in names  # relative imports are resolved, so a violation would show


def test_every_module_imports():
    for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
        importlib.import_module(info.name)


@pytest.mark.parametrize("concept", ["data", "models", "losses", "metrics", "studies"])
def test_each_concept_is_a_package(concept):
    assert (PACKAGE / concept / "__init__.py").is_file()
