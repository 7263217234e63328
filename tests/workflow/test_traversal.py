"""What an expression may read inside a value: mappings, sequences and data fields only."""

from __future__ import annotations

import collections
import dataclasses
import functools
import gc
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple

import pytest

import agentbridge as ab
from agentbridge.workflow import _expressions
from agentbridge.workflow._traversal import Unreadable, step_into

from ._helpers import build

pytestmark = pytest.mark.timeout(30)

SECRET = "s3cret"


def run_reading(expression: str, value: object) -> list[object]:
    """Run a workflow whose step ``t`` receives ``expression``, with input ``x=value``
    and step ``s``'s output ``value``; what ``t`` received."""
    reg = ab.Registry()
    received: list[object] = []
    reg.register("function", "source", lambda: value)
    reg.register("function", "sink", lambda v: received.append(v))
    wf = build(
        {"id": "s", "function": "source"},
        {"id": "t", "function": "sink", "inputs": {"v": expression}},
        inputs=["x"],
    )
    ab.run_workflow(wf, {"x": value}, registry=reg)
    return received


def refused_at_run_time(expression: str, value: object, segment: str) -> str:
    """Check that the step reading ``expression`` fails on ``segment``; the message."""
    with pytest.raises(ab.StepFailedError) as caught:
        run_reading(expression, value)
    assert caught.value.step_id == "t"
    error = caught.value.__cause__
    assert isinstance(error, ab.ExpressionError)
    message = str(error)
    assert message.startswith(f"{expression}:"), "the message names the expression"
    assert segment in message, "the message names the segment refused"
    return message


def generator() -> Iterator[int]:
    yield 1


async def coroutine() -> None:
    return None


async def async_generator() -> AsyncIterator[int]:
    yield 1


def traceback() -> types.TracebackType:
    try:
        raise ValueError("x")
    except ValueError as exc:
        caught = exc.__traceback__
    assert caught is not None
    return caught


def function() -> None:
    return None


function.secret = SECRET  # type: ignore[attr-defined]


class Plain:
    label = "class attribute"

    def method(self) -> None:
        return None


#: Objects and the paths into them that lead to frames, code, globals or builtins.
ESCAPES: dict[str, tuple[Callable[[], object], str, str]] = {
    "generator frame globals": (generator, ".gi_frame.f_globals['SECRET']", "gi_frame"),
    "generator frame builtins": (generator, ".gi_frame.f_builtins['__import__']", "gi_frame"),
    "generator code": (generator, ".gi_code.co_consts", "gi_code"),
    "generator state": (generator, ".gi_running", "gi_running"),
    "coroutine frame": (coroutine, ".cr_frame.f_globals", "cr_frame"),
    "async generator frame": (async_generator, ".ag_frame.f_globals", "ag_frame"),
    "traceback frame": (traceback, ".tb_frame.f_globals['SECRET']", "tb_frame"),
    "traceback chain": (traceback, ".tb_next", "tb_next"),
    "frame": (sys._getframe, ".f_globals['SECRET']", "f_globals"),
    "frame back": (sys._getframe, ".f_back", "f_back"),
    "function attribute": (lambda: function, ".secret", "function"),
    "function globals, Python 2 name": (lambda: function, ".func_globals", "func_globals"),
    "module global": (lambda: sys.modules[__name__], ".SECRET", "module"),
    "module's import": (lambda: sys.modules[__name__], ".sys.modules", "module"),
    "class attribute": (lambda: Plain, ".label", "type"),
    "bound method": (lambda: Plain().method, ".im_self", "im_self"),
    "method of a str": (lambda: "text", ".upper", "upper"),
    "attribute of an int": (lambda: 1, ".real", "real"),
    "exception args": (lambda: ValueError("x"), ".args", "args"),
    "key of a generator": (generator, "['gi_frame']", "['gi_frame']"),
    "key of a list": (lambda: [1], "['append']", "['append']"),
    "index of a set": (lambda: {1}, "[0]", "[0]"),
}


