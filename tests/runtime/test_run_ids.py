"""Every run has its own id, and its results and events carry wall-clock times (UTC)."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = pytest.mark.timeout(30)

UTC = datetime.timezone.utc


@pytest.fixture
def wf(reg: ab.Registry) -> ab.Workflow:
    @reg.function
    async def one() -> int:
        return 1

    @reg.function
    def plus(v: int) -> int:
        return v + 1

    return build(
        {"id": "a", "function": "one"},
        {"id": "b", "function": "plus", "inputs": {"v": "${steps.a.output}"}},
    )


def is_uuid4_hex(value: str) -> bool:
    return uuid.UUID(hex=value).version == 4 and uuid.UUID(hex=value).hex == value


@pytest.mark.anyio
async def test_events_and_the_result_share_the_runs_id(reg: ab.Registry, wf: ab.Workflow) -> None:
    events = await collect(ab.Runtime(reg).stream(wf))
    result = events[-1].result
    assert is_uuid4_hex(result.run_id)
    assert {event.run_id for event in events} == {result.run_id}

    again = await collect(ab.Runtime(reg).stream(wf))
    assert again[-1].result.run_id != result.run_id, "every run gets a new id"


def test_every_entry_point_gives_a_new_id(reg: ab.Registry, wf: ab.Workflow) -> None:
    executor = ab.Executor(wf, reg)
    ids = {
        executor.run().run_id,
        executor.run().run_id,
        ab.run_workflow(wf, registry=reg).run_id,
        ab.Runtime(reg).run(wf).run_id,
        list(ab.Runtime(reg).stream_sync(wf))[-1].result.run_id,
    }
    assert len(ids) == 5
    assert all(is_uuid4_hex(run_id) for run_id in ids)


def test_a_failed_runs_error_carries_the_id(reg: ab.Registry) -> None:
    @reg.function
    async def broken() -> None:
        raise ValueError("no")

    with pytest.raises(ab.StepFailedError) as caught:
        ab.run_workflow(build({"id": "x", "function": "broken"}), registry=reg)
    assert is_uuid4_hex(caught.value.result.run_id)


@pytest.mark.anyio
async def test_events_have_utc_timestamps_in_order(reg: ab.Registry, wf: ab.Workflow) -> None:
    before = datetime.datetime.now(UTC)
    events = await collect(ab.Runtime(reg).stream(wf))
    after = datetime.datetime.now(UTC)
    stamps = [event.timestamp for event in events]
    assert all(stamp.utcoffset() == datetime.timedelta(0) for stamp in stamps)
    assert stamps == sorted(stamps)
    assert before <= stamps[0]
    assert stamps[-1] <= after


def test_results_end_on_the_wall_clock(reg: ab.Registry, wf: ab.Workflow) -> None:
    result = ab.run_workflow(wf, registry=reg)
    assert result.finished_at == result.started_at + datetime.timedelta(seconds=result.duration)
    assert result.finished_at.utcoffset() == datetime.timedelta(0)
    for step in result.steps.values():
        assert step.started_at is not None
        assert step.duration is not None
        assert step.finished_at == step.started_at + datetime.timedelta(seconds=step.duration)
        assert result.started_at <= step.started_at
        assert step.finished_at <= result.finished_at
    assert ab.StepResult("s", "function", ab.StepStatus.SKIPPED).finished_at is None


def test_to_dict_gives_the_id_and_iso_times(reg: ab.Registry, wf: ab.Workflow) -> None:
    result = ab.run_workflow(wf, registry=reg)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["run_id"] == result.run_id
    assert datetime.datetime.fromisoformat(data["finished_at"]) == result.finished_at
    step = data["steps"]["b"]
    assert datetime.datetime.fromisoformat(step["finished_at"]) == result.steps["b"].finished_at
    skipped = ab.StepResult("s", "function", ab.StepStatus.SKIPPED).to_dict()
    assert skipped["finished_at"] is None
