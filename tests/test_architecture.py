"""The import rules hold, and their checkers catch a break (docs/architecture.md).

The checkers run on a copy of the project in a temporary folder, once as it is and once with a
deliberately added circle, in a subprocess each (the packages must be imported from the copy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.import_cycles import circles

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
DEFERRED_CIRCLE = """

def _deliberate_circle() -> None:
    from contigo.exchange import install  # noqa: F401
"""
TYPING_ONLY = """
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contigo.exchange import install  # noqa: F401
"""


def _copy(tmp_path: Path, extra: str = "") -> Path:
    folder = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "templates", "*.pyc")
    for package in ("contigo", "sync", "tools"):
        shutil.copytree(ROOT / package, folder / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    if extra:
        models = folder / "contigo" / "persons" / "models.py"
        models.write_text(models.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return folder


def _run(folder: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(
        cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_circles_are_strongly_connected_groups() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"x": {"y"}, "y": set()}) == []


def test_the_project_has_no_import_circle(tmp_path: Path) -> None:
    result = _run(_copy(tmp_path), sys.executable, "-m", "tools.import_cycles")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no import circles in contigo, sync" in result.stdout


def test_a_deliberately_added_circle_fails_both_checks(tmp_path: Path) -> None:
    folder = _copy(tmp_path, DEFERRED_CIRCLE)
    found = _run(folder, sys.executable, "-m", "tools.import_cycles")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "import circle:" in found.stdout and "contigo.persons.models" in found.stdout
    assert "contigo.exchange.install" in found.stdout
    contracts = _run(folder, str(LINT_IMPORTS), "--no-cache")
    assert contracts.returncode == 1, contracts.stdout + contracts.stderr
    assert "BROKEN" in contracts.stdout
    assert "contigo.persons.models -> contigo.exchange.install" in contracts.stdout


def test_an_import_for_type_checking_only_is_no_circle(tmp_path: Path) -> None:
    result = _run(_copy(tmp_path, TYPING_ONLY), sys.executable, "-m", "tools.import_cycles")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contracts_hold_and_name_the_rules(tmp_path: Path) -> None:
    result = _run(_copy(tmp_path), str(LINT_IMPORTS), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    for kept in (
        "The clinical engine imports neither Flask nor SQLAlchemy KEPT",
        "The sync engine never imports Contigo (Contigo registers with it) KEPT",
        "Domain packages reach sync only through its declared hook and public modules KEPT",
    ):
        assert kept in " ".join(result.stdout.split()), kept