@pytest.fixture
def runtime_guard_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch off the names refused at load, to test the run-time allow-list alone."""
    monkeypatch.setattr(_expressions, "_INTERNALS", frozenset())


@pytest.mark.usefixtures("runtime_guard_only")
@pytest.mark.parametrize("root", ["${steps.s.output", "${inputs.x"])
@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_no_path_reaches_frames_code_or_globals(escape: str, root: str) -> None:
    make, path, segment = ESCAPES[escape]
    value = make()
    try:
        message = refused_at_run_time(f"{root}{path}}}", value, segment)
        assert "reads mapping keys" in message or "expressions read mapping keys" in message
    finally:
        if isinstance(value, types.CoroutineType):
            value.close()  # never awaited on purpose


@pytest.mark.parametrize(
    "name",
    [
        "gi_frame",
        "gi_code",
        "cr_frame",
        "ag_frame",
        "tb_frame",
        "tb_next",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "func_globals",
    ],
)
def test_interpreter_internals_are_refused_at_load(name: str) -> None:
    expression = f"${{steps.a.output.{name}.f_globals['SECRET']}}"
    with pytest.raises(ab.WorkflowValidationError) as caught:
        build(
            {"id": "a", "function": "f"}, {"id": "b", "function": "f", "inputs": {"v": expression}}
        )
    (problem,) = caught.value.problems
    assert problem.step_id == "b"
    assert f".{name} is an interpreter internal" in problem.message
    assert f"['{name}']" in problem.message, "the message says how to read a key of that name"


def test_the_issue_s_generator_escape_is_refused_at_load_and_at_run_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expression = "${steps.s.output.gi_frame.f_globals['SECRET']}"
    with pytest.raises(ab.WorkflowValidationError, match="gi_frame is an interpreter internal"):
        run_reading(expression, generator())
    monkeypatch.setattr(_expressions, "_INTERNALS", frozenset())
    refused_at_run_time(expression, generator(), "gi_frame")


class Lazy:
    """Data in ``__dict__``, and every way an attribute read could run code."""

    def __init__(self, ran: list[str]) -> None:
        self.ran = ran
        self.data = "data"

    @property
    def computed(self) -> str:
        self.ran.append("property")
        return "computed"

    @functools.cached_property
    def cached(self) -> str:
        self.ran.append("cached_property")
        return "cached"

    def __getattr__(self, name: str) -> str:
        self.ran.append(f"__getattr__ {name}")
        return name


class FakeDict:
    """A class whose ``__dict__`` is a property."""

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        ran.append("__dict__")
        return {"data": "from a property"}


ran: list[str] = []


@pytest.mark.parametrize("name", ["computed", "cached", "missing"])
def test_no_property_descriptor_or_getattr_runs(name: str) -> None:
    log: list[str] = []
    refused_at_run_time(f"${{steps.s.output.{name}}}", Lazy(log), name)
    assert log == [], "reading an attribute ran code"


def test_a_cached_property_already_computed_is_data() -> None:
    log: list[str] = []
    value = Lazy(log)
    assert value.cached == "cached"
    assert run_reading("${steps.s.output.cached}", value) == ["cached"]
    assert log == ["cached_property"]


def test_a_dict_property_does_not_run() -> None:
    ran.clear()
    refused_at_run_time("${steps.s.output.data}", FakeDict(), "data")
    assert ran == []


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    extra: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Slotted:
    name: str
    tags: tuple[str, ...]


class Pair(NamedTuple):
    left: object
    right: object

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        raise AssertionError("a named tuple's field is read without its __getitem__")


class Slots:
    __slots__ = ("empty", "filled")

    def __init__(self) -> None:
        self.filled = "slot"


OldPair = collections.namedtuple("OldPair", "first second")


def test_data_objects_mappings_and_sequences_are_read() -> None:
    value = {
        "point": Point(1, 2, {"k": 3}),
        "slotted": Slotted("n", ("a", "b")),
        "pair": Pair(OldPair("f", "s"), [10, 20, 30]),
        "ns": types.SimpleNamespace(inner=types.SimpleNamespace(deep="deep")),
        "slots": Slots(),
        "text": "hello",
        "exc": ValueError("x"),
    }
    value["exc"].code = 7  # type: ignore[attr-defined]
    expressions = {
        "${steps.s.output.point.x}": 1,
        "${steps.s.output.point.extra.k}": 3,
        "${steps.s.output['point'].extra['k']}": 3,
        "${steps.s.output.slotted.name}": "n",
        "${steps.s.output.slotted.tags[-1]}": "b",
        "${steps.s.output.pair.left.second}": "s",
        "${steps.s.output.pair.right[1]}": 20,
        "${steps.s.output.ns.inner.deep}": "deep",
        "${steps.s.output.slots.filled}": "slot",
        "${steps.s.output.text[1]}": "e",
        "${steps.s.output.exc.code}": 7,
    }
    for expression, expected in expressions.items():
        assert run_reading(expression, value) == [expected], expression


def test_an_empty_slot_is_a_clear_error() -> None:
    refused_at_run_time("${steps.s.output.empty}", Slots(), "has no value in its field 'empty'")


def test_pydantic_model_fields_are_read_and_computed_fields_are_not() -> None:
    import pydantic

    log: list[str] = []

    class Inner(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        score: float

    class Model(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        name: str
        inner: Inner
        rows: list[int]

        @pydantic.computed_field  # type: ignore[prop-decorator, misc]
        @property
        def upper(self) -> str:
            log.append("computed")
            return self.name.upper()

    model = Model(name="m", inner=Inner(score=0.5), rows=[4, 5])
    assert run_reading("${steps.s.output.inner.score}", model) == [0.5]
    assert run_reading("${steps.s.output.rows[1]}", model) == [5]
    refused_at_run_time("${steps.s.output.upper}", model, "upper")
    refused_at_run_time("${steps.s.output.model_fields}", model, "model_fields")
    assert log == []


@pytest.mark.parametrize("slots", [False, True])
def test_attrs_fields_are_read(slots: bool) -> None:
    attrs = pytest.importorskip("attrs")

    @attrs.define(slots=slots)
    class Record:
        key: str
        values: list[int]

    assert run_reading("${steps.s.output.values[0]}", Record("k", [9])) == [9]
    assert run_reading("${steps.s.output.key}", Record("k", [9])) == ["k"]


def test_a_class_s_layout_is_never_taken_for_another_s() -> None:
    """Layouts are cached per class: a new class that reuses a dead one's id (CPython
    reuses the memory at once) must get its own, or a ``__dict__`` property would run."""
    log: list[str] = []
    kinds: dict[int, bool] = {}
    reused = 0
    # Each collection below should scan only this test's classes: with the whole
    # suite's heap (every framework imported), 40 full collections outlast the timeout.
    gc.freeze()
    try:
        for i in range(40):
            tricky = bool(i % 2)
            if tricky:
                code = property(lambda self: log.append("ran") or {"x": "code"})
                value = type("Reused", (), {"__dict__": code})()
            else:
                value = type("Reused", (), {})()
                value.x = "data"
            found = step_into(value, True, "x")
            assert isinstance(found, Unreadable) if tricky else found == "data"
            reused += kinds.get(id(type(value)), tricky) != tricky
            kinds[id(type(value))] = tricky
            del value
            gc.collect()  # a class is in a reference cycle with its own __mro__
    finally:
        gc.unfreeze()
    assert reused, "no id went from one kind of class to the other: the test proved nothing"
    assert log == [], "a __dict__ property ran"
