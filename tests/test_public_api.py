"""The public surface: exactly what __all__ says, documented, layered one way."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import agentbridge as ab

PACKAGE_DIR = Path(ab.__file__).parent


def test_all_is_sorted_unique_and_complete() -> None:
    names = list(ab.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    public = {
        name
        for name, value in vars(ab).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(names) - {"__version__"}


def test_every_public_name_has_a_docstring() -> None:
    missing = [
        name
        for name in ab.__all__
        if _documentable(getattr(ab, name)) and not inspect.getdoc(getattr(ab, name))
    ]
    assert missing == []


def _documentable(obj: object) -> bool:
    # Type aliases such as ``Policy`` are documented where they are used.
    return inspect.isclass(obj) or inspect.isroutine(obj)


def test_public_subpackages_export_documented_names() -> None:
    for info in pkgutil.iter_modules([str(PACKAGE_DIR)]):
        if info.name.startswith("_") or not info.ispkg:
            continue
        module = importlib.import_module(f"agentbridge.{info.name}")
        assert inspect.getdoc(module), f"agentbridge.{info.name} needs a module docstring"
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if _documentable(obj):
                assert inspect.getdoc(obj), f"agentbridge.{info.name}.{name} has no docstring"


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        pytest.param("bridge", ("workflow", "runtime", "cli"), id="bridge"),
        pytest.param("workflow", ("bridge", "runtime", "cli"), id="workflow"),
        pytest.param("runtime", ("cli",), id="runtime"),
    ],
)
def test_layers_import_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    """Arrows point one way: cli -> runtime -> workflow and bridge, never the reverse.

    The workflow model runs nothing, so it does not even use the bridge.
    """
    for path in (PACKAGE_DIR / layer).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                assert not any(part in forbidden for part in parts), f"{path.name}: {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("agentbridge."), f"{path.name}: {alias.name}"


def test_the_api_reference_lists_every_public_name() -> None:
    reference = (PACKAGE_DIR.parent / "docs" / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^::: agentbridge\.(\w+)\s*$", reference, flags=re.MULTILINE))
    assert set(ab.__all__) - {"__version__"} - listed == set()


def test_package_is_typed() -> None:
    assert (PACKAGE_DIR / "py.typed").exists()
