"""A run with a store is recorded as it goes: statuses, attempts, times, errors, outputs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import agentbridge as ab

from .._helpers import build, collect

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def flaky(reg: ab.Registry) -> ab.Workflow:
    failures = {"n": 1}

    @reg.function
    async def start(x: int) -> dict[str, int]:
        return {"v": x + 1}

    @reg.function
    def wobble(v: int) -> int:
        if failures["n"]:
            failures["n"] -= 1
            raise ConnectionError("try again")
        return v * 10

    @reg.function
    async def broken(v: int) -> int:
        raise ValueError(f"bad {v}")

    return build(
        {"id": "a", "function": "start", "inputs": {"x": "${inputs.x}"}},
        {"id": "b", "function": "wobble", "inputs": {"v": "${steps.a.output.v}"}, "retries": 1},
        {"id": "c", "function": "broken", "inputs": {"v": "${steps.b.output}"}},
        name="flaky",
        inputs=["x"],
    )


async def test_every_step_is_recorded_with_its_attempts_times_error_and_output(
    reg: ab.Registry, store: ab.SqliteRunStore, flaky: ab.Workflow
) -> None:
    before = time.time()
    runtime = ab.Runtime(reg, store=store)
    with pytest.raises(ab.StepFailedError) as raised:
        await runtime.run_async(flaky, {"x": 1}, run_id="run-1")
    assert raised.value.result.run_id == "run-1"
    stored = await store.get_run("run-1")
    assert stored is not None
    assert (stored.workflow, stored.status, json.loads(stored.inputs)) == (
        "flaky",
        "failed",
        {"x": 1},
    )
    assert (stored.error_type, stored.error_message) == ("ValueError", "bad 20")
    a, b, c = (stored.steps[step_id] for step_id in "abc")
    assert (a.status, a.attempts, json.loads(a.output or "")) == ("succeeded", 1, {"v": 2})
    assert (b.status, b.attempts, b.output) == ("succeeded", 2, "20")
    assert (c.status, c.error_type, c.error_message, c.output) == (
        "failed",
        "ValueError",
        "bad 20",
        None,
    )
    for step in (a, b, c):
        assert step.started_at is not None
        assert before <= step.started_at <= time.time()
        assert step.duration is not None
        assert step.duration >= 0
        assert step.input_key is not None
        assert len(step.input_key) == 64
    history = [(h.step_id, h.attempt, h.status, h.error_type) for h in await store.history("run-1")]
    assert history == [
        ("a", 1, "succeeded", None),
        ("b", 1, "failed", "ConnectionError"),
        ("b", 2, "succeeded", None),
        ("c", 1, "failed", "ValueError"),
    ]


async def test_a_run_without_an_id_gets_a_new_one_in_the_store_result_and_events(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    @reg.function
    async def one() -> int:
        return 1

    workflow = build({"id": "a", "function": "one"})
    events = await collect(ab.Runtime(reg, store=store).stream(workflow))
    run_id = events[-1].result.run_id  # type: ignore[attr-defined]
    assert len(run_id) == 32
    assert {event.run_id for event in events} == {run_id}
    assert [run.run_id for run in await store.list_runs()] == [run_id]


async def test_the_store_file_is_owner_only_and_in_wal_mode(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path
) -> None:
    @reg.function
    async def one() -> int:
        return 1

    await ab.Runtime(reg, store=store).run_async(build({"id": "a", "function": "one"}))
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert db.with_name("runs.db-wal").exists()
    assert stat.S_IMODE(db.with_name("runs.db-wal").stat().st_mode) == 0o600


async def test_a_cancelled_run_is_recorded_as_cancelled(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    import anyio

    started = anyio.Event()

    @reg.function
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    runtime = ab.Runtime(reg, store=store)
    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: runtime.run_async(build({"id": "a", "function": "forever"}), run_id="c")
        )
        with anyio.fail_after(10):
            await started.wait()
        group.cancel_scope.cancel()
    stored = await store.get_run("c")
    assert stored is not None
    assert (stored.status, stored.steps["a"].status) == ("cancelled", "cancelled")
    assert [h.status for h in await store.history("c")] == ["cancelled"]


async def test_inputs_that_are_not_json_are_refused_before_anything_runs(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    ran = []

    @reg.function
    async def one(x: object) -> None:
        ran.append(x)

    workflow = build({"id": "a", "function": "one", "inputs": {"x": "${inputs.x}"}}, inputs=["x"])
    with pytest.raises(ab.StoreError, match=r"inputs of a durable run are stored as JSON.*tuple"):
        await ab.Runtime(reg, store=store).run_async(workflow, {"x": (1, 2)})
    assert ran == []
    assert await store.list_runs() == []


def test_a_store_must_be_a_run_store() -> None:
    with pytest.raises(ab.ConfigurationError, match="SqliteRunStore"):
        ab.Runtime(store="runs.db")  # type: ignore[arg-type]


@pytest.mark.parametrize("run_id", ["", "a\nb", "x" * 201, 7])
def test_a_run_id_must_be_a_short_printable_string(reg: ab.Registry, run_id: object) -> None:
    @reg.function
    async def one() -> int:
        return 1

    with pytest.raises(ab.ConfigurationError, match="run id"):
        ab.Runtime(reg).run(build({"id": "a", "function": "one"}), run_id=run_id)  # type: ignore[arg-type]


def test_sqlite3_is_imported_only_once_a_store_is_used(tmp_path: Path) -> None:
    code = (
        "import sys, agentbridge as ab\n"
        "store = ab.SqliteRunStore(sys.argv[1]); ab.Runtime(store=store)\n"
        "assert 'sqlite3' not in sys.modules, 'imported early'\n"
        "ab.run_sync(store.list_runs)\n"
        "assert 'sqlite3' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(ab.__file__).parent.parent)}
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "r.db")], check=True, env=env, timeout=30
    )


async def test_a_stream_closed_early_records_the_run_as_cancelled_and_releases_it(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    import contextlib

    import anyio

    @reg.function
    async def quick() -> int:
        return 1

    @reg.function
    async def slow(v: int) -> int:
        await anyio.sleep_forever()
        return v

    workflow = build(
        {"id": "a", "function": "quick"},
        {"id": "b", "function": "slow", "inputs": {"v": "${steps.a.output}"}},
    )
    runtime = ab.Runtime(reg, store=store)
    async with contextlib.aclosing(runtime.stream(workflow, run_id="early")) as events:
        async for event in events:
            if isinstance(event, ab.StepStarted) and event.step_id == "b":
                break
    stored = await store.get_run("early")
    assert stored is not None
    assert (stored.status, stored.steps["a"].status, stored.steps["b"].status) == (
        "cancelled",
        "succeeded",
        "cancelled",
    )
    # Released: claiming it again needs no wait for the lease.
    claimed = await store.claim("early", "someone", workflow="t", source=None, inputs="{}")
    assert claimed is not None


async def test_a_timed_out_run_is_recorded_as_timed_out(
    reg: ab.Registry, store: ab.SqliteRunStore
) -> None:
    import anyio

    @reg.function
    async def stuck() -> None:
        await anyio.sleep_forever()

    with pytest.raises(ab.WorkflowTimeoutError):
        await ab.Runtime(reg, store=store).run_async(
            build({"id": "a", "function": "stuck"}), run_id="slow", timeout=0.05
        )
    stored = await store.get_run("slow")
    assert stored is not None
    assert (stored.status, stored.error_type) == ("timed_out", "WorkflowTimeoutError")
    assert stored.steps["a"].status == "cancelled"
