"""``run --store``, ``resume`` and ``runs list|show``: durable runs from the command line."""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

import agentbridge as ab

from ..workflow._helpers import build
from ._helpers import STEPS, Invoke, WriteWorkflow

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def flaky_file(write_workflow: WriteWorkflow, tmp_path: Path) -> Path:
    """a (cli_add) then b (cli_flaky, failing its first attempt, no retries)."""
    return write_workflow(
        f"""\
        name: durable
        inputs: [x]
        steps:
          - id: a
            function: cli_add
            inputs: {{a: "${{inputs.x}}", b: 1}}
          - id: b
            agent: cli_flaky
            inputs: {{key: "{tmp_path.name}-${{steps.a.output}}"}}
        """
    )


def test_a_failed_run_is_listed_shown_and_resumed(
    invoke: Invoke, flaky_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    first = invoke(
        "run", flaky_file, "--import", STEPS, "-i", "x=2", "--store", db, "--run-id", "r1"
    )
    assert first.exit_code == 1
    assert "first attempt" in first.stderr
    assert f"resume it with: agentbridge resume r1 --store {db}" in first.stderr

    listed = invoke("runs", "list", "--store", db)
    assert listed.exit_code == 0
    (row,) = [line for line in listed.stdout.splitlines() if "r1" in line]
    assert "durable" in row
    assert "failed" in row
    assert "1/2" in row

    shown = json.loads(invoke("runs", "show", "r1", "--store", db, "--json").stdout)
    assert shown["status"] == "failed"
    assert shown["inputs"] == {"x": 2}
    assert [(s["step_id"], s["status"], s["stored"]) for s in shown["steps"]] == [
        ("a", "succeeded", True),
        ("b", "failed", False),
    ]
    assert shown["steps"][1]["error"].startswith("ConnectionError: first attempt")

    resumed = invoke("resume", "r1", "--store", db, "--import", STEPS, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["run_id"] == "r1"
    assert result["status"] == "succeeded"
    assert {k: s["reused"] for k, s in result["steps"].items()} == {"a": True, "b": False}

    table = invoke("runs", "show", "r1", "--store", db).stdout
    assert "run r1 of workflow 'durable': succeeded" in table
    assert "history" in table
    assert table.count("cli_flaky") == 0
    history = json.loads(invoke("runs", "show", "r1", "--store", db, "--json").stdout)["attempts"]
    assert [(h["step_id"], h["status"]) for h in history] == [
        ("a", "succeeded"),
        ("b", "failed"),
        ("b", "succeeded"),
    ]


def test_resuming_a_finished_run_runs_nothing(
    invoke: Invoke, flaky_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    invoke("run", flaky_file, "--import", STEPS, "-i", "x=5", "--store", db, "--run-id", "f")
    assert invoke("resume", "f", "--store", db, "--import", STEPS).exit_code == 0
    again = invoke("resume", "f", "--store", db, "--import", STEPS, "--json")
    assert again.exit_code == 0
    assert all(step["reused"] for step in json.loads(again.stdout)["steps"].values())
    attempts = json.loads(invoke("runs", "show", "f", "--store", db, "--json").stdout)["attempts"]
    assert len(attempts) == 3  # a, b failed, b succeeded: the last resume added none


def test_changed_inputs_unknown_runs_and_missing_stores_are_usage_errors(
    invoke: Invoke, flaky_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    invoke("run", flaky_file, "--import", STEPS, "-i", "x=1", "--store", db, "--run-id", "c")
    changed = invoke(
        "run", flaky_file, "--import", STEPS, "-i", "x=9", "--store", db, "--run-id", "c"
    )
    assert changed.exit_code == 2
    assert "run 'c' cannot be resumed: its inputs changed ('x'" in changed.stderr
    unknown = invoke("resume", "nope", "--store", db, "--import", STEPS)
    assert unknown.exit_code == 2
    assert "there is no run 'nope'" in unknown.stderr
    missing = invoke("runs", "list", "--store", tmp_path / "missing.db")
    assert missing.exit_code == 2
    assert "there is no run store" in missing.stderr
    assert not (tmp_path / "missing.db").exists()


def test_runs_list_as_json(invoke: Invoke, flaky_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    for run_id in ("one", "two"):
        invoke("run", flaky_file, "--import", STEPS, "-i", "x=3", "--store", db, "--run-id", run_id)
    runs = json.loads(invoke("runs", "list", "--store", db, "--json").stdout)
    assert [run["run_id"] for run in runs] == ["two", "one"]
    assert [run["status"] for run in runs] == ["succeeded", "failed"]


@pytest.mark.parametrize(
    ("backend", "loop"),
    [
        ("asyncio", "asyncio"),
        pytest.param(
            "uvloop",
            "uvloop",
            marks=pytest.mark.skipif(sys.platform == "win32", reason="uvloop is POSIX-only"),
        ),
        ("trio", "trio"),
    ],
)
def test_resume_runs_on_the_backend_it_is_given(
    invoke: Invoke, write_workflow: WriteWorkflow, tmp_path: Path, backend: str, loop: str
) -> None:
    path = write_workflow(f"""\
        name: gated
        steps:
          - {{id: gate, agent: cli_flaky, inputs: {{key: "{tmp_path.name}-gate"}}}}
          - {{id: loop, tool: cli_loop, depends_on: [gate]}}
    """)
    db = tmp_path / "runs.db"
    first = invoke("run", path, "--import", STEPS, "--store", db, "--run-id", "g")
    assert first.exit_code == 1, first.output
    resumed = invoke(
        "resume", "g", "--store", db, "--import", STEPS, "--backend", backend, "--json"
    )
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["steps"]["loop"]["output"] == loop


def test_runs_show_and_list_give_a_for_each_step_not_its_items(
    invoke: Invoke, tmp_path: Path
) -> None:
    # One item at a time: items 0 and 1 succeed and are stored (as records of their
    # own), item 2 fails.
    reg = ab.Registry()

    @reg.function
    def third(v: int) -> int:
        if v == 1:
            raise ValueError("item 1 fails")
        return v

    workflow = build(
        {
            "id": "each",
            "function": "third",
            "for_each": "${inputs.xs}",
            "inputs": {"v": "${item}"},
            "max_concurrency": 1,
        },
        {"id": "after", "function": "third", "inputs": {"v": 0}},
        name="items",
        inputs=["xs"],
    )
    db = tmp_path / "runs.db"
    store = ab.SqliteRunStore(db)
    try:
        with pytest.raises(ab.StepFailedError):
            ab.Runtime(reg, store=store).run(workflow, {"xs": [0, 2, 1]}, run_id="i")
    finally:
        store.close()
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT step_id FROM steps ORDER BY step_id").fetchall()
    assert rows == [("after",), ("each",), ("each[0]",), ("each[1]",)]
    shown = json.loads(invoke("runs", "show", "i", "--store", db, "--json").stdout)
    assert sorted((s["step_id"], s["status"]) for s in shown["steps"]) == [
        ("after", "succeeded"),
        ("each", "failed"),
    ]
    assert "each[" not in invoke("runs", "show", "i", "--store", db).stdout
    (row,) = json.loads(invoke("runs", "list", "--store", db, "--json").stdout)
    assert (row["steps"], row["steps_succeeded"]) == (2, 1)
