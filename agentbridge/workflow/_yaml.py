"""YAML text to plain data, built straight from the parser's events, within a budget.

PyYAML's own loading composes a tree of nodes (marks and all) and then constructs it by
recursion, sharing what aliases repeat: deep nesting overflows the stack, and a small
file of aliases expands into an unbounded structure wherever the data is later walked
or copied. Here the events of libyaml's parser (PyYAML's pure one where libyaml is
missing) are turned into plain ``dict``, ``list`` and scalars in one loop with a stack,
so the cost is linear in the text, and every value, with aliases counted as all the
values they repeat, goes through the load's :class:`~._limits.Budget`.

Only what safe loading builds is built: no tag can name a Python object. The line of
every mapping, key, list and item is kept beside the data in :class:`Lines`.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import Any, Final, NoReturn

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from .._exceptions import Problem
from ._limits import Budget, LimitExceeded, quote

__all__ = ("Lines", "YamlRefused", "read_yaml")

# libyaml's parser where PyYAML was built with it: the same events and marks, faster.
_Loader: Final[Any] = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

_T: Final = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = f"{_T}str", f"{_T}map", f"{_T}seq", f"{_T}merge"
_SET, _OMAP, _PAIRS, _INT = f"{_T}set", f"{_T}omap", f"{_T}pairs", f"{_T}int"
_SCALAR_TAGS: Final = frozenset(f"{_T}{name}" for name in ("null", "bool", "int", "float"))
_SCALAR_TAGS_EXPLICIT: Final = _SCALAR_TAGS | {f"{_T}binary", f"{_T}timestamp"}
_MAPPING_TAGS: Final = frozenset({_MAP, _SET})
_SEQUENCE_TAGS: Final = frozenset({_SEQ, _OMAP, _PAIRS})
# What a scalar's text may raise when it does not fit its tag (PyYAML's constructors
# assume valid text: "!!bool maybe" is a KeyError, "!!timestamp x" an AttributeError).
_BAD_SCALAR: Final = (
    yaml.YAMLError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    binascii.Error,
)
_MISSING: Final = object()
#: What a ``<<`` merge key reads as, until its mapping takes the merged values.
_MERGE_KEY: Final = object()


def _short(tag: str) -> str:
    return tag.replace(_T, "!!")


class YamlRefused(Exception):
    """The text is not a workflow file: carries the one :class:`Problem` that says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class Lines:
    """The lines (1-based) where the lists, mappings, keys and items of a file start."""

    __slots__ = ("_of",)

    def __init__(self) -> None:
        # Keyed by the id of each list and mapping, kept alive by the data itself.
        self._of: dict[int, tuple[int, Any]] = {}

    def add(self, container: object, line: int, inner: dict[Any, int] | list[int]) -> None:
        """Record where ``container`` starts and where each of its keys or items does."""
        self._of[id(container)] = (line, inner)

    def line(self, container: object, default: int | None = None) -> int | None:
        """Where ``container`` starts, if it was read from the file."""
        found = self._of.get(id(container))
        return default if found is None else found[0]

    def of(self, container: object, key: Any, default: int | None) -> int | None:
        """Where ``container[key]`` starts (its key, for a mapping), or ``default``."""
        found = self._of.get(id(container))
        if found is None:
            return default
        inner = found[1]
        if isinstance(inner, dict):
            return inner.get(key, default)
        return inner[key] if isinstance(key, int) and 0 <= key < len(inner) else default


class _Frame:
    """A list or mapping being read: its items so far, and where they are."""

    __slots__ = (
        "anchor",
        "data",
        "inner",
        "is_map",
        "key",
        "line",
        "merges",
        "start",
        "steps",
        "tag",
    )

    def __init__(self, is_map: bool, event: Any, line: int, start: int) -> None:
        self.is_map = is_map
        self.data: Any = {} if is_map else []
        self.inner: Any = {} if is_map else []
        self.key: Any = _MISSING
        self.merges: list[dict[Any, Any]] = []
        self.anchor: str | None = event.anchor
        self.tag: str | None = event.tag
        self.line = line
        self.start = start
        self.steps = False  # the workflow's list of steps, counted as it is read


