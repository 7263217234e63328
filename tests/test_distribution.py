"""The distribution name: one constant, the one pyproject publishes, in every install hint."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import agentbridge as ab
from agentbridge._distribution import DISTRIBUTION, install_hint

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "agentbridge"
#: A ``pip install`` of something named like us, quoted or not, with or without extras.
OUR_INSTALL = re.compile(r"pip install '?(agentbridge[A-Za-z0-9_.-]*)")
#: An extra of something named like us, as in ``agentbridge-runtime[trio]``.
OUR_EXTRA = re.compile(r"(?<![\w.-])(agentbridge[A-Za-z0-9_.-]*)\[[A-Za-z0-9_,-]+\]")


def _pyproject_name() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = text.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^name = "([^"]+)"$', project, flags=re.MULTILINE)
    assert match is not None
    return match[1]


def test_the_constant_is_the_name_pyproject_publishes() -> None:
    assert _pyproject_name() == DISTRIBUTION
    # The import name stays agentbridge; the distribution's is another (the index's
    # `agentbridge` is an unrelated project).
    assert ab.__name__ == "agentbridge"
    assert DISTRIBUTION != "agentbridge"


def test_install_hints_name_the_distribution_and_the_extra() -> None:
    assert install_hint("trio") == f"pip install '{DISTRIBUTION}[trio]'"


def test_no_hint_in_the_package_spells_the_name_itself() -> None:
    # Each message builds its hint with install_hint(); only docstrings may show one.
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_distribution.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and "pip install" in node.value
        ]
    assert offenders == []


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted(PACKAGE.rglob("*.py")),
    ],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_every_install_command_names_the_distribution(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    names = {*OUR_INSTALL.findall(text), *OUR_EXTRA.findall(text)}
    assert names <= {DISTRIBUTION}, f"{path.relative_to(ROOT)} installs {names}"
