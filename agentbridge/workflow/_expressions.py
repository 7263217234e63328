"""``${...}`` expressions: parsed once when a workflow is built, evaluated per step.

An expression names an input (``${inputs.NAME}``) or a step's output
(``${steps.ID.output}``), then optionally walks into the value with ``.field``,
``[0]`` or ``['key']``. A value that is exactly one expression keeps the type of what
it names; an expression inside a longer string is replaced by ``str()`` of the value.
``$${`` is a literal ``${``. Substituted text is never expanded again, and nothing is
ever evaluated as code. What a path may read is an allow-list, in :mod:`._traversal`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._exceptions import ExpressionError
from ._names import NAME_CHARACTERS, is_name
from ._traversal import ALLOWED, Unreadable, step_into

__all__ = (
    "Binding",
    "Each",
    "Reference",
    "compile_value",
    "evaluate",
    "parse_reference",
    "references",
    "walk",
)

#: The item of a ``for_each`` step being run, and its index: what ``${item}`` and
#: ``${index}`` name.
Each = tuple[Any, int]

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_HEAD = re.compile(
    rf"\s*(?:inputs\.({NAME_CHARACTERS})|steps\.({NAME_CHARACTERS})\.output"
    rf"|(item|index)(?!{NAME_CHARACTERS}))"
)
_ACCESSOR = re.compile(
    rf"\.({NAME_CHARACTERS})|\[\s*(-?\d{{1,640}})\s*\]|\[\s*'([^']*)'\s*\]"
    rf"|\[\s*\"([^\"]*)\"\s*\]"
)
# Mistakes that would otherwise pass silently as literal text: Jinja's {{inputs.x}} and
# a $ without braces ($inputs.x).
_JINJA = re.compile(r"\{\{\s*((?:inputs|steps)\.[^{}]*?|item|index)\s*\}\}")
_BRACELESS = re.compile(r"(?<!\$)\$((?:inputs|steps)\.[^\s{}'\"]*)")

# Interpreter attributes that lead to frames, code or globals. The allow-list of
# _traversal refuses them whatever the value; naming them here also refuses them when
# the workflow is loaded.
_INTERNALS = frozenset(
    {
        *("gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await"),
        *("cr_origin", "ag_frame", "ag_code", "ag_await", "tb_frame", "tb_next"),
        *("f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace"),
        *("func_globals", "func_code", "func_closure", "im_func", "im_self", "co_code"),
    }
)

#: One step into a value: ``(True, name)`` for ``.name``, ``(False, key)`` for ``[key]``.
PathItem = tuple[bool, str | int]


@dataclass(frozen=True)
class Reference:
    """One parsed ``${...}`` expression."""

    #: ``inputs``, ``steps``, or ``item`` and ``index`` in a step with ``for_each``.
    root: Literal["inputs", "steps", "item", "index"]
    #: The input's name or step's id (empty for ``item`` and ``index``).
    name: str
    path: tuple[PathItem, ...]
    text: str

    def resolve(
        self, inputs: Mapping[str, Any], outputs: Mapping[str, Any], each: Each | None = None
    ) -> Any:
        """The value this expression names, given the run's inputs and step outputs (and
        the item being run, for ``${item}`` and ``${index}``)."""
        root = self.root
        if root == "inputs":
            value = inputs[self.name]
        elif root == "steps":
            value = outputs[self.name]
        else:
            if each is None:
                raise ExpressionError(f"{self.text} is only defined in a step with for_each")
            value = each[0] if root == "item" else each[1]
        if not self.path:  # most expressions name a value whole
            return value
        for depth, (dotted, key) in enumerate(self.path):
            if type(value) is dict and key in value:  # the common case, without a call
                value = value[key]
                continue
            found = step_into(value, dotted, key)
            if type(found) is Unreadable:
                raise ExpressionError(
                    f"{self.text}: {_describe(self, depth)} ({type(value).__name__}) {found.why}"
                )
            value = found
        return value


@dataclass(frozen=True)
class _Interpolation:
    parts: tuple[str | Reference, ...]


#: A compiled input value: a literal, a reference, an interpolated string, or a list or
#: dict of those. Literals that hold no expression are kept as they are.
Binding = Any


def compile_value(value: object) -> Binding:
    """Parse every expression in ``value`` (recursively through lists and dicts).

    :raises ExpressionError: if an expression is malformed
    """
    if isinstance(value, str):
        if "{{" in value or "$" in value:
            _refuse_lookalikes(value)
        return _compile_string(value) if "${" in value else value
    if isinstance(value, Mapping):
        return {key: compile_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [compile_value(item) for item in value]
    return value


def _refuse_lookalikes(text: str) -> None:
    jinja = _JINJA.search(text)
    if jinja is not None:
        raise ExpressionError(
            f"{jinja.group(0)} is Jinja syntax, which agentbridge does not expand; write "
            f"${{{jinja.group(1).strip()}}}"
        )
    braceless = _BRACELESS.search(text)
    if braceless is not None:
        raise ExpressionError(
            f"${braceless.group(1)} is not an expression (it would stay literal text); "
            f"write ${{{braceless.group(1)}}}"
        )


def _compile_string(text: str) -> Binding:
    parts: list[str | Reference] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        position = match.end()
        if match.group(1) is None:
            parts.append("${")
        else:
            parts.append(parse_reference(match.group(1), match.group(0)))
    if position < len(text):
        parts.append(text[position:])
    for part in parts:
        if isinstance(part, str) and part != "${" and "${" in part:
            raise ExpressionError(
                f"{text!r} has a ${{ with no closing }}; close the expression, or write "
                f"$${{ for a literal ${{"
            )
    if len(parts) == 1 and isinstance(parts[0], Reference):
        return parts[0]
    if all(isinstance(part, str) for part in parts):
        return "".join(part for part in parts if isinstance(part, str))  # only escaped "$${"
    return _Interpolation(tuple(parts))


def parse_reference(body: str, text: str) -> Reference:
    """The reference ``${body}`` (written ``text``).

    :raises ExpressionError: if it is malformed
    """
    head = _HEAD.match(body)
    names = [] if head is None else [name for name in head.groups()[:2] if name is not None]
    if head is None or not all(map(is_name, names)):
        raise ExpressionError(
            f"{text} is not a valid expression; write ${{inputs.NAME}} or "
            f"${{steps.ID.output}} (or ${{item}} and ${{index}} in a step with for_each), "
            f"optionally followed by .field, [0] or ['key']"
        )
    path: list[PathItem] = []
    position = head.end()
    rest = body.rstrip()
    while position < len(rest):
        accessor = _ACCESSOR.match(rest, position)
        if accessor is None:
            raise ExpressionError(
                f"{text}: cannot read {rest[position:]!r}; after the name use .field, "
                f"[0] or ['key'] to reach into the value"
            )
        field, index, single, double = accessor.groups()
        if field is not None and not is_name(field):
            raise ExpressionError(
                f"{text}: .{field} is not a name; write ['{field}'] for a key that is not "
                f"an identifier"
            )
        if field is not None:
            if field.startswith("_"):
                # Private and dunder attributes lead from any object to module globals
                # and builtins: a workflow file must never reach them.
                raise ExpressionError(
                    f"{text}: .{field} is not allowed; expressions may read public "
                    f"fields only (names that do not start with an underscore)"
                )
            if field in _INTERNALS:
                raise ExpressionError(
                    f"{text}: .{field} is an interpreter internal, not data; {ALLOWED} "
                    f"(for a mapping key of that name, write ['{field}'])"
                )
            path.append((True, field))
        elif index is not None:
            path.append((False, int(index)))
        else:
            path.append((False, single if single is not None else double))
        position = accessor.end()
    if head.group(1) is not None:
        return Reference("inputs", head.group(1), tuple(path), text)
    if head.group(2) is not None:
        return Reference("steps", head.group(2), tuple(path), text)
    if head.group(3) == "index" and path:
        raise ExpressionError(f"{text}: ${{index}} is a number, with nothing to read into")
    return Reference("item" if head.group(3) == "item" else "index", "", tuple(path), text)


def references(binding: Binding) -> Iterator[Reference]:
    """Every reference in a compiled value."""
    if isinstance(binding, Reference):
        yield binding
    elif isinstance(binding, _Interpolation):
        for part in binding.parts:
            if isinstance(part, Reference):
                yield part
    elif isinstance(binding, dict):
        for item in binding.values():
            yield from references(item)
    elif isinstance(binding, list):
        for item in binding:
            yield from references(item)


def walk(reference: Reference, output: Any) -> Any:
    """The value ``reference`` (to a step's output) names in that step's ``output``."""
    return reference.resolve({}, {reference.name: output})


def evaluate(
    binding: Binding,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    each: Each | None = None,
) -> Any:
    """The value of a compiled value for one run (and one item of a ``for_each`` step);
    lists and dicts are always new copies.

    :raises ExpressionError: if an expression walks into a field or index that is not
        there
    """
    if isinstance(binding, Reference):
        return binding.resolve(inputs, outputs, each)
    if isinstance(binding, _Interpolation):
        return "".join(
            part if isinstance(part, str) else str(part.resolve(inputs, outputs, each))
            for part in binding.parts
        )
    if isinstance(binding, dict):
        return {key: evaluate(item, inputs, outputs, each) for key, item in binding.items()}
    if isinstance(binding, list):
        return [evaluate(item, inputs, outputs, each) for item in binding]
    return binding


def _describe(reference: Reference, depth: int) -> str:
    root = reference.root
    if root == "inputs":
        base = f"input {reference.name!r}"
    elif root == "steps":
        base = f"the output of step {reference.name!r}"
    else:
        base = "the item"
    trail = "".join(f".{key}" if dotted else f"[{key!r}]" for dotted, key in reference.path[:depth])
    return base + trail
