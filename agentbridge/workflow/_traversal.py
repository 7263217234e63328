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

import weakref
from collections.abc import Mapping, Sequence
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
    if cls is dict or issubclass(cls, Mapping):
        try:
            return value[key]
        except KeyError:
            keys = ", ".join(map(repr, list(value)[:10])) or "none"
            return Unreadable(f"has no key {key!r} (its keys: {keys})")
    if not dotted:
        if isinstance(key, int) and (cls is list or issubclass(cls, Sequence)):
            try:
                return value[key]
            except IndexError:
                return Unreadable(f"has no item [{key}]")
        return Unreadable(
            f"has no item [{key!r}]; [...] reads mapping keys, and sequence items by number"
        )
    return _layout(cls).read(value, str(key))


@dataclass(frozen=True)
class _Layout:
    """Where the instances of one class keep their data, found once per class.

    It holds positions in the class's MRO, not descriptors: a descriptor refers to its
    class, and a cached layout must not keep a class alive.
    """

    #: Modules, classes and functions: their ``__dict__`` is a namespace, not data.
    namespace: bool
    #: A named tuple's fields.
    fields: tuple[str, ...]
    #: The MRO position of the class whose ``__dict__`` descriptor is the interpreter's
    #: own, or ``None``.
    attributes: int | None
    #: The slots Python classes of the MRO declared, not shadowed: name to MRO position.
    slots: Mapping[str, int]

    def read(self, value: Any, name: str) -> Any:
        if self.namespace:
            return Unreadable(f"cannot be read into; {ALLOWED}")
        if name in self.fields:
            index = self.fields.index(name)
            if index < tuple.__len__(value):
                return tuple.__getitem__(value, index)
        mro = _MRO.__get__(type(value))
        descriptor = _c_descriptor(mro, self.attributes, "__dict__")
        if descriptor is not None:
            attributes = descriptor.__get__(value)
            if isinstance(attributes, dict) and name in attributes:
                return attributes[name]
        slot = _c_descriptor(mro, self.slots.get(name), name)
        if slot is not None:
            try:
                return slot.__get__(value)
            except AttributeError:
                return Unreadable(f"has no value in its field {name!r}")
        return Unreadable(f"has no data field {name!r}; {ALLOWED}")


def _c_descriptor(mro: tuple[type, ...], depth: int | None, name: str) -> Any:
    """The interpreter's own descriptor ``name`` of class ``mro[depth]``, or ``None``
    (also if assigning ``__bases__`` changed the MRO since the layout was made)."""
    if depth is None or depth >= len(mro):
        return None
    found = _NAMESPACE.__get__(mro[depth]).get(name)
    return found if isinstance(found, _C_DATA) else None


def _layout_of(cls: type) -> _Layout:
    namespaces = [_NAMESPACE.__get__(klass) for klass in _MRO.__get__(cls)]
    fields: tuple[str, ...] = ()
    if issubclass(cls, tuple):
        found = next((ns["_fields"] for ns in namespaces if "_fields" in ns), ())
        if isinstance(found, tuple) and all(isinstance(field, str) for field in found):
            fields = found
    # The first __dict__ in the MRO is the one attribute lookup uses; anything but the
    # interpreter's own descriptor (a property, say) would be code.
    attributes = next((depth for depth, ns in enumerate(namespaces) if "__dict__" in ns), None)
    if attributes is not None and not isinstance(namespaces[attributes]["__dict__"], _C_DATA):
        attributes = None
    slots = {}
    for depth, namespace in enumerate(namespaces):
        for name in _declared_slots(namespace):
            shadowed = any(name in earlier for earlier in namespaces[:depth])
            if isinstance(namespace.get(name), MemberDescriptorType) and not shadowed:
                slots[name] = depth
    return _Layout(
        namespace=issubclass(cls, ModuleType | type | FunctionType),
        fields=fields,
        attributes=attributes,
        slots=slots,
    )


def _declared_slots(namespace: Mapping[str, Any]) -> tuple[str, ...]:
    slots = namespace.get("__slots__", ())
    if isinstance(slots, str):
        return (slots,)
    return tuple(slots) if isinstance(slots, tuple | list | dict) else ()


# Layouts by class id. Hashing a class could run its metaclass's __hash__; an id cannot,
# and the weak reference tells a reused id from the class it was computed for.
_LAYOUTS: dict[int, tuple[weakref.ref[type], _Layout]] = {}


def _layout(cls: type) -> _Layout:
    key = id(cls)
    entry = _LAYOUTS.get(key)
    if entry is not None and entry[0]() is cls:
        return entry[1]
    layout = _layout_of(cls)
    _LAYOUTS[key] = (weakref.ref(cls, lambda _: _LAYOUTS.pop(key, None)), layout)
    return layout
