"""Every entry point, given every workflow form, from every kind of host, behaves the same."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)

TEXT = """\
name: entry
inputs:
  n: {}
  suffix: {default: "!"}
steps:
  - id: fetch
    tool: fetch
    inputs: {n: "${inputs.n}"}
  - id: shout
    function: shout
    inputs: {text: "${steps.fetch.output.text}", suffix: "${inputs.suffix}"}
  - id: judge
    agent: judge
    inputs: {text: "${steps.shout.output}"}
outputs:
  text: "${steps.shout.output}"
  verdict: "${steps.judge.output}"
"""

EXPECTED = {"text": "ITEM 3!", "verdict": "loud"}


def text_workflow() -> ab.Workflow:
    return ab.Workflow.from_yaml_string(TEXT)


class Judge:
    async def run(self, text: str) -> str:
        return "loud" if text.isupper() or text.endswith("!") else "quiet"


@pytest.fixture
def steps(reg: ab.Registry) -> ab.Registry:
    @reg.tool
    async def fetch(n: int) -> dict[str, str]:
        await anyio.sleep(0)
        return {"text": f"item {n}"}

    @reg.function
    def shout(text: str, suffix: str) -> str:
        return text.upper() + suffix

    reg.register("agent", "judge", Judge())
    return reg


@pytest.fixture(params=["Workflow", "dict", "path", "str-path"])
def form(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Any:
    import yaml

    if request.param == "Workflow":
        return ab.Workflow.from_yaml_string(TEXT)
    if request.param == "dict":
        return yaml.safe_load(TEXT)
    path = tmp_path / "entry.yaml"
    path.write_text(TEXT, encoding="utf-8")
    return path if request.param == "path" else str(path)


SYNC_ENTRIES: dict[str, Callable[[Any, ab.Registry, dict[str, Any]], ab.WorkflowResult]] = {
    "run_workflow": lambda wf, reg, inputs: ab.run_workflow(wf, inputs, registry=reg),
    "Runtime.run": lambda wf, reg, inputs: ab.Runtime(reg).run(wf, inputs),
    "Executor.run": lambda wf, reg, inputs: ab.Executor(wf, reg).run(inputs),
    "Runtime.stream_sync": lambda wf, reg, inputs: (
        list(ab.Runtime(reg).stream_sync(wf, inputs))[-1].result
    ),
}


def in_plain_thread(call: Callable[[], Any]) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the call hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def in_asyncio_loop_thread(call: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return call()

    return in_plain_thread(lambda: asyncio.run(main()))


def in_trio_thread(call: Callable[[], Any]) -> Any:
    import trio

    async def main() -> Any:
        return call()

    return in_plain_thread(lambda: trio.run(main))


HOSTS = {
    "this-thread": lambda call: call(),
    "plain-thread": in_plain_thread,
    "asyncio-loop-thread": in_asyncio_loop_thread,
    "trio-loop-thread": in_trio_thread,
}


@pytest.mark.parametrize("entry", SYNC_ENTRIES.values(), ids=SYNC_ENTRIES.keys())
def test_sync_entry_points_and_forms(steps: ab.Registry, form: Any, entry: Any) -> None:
    result = entry(form, steps, {"n": 3})
    assert result.status == "succeeded"
    assert result.outputs == EXPECTED
    assert result.workflow == "entry"


@pytest.mark.parametrize("host", HOSTS.values(), ids=HOSTS.keys())
@pytest.mark.parametrize("entry", SYNC_ENTRIES.values(), ids=SYNC_ENTRIES.keys())
def test_sync_entry_points_in_every_host(steps: ab.Registry, host: Any, entry: Any) -> None:
    wf = ab.Workflow.from_yaml_string(TEXT)
    result = host(lambda: entry(wf, steps, {"n": 3}))
    assert result.outputs == EXPECTED


@pytest.mark.parametrize("host", HOSTS.values(), ids=HOSTS.keys())
def test_failures_cross_every_host(reg: ab.Registry, host: Any) -> None:
    @reg.function
    async def broken() -> None:
        raise LookupError("gone")

    wf = ab.Workflow.from_dict({"name": "f", "steps": [{"id": "b", "function": "broken"}]})
    with pytest.raises(ab.StepFailedError) as caught:
        host(lambda: ab.run_workflow(wf, registry=reg))
    assert type(caught.value.__cause__) is LookupError


@pytest.mark.anyio
async def test_async_entry_points_and_forms(steps: ab.Registry, form: Any) -> None:
    inputs = {"n": 3}
    results = [
        await ab.run_workflow_async(form, inputs, registry=steps),
        await ab.Runtime(steps).run_async(form, inputs),
        await ab.Executor(form, steps).run_async(inputs),
    ]
    events = [event async for event in ab.Runtime(steps).stream(form, inputs)]
    results.append(events[-1].result)
    for result in results:
        assert result.status == "succeeded"
        assert result.outputs == EXPECTED


@pytest.mark.anyio
async def test_sync_entry_points_from_a_worker_thread_of_the_loop(steps: ab.Registry) -> None:
    wf = ab.Workflow.from_yaml_string(TEXT)
    for entry in SYNC_ENTRIES.values():
        result = await anyio.to_thread.run_sync(entry, wf, steps, {"n": 3})
        assert result.outputs == EXPECTED
        result = await ab.to_thread(entry, wf, steps, {"n": 3})
        assert result.outputs == EXPECTED


def test_a_runtime_and_an_executor_are_reusable(steps: ab.Registry) -> None:
    wf = ab.Workflow.from_yaml_string(TEXT)
    runtime = ab.Runtime(steps)
    executor = ab.Executor(wf, steps)
    for n in (1, 2):
        assert runtime.run(wf, {"n": n}).outputs["text"] == f"ITEM {n}!"
        assert executor.run({"n": n, "suffix": "?"}).outputs["text"] == f"ITEM {n}?"
    assert executor.workflow == wf


def test_backend_choice_on_the_sync_entry_points(steps: ab.Registry, portal_backend: str) -> None:
    wf = ab.Workflow.from_yaml_string(TEXT)
    assert ab.run_workflow(wf, {"n": 3}, registry=steps, backend=portal_backend).outputs == EXPECTED
    assert ab.Runtime(steps, backend=portal_backend).run(wf, {"n": 3}).outputs == EXPECTED
    assert ab.Executor(wf, steps, backend=portal_backend).run({"n": 3}).outputs == EXPECTED


def test_the_default_registry_is_used_when_none_is_given() -> None:
    import uuid

    name = f"entry_{uuid.uuid4().hex}"

    @ab.function(name)
    async def answer() -> int:
        return 42

    data = {"name": "d", "steps": [{"id": "a", "function": name}]}
    assert ab.run_workflow(data).outputs == {"a": 42}
    assert ab.Runtime().run(data).outputs == {"a": 42}
    assert ab.Executor(data).run().outputs == {"a": 42}


@pytest.mark.anyio
async def test_the_default_registry_from_async_code() -> None:
    import uuid

    name = f"entry_{uuid.uuid4().hex}"
    ab.tool(name)(lambda: "sync default")
    data = {"name": "d", "steps": [{"id": "a", "tool": name}]}
    assert (await ab.run_workflow_async(data)).outputs == {"a": "sync default"}


def test_inputs_may_be_any_mapping(steps: ab.Registry) -> None:
    import types

    inputs = types.MappingProxyType({"n": 3})
    assert ab.run_workflow(text_workflow(), inputs, registry=steps).outputs == EXPECTED
