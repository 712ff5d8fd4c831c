"""The arrows of docs/architecture.md, as import-linter contracts in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports as l; sys.exit(l(no_cache=True))"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the contracts of `tree`/pyproject.toml over the packages found in `tree`."""
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_imports_keep_the_documented_arrows() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wing_importing_a_wing_above_it_breaks_the_contract(tmp_path: Path) -> None:
    """The contracts can fail: the access wing reaching up into the spaces wing is caught."""
    for package in ("registry", "storage", "federation", "common"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "registry" / "access" / "upward.py").write_text(
        "from registry.spaces.service import SpaceService\n"
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "registry.access.upward -> registry.spaces.service" in result.stdout
