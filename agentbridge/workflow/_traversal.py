"""What a ``${...}`` expression may read inside a value: an allow-list.

Each step of an expression's path reads one of these, and nothing else:

- ``[key]`` or ``.key`` on a mapping (:class:`collections.abc.Mapping`): its item;
- ``[i]`` on a sequence (:class:`collections.abc.Sequence`: lists, tuples, strings):
  its item;
- ``.name`` on a named tuple: its field;
- ``.name`` on any other object that is not a module, a class or a function: an entry
  of its instance ``__dict__``, or a slot a Python class declared in ``__slots__``.
  That is where dataclasses, attrs classes, pydantic models, ``SimpleNamespace`` and
  plain objects keep their data.

The container's own ``__getitem__`` is the only code that can run. Properties,
methods, ``__getattr__`` and every attribute a builtin object exposes through a C
descriptor (``gi_frame``, ``cr_frame``, ``tb_frame``, ``f_globals``, ``__globals__``,
``__code__``...) are never read, so no path leads to a frame, code object, module
globals or builtins. A module's, class's or function's ``__dict__`` is its namespace,
not data, hence the exclusion. Class-level lookups go through ``type``'s own
descriptors, so not even a metaclass runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FunctionType, GetSetDescriptorType, MemberDescriptorType, ModuleType
from typing import Any

__all__ = ("ALLOWED", "Unreadable", "step_into")

#: What an expression may read, in words, for error messages.
ALLOWED = (
    "expressions read mapping keys, sequence items, named-tuple fields and the data "
    "attributes of objects: dataclass, attrs and pydantic fields and plain attributes; "
    "never properties, methods, modules, classes, functions or interpreter internals"
)

# type's own descriptors: a class's namespace and MRO, read without any metaclass.
_NAMESPACE: Any = type.__dict__["__dict__"]
_MRO: Any = type.__dict__["__mro__"]
_C_DATA = (GetSetDescriptorType, MemberDescriptorType)


@dataclass(frozen=True)
class Unreadable:
    """Why a value cannot be read into: completes "<value> ..." in a message."""

    why: str


def step_into(value: Any, dotted: bool, key: str | int) -> Any:
    """``value``'s item or field ``key``, or :class:`Unreadable` if the allow-list
    does not let an expression read it; ``dotted`` is ``.key`` rather than ``[key]``."""
    cls = type(value)
    if issubclass(cls, Mapping):
        try:
            return value[key]
        except KeyError:
            keys = ", ".join(map(repr, list(value)[:10])) or "none"
            return Unreadable(f"has no key {key!r} (its keys: {keys})")
    if not dotted:
        if isinstance(key, int) and issubclass(cls, Sequence):
            try:
                return value[key]
            except IndexError:
                return Unreadable(f"has no item [{key}]")
        return Unreadable(
            f"has no item [{key!r}]; [...] reads mapping keys, and sequence items by number"
        )
    if issubclass(cls, ModuleType | type | FunctionType):
        return Unreadable(f"cannot be read into; {ALLOWED}")
    return _field(value, cls, str(key))


def _field(value: Any, cls: type, name: str) -> Any:
    fields = _named_tuple_fields(cls)
    if name in fields:
        return tuple.__getitem__(value, fields.index(name))
    attributes = _instance_dict(value, cls)
    if name in attributes:
        return attributes[name]
    for klass, namespace in _namespaces(cls):
        if name in namespace:
            slot = namespace[name]
            if isinstance(slot, MemberDescriptorType) and name in _slots(namespace):
                try:
                    return slot.__get__(value, klass)
                except AttributeError:
                    return Unreadable(f"has no value in its field {name!r}")
            break
    return Unreadable(f"has no data field {name!r}; {ALLOWED}")


def _namespaces(cls: type) -> Iterator[tuple[type, Mapping[str, Any]]]:
    for klass in _MRO.__get__(cls):
        yield klass, _NAMESPACE.__get__(klass)


def _named_tuple_fields(cls: type) -> tuple[str, ...]:
    if issubclass(cls, tuple):
        for _, namespace in _namespaces(cls):
            fields = namespace.get("_fields")
            if isinstance(fields, tuple) and all(isinstance(field, str) for field in fields):
                return fields
    return ()


def _instance_dict(value: Any, cls: type) -> Mapping[str, Any]:
    for klass, namespace in _namespaces(cls):
        if "__dict__" in namespace:
            descriptor = namespace["__dict__"]
            # Anything but the interpreter's own __dict__ descriptor (a property, say)
            # would be code.
            if isinstance(descriptor, _C_DATA):
                attributes = descriptor.__get__(value, klass)
                if isinstance(attributes, dict):
                    return attributes
            break
    return {}


def _slots(namespace: Mapping[str, Any]) -> tuple[str, ...]:
    slots = namespace.get("__slots__", ())
    if isinstance(slots, str):
        return (slots,)
    return tuple(slots) if isinstance(slots, tuple | list | dict) else ()
