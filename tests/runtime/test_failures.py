"""Failures: fail fast, step timeouts, abandoned sync steps, retries, run timeouts."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = pytest.mark.timeout(30)


class StepBoom(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def test_the_error_types() -> None:
    for error in (ab.StepFailedError, ab.StepTimeoutError, ab.WorkflowTimeoutError):
        assert issubclass(error, ab.WorkflowError)
    assert issubclass(ab.StepTimeoutError, TimeoutError)
    assert issubclass(ab.WorkflowTimeoutError, TimeoutError)
    assert not issubclass(ab.StepFailedError, TimeoutError)


@pytest.mark.anyio
async def test_the_first_failure_cancels_siblings_and_skips_the_rest(reg: ab.Registry) -> None:
    sibling_started = anyio.Event()
    cleaned: list[str] = []
    never: list[str] = []
    boom = StepBoom("boom", code=7)

    @reg.function
    async def sibling() -> None:
        try:
            sibling_started.set()
            await anyio.sleep_forever()
        finally:
            cleaned.append("sibling")

    @reg.function
    async def early() -> str:
        return "early output"

    @reg.function
    async def failing() -> None:
        await sibling_started.wait()
        raise boom

    @reg.function
    async def later() -> None:
        never.append("ran")

    wf = build(
        {"id": "sibling", "function": "sibling"},
        {"id": "early", "function": "early"},
        {"id": "failing", "function": "failing", "depends_on": ["early"]},
        {"id": "after_failing", "function": "later", "depends_on": ["failing"]},
        {"id": "after_sibling", "function": "later", "depends_on": ["sibling"]},
        {"id": "deeper", "function": "later", "depends_on": ["after_sibling"]},
    )
    with anyio.fail_after(10), pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(wf, registry=reg)

    error = caught.value
    assert error.step_id == "failing"
    assert "failing" in str(error)
    assert "boom" in str(error), "the message says what went wrong"
    assert error.__cause__ is boom
    assert error.__cause__.code == 7

    result = error.result
    assert isinstance(result, ab.WorkflowResult)
    assert result.status == "failed"
    assert result.error is not None
    assert result.steps["failing"].status == "failed"
    assert result.steps["failing"].error is boom
    assert result.steps["failing"].attempts == 1
    assert result.steps["sibling"].status == "cancelled"
    assert result.steps["early"].status == "succeeded"
    assert result.steps["early"].output == "early output"
    for step_id in ("after_failing", "after_sibling", "deeper"):
        assert result.steps[step_id].status == "skipped", step_id
        assert result.steps[step_id].started_at is None
    assert cleaned == ["sibling"], "the cancelled sibling's finally block must run"
    assert never == []


def test_a_failure_crosses_the_sync_entry_point_with_its_type(reg: ab.Registry) -> None:
    @reg.function
    def lookup() -> None:
        raise KeyError("missing")

    @reg.function
    async def alookup() -> None:
        raise StepBoom("async boom", code=3)

    with pytest.raises(ab.StepFailedError) as caught:
        ab.run_workflow(build({"id": "lookup", "function": "lookup"}), registry=reg)
    assert caught.value.step_id == "lookup"
    assert type(caught.value.__cause__) is KeyError
    assert caught.value.__cause__.args == ("missing",)

    with pytest.raises(ab.StepFailedError) as caught:
        ab.Runtime(reg).run(build({"id": "a", "function": "alookup"}))
    assert type(caught.value.__cause__) is StepBoom
    assert caught.value.__cause__.code == 3
    assert caught.value.result.steps["a"].status == "failed"


@pytest.mark.anyio
async def test_an_async_step_timeout(reg: ab.Registry) -> None:
    cleaned: list[bool] = []

    @reg.function
    async def hang() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append(True)

    wf = build({"id": "hang", "function": "hang", "timeout": 0.05})
    with anyio.fail_after(10), pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(wf, registry=reg)

    cause = caught.value.__cause__
    assert isinstance(cause, ab.StepTimeoutError)
    assert isinstance(cause, TimeoutError)
    assert cause.step_id == "hang"
    assert cause.timeout == pytest.approx(0.05)
    assert caught.value.step_id == "hang"
    step = caught.value.result.steps["hang"]
    assert step.status == "timed_out"
    assert isinstance(step.error, ab.StepTimeoutError)
    assert step.attempts == 1
    assert caught.value.result.status == "failed"
    assert cleaned == [True]


class Stuck:
    """A blocking step that ignores everything until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exited = threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        try:
            self.release.wait(20)
        finally:
            self.exited.set()
        return "too late"


