"""The public surface: exactly what __all__ says, documented, layered one way."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
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
        for name in dir(ab)
        if not name.startswith("_")
        and not inspect.ismodule(getattr(ab, name))
        and name != "annotations"
    }
    assert public == set(names) - {"__version__"}


def test_lazy_names_are_the_type_checking_imports() -> None:
    """The names loaded on first use are exactly those the type checker is shown."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    shown = {
        alias.name: (node.module or "")
        for block in tree.body
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert shown == ab._LAZY
    for name, package in ab._LAZY.items():
        module = importlib.import_module(f"agentbridge.{package}")
        assert getattr(ab, name) is getattr(module, name)


def test_unknown_attributes_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ab.nope  # noqa: B018


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
        pytest.param("integrations", ("workflow", "runtime", "cli"), id="integrations"),
    ],
)
def test_layers_import_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    """Arrows point one way: cli -> runtime -> workflow and bridge, never the reverse;
    the agent-framework adapters sit between the runtime and the bridge.

    The workflow model runs nothing, so it does not even use the bridge (it asks the
    integrations only whether an object is a framework's, which imports nothing).
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


def _modules(layer: str) -> list[tuple[Path, ast.Module]]:
    root = PACKAGE_DIR / layer if layer else PACKAGE_DIR
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in root.glob("*.py")]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_exception_module_imports_no_layer() -> None:
    """Every layer imports the exceptions, so they import none of them, not even for types."""
    tree = ast.parse((PACKAGE_DIR / "_exceptions.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"_exceptions.py: relative import of {node.module}"
            assert not (node.module or "").startswith("agentbridge"), node.module
        if isinstance(node, ast.Import):
            assert not any(alias.name.startswith("agentbridge") for alias in node.names)


def _imported_private_workflow_modules(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if "workflow" in parts and any(_is_private(part) for part in parts):
                found.append(node.module)
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("agentbridge.workflow._")]
    return found


def _foreign_private_attributes(tree: ast.Module) -> list[str]:
    """``x._name`` where ``x`` is not ``self`` or ``cls``, and ``getattr(x, "_name")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_runtime_uses_the_model_through_its_public_names() -> None:
    """No import of the model's private modules, no reading of its private attributes."""
    for path, tree in _modules("runtime"):
        assert _imported_private_workflow_modules(tree) == [], path.name
        assert _foreign_private_attributes(tree) == [], path.name


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _private_names_of_imports(tree: ast.Module) -> list[str]:
    """``module._name`` or ``module.x._name``, for any module or name this file imported."""
    imported = _module_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


SEAM = PACKAGE_DIR / "bridge" / "_loops.py"


@pytest.mark.parametrize("layer", ["", "bridge", "workflow", "runtime", "cli", "integrations"])
def test_private_hooks_of_other_projects_live_in_the_loop_seam(layer: str) -> None:
    """Private names of CPython, anyio or trio are used in ``bridge/_loops.py`` only."""
    for path, tree in _modules(layer):
        if path != SEAM:
            assert _private_names_of_imports(tree) == [], path.name
            hooks = [hit for hit in _foreign_private_attributes(tree) if "getattr" in hit]
            assert hooks == [], path.name


def test_only_the_loop_seam_asks_asyncio_or_trio() -> None:
    """The bridge's other modules import neither library: they ask ``_loops``."""
    for path, tree in _modules("bridge"):
        if path == SEAM:
            continue
        names = _module_names(tree)
        assert not names & {"asyncio", "trio", "sniffio"}, path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "modules":
                assert ast.unparse(node) != "sys.modules", f"{path.name}: line {node.lineno}"


def test_import_agentbridge_imports_no_engine() -> None:
    """Every public name, even a DaskRunner or RayRunner made, leaves Dask and Ray
    unimported: they load when a runner starts."""
    code = (
        "import sys, agentbridge as ab\n"
        "[getattr(ab, name) for name in ab.__all__]\n"
        "ab.DaskRunner(), ab.RayRunner()\n"
        "loaded = {'dask', 'distributed', 'ray', 'cloudpickle'} & set(sys.modules)\n"
        "assert not loaded, sorted(loaded)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_loop_affinity_names_are_public() -> None:
    """Issue 9's names: portal handles, the process scope, loop-local resources, the
    affinity error and the in-flight report."""
    for name in (
        "LoopAffinityError",
        "LoopLocal",
        "Portal",
        "PortalScope",
        "current_portal",
        "dump_calls",
        "loop_local",
        "open_portal",
        "run_in_loop",
    ):
        assert name in ab.__all__, name
    assert issubclass(ab.LoopAffinityError, ab.BridgeError)
    assert issubclass(ab.LoopAffinityError, RuntimeError)
