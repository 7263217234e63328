"""The bridge's options on the runtime's entry points: backend= checked when built, and
the bridge's default timeout kept apart from a run's own timeout."""

from __future__ import annotations

import math

import anyio
import pytest

import agentbridge as ab

from ._helpers import build

pytestmark = pytest.mark.timeout(30)

#: The bridge's default timeout in these tests, far shorter than the step below.
SHORT = 0.05


@pytest.fixture
def slow_wf(reg: ab.Registry) -> ab.Workflow:
    """One async step that outlasts :data:`SHORT` several times over."""

    @reg.function
    async def slow() -> str:
        await anyio.sleep(SHORT * 6)
        return "done"

    return build({"id": "slow", "function": "slow"})


@pytest.fixture(params=["configure", "environment"])
def short_bridge_timeout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge's default timeout set to :data:`SHORT`, one way or the other."""
    if request.param == "configure":
        ab.configure(timeout=SHORT)
    else:
        monkeypatch.setenv("AGENTBRIDGE_SYNC_TIMEOUT", str(SHORT))


@pytest.mark.usefixtures("short_bridge_timeout")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_run_with_its_own_timeout_ignores_the_bridge_default(
    reg: ab.Registry, slow_wf: ab.Workflow, backend: str
) -> None:
    result = ab.run_workflow(slow_wf, registry=reg, backend=backend, timeout=5)
    assert result.steps["slow"].output == "done"
    runtime = ab.Runtime(reg, backend=backend)
    assert runtime.run(slow_wf, timeout=5).steps["slow"].output == "done"
    events = list(runtime.stream_sync(slow_wf, timeout=5))
    assert isinstance(events[-1], ab.RunFinished)
    assert events[-1].result.status == "succeeded"


@pytest.mark.usefixtures("short_bridge_timeout")
@pytest.mark.anyio
async def test_from_a_worker_thread_too(reg: ab.Registry, slow_wf: ab.Workflow) -> None:
    result = await ab.to_thread(lambda: ab.run_workflow(slow_wf, registry=reg, timeout=5))
    assert result.steps["slow"].output == "done"


@pytest.mark.usefixtures("short_bridge_timeout")
def test_a_run_without_a_timeout_is_bounded_by_the_bridge_default(
    reg: ab.Registry, slow_wf: ab.Workflow
) -> None:
    with pytest.raises(ab.BridgeTimeoutError) as info:
        ab.run_workflow(slow_wf, registry=reg)
    assert info.value.timeout == pytest.approx(SHORT)


def test_an_infinite_run_timeout_is_no_deadline(reg: ab.Registry, slow_wf: ab.Workflow) -> None:
    ab.configure(timeout=SHORT)
    for timeout in (math.inf, 1e300, 10**400):
        assert ab.run_workflow(slow_wf, registry=reg, timeout=timeout).status == "succeeded"


@pytest.mark.anyio
async def test_an_infinite_run_timeout_async(reg: ab.Registry, slow_wf: ab.Workflow) -> None:
    result = await ab.run_workflow_async(slow_wf, registry=reg, timeout=math.inf)
    assert result.status == "succeeded"


def test_a_bad_backend_is_refused_when_built(reg: ab.Registry) -> None:
    wf = build({"id": "a", "function": "a"})

    @reg.function
    async def a() -> None:
        pass

    with pytest.raises(ab.ConfigurationError, match="bogus"):
        ab.Executor(wf, reg, backend="bogus")
    with pytest.raises(ab.ConfigurationError, match="bogus"):
        ab.Runtime(reg, backend="bogus")
    with pytest.raises(ab.ConfigurationError, match="bogus"):
        ab.run_workflow(wf, registry=reg, backend="bogus")
    assert ab.Executor(wf, reg, backend=" Trio ").run().status == "succeeded"


@pytest.mark.anyio
async def test_a_bad_backend_is_refused_by_the_async_api_too(reg: ab.Registry) -> None:
    @reg.function
    async def a() -> None:
        pass

    # The async API never uses the backend, so only building can catch the typo.
    with pytest.raises(ab.ConfigurationError, match="bogus"):
        await ab.Runtime(reg, backend="bogus").run_async(build({"id": "a", "function": "a"}))
