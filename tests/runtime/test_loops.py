"""One run, one loop: async steps share it; sync steps run in threads that go back to it."""

from __future__ import annotations

import contextvars
import threading

import anyio
import pytest

import agentbridge as ab

from ._helpers import build, loop_token

pytestmark = pytest.mark.timeout(30)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def probes(reg: ab.Registry) -> ab.Workflow:
    """Two parallel async steps, a dependent async step and a sync step reporting loops."""

    @reg.function
    async def where() -> object:
        return await loop_token()

    @reg.function
    def blocking() -> dict[str, object]:
        return {
            "thread": threading.get_ident(),
            "run_sync": ab.run_sync(loop_token),
            "nested": ab.run_workflow(build({"id": "w", "function": "where"}), registry=reg)
            .steps["w"]
            .output,
        }

    return build(
        {"id": "a", "function": "where"},
        {"id": "b", "function": "where"},
        {"id": "c", "function": "where", "depends_on": ["a", "b"]},
        {"id": "s", "function": "blocking"},
    )


@pytest.mark.anyio
async def test_async_api_runs_everything_on_the_callers_loop(reg: ab.Registry) -> None:
    host = await loop_token()
    result = await ab.run_workflow_async(probes(reg), registry=reg)

    for step_id in "abc":
        assert result.steps[step_id].output is host, step_id
    sync = result.steps["s"].output
    assert sync["thread"] != threading.get_ident(), "a sync step must run in a worker thread"
    assert sync["run_sync"] is host, "run_sync in a sync step goes back to the run's loop"
    assert sync["nested"] is host, "a nested run_workflow goes back to the run's loop"


@pytest.mark.anyio
async def test_runtime_and_executor_async_use_the_callers_loop(reg: ab.Registry) -> None:
    host = await loop_token()
    wf = probes(reg)
    for result in (
        await ab.Runtime(reg).run_async(wf),
        await ab.Executor(wf, reg).run_async(),
    ):
        assert {result.steps[s].output for s in "abc"} == {host}
        assert result.steps["s"].output["run_sync"] is host


def test_sync_api_runs_every_async_step_on_the_portals_loop(
    reg: ab.Registry, portal_backend: str
) -> None:
    result = ab.run_workflow(probes(reg), registry=reg, backend=portal_backend)
    portal = ab.run_sync(loop_token, backend=portal_backend)

    loops = {result.steps[step_id].output for step_id in "abc"}
    assert loops == {portal}, "every async step of a run shares one loop: the portal's"
    sync = result.steps["s"].output
    assert sync["thread"] != threading.get_ident()
    assert sync["run_sync"] is portal
    assert sync["nested"] is portal


def test_sync_api_on_trio(reg: ab.Registry) -> None:
    import sniffio

    @reg.function
    async def library() -> str:
        return sniffio.current_async_library()

    wf = build({"id": "a", "function": "library"}, {"id": "b", "function": "library"})
    assert ab.run_workflow(wf, registry=reg, backend="trio").outputs == {"a": "trio", "b": "trio"}
    assert ab.Runtime(reg, backend="trio").run(wf).outputs == {"a": "trio", "b": "trio"}
    assert ab.run_workflow(wf, registry=reg, backend="asyncio").outputs == {
        "a": "asyncio",
        "b": "asyncio",
    }


@pytest.mark.anyio
async def test_a_loop_bound_object_can_be_shared_between_steps(reg: ab.Registry) -> None:
    @reg.function
    async def make() -> anyio.Event:
        return anyio.Event()

    @reg.function
    async def use(event: anyio.Event) -> bool:
        event.set()
        await event.wait()
        return event.is_set()

    wf = build(
        {"id": "make", "function": "make"},
        {"id": "use", "function": "use", "inputs": {"event": "${steps.make.output}"}},
    )
    result = await ab.run_workflow_async(wf, registry=reg)
    assert result.steps["use"].output is True


def contextvar_workflow(reg: ab.Registry) -> ab.Workflow:
    @reg.function
    async def async_seen() -> str:
        return request_id.get()

    @reg.function
    def sync_seen() -> str:
        return request_id.get()

    return build({"id": "a", "function": "async_seen"}, {"id": "s", "function": "sync_seen"})


@pytest.mark.anyio
async def test_contextvars_reach_steps_async(reg: ab.Registry) -> None:
    wf = contextvar_workflow(reg)
    token = request_id.set("req-async")
    try:
        assert (await ab.run_workflow_async(wf, registry=reg)).outputs == {
            "a": "req-async",
            "s": "req-async",
        }
        assert (await ab.Runtime(reg).run_async(wf)).outputs["s"] == "req-async"
    finally:
        request_id.reset(token)


def test_contextvars_reach_steps_sync(reg: ab.Registry) -> None:
    wf = contextvar_workflow(reg)
    token = request_id.set("req-sync")
    try:
        assert ab.run_workflow(wf, registry=reg).outputs == {"a": "req-sync", "s": "req-sync"}
        assert ab.Executor(wf, reg).run().outputs == {"a": "req-sync", "s": "req-sync"}
    finally:
        request_id.reset(token)
