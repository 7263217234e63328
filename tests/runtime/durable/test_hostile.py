"""A tampered, corrupt, locked or newer store gives plain data or a clear error: never an
import, never an execution, never a rewrite of what it holds."""

from __future__ import annotations

import json
import pickle
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import agentbridge as ab
from agentbridge.runtime._journal import RETRY_PAUSE

from .._helpers import build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

MODULE = "agentbridge_hostile_probe"


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A module that, if anything imported it, would leave a marker file."""
    marker = tmp_path / "imported"
    (tmp_path / f"{MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ndef system(*a, **k): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    assert not marker.exists(), "something imported the module the store named"
    assert MODULE not in sys.modules


class Boom:
    """Unpickling this would run code: it leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def workflow(reg: ab.Registry) -> ab.Workflow:
    @reg.function
    async def make(w: str) -> dict[str, str]:
        return {"w": w}

    @reg.function
    async def show(v: Any) -> Any:
        if v == {"w": "fail"}:
            raise RuntimeError("b fails, so a resume reuses a")
        return v

    return build(
        {"id": "a", "function": "make", "inputs": {"w": "${inputs.w}"}},
        {"id": "b", "function": "show", "inputs": {"v": "${steps.a.output}"}},
        name="hostile",
        inputs=["w"],
    )


def tamper(db: Path, sql: str, *args: Any) -> None:
    connection = sqlite3.connect(db)
    with connection:
        connection.execute(sql, args)
    connection.close()


async def test_a_langchain_style_constructor_object_comes_back_as_plain_data(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, workflow: ab.Workflow, probe: Path
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(workflow, {"w": "x"}, run_id="lc")
    payload = {
        "lc": 2,
        "type": "constructor",
        "id": [MODULE, "system"],
        "kwargs": {"command": f"touch {probe}"},
    }
    # Both the step's output and the run's outputs: the finished run comes from them.
    tamper(db, "UPDATE steps SET output = ? WHERE step_id = 'b'", json.dumps(payload))
    tamper(db, "UPDATE runs SET outputs = ?", json.dumps({"a": {"w": "x"}, "b": payload}))
    result = await runtime.run_async(workflow, {"w": "x"}, run_id="lc")
    assert result.steps["b"].reused
    assert result.outputs["b"] == payload
    assert type(result.outputs["b"]) is dict


async def test_a_pickled_blob_is_refused_and_never_unpickled(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, workflow: ab.Workflow, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    runtime = ab.Runtime(reg, store=store)
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="p")
    blob = pickle.dumps(Boom(marker))
    tamper(db, "UPDATE steps SET output = ? WHERE step_id = 'a'", blob)
    with pytest.raises(ab.StoreError, match="holds a step record with a bytes where"):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="p")
    tamper(
        db,
        "UPDATE steps SET output = ? WHERE step_id = 'a'",
        pickle.dumps(Boom(marker), 0).decode(),
    )
    with pytest.raises(ab.StoreError, match="the output of step 'a' in run 'p' is not JSON"):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="p")
    assert not marker.exists()


async def test_json_constants_and_wrong_types_in_the_store_are_refused(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, workflow: ab.Workflow
) -> None:
    runtime = ab.Runtime(reg, store=store)
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="n")
    tamper(db, "UPDATE steps SET output = 'NaN' WHERE step_id = 'a'")
    with pytest.raises(ab.StoreError, match="NaN is not JSON"):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="n")
    tamper(db, "UPDATE steps SET attempts = 'many' WHERE step_id = 'a'")
    with pytest.raises(ab.StoreError, match="a str where agentbridge writes int"):
        await store.get_run("n")


