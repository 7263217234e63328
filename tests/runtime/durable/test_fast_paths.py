"""What a durable run does fast does what the slow way did: inputs evaluated once,
stored steps reused before the run starts, records made without their ``__init__``."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentbridge as ab
from agentbridge.runtime import _json
from agentbridge.runtime._runner import LocalRunner

from .._helpers import build, collect
from ._procs import every_row

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Counting(Mapping[str, int]):
    """A mapping (so not JSON: never stored) that counts the reads of its keys."""

    def __init__(self) -> None:
        self.reads = 0

    def __getitem__(self, key: str) -> int:
        self.reads += 1
        return 7

    def __iter__(self) -> Iterator[str]:
        return iter(["v"])

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "plain"])
@pytest.mark.parametrize("for_each", [False, True], ids=["one", "for_each"])
async def test_a_step_s_inputs_are_evaluated_once_per_attempt(
    reg: ab.Registry, db: Any, durable: bool, for_each: bool
) -> None:
    # The input key of a durable run is made of the inputs evaluated for the call: an
    # output read by an expression is read once per attempt (per item), as without one.
    probe = Counting()
    failures = {"n": 1}

    @reg.function
    async def source() -> Counting:
        return probe

    @reg.function
    def use(v: int, i: int = 0) -> int:
        if failures["n"]:
            failures["n"] -= 1
            raise ConnectionError("once")
        return v + i

    b: dict[str, Any] = {"id": "b", "function": "use", "inputs": {"v": "${steps.a.output.v}"}}
    if for_each:
        b |= {"for_each": "${inputs.items}", "inputs": {**b["inputs"], "i": "${item}"}}
    workflow = build(
        {"id": "a", "function": "source"}, {**b, "retries": 1}, inputs=["items"], name="probe"
    )
    store = ab.SqliteRunStore(db) if durable else None
    try:
        result = await ab.Runtime(reg, store=store).run_async(
            workflow, {"items": [1, 2, 3]}, run_id="once" if durable else None
        )
    finally:
        if store is not None:
            store.close()
    assert result.succeeded
    # Three items and one retry, or one step and one retry.
    assert probe.reads == (4 if for_each else 2)
    assert result.outputs["b"] == ([8, 9, 10] if for_each else 7)


async def test_the_reused_steps_are_reported_first_and_in_order(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    fail = {"d"}

    @reg.function
    async def step(v: int = 0) -> int:
        context = ab.current_step()
        assert context is not None
        if context.step_id in fail:
            raise RuntimeError("not yet")
        return v + 1

    # Listed out of order: d, b need c, a; the reuse walks the graph, not the list.
    workflow = build(
        {"id": "d", "function": "step", "inputs": {"v": "${steps.c.output}"}},
        {"id": "b", "function": "step", "inputs": {"v": "${steps.a.output}"}},
        {"id": "c", "function": "step", "inputs": {"v": "${steps.b.output}"}},
        {"id": "a", "function": "step"},
        name="ordered",
    )
    runtime = ab.Runtime(reg, store=store)
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(workflow, run_id="o")
    fail.clear()
    events = await collect(runtime.stream(workflow, run_id="o"))
    names = [
        (type(event).__name__, getattr(event, "step_id", None))
        for event in events
        if not isinstance(event, ab.RunFinished)
    ]
    assert names == [
        ("RunStarted", None),
        ("StepFinished", "a"),
        ("StepFinished", "b"),
        ("StepFinished", "c"),
        ("StepStarted", "d"),
        ("StepFinished", "d"),
    ]
    result = events[-1].result  # type: ignore[attr-defined]
    assert {k: s.reused for k, s in result.steps.items()} == {
        "d": False,
        "b": True,
        "c": True,
        "a": True,
    }
    assert result.outputs["d"] == 4


async def test_records_made_fast_equal_records_made_by_their_init(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    @reg.function
    async def give(v: int = 0) -> dict[str, int]:
        return {"v": v + 1}

    workflow = build({"id": "a", "function": "give"}, {"id": "b", "function": "give"})
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(workflow, run_id="r")
    stored = await store.get_run("r")
    assert stored is not None
    resumed = await runtime.run_async(workflow, run_id="r")  # finished: every step reused
    records: list[Any] = [*stored.steps.values(), *resumed.steps.values()]
    assert len(records) == 4
    for record in records:
        # replace() builds a new record through __init__, from every field.
        again = dataclasses.replace(record)
        assert again == record
        assert repr(again) == repr(record)
        assert vars(again) == vars(record)
    assert [step.output for step in resumed.steps.values()] == [{"v": 1}, {"v": 1}]


FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(JSON)
def test_the_store_s_json_is_json_dumps_s(value: Any) -> None:
    assert _json.dump(value) == json.dumps(value)
    assert _json.load(_json.dump(value)) == value
    # Around whitespace, which raw_decode does not read, decode takes over.
    assert _json.load(f" {_json.dump(value)}\n") == value


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "-Infinity",
        "[1, Infinity]",
        "1e400",
        "[-1E999]",
        "1 2",
        "[1,",
        "",
        '{"a": 1} x',
        "nul",
        "'a'",
    ],
)
def test_the_store_s_json_reader_refuses_what_is_not_strict_json(text: str) -> None:
    # json.loads accepts the constants and reads a float literal too large as inf:
    # neither is a JSON value, so a tampered store cannot yield one.
    with pytest.raises(ValueError):
        _json.load(text)


async def test_a_finished_run_is_only_read_never_claimed_or_written(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Any
) -> None:
    @reg.function
    async def give(v: int = 0) -> int:
        return v + 1

    workflow = build(
        {"id": "a", "function": "give"},
        {"id": "b", "function": "give", "inputs": {"v": "${steps.a.output}"}},
    )
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(workflow, run_id="f")
    before = every_row(db)
    observer = sqlite3.connect(db)
    try:
        # Changes when another connection commits a change (SQLite's data_version).
        version = observer.execute("PRAGMA data_version").fetchone()
        again = await runtime.run_async(workflow, run_id="f")
        assert observer.execute("PRAGMA data_version").fetchone() == version, "nothing written"
    finally:
        observer.close()
    assert all(step.reused for step in again.steps.values())
    assert again.outputs == {"a": 1, "b": 2}
    assert every_row(db) == before
    # A process that holds it (here: claims it as a rerun would) still keeps others out.
    claimed = await store.claim(
        "f", "another", workflow=workflow.name, source=None, inputs="{}", succeeded=True
    )
    assert claimed is not None
    with pytest.raises(ab.RunOwnershipError, match="is being run by another process"):
        await runtime.run_async(workflow, run_id="f")


async def test_a_finished_run_given_a_new_step_claims_it_and_runs_only_that(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    calls: list[str] = []

    @reg.function
    async def give(v: int = 0) -> int:
        context = ab.current_step()
        assert context is not None
        calls.append(context.step_id)
        return v + 1

    a = {"id": "a", "function": "give"}
    b = {"id": "b", "function": "give", "inputs": {"v": "${steps.a.output}"}}
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(build(a, name="grown"), run_id="g")
    result = await runtime.run_async(build(a, b, name="grown"), run_id="g")
    assert calls == ["a", "b"]
    assert {k: s.reused for k, s in result.steps.items()} == {"a": True, "b": False}
    stored = await store.get_run("g")
    assert stored is not None
    assert stored.status == "succeeded"
    assert set(stored.steps) == {"a", "b"}
    assert (await store.claim("g", "x", workflow="grown", source=None, inputs="{}")) is not None


async def test_an_int_too_long_to_write_is_not_stored_and_runs_again(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    ran: list[str] = []

    @reg.function
    async def big() -> int:
        ran.append("big")
        return 10**5000  # past sys.get_int_max_str_digits(): no text for it

    @reg.function
    async def use(v: int) -> int:
        ran.append("use")
        return v % 7

    workflow = build(
        {"id": "a", "function": "big"},
        {"id": "b", "function": "use", "inputs": {"v": "${steps.a.output}"}},
    )
    runtime = ab.Runtime(reg, store=store)
    result = await runtime.run_async(workflow, run_id="big")
    assert result.succeeded
    assert result.steps["a"].not_stored is not None
    assert "cannot be written as text" in result.steps["a"].not_stored
    again = await runtime.run_async(workflow, run_id="big")
    assert again.outputs["b"] == result.outputs["b"]
    # a is not stored, and b's inputs have no key: both run again.
    assert ran == ["big", "use", "big", "use"]


@given(JSON, JSON)
def test_the_key_text_of_two_values_is_the_same_only_if_they_are(a: Any, b: Any) -> None:
    same = _json.key_text(a) == _json.key_text(b)
    assert same == (_json.dump(a) == _json.dump(b))
    assert _json.key_text(a).isascii()


def test_the_key_text_refuses_what_json_refuses() -> None:
    for value in ((1, 2), {1: "a"}, float("nan"), object(), 10**5000):
        with pytest.raises(_json.NotJson):
            _json.key_text(value)


async def test_a_claim_reads_the_reusable_steps_as_get_run_reads_them(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    @reg.function
    async def give(v: int = 0) -> int:
        if v:
            raise RuntimeError("b fails")
        return v + 1

    @reg.function
    async def zero(v: int) -> int:
        return 0

    workflow = build(
        {"id": "a", "function": "give"},
        {"id": "b", "function": "give", "inputs": {"v": "${steps.a.output}"}},
        {"id": "c", "function": "zero", "inputs": {"v": "${steps.a.output}"}},
    )
    with pytest.raises(ab.StepFailedError):
        await ab.Runtime(reg, store=store, fail_fast=False).run_async(workflow, run_id="c")
    every = await store.get_run("c")
    claimed = await store.claim("c", "me", workflow=workflow.name, source=None, inputs="{}")
    assert every is not None
    assert claimed is not None
    assert (every.reusable, claimed.steps) == ({}, {})
    # Only the succeeded steps, each with the fields of its full record.
    assert (
        set(claimed.reusable)
        == {"a", "c"}
        == {step_id for step_id, step in every.steps.items() if step.status == "succeeded"}
    )
    for step_id, reusable in claimed.reusable.items():
        assert type(reusable) is ab.ReusableStep
        full = every.steps[step_id]
        assert reusable == tuple(getattr(full, name) for name in ab.ReusableStep._fields)


class SpyRunner(LocalRunner):
    """A local runner that counts what the driver asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def on_loop(self, call: Any) -> bool:
        self.asked.append(f"on_loop {call.step.id}")
        return super().on_loop(call)

    async def run(self, call: Any, kwargs: dict[str, Any]) -> Any:
        self.asked.append(f"run {call.step.id}")
        return await super().run(call, kwargs)


