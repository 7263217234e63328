"""What is retried: ``retry_on:`` names, resolved safely, and the default that skips errors
another attempt would only repeat."""

from __future__ import annotations

from typing import Any

import pytest

import agentbridge as ab

from ._helpers import build, collect

pytestmark = pytest.mark.timeout(30)


class Transient(Exception):
    """An error of the test's own, reachable by import path or registration."""


class Failing:
    """Raises the next of ``errors`` on each call, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def run(registry: ab.Registry, step: dict[str, Any], **options: Any) -> ab.WorkflowResult:
    events = await collect(ab.Runtime(registry, **options).stream(build(step)))
    result: ab.WorkflowResult = events[-1].result
    return result


@pytest.mark.parametrize(
    "error",
    [TypeError("bad call"), ValueError("bad data"), KeyError("k"), AttributeError("a")],
    ids=["TypeError", "ValueError", "KeyError", "AttributeError"],
)
@pytest.mark.anyio
async def test_the_default_does_not_retry_what_would_fail_again(error: Exception) -> None:
    registry = ab.Registry()
    failing = Failing(error)
    registry.register("tool", "f", failing)
    result = await run(registry, {"id": "f", "tool": "f", "retries": 3})
    assert (result.steps["f"].status, result.steps["f"].attempts) == ("failed", 1)
    assert result.steps["f"].error is error
    assert failing.calls == 1


@pytest.mark.anyio
async def test_the_default_retries_other_errors_and_timeouts() -> None:
    registry = ab.Registry()
    failing = Failing(ConnectionError("down"), RuntimeError("flaky"), TimeoutError("slow"))
    registry.register("tool", "f", failing)
    result = await run(registry, {"id": "f", "tool": "f", "retries": 3})
    assert (result.steps["f"].status, result.steps["f"].attempts) == ("succeeded", 4)


@pytest.mark.anyio
async def test_retry_on_retries_only_what_it_names() -> None:
    registry = ab.Registry()
    failing = Failing(ValueError("first"), ConnectionError("then this"))
    registry.register("tool", "f", failing)
    step = {"id": "f", "tool": "f", "retries": 5, "retry_on": ["ValueError", "TimeoutError"]}
    result = await run(registry, step)
    assert result.steps["f"].attempts == 2, "ValueError retried, ConnectionError not"
    assert isinstance(result.steps["f"].error, ConnectionError)


@pytest.mark.anyio
async def test_retry_on_a_single_name_and_agentbridge_names() -> None:
    registry = ab.Registry()
    failing = Failing(ab.WorkerCrashedError("crash"), ab.WorkerCrashedError("again"))
    registry.register("tool", "f", failing)
    result = await run(
        registry, {"id": "f", "tool": "f", "retries": 1, "retry_on": "agentbridge.RunnerError"}
    )
    assert (result.steps["f"].status, failing.calls) == ("failed", 2)


@pytest.mark.anyio
async def test_registered_and_imported_types() -> None:
    registry = ab.Registry()
    registry.register_error(Transient)
    registry.register_error(Transient, "Alias")
    for name, options in [
        ("Transient", {}),
        ("Alias", {}),
        (f"{__name__}:Transient", {"allow_imports": [__name__]}),
    ]:
        failing = Failing(Transient("x"))
        registry.register("tool", "f", failing)
        step = {"id": "f", "tool": "f", "retries": 1, "retry_on": [name]}
        assert (await run(registry, step, **options)).succeeded, name


def problems(step: dict[str, Any], registry: ab.Registry | None = None) -> list[str]:
    registry = registry or ab.Registry()
    registry.register("tool", "f", Failing())
    with pytest.raises(ab.WorkflowValidationError) as caught:
        build(step).validate(registry)
    return [problem.message for problem in caught.value.problems]


def test_names_that_do_not_resolve_are_validation_problems() -> None:
    found = problems(
        {
            "id": "f",
            "tool": "f",
            "retry_on": [
                "Nope",
                "KeyboardInterrupt",
                "print",
                f"{__name__}:Transient",
                "os:error",
            ],
        }
    )
    assert len(found) == 5, found
    assert "unknown exception type 'Nope'" in found[0]
    assert "register_error" in found[0]
    assert "not a subclass of Exception" in found[1]
    assert "unknown exception type 'print'" in found[2]
    assert "importing is not allowed" in found[3]
    assert "allow_imports" in found[4]


def test_malformed_retry_on_is_refused_at_load() -> None:
    for bad in [3, {"TimeoutError": 1}, ["a b"], [None]]:
        with pytest.raises(ab.WorkflowValidationError, match="retry_on"):
            build({"id": "f", "tool": "f", "retry_on": bad})


def test_register_error_refuses_non_exceptions() -> None:
    registry = ab.Registry()
    with pytest.raises(ab.ConfigurationError, match="subclass of Exception"):
        registry.register_error(KeyboardInterrupt)  # type: ignore[arg-type]
    with pytest.raises(ab.ConfigurationError, match="non-empty string"):
        registry.register_error(Transient, "")
    assert registry.lookup_error("Transient") is None