@pytest.mark.parametrize(
    "nasty",
    ["x'); DROP TABLE runs; --", 'a" OR 1=1 --', "%_*\\;", "Robert'); DELETE FROM steps;--"],
)
async def test_sql_metacharacters_in_ids_and_inputs_are_plain_text(
    reg: ab.Registry, store: ab.SqliteRunStore, workflow: ab.Workflow, nasty: str
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(workflow, {"w": "ok"}, run_id="other")
    result = await runtime.run_async(workflow, {"w": nasty}, run_id=nasty)
    assert result.outputs == {"a": {"w": nasty}, "b": {"w": nasty}}
    assert {run.run_id for run in await store.list_runs()} == {"other", nasty}
    stored = await store.get_run(nasty)
    assert stored is not None
    assert json.loads(stored.inputs) == {"w": nasty}
    assert set(stored.steps) == {"a", "b"}
    other = await store.get_run("other")
    assert other is not None
    assert set(other.steps) == {"a", "b"}
    assert all(step.reused for step in (await runtime.resume_async(nasty, workflow)).steps.values())


@pytest.mark.parametrize(
    "content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
async def test_a_corrupt_file_is_a_clear_error_and_is_left_alone(
    reg: ab.Registry, db: Path, workflow: ab.Workflow, content: bytes
) -> None:
    db.write_bytes(content)
    store = ab.SqliteRunStore(db)
    with pytest.raises(ab.StoreError, match=r"not a readable SQLite database.*move it aside"):
        await ab.Runtime(reg, store=store).run_async(workflow, {"w": "x"})
    store.close()
    assert db.read_bytes() == content


async def test_a_locked_file_is_a_clear_error_and_loses_nothing(
    reg: ab.Registry, db: Path, workflow: ab.Workflow
) -> None:
    store = ab.SqliteRunStore(db, busy_timeout=0.05)
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(workflow, {"w": "x"}, run_id="before")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ab.StoreError, match=r"is locked.*busy_timeout=0\.05"):
            await runtime.run_async(workflow, {"w": "y"}, run_id="during")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [run.run_id for run in await store.list_runs()] == ["before"]
    assert (await runtime.run_async(workflow, {"w": "y"}, run_id="during")).succeeded
    store.close()


async def test_a_store_from_a_newer_schema_is_refused_untouched(
    reg: ab.Registry, db: Path, workflow: ab.Workflow
) -> None:
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    content = db.read_bytes()
    store = ab.SqliteRunStore(db)
    with pytest.raises(ab.StoreError, match=r"newer agentbridge \(schema 99.*upgrade"):
        await ab.Runtime(reg, store=store).run_async(workflow, {"w": "x"})
    with pytest.raises(ab.StoreError, match="newer agentbridge"):
        await store.list_runs()
    store.close()
    assert db.read_bytes() == content


def open_together(
    store: ab.SqliteRunStore, barrier: threading.Barrier, failures: list[BaseException]
) -> None:
    ab.run_sync(anyio.sleep(0))  # this thread's portal is open before the race
    barrier.wait(timeout=20)
    try:
        ab.run_sync(store.list_runs())
    except ab.StoreError as exc:
        failures.append(exc)


@pytest.mark.timeout(60)
def test_stores_opening_a_new_file_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    # Each opening switches the new file to WAL; two switches at once deadlock, and SQLite
    # refuses one of them without waiting. Six stores released together by a barrier, over
    # many new files, provoke it: in 30 rounds it happened in about one round in ten.
    for round_ in range(40):
        db = tmp_path / f"{round_}.db"
        stores = [ab.SqliteRunStore(db) for _ in range(6)]
        barrier = threading.Barrier(len(stores))
        failures: list[BaseException] = []

        threads = [
            threading.Thread(target=open_together, args=(store, barrier, failures))
            for store in stores
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for store in stores:
            store.close()
        assert not failures, f"round {round_}: {failures[0]}"
        connection = sqlite3.connect(db)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        connection.close()


class WatchedStore(ab.SqliteRunStore):
    """A store that says when one of its writes found the file locked."""

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        self.refused = threading.Event()

        self.refusals = 0

    async def write(self, run_id: str, owner: str, writes: Any) -> None:
        try:
            await super().write(run_id, owner, writes)
        except ab.StoreBusyError:
            self.refusals += 1
            self.refused.set()
            raise


def locking_workflow(reg: ab.Registry, db: Path, holder: list[sqlite3.Connection]) -> ab.Workflow:
    """Step ``lock`` takes the file's write lock in a connection of its own, kept in
    ``holder``; step ``then`` (registered by the test) follows it."""

    @reg.function
    def lock() -> str:
        connection = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN EXCLUSIVE")
        holder.append(connection)
        return "locked"

    return build(
        {"id": "lock", "function": "lock"},
        {"id": "then", "function": "then", "inputs": {"after": "${steps.lock.output}"}},
        name="busy",
    )


def release(holder: list[sqlite3.Connection]) -> None:
    for connection in holder:
        connection.execute("ROLLBACK")
        connection.close()
    holder.clear()


async def test_a_store_locked_for_a_while_mid_run_loses_nothing(reg: ab.Registry, db: Path) -> None:
    store = WatchedStore(db, busy_timeout=0.05)
    holder: list[sqlite3.Connection] = []
    workflow = locking_workflow(reg, db, holder)

    @reg.function
    def then(after: str) -> str:
        assert store.refused.wait(20), "no write of the run met the lock"
        release(holder)  # the run's write is refused at least once, then the file is free
        return "unlocked"

    try:
        result = await ab.Runtime(reg, store=store).run_async(workflow, run_id="busy")
        assert result.succeeded
        history = await store.history("busy")
        assert [(h.step_id, h.status) for h in history] == [
            ("lock", "succeeded"),
            ("then", "succeeded"),
        ]
        assert (await store.get_run("busy")).status == "succeeded"  # type: ignore[union-attr]
    finally:
        release(holder)
        store.close()


async def test_a_write_tried_again_pauses_however_short_the_busy_timeout(
    reg: ab.Registry, db: Path
) -> None:
    # A lease long enough that the writer's heartbeat (a third of it) never comes while
    # the run is bounded: the run must end because it ended, not because of a heartbeat.
    store = WatchedStore(db, busy_timeout=0.001, lease=120)
    holder: list[sqlite3.Connection] = []
    workflow = locking_workflow(reg, db, holder)
    held = 0.5

    @reg.function
    def then(after: str) -> str:
        assert store.refused.wait(20), "no write of the run met the lock"
        time.sleep(held)  # the file stays locked this long: the tries are counted
        release(holder)
        return "unlocked"

    try:
        with anyio.fail_after(20):
            result = await ab.Runtime(reg, store=store).run_async(workflow, run_id="brief")
        assert result.succeeded
        # One try per RETRY_PAUSE at most, and one more as the lock goes; without the
        # pause, a try that SQLite refuses within a millisecond made hundreds.
        assert store.refusals <= held / RETRY_PAUSE + 2, store.refusals
        assert (await store.get_run("brief")).status == "succeeded"  # type: ignore[union-attr]
    finally:
        release(holder)
        store.close()


async def test_a_store_locked_past_the_lease_stops_the_run(reg: ab.Registry, db: Path) -> None:
    store = WatchedStore(db, busy_timeout=0.05, lease=0.6)
    holder: list[sqlite3.Connection] = []
    workflow = locking_workflow(reg, db, holder)

    @reg.function
    async def then(after: str) -> None:
        await anyio.sleep_forever()  # until the run is stopped

    try:
        with anyio.fail_after(20), pytest.raises(ab.StoreBusyError, match="is locked"):
            await ab.Runtime(reg, store=store).run_async(workflow, run_id="stuck")
        assert store.refused.is_set()
    finally:
        release(holder)
        store.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("step_id", b"a"),
        ("attempts", 1.5),
        ("output", b"1"),
        ("input_key", b"k"),
        ("started_at", "now"),
        ("duration", b"\x00"),
    ],
)
async def test_each_column_a_resume_reads_is_refused_with_the_wrong_type(
    reg: ab.Registry,
    store: ab.SqliteRunStore,
    db: Path,
    workflow: ab.Workflow,
    column: str,
    value: object,
) -> None:
    # The claim reads a reusable step's row as it is, checked value by value.
    runtime = ab.Runtime(reg, store=store)
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="t")
    tamper(db, f"UPDATE steps SET {column} = ? WHERE step_id = 'a'", value)
    kind = type(value).__name__
    with pytest.raises(ab.StoreError, match=f"holds a step record with a {kind} where"):
        await runtime.run_async(workflow, {"w": "fail"}, run_id="t")


