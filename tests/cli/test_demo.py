"""The demo of ``nox -s demo``: it runs, quickly, on both backends, and says what it did."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ._helpers import DEMO, REPO, run_cli

pytestmark = pytest.mark.hosts

#: Slack for comparing wall-clock starts with perf-counter durations (clock resolution).
CLOCKS = 1e-3

EXPECTED_ACTIONS = {
    "T-1001": "page on-call: Northwind Logistics reports an outage",
    "T-1002": "route to the billing team",
    "T-1003": "file a bug report for engineering",
    "T-1004": "merge into T-1001",
    "T-1005": "answer from the help centre (account)",
    "T-1006": "answer from the help centre (account)",
    "T-1007": "route to the billing team",
    "T-1008": "merge into T-1003",
}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_demo_produces_its_outputs(backend: str) -> None:
    done = run_cli([*DEMO, "--backend", backend, "--json"], cwd=REPO)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "succeeded"
    assert set(data["steps"]) == {"fetch", "customers", "duplicates", "categories", "triage"}
    assert {info["status"] for info in data["steps"].values()} == {"succeeded"}
    assert data["steps"]["duplicates"]["output"] == [["T-1001", "T-1004"], ["T-1003", "T-1008"]]
    assert data["outputs"] == {
        "summary": "8 tickets: 1 escalated, 2 merged, 1 to engineering, 2 to billing, 2 answered",
        "escalations": ["T-1001"],
        "actions": EXPECTED_ACTIONS,
    }


def test_the_demo_fan_out_runs_concurrently() -> None:
    done = run_cli([*DEMO, "--json"], cwd=REPO)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    fan_out = ("customers", "duplicates", "categories")
    # Each of the three started before any of the others finished: they overlapped.
    # (The times are the runtime's own records of this run, not a speed limit.)
    starts = {step: _seconds(steps[step]["started_at"]) for step in fan_out}
    ends = {step: starts[step] + steps[step]["duration"] for step in fan_out}
    assert max(starts.values()) < min(ends.values())
    assert (
        min(starts.values()) >= _seconds(steps["fetch"]["started_at"]) + steps["fetch"]["duration"]
    )


def test_the_demo_reads_well_in_a_log() -> None:
    done = run_cli([*DEMO, "--input", "limit=4"], cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert any("helpdesk-triage" in line and "succeeded" in line for line in lines)
    assert any(line.strip().startswith("summary:") and "4 tickets" in line for line in lines)
    assert done.stderr == ""


def test_the_demo_input_picks_the_queue() -> None:
    done = run_cli([*DEMO, "--input", "queue=sales", "--json"], cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["outputs"]["actions"]) == {"T-1009", "T-1010"}

    missing = run_cli([*DEMO, "--input", "queue=nowhere", "--json"], cwd=REPO)
    assert missing.returncode == 1
    assert "no queue named 'nowhere'" in missing.stderr


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
