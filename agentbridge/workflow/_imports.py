"""Import paths (``"pkg.module:attr"``), for the module prefixes a caller allowed.

Allowing a module allows what the modules under it *define*, never what they import.
A path resolves only if every rule holds, in this order:

1. It is ``module:attr.attr...`` (or ``module.attr``): dotted identifiers, with no
   empty or relative parts.
2. The module is under an allowed prefix, matched on dots: ``myapp`` allows ``myapp``
   and ``myapp.steps``, never ``myapp_evil``.
3. Every part after the prefix is public (no leading ``_``): no dunder walk, no
   ``myapp.__main__``. Rules 1 to 3 are checked before anything is imported.
4. The imported module's own ``__name__`` is under a prefix (a module may replace
   itself in ``sys.modules``).
5. Each name is looked up statically (:func:`inspect.getattr_static`), so no property,
   descriptor or ``__getattr__`` runs, and only in a module or a class: objects are not
   walked into.
6. Every object reached is defined under a prefix: a module by its ``__name__``, a
   class, function or callable object by its ``__module__``. One exception: an agent
   object bound at the top level of an allowed module, such as ``agent = Agent(...)``:
   not callable, its class defines an async ``run()``, the only thing a step calls.

So ``myapp.steps:os.system``, ``:system`` after ``from os import system``,
``:Helper.mro`` and ``:partial`` after ``from functools import partial`` all fail.
"""

from __future__ import annotations

import importlib
import inspect
from types import GetSetDescriptorType, MemberDescriptorType, MethodType, ModuleType
from typing import Any

from .._exceptions import Problem

__all__ = ("import_target",)

_MISSING = object()
_FIX = "register it with a Registry under a name, or define it in an allowed module"


def _is_under(name: object, prefixes: tuple[str, ...]) -> bool:
    """Whether the dotted ``name`` is one of ``prefixes`` or inside one."""
    return isinstance(name, str) and any(
        name == prefix or name.startswith(prefix + ".") for prefix in prefixes
    )


def import_target(name: str, kind: str, prefixes: tuple[str, ...]) -> Any:
    """The object the import path ``name`` names, or a :class:`Problem` saying why not.

    ``name`` is known to be an import path: it holds a ``:`` or a ``.``.
    """
    module_name, _, attribute = name.partition(":") if ":" in name else name.rpartition(".")
    parts = attribute.split(".")
    if not all(part.isidentifier() for part in (*module_name.split("."), *parts)):
        return Problem(
            f"{kind} {name!r} is not an import path; write module.name:attribute with "
            f"dotted identifiers, such as myapp.steps:summarise"
        )
    prefix = max((p for p in prefixes if _is_under(module_name, (p,))), key=len, default=None)
    if prefix is None:
        return Problem(
            f"{kind} {name!r} is an import path, and importing is not allowed; register the "
            f"{kind} under a name, or allow its module with allow_imports=[{module_name!r}]"
        )
    beyond = module_name[len(prefix) :].split(".")[1:]
    private = next((part for part in (*beyond, *parts) if part.startswith("_")), None)
    if private is not None:
        return _refused(kind, name, f"{private!r} is private", prefixes)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return Problem(f"cannot import {kind} {name!r}: {exc}")
    except Exception as exc:  # the allowed module's own code failed as it was imported
        return Problem(
            f"cannot import {kind} {name!r}: importing module {module_name!r} raised "
            f"{type(exc).__name__}: {exc}; fix the module (python -c 'import "
            f"{module_name}' shows the traceback)"
        )
    owner: Any = None
    value: Any = module
    reached = module_name
    for part in parts:
        if not (isinstance(value, ModuleType | type) and _is_under(_defined_in(value), prefixes)):
            return _refused(kind, name, _why(value, reached, walking=True), prefixes)
        found = inspect.getattr_static(value, part, _MISSING)
        if found is _MISSING:
            return Problem(f"cannot import {kind} {name!r}: {reached} has no attribute {part!r}")
        owner, value, reached = value, _bind(found, value), f"{reached}.{part}"
    if not (_is_under(_defined_in(value), prefixes) or _is_agent_object(value, owner)):
        return _refused(kind, name, _why(value, reached, walking=False), prefixes)
    return value


def _bind(found: Any, owner: Any) -> Any:
    # What getattr would give for the two method wrappers a class may hold, built
    # directly: classmethod.__get__ would call the __get__ of what it wraps (a property,
    # say) on Pythons before 3.13.
    if isinstance(found, staticmethod):
        return found.__func__
    if isinstance(found, classmethod) and callable(found.__func__):
        return MethodType(found.__func__, owner)
    return found


def _defined_in(value: Any) -> object:
    """The module that defines ``value``, read without running any of its code."""
    if isinstance(value, ModuleType):
        return inspect.getattr_static(value, "__name__", None)
    value = getattr(value, "__func__", value) if inspect.ismethod(value) else value
    found = inspect.getattr_static(value, "__module__", None)
    if isinstance(found, MemberDescriptorType | GetSetDescriptorType):
        found = found.__get__(value, type(value))
    return found


def _is_agent_object(value: Any, owner: Any) -> bool:
    """Whether ``value`` is an agent object bound at the top level of module ``owner``:
    not callable, and its class defines an async ``run``."""
    return (
        isinstance(owner, ModuleType)
        and not (callable(value) or isinstance(value, ModuleType))
        and inspect.iscoroutinefunction(inspect.getattr_static(type(value), "run", None))
    )


def _why(value: Any, reached: str, *, walking: bool) -> str:
    if isinstance(value, ModuleType):
        return f"{reached} is the module {_defined_in(value)!r}"
    if walking and not isinstance(value, type):
        return (
            f"{reached} is not a module or a class (its type is {type(value).__name__}), and "
            f"a path walks only through modules and classes"
        )
    defined = _defined_in(value)
    if not isinstance(defined, str):
        return f"{reached} is a {type(value).__name__}, which no module defines"
    return f"{reached} is defined in {defined!r}"


def _refused(kind: str, name: str, why: str, prefixes: tuple[str, ...]) -> Problem:
    allowed = ", ".join(map(repr, prefixes)) or "none"
    return Problem(
        f"{kind} {name!r} is refused: {why}; allow_imports (here {allowed}) allows only "
        f"public names that modules under it define, never what they import. To use it, "
        f"{_FIX}"
    )