@pytest.mark.parametrize(("column", "value"), [("attempts", "two"), ("started_at", b"\x01")])
async def test_a_wrong_type_in_any_row_of_a_long_run_is_refused(
    reg: ab.Registry, store: ab.SqliteRunStore, db: Path, column: str, value: object
) -> None:
    # The claim checks the rows a column at a time: a wrong value in one row among
    # many, neither the first nor the last, is found and said.
    @reg.function
    async def step(v: int = 0) -> int:
        return v + 1

    chain = [{"id": "s0", "function": "step"}] + [
        {"id": f"s{i}", "function": "step", "inputs": {"v": f"${{steps.s{i - 1}.output}}"}}
        for i in range(1, 20)
    ]
    workflow = build(*chain, name="long")
    runtime = ab.Runtime(reg, store=store)
    assert (await runtime.run_async(workflow, run_id="long")).outputs["s19"] == 20
    tamper(db, f"UPDATE steps SET {column} = ?, status = 'succeeded' WHERE step_id = 's11'", value)
    tamper(db, "UPDATE runs SET status = 'failed'")
    kind = type(value).__name__
    with pytest.raises(ab.StoreError, match=f"holds a step record with a {kind} where"):
        await runtime.run_async(workflow, run_id="long")
    # Put right, the run resumes, every step reused.
    tamper(
        db,
        f"UPDATE steps SET {column} = ? WHERE step_id = 's11'",
        1 if column == "attempts" else None,
    )
    again = await runtime.run_async(workflow, run_id="long")
    assert all(result.reused for result in again.steps.values())
    assert again.outputs["s19"] == 20