@pytest.mark.anyio
async def test_a_sync_step_that_times_out_is_abandoned(reg: ab.Registry) -> None:
    stuck = Stuck()
    reg.register("function", "stuck", stuck)
    wf = build({"id": "stuck", "function": "stuck", "timeout": 0.1})
    try:
        with anyio.fail_after(10), pytest.raises(ab.StepFailedError) as caught:
            await ab.run_workflow_async(wf, registry=reg)
        assert stuck.entered.is_set()
        assert not stuck.exited.is_set(), "the run must return while the thread still blocks"
        assert isinstance(caught.value.__cause__, ab.StepTimeoutError)
        assert caught.value.result.steps["stuck"].status == "timed_out"
    finally:
        stuck.release.set()
    assert stuck.exited.wait(10)


def test_a_sync_step_that_times_out_is_abandoned_from_sync_code(reg: ab.Registry) -> None:
    stuck = Stuck()
    reg.register("function", "stuck", stuck)
    wf = build({"id": "stuck", "function": "stuck", "timeout": 0.1})
    try:
        with pytest.raises(ab.StepFailedError) as caught:
            ab.run_workflow(wf, registry=reg)
        assert not stuck.exited.is_set()
        assert caught.value.result.steps["stuck"].status == "timed_out"
    finally:
        stuck.release.set()
    assert stuck.exited.wait(10)


