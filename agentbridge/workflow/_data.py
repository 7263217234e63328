"""A mapping given in Python, copied into plain data within the load's budget.

What :meth:`Workflow.from_dict <agentbridge.Workflow.from_dict>` receives may nest
without end, contain itself, or repeat one object so often that walking it never ends.
The copy is made in one loop with a stack (no recursion), refuses a container that
contains itself, and counts every value it copies, so a repeated object costs what it
repeats, through the same :class:`~._limits.Budget` as YAML text. The workflow then
holds nothing the caller can change later. :func:`tree_problem` checks the values a
:class:`~agentbridge.Step` or :class:`~agentbridge.Workflow` built in Python is given
directly, which no copy bounded, before their expressions are compiled by recursion.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._limits import DEPTH_CEILING, Budget, LimitExceeded, quote

__all__ = ("DataRefused", "copy_data", "tree_problem")


class DataRefused(Exception):
    """The mapping cannot be a workflow; the message says why and where."""


class _Frame:
    __slots__ = ("data", "items", "key", "source", "tuple")

    def __init__(self, source: Any, key: Any) -> None:
        self.source = source
        self.key = key  # where the parent puts the copy
        self.tuple = isinstance(source, tuple)
        self.items: Iterator[tuple[Any, Any]] = (
            iter(source.items()) if isinstance(source, Mapping) else enumerate(source)
        )
        self.data: Any = {} if isinstance(source, Mapping) else []


def _container(value: object) -> bool:
    return isinstance(value, Mapping | list | tuple)


def copy_data(value: object, budget: Budget) -> Any:
    """A copy of ``value`` whose mappings are ``dict`` s and lists ``list`` s.

    Tuples stay tuples; other values are kept as they are (a step may name a callable).

    :raises DataRefused: if ``value`` contains itself or passes a limit
    """
    try:
        leaf = _leaf(value, budget)
    except LimitExceeded as exc:
        raise DataRefused(f"the workflow: {exc}") from None
    if not _container(value):
        return leaf
    stack = [_Frame(value, None)]
    on_path = {id(value)}
    while True:
        frame = stack[-1]
        for key, item in frame.items:
            try:
                if isinstance(frame.data, dict):
                    _leaf(key, budget)
                copied = _leaf(item, budget)
                if _container(item):
                    budget.depth(len(stack) + 1)
            except LimitExceeded as exc:
                raise DataRefused(f"{_where(stack, key)}: {exc}") from None
            if not _container(item):
                _put(frame, key, copied)
                continue
            if id(item) in on_path:
                raise DataRefused(
                    f"{_where(stack, key)} contains itself (it is one of the lists or "
                    f"mappings it is in): a workflow must be a tree of plain data"
                )
            stack.append(_Frame(item, key))
            on_path.add(id(item))
            break
        else:
            stack.pop()
            on_path.discard(id(frame.source))
            done = tuple(frame.data) if frame.tuple else frame.data
            if not stack:
                return done
            _put(stack[-1], frame.key, done)


def tree_problem(value: object) -> str | None:
    """Why ``value`` cannot be compiled: a list or mapping in it contains itself, or
    lists and mappings nest more than :data:`DEPTH_CEILING` deep; ``None`` if it can.

    Walked in one loop with a stack, each list or mapping once, however often it is
    repeated.
    """
    if not _container(value):
        return None
    checked: set[int] = set()
    on_path = {id(value)}
    stack = [(value, _children(value))]
    while stack:
        container, children = stack[-1]
        for child in children:
            if not _container(child) or id(child) in checked:
                continue
            if id(child) in on_path:
                return (
                    "contains itself (a list or mapping in it is one of the lists or "
                    "mappings it is in): give plain data, or pass the value as a run input"
                )
            if len(stack) == DEPTH_CEILING:
                return (
                    f"nests lists and mappings more than {DEPTH_CEILING} deep: pass such "
                    f"data as a run input, which is never compiled"
                )
            on_path.add(id(child))
            stack.append((child, _children(child)))
            break
        else:
            stack.pop()
            on_path.discard(id(container))
            checked.add(id(container))
    return None


def _children(container: Any) -> Iterator[Any]:
    return iter(container.values() if isinstance(container, Mapping) else container)


def _leaf(value: object, budget: Budget) -> object:
    budget.count()
    if isinstance(value, str):
        budget.string(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        budget.integer(value)
    return value


def _put(frame: _Frame, key: Any, value: Any) -> None:
    if isinstance(frame.data, dict):
        frame.data[key] = value
    else:
        frame.data.append(value)


def _where(stack: list[_Frame], key: Any) -> str:
    """``steps[0].inputs.x``: the path from the workflow to ``key`` of the last frame."""
    keys = [frame.key for frame in stack[1:]] + [key]
    path = "".join(
        f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{quote(key)}]"
        for key in keys
    )
    return f"the workflow's {path.lstrip('.')}" if path else "the workflow"
