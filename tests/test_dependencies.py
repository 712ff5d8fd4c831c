"""Every third-party package our code imports is declared in `pyproject.toml`: one that only
arrives as another package's dependency can disappear with that package's next release."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("common", "federation", "migrations", "registry", "storage")


def imported_modules() -> set[str]:
    """The top-level names our packages import (absolute imports only)."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        normalise(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]
    }


def test_every_third_party_import_is_a_declared_dependency() -> None:
    ours = set(PACKAGES)
    distributions = packages_distributions()
    third_party = {
        module
        for module in imported_modules() - ours
        if module not in sys.stdlib_module_names and module != "__future__"
    }
    undeclared = {
        module: distributions.get(module, ["?"])
        for module in third_party
        if not {normalise(d) for d in distributions.get(module, [])} & declared()
    }
    assert undeclared == {}