class _Reader:
    """One pass over the events of one text."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.lines = Lines()
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # value, values, line
        self.open_anchors: dict[str, int] = {}  # on the stack: name -> line
        self.plain: dict[str, Any] = {}  # plain scalars read so far, by text
        self.constructor = SafeConstructor()
        self.resolvers = yaml.SafeLoader.yaml_implicit_resolvers
        self.root: Any = None
        self.line = 1

    def read(self, events: Callable[[], Any]) -> Any:
        documents = 0
        while True:
            event = events()
            kind = type(event)
            self.line = event.start_mark.line + 1
            if kind is ScalarEvent:
                self.add(self.scalar(event), event.anchor, 1)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self.budget.count()
                self.budget.depth(len(self.stack) + 1)
                frame = _Frame(kind is MappingStartEvent, event, self.line, self.budget.values)
                if len(self.stack) == 1 and self.stack[0].key == "steps":
                    # Refused at the first step too many, not after reading them all.
                    frame.steps = self.stack[0].is_map and not frame.is_map
                if frame.anchor is not None:
                    self.check_anchor(frame.anchor)
                    self.open_anchors[frame.anchor] = self.line
                self.stack.append(frame)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = self.stack.pop()
                value = self.finish(frame)
                self.line = frame.line  # a list or mapping is where it starts
                if frame.anchor is not None:
                    del self.open_anchors[frame.anchor]
                self.add(value, frame.anchor, self.budget.values - frame.start + 1, counted=True)
            elif kind is AliasEvent:
                self.add(*self.alias(event))
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    self.refuse(
                        "a workflow file holds one YAML document: remove the second `---` "
                        "and what follows it, or split it into two files"
                    )
            elif kind is StreamEndEvent:
                return self.root

    def refuse(self, message: str) -> NoReturn:
        raise YamlRefused(Problem(message, line=self.line))

    def add(self, value: Any, anchor: str | None, values: int, *, counted: bool = False) -> None:
        if not counted:
            self.budget.count(values)
        top = self.stack[-1] if self.stack else None
        if value is _MERGE_KEY and not (top is not None and top.is_map and top.key is _MISSING):
            self.refuse(self.tag_problem(_MERGE, "a value"))
        if anchor is not None:
            self.check_anchor(anchor)
            self.anchors[anchor] = (value, values, self.line)
        if top is None:
            self.root = value
            return
        frame = top
        if not frame.is_map:
            frame.data.append(value)
            frame.inner.append(self.line)
            if frame.steps:
                self.budget.steps(len(frame.data))
        elif frame.key is _MISSING:
            frame.key = value
            if value is _MERGE_KEY:
                return
            try:
                first = frame.inner.get(value)
            except TypeError:  # unhashable
                self.refuse(
                    f"a mapping key must be a plain value such as a name, not "
                    f"{'a list' if isinstance(value, list) else 'a mapping or a set'}"
                )
            if first is not None:
                self.refuse(
                    f"duplicate key {quote(value)} (first at line {first}); "
                    f"each key may appear once in a mapping"
                )
            frame.inner[value] = self.line
        else:
            if frame.key is _MERGE_KEY:
                self.merge(frame, value)
            else:
                frame.data[frame.key] = value
            frame.key = _MISSING

    def merge(self, frame: _Frame, value: Any) -> None:
        # As PyYAML merges: later merge keys win over earlier ones, and within one list
        # of mappings, earlier ones win; the mapping's own keys win over all.
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            self.refuse("a `<<` merge key takes a mapping, or a list of mappings, to merge in")
        frame.merges.extend(reversed(sources))

    def finish(self, frame: _Frame) -> Any:
        data, tag = frame.data, frame.tag
        if frame.merges:
            merged: dict[Any, Any] = {}
            for source in frame.merges:
                merged.update(source)
            for key in merged:
                frame.inner.setdefault(key, frame.line)
            merged.update(data)
            data = merged
        if tag is None or tag == "!" or tag == (_MAP if frame.is_map else _SEQ):
            self.lines.add(data, frame.line, frame.inner)
            return data
        allowed = _MAPPING_TAGS if frame.is_map else _SEQUENCE_TAGS
        if tag not in allowed:
            self.refuse(self.tag_problem(tag, "a mapping" if frame.is_map else "a list"))
        if tag == _SET:
            return set(data)
        if not all(isinstance(item, dict) and len(item) == 1 for item in data):
            self.refuse(f"the YAML tag {_short(tag)} takes a list of one-key mappings")
        return [next(iter(item.items())) for item in data]

    def tag_problem(self, tag: str, found: str) -> str:
        if tag in _MAPPING_TAGS:
            return f"the YAML tag {_short(tag)} takes a mapping, not {found}"
        if tag in _SEQUENCE_TAGS:
            return f"the YAML tag {_short(tag)} takes a list, not {found}"
        if tag == _MERGE:
            return "`<<` merges mappings: use it as a key, `<<: *anchor`"
        if tag in _SCALAR_TAGS_EXPLICIT or tag == _STR:
            return f"the YAML tag {_short(tag)} takes a plain value, not {found}"
        return (
            f"the YAML tag {_short(tag)} is not allowed: workflow files hold plain data "
            f"only (strings, numbers, lists, mappings)"
        )

    def alias(self, event: Any) -> tuple[Any, None, int]:
        name = event.anchor
        if name in self.open_anchors:
            self.refuse(
                f"the alias *{name} is inside the value of its own anchor &{name} (line "
                f"{self.open_anchors[name]}), which would make it contain itself"
            )
        found = self.anchors.get(name)
        if found is None:
            self.refuse(f"the alias *{name} names no anchor: define &{name} before it")
        return found[0], None, found[1]

    def check_anchor(self, name: str) -> None:
        first = self.open_anchors.get(name) or (
            self.anchors[name][2] if name in self.anchors else 0
        )
        if first:
            self.refuse(
                f"the anchor &{name} is defined twice (first at line {first}); give each "
                f"anchor its own name"
            )

    def scalar(self, event: Any) -> Any:
        text: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:
                self.budget.string(text)
                return text
            value = self.plain.get(text, _MISSING)
            if value is _MISSING:
                value = self.plain[text] = self.construct(self.resolve(text), text)
            return value
        return self.construct(tag, text)

    def resolve(self, text: str) -> str:
        for tag, pattern in self.resolvers.get(text[:1], ()):
            if pattern.match(text):
                return str(tag)
        return _STR

    def construct(self, tag: str, text: str) -> Any:
        if tag == _STR:
            self.budget.string(text)
            return text
        if tag == _MERGE:
            return _MERGE_KEY
        if tag not in _SCALAR_TAGS_EXPLICIT:
            self.refuse(self.tag_problem(tag, "a plain value"))
        if tag == _INT:
            self.budget.integer_text(text)
        else:
            self.budget.string(text)
        node = yaml.ScalarNode(tag, text)
        try:
            value = self.constructor.yaml_constructors[tag](self.constructor, node)
        except _BAD_SCALAR:
            self.refuse(
                f"{quote(text)} is not a valid {_short(tag)}; write one, or quote the "
                f"value to keep it a string"
            )
        if isinstance(value, int):
            self.budget.integer(value)
        return value


def read_yaml(text: str, budget: Budget) -> tuple[Any, Lines]:
    """The data of ``text``, and where each part of it is.

    :raises YamlRefused: for malformed YAML, a tag that is not plain data, a duplicate
        key or anchor, an alias that contains itself, or a limit passed
    """
    reader = _Reader(budget)
    try:
        loader = _Loader(text)  # PyYAML's reader checks every character here
        try:
            data = reader.read(loader.get_event)
        finally:
            loader.dispose()
    except LimitExceeded as exc:
        raise YamlRefused(Problem(str(exc), line=reader.line)) from None
    except yaml.YAMLError as exc:
        raise YamlRefused(_with_hint(_yaml_problem(exc, text), text)) from None
    except YamlRefused as exc:
        raise YamlRefused(_with_hint(exc.problem, text)) from None
    return data, reader.lines


_UNQUOTED_EXPRESSION = re.compile(r"(?:^|[\s{\[,:])\$\{")


def _with_hint(problem: Problem, text: str) -> Problem:
    """``problem`` with the fix of a mistake its line shows: a tab in the indentation,
    Jinja's ``{{...}}``, or a ``${...}`` left unquoted inside ``{...}`` or ``[...]``."""
    if problem.line is None:
        return problem
    lines = text.split("\n", problem.line)
    if len(lines) < problem.line:
        return problem
    line = lines[problem.line - 1]
    indent = line[: len(line) - len(line.lstrip())]
    if "\t" in indent:
        hint = "it is indented with a tab, and YAML indents with spaces only: replace the tab"
    elif "{{" in line:
        hint = (
            "{{...}} is Jinja syntax; an expression is written ${inputs.NAME} or "
            "${steps.ID.output}, in quotes inside {...} or [...]"
        )
    elif _UNQUOTED_EXPRESSION.search(line):
        hint = (
            'an unquoted ${...} inside {...} or [...] is cut at its "{"; quote it: '
            '{text: "${inputs.text}"}'
        )
    else:
        return problem
    return Problem(f"{problem.message}; {hint}", problem.step_id, problem.line)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        problem = getattr(exc, "problem", None) or str(exc)
        return Problem(f"invalid YAML: {problem}", line=mark.line + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml counts the position in UTF-8 bytes, PyYAML's reader in characters.
        if _Loader is yaml.SafeLoader:
            line = text.count("\n", 0, exc.position) + 1
        else:
            line = text.encode("utf-8").count(b"\n", 0, exc.position) + 1
        return Problem(f"invalid YAML: {exc.reason}", line=line)
    return Problem(f"invalid YAML: {exc}")