async def test_a_resume_that_reuses_every_step_asks_the_runner_nothing(
    reg: ab.Registry, db: Any
) -> None:
    # The reuse is decided before the run starts (Journal.seed): a reused step gets no
    # task, no attempt and no runner call, and only its StepFinished event, as the run
    # that stored it reported it, reused.
    @reg.function
    async def step(v: int = 0) -> int:
        return v + 1

    chain = [{"id": "s0", "function": "step", "runner": "spy"}] + [
        {
            "id": f"s{i}",
            "function": "step",
            "runner": "spy",
            "inputs": {"v": f"${{steps.s{i - 1}.output}}"},
        }
        for i in range(1, 5)
    ]
    workflow = build(*chain, name="spied")
    spy = SpyRunner()
    store = ab.SqliteRunStore(db)
    try:
        runtime = ab.Runtime(reg, store=store, runners={"spy": spy})
        first = await runtime.run_async(workflow, run_id="spied")
        assert [a for a in spy.asked if a.startswith("run")] == [f"run s{i}" for i in range(5)]
        connection = sqlite3.connect(db)
        with connection:  # as if its process died after its last step was written
            connection.execute("UPDATE runs SET status = 'failed' WHERE run_id = 'spied'")
        connection.close()
        spy.asked.clear()
        events = await collect(runtime.stream(workflow, run_id="spied"))
    finally:
        store.close()
    assert spy.asked == []
    steps = [e for e in events if isinstance(e, ab.StepFinished)]
    assert [type(e).__name__ for e in events] == [
        "RunStarted",
        *["StepFinished"] * 5,
        "RunFinished",
    ]
    assert [e.step_id for e in steps] == [f"s{i}" for i in range(5)]
    result = events[-1].result  # type: ignore[attr-defined]
    assert all(e.result.reused for e in steps)
    assert [e.result for e in steps] == list(result.steps.values())
    assert result.outputs == first.outputs == {f"s{i}": i + 1 for i in range(5)}
    for step_id, stored in result.steps.items():
        ran = first.steps[step_id]
        assert (stored.attempts, stored.started_at, stored.output) == (
            ran.attempts,
            ran.started_at,
            ran.output,
        )