class Flaky:
    """Fails ``failures`` times, then returns ``"ok"``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"try {self.calls}")
        return "ok"


@pytest.mark.anyio
async def test_retries_until_success(reg: ab.Registry) -> None:
    flaky = Flaky(failures=2)
    reg.register("tool", "flaky", flaky)
    wf = build({"id": "f", "tool": "flaky", "retries": 2})

    events = await collect(ab.Runtime(reg).stream(wf))
    result = events[-1].result
    step = result.steps["f"]
    assert (step.status, step.output, step.attempts) == ("succeeded", "ok", 3)
    assert step.error is None
    assert flaky.calls == 3

    retrying = [e for e in events if isinstance(e, ab.StepRetrying)]
    assert [e.attempt for e in retrying] == [1, 2]
    assert [str(e.error) for e in retrying] == ["try 1", "try 2"]
    assert all(isinstance(e.error, ConnectionError) for e in retrying)
    assert all((e.step_id, e.kind) == ("f", "tool") for e in retrying)
    started = [e.attempt for e in events if isinstance(e, ab.StepStarted)]
    assert started == [1, 2, 3]


def test_retries_from_sync_code(reg: ab.Registry) -> None:
    flaky = Flaky(failures=2)
    reg.register("function", "flaky", flaky)
    result = ab.run_workflow(build({"id": "f", "function": "flaky", "retries": 2}), registry=reg)
    assert result.steps["f"].attempts == 3
    assert result.steps["f"].status == "succeeded"


@pytest.mark.anyio
async def test_retries_run_out(reg: ab.Registry) -> None:
    flaky = Flaky(failures=5)
    reg.register("function", "flaky", flaky)
    wf = build({"id": "f", "function": "flaky", "retries": 1})
    with pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(wf, registry=reg)
    assert flaky.calls == 2
    assert str(caught.value.__cause__) == "try 2", "the cause is the last attempt's error"
    assert caught.value.result.steps["f"].attempts == 2
    assert caught.value.result.steps["f"].status == "failed"


@pytest.mark.anyio
async def test_retry_delay_doubles_per_attempt(reg: ab.Registry) -> None:
    reg.register("function", "flaky", Flaky(failures=10))
    wf = build({"id": "f", "function": "flaky", "retries": 3, "retry_delay": 0.01})
    events = await collect(ab.Runtime(reg).stream(wf))
    delays = [e.delay for e in events if isinstance(e, ab.StepRetrying)]
    assert delays == pytest.approx([0.01, 0.02, 0.04])
    result = events[-1].result
    assert result.status == "failed"
    assert result.steps["f"].attempts == 4


@pytest.mark.anyio
async def test_no_delay_by_default(reg: ab.Registry) -> None:
    reg.register("function", "flaky", Flaky(failures=1))
    events = await collect(
        ab.Runtime(reg).stream(build({"id": "f", "function": "flaky", "retries": 1}))
    )
    assert [e.delay for e in events if isinstance(e, ab.StepRetrying)] == [0]


@pytest.mark.anyio
async def test_retries_apply_to_timeouts(reg: ab.Registry) -> None:
    calls: list[int] = []

    @reg.function
    async def slow_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            await anyio.sleep_forever()
        return "second time lucky"

    wf = build({"id": "s", "function": "slow_once", "timeout": 0.05, "retries": 1})
    events = await collect(ab.Runtime(reg).stream(wf))
    step = events[-1].result.steps["s"]
    assert (step.status, step.output, step.attempts) == ("succeeded", "second time lucky", 2)
    retrying = [e for e in events if isinstance(e, ab.StepRetrying)]
    assert len(retrying) == 1
    assert isinstance(retrying[0].error, ab.StepTimeoutError)


@pytest.mark.anyio
async def test_cancellation_is_not_retried(reg: ab.Registry) -> None:
    started = anyio.Event()
    calls: list[int] = []

    @reg.function
    async def patient() -> None:
        calls.append(1)
        started.set()
        await anyio.sleep_forever()

    @reg.function
    async def failing() -> None:
        await started.wait()
        raise ValueError("stop")

    wf = build(
        {"id": "patient", "function": "patient", "retries": 3},
        {"id": "failing", "function": "failing"},
    )
    with anyio.fail_after(10):
        events = await collect(ab.Runtime(reg).stream(wf))
    result = events[-1].result
    assert result.steps["patient"].status == "cancelled"
    assert result.steps["patient"].attempts == 1
    assert calls == [1]
    assert not [e for e in events if isinstance(e, ab.StepRetrying)]


def fail_slow_workflow(reg: ab.Registry) -> ab.Workflow:
    failed = threading.Event()

    @reg.function
    async def bad() -> None:
        failed.set()
        raise ValueError("bad")

    @reg.function
    async def good() -> str:
        while not failed.is_set():
            await anyio.lowlevel.checkpoint()
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        return "good"

    @reg.function
    async def child(v: object = None) -> str:
        return f"child of {v}"

    return build(
        {"id": "bad", "function": "bad"},
        {"id": "good", "function": "good"},
        {"id": "good_child", "function": "child", "inputs": {"v": "${steps.good.output}"}},
        {"id": "bad_child", "function": "child", "inputs": {"v": "${steps.bad.output}"}},
        {"id": "bad_grandchild", "function": "child", "depends_on": ["bad_child"]},
    )


def check_fail_slow(result: ab.WorkflowResult) -> None:
    assert result.status == "failed"
    statuses = {step_id: step.status for step_id, step in result.steps.items()}
    assert statuses == {
        "bad": "failed",
        "good": "succeeded",
        "good_child": "succeeded",
        "bad_child": "skipped",
        "bad_grandchild": "skipped",
    }
    assert result.steps["good_child"].output == "child of good"


@pytest.mark.anyio
async def test_without_fail_fast_independent_branches_finish(reg: ab.Registry) -> None:
    wf = fail_slow_workflow(reg)
    with anyio.fail_after(10), pytest.raises(ab.StepFailedError) as caught:
        await ab.Runtime(reg, fail_fast=False).run_async(wf)
    assert caught.value.step_id == "bad"
    assert isinstance(caught.value.__cause__, ValueError)
    check_fail_slow(caught.value.result)

    events = await collect(ab.Executor(wf, reg, fail_fast=False).stream())
    check_fail_slow(events[-1].result)


def test_without_fail_fast_from_sync_code(reg: ab.Registry) -> None:
    wf = fail_slow_workflow(reg)
    with pytest.raises(ab.StepFailedError) as caught:
        ab.Executor(wf, reg, fail_fast=False).run()
    check_fail_slow(caught.value.result)


def hanging_workflow(reg: ab.Registry, cleaned: list[str]) -> ab.Workflow:
    @reg.function
    async def hang() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append("hang")

    @reg.function
    async def quick() -> str:
        return "quick"

    return build(
        {"id": "quick", "function": "quick"},
        {"id": "hang", "function": "hang"},
        {"id": "after", "function": "quick", "depends_on": ["hang"]},
    )


def check_run_timeout(error: ab.WorkflowTimeoutError, cleaned: list[str]) -> None:
    assert isinstance(error, TimeoutError)
    assert error.timeout == pytest.approx(0.1)
    result = error.result
    assert result.status == "timed_out"
    assert result.steps["quick"].status == "succeeded"
    assert result.steps["hang"].status in ("cancelled", "timed_out")
    assert result.steps["after"].status == "skipped"
    assert cleaned == ["hang"]


@pytest.mark.anyio
async def test_a_run_timeout(reg: ab.Registry) -> None:
    cleaned: list[str] = []
    wf = hanging_workflow(reg, cleaned)
    with anyio.fail_after(10), pytest.raises(ab.WorkflowTimeoutError) as caught:
        await ab.run_workflow_async(wf, registry=reg, timeout=0.1)
    check_run_timeout(caught.value, cleaned)

    cleaned.clear()
    with anyio.fail_after(10), pytest.raises(ab.WorkflowTimeoutError) as caught:
        await ab.Runtime(reg).run_async(wf, timeout=0.1)
    check_run_timeout(caught.value, cleaned)


def test_a_run_timeout_from_sync_code(reg: ab.Registry) -> None:
    cleaned: list[str] = []
    wf = hanging_workflow(reg, cleaned)
    with pytest.raises(ab.WorkflowTimeoutError) as caught:
        ab.run_workflow(wf, registry=reg, timeout=0.1)
    check_run_timeout(caught.value, cleaned)

    cleaned.clear()
    with pytest.raises(ab.WorkflowTimeoutError) as caught:
        ab.Executor(wf, reg).run(timeout=0.1)
    check_run_timeout(caught.value, cleaned)


@pytest.mark.anyio
async def test_an_expression_that_misses_at_run_time_fails_its_step(reg: ab.Registry) -> None:
    called: list[object] = []

    @reg.function
    async def source() -> dict[str, int]:
        return {"count": 1}

    @reg.function
    async def sink(value: object) -> None:
        called.append(value)

    wf = build(
        {"id": "src", "function": "source"},
        {"id": "use", "function": "sink", "inputs": {"value": "${steps.src.output.total}"}},
    )
    with anyio.fail_after(10), pytest.raises(ab.StepFailedError) as caught:
        await ab.run_workflow_async(wf, registry=reg)

    assert caught.value.step_id == "use"
    assert isinstance(caught.value.__cause__, ab.ExpressionError)
    assert "'total'" in str(caught.value.__cause__)
    assert "'count'" in str(caught.value.__cause__), "the message lists the keys there are"
    assert "before its first attempt" in str(caught.value)
    step = caught.value.result.steps["use"]
    assert (step.status, step.attempts) == ("failed", 0)
    assert called == []
