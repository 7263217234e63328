"""Resuming a run re-runs only what is needed, and refuses when the results would lie."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import agentbridge as ab

from .._helpers import build, collect

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Steps:
    """Counting steps; ``fail`` names the steps that raise, ``value`` what ``src`` returns."""

    def __init__(self, reg: ab.Registry) -> None:
        self.calls: Counter[str] = Counter()
        self.fail: set[str] = set()
        self.value: Any = 1
        self.keys: list[tuple[str, int]] = []

        @reg.function
        async def src() -> Any:
            return self._ran("src", self.value)

        @reg.function
        def double(v: int) -> int:
            return int(self._ran("double", v * 2))

        @reg.function
        async def add(v: int, w: int) -> int:
            return int(self._ran("add", v + w))

    async def fail_once(self, runtime: ab.Runtime, name: str, *args: Any, run_id: str) -> None:
        """Run with step function ``name`` failing: the run fails; then heal it."""
        self.fail = {name}
        with pytest.raises(ab.StepFailedError):
            await runtime.run_async(*args, run_id=run_id)
        self.fail = set()

    def _ran(self, name: str, value: Any) -> Any:
        self.calls[name] += 1
        context = ab.current_step()
        assert context is not None
        self.keys.append((context.idempotency_key, context.attempt))
        if name in self.fail:
            raise RuntimeError(f"{name} fails")
        return value


@pytest.fixture
def steps(reg: ab.Registry) -> Steps:
    return Steps(reg)


def chain(**extra: Any) -> ab.Workflow:
    """src -> double -> add(double, inputs.w)."""
    return build(
        {"id": "a", "function": "src", **extra.get("a", {})},
        {
            "id": "b",
            "function": "double",
            "inputs": {"v": "${steps.a.output}"},
            **extra.get("b", {}),
        },
        {
            "id": "c",
            "function": "add",
            "inputs": {"v": "${steps.b.output}", "w": "${inputs.w}"},
            **extra.get("c", {}),
        },
        name="chain",
        inputs=["w"],
    )


async def test_a_failed_run_resumes_from_its_last_good_step(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await steps.fail_once(runtime, "add", chain(), {"w": 5}, run_id="r")
    events = await collect(runtime.stream(chain(), {"w": 5}, run_id="r"))
    result = events[-1].result  # type: ignore[attr-defined]
    assert result.succeeded
    assert result.outputs == {"a": 1, "b": 2, "c": 7}
    assert {k: s.reused for k, s in result.steps.items()} == {"a": True, "b": True, "c": False}
    assert steps.calls == Counter(src=1, double=1, add=2)
    started = [e.step_id for e in events if isinstance(e, ab.StepStarted)]
    finished = {e.step_id: e.result.reused for e in events if isinstance(e, ab.StepFinished)}
    assert started == ["c"]
    assert finished == {"a": True, "b": True, "c": False}
    stored = await store.get_run("r")
    assert stored is not None
    assert stored.status == "succeeded"
    assert [(h.step_id, h.status) for h in await store.history("r")][-2:] == [
        ("c", "failed"),
        ("c", "succeeded"),
    ]


async def test_a_finished_run_returns_its_stored_result_and_runs_nothing(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    first = await runtime.run_async(chain(), {"w": 1}, run_id="done")
    again = await runtime.run_async(chain(), {"w": 1}, run_id="done")
    assert steps.calls == Counter(src=1, double=1, add=1)
    assert again.outputs == first.outputs == {"a": 1, "b": 2, "c": 3}
    assert again.run_id == "done"
    assert again.duration == pytest.approx(first.duration)
    assert all(step.reused for step in again.steps.values())
    assert [step.output for step in again.steps.values()] == [1, 2, 3]
    events = await collect(runtime.stream(chain(), {"w": 1}, run_id="done"))
    assert [type(e).__name__ for e in events] == [
        "RunStarted",
        *["StepFinished"] * 3,
        "RunFinished",
    ]
    assert steps.calls == Counter(src=1, double=1, add=1)


async def test_a_new_version_of_a_step_runs_it_and_what_its_output_changed(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    steps.fail = {"add"}
    with pytest.raises(ab.StepFailedError):
        await runtime.run_async(chain(), {"w": 0}, run_id="v")
    steps.fail, steps.value = set(), 4
    result = await runtime.run_async(chain(a={"version": "2"}), {"w": 0}, run_id="v")
    # a ran again (new version) with a new output, so b's inputs changed: it ran too.
    assert result.outputs == {"a": 4, "b": 8, "c": 8}
    assert not any(step.reused for step in result.steps.values())


async def test_an_upstream_output_that_did_not_change_keeps_its_dependents_reused(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await steps.fail_once(runtime, "add", chain(a={"persist": False}), {"w": 0}, run_id="p")
    result = await runtime.run_async(chain(a={"persist": False}), {"w": 0}, run_id="p")
    assert result.steps["a"].not_stored == "the step has persist: false"
    assert {k: s.reused for k, s in result.steps.items()} == {"a": False, "b": True, "c": False}
    assert steps.calls == Counter(src=2, double=1, add=2)
    stored = await store.get_run("p")
    assert stored is not None
    assert stored.steps["a"].output is None


async def test_the_idempotency_key_is_the_same_for_every_attempt_and_resume(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await steps.fail_once(runtime, "add", chain(c={"retries": 1}), {"w": 0}, run_id="k")
    await runtime.run_async(chain(c={"retries": 1}), {"w": 0}, run_id="k")
    assert steps.keys == [("k:a", 1), ("k:b", 1), ("k:c", 1), ("k:c", 2), ("k:c", 1)]
    assert ab.current_step() is None


async def test_changed_inputs_refuse_the_resume_and_name_the_input(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await runtime.run_async(chain(), {"w": 1}, run_id="i")
    with pytest.raises(ab.ResumeError, match=r"inputs changed \('w' differ.*another run id"):
        await runtime.run_async(chain(), {"w": 2}, run_id="i")
    other = build({"id": "a", "function": "src"}, name="other")
    with pytest.raises(ab.ResumeError, match="it ran workflow 'chain', not 'other'"):
        await runtime.run_async(other, run_id="i")
    assert steps.calls == Counter(src=1, double=1, add=1)
    # The refused attempts released the run: it can still be resumed as it was.
    assert (await runtime.run_async(chain(), {"w": 1}, run_id="i")).succeeded


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ((1, 2), "holds a tuple"),
        ({1: "x"}, "has the int key 1"),
        (float("nan"), "holds the float nan"),
        ({"deep": [{"set": {1}}]}, "holds a set"),
    ],
)
async def test_an_output_that_is_not_json_succeeds_unstored_and_runs_again(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps, value: Any, reason: str
) -> None:
    runtime = ab.Runtime(reg, store=store)
    workflow = build({"id": "a", "function": "src"}, name="one")
    steps.value = value
    first = await runtime.run_async(workflow, run_id="j")
    assert first.succeeded
    assert first.steps["a"].output is value
    assert reason in (first.steps["a"].not_stored or "")
    second = await runtime.run_async(workflow, run_id="j")
    assert second.steps["a"].output is value
    assert not second.steps["a"].reused
    assert steps.calls["src"] == 2


async def test_lone_surrogates_and_unicode_survive_the_store(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    steps.value = {"text": "caf\u00e9 \ud83d half-pair \U0001f600", "n": [1, 2.5, None, True]}
    await runtime.run_async(build({"id": "a", "function": "src"}), run_id="s")
    again = await runtime.run_async(build({"id": "a", "function": "src"}), run_id="s")
    assert again.steps["a"].reused
    assert again.outputs == {"a": steps.value}
    assert steps.calls["src"] == 1


async def test_an_output_over_max_output_is_not_stored(
    reg: ab.Registry, db: Path, steps: Steps
) -> None:
    store = ab.SqliteRunStore(db, max_output=100)
    runtime = ab.Runtime(reg, store=store)
    steps.value = "x" * 200
    result = await runtime.run_async(build({"id": "a", "function": "src"}), run_id="h")
    assert "202 characters of JSON, more than the store's max_output of 100" in str(
        result.steps["a"].not_stored
    )
    assert (
        not (await runtime.run_async(build({"id": "a", "function": "src"}), run_id="h"))
        .steps["a"]
        .reused
    )
    store.close()


async def test_resume_reads_the_stored_inputs_and_workflow_file(
    reg: ab.Registry,
    store: ab.SqliteRunStore,
    steps: Steps,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(
        "name: chain\ninputs: [w]\nsteps:\n"
        "  - {id: a, function: src}\n"
        "  - {id: b, function: double, inputs: {v: '${steps.a.output}'}}\n"
        "  - {id: c, function: add, inputs: {v: '${steps.b.output}', w: '${inputs.w}'}}\n"
    )
    runtime = ab.Runtime(reg, store=store)
    monkeypatch.chdir(tmp_path)
    await steps.fail_once(runtime, "double", "chain.yaml", {"w": 3}, run_id="f")
    monkeypatch.chdir(tmp_path.parent)  # the resume starts elsewhere: the path is absolute
    result = await runtime.resume_async("f")
    assert result.outputs == {"a": 1, "b": 2, "c": 5}
    assert result.steps["a"].reused
    with pytest.raises(ab.ResumeError, match="there is no run 'nope'"):
        await runtime.resume_async("nope")


async def test_a_run_given_as_a_mapping_needs_its_workflow_to_resume(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    await steps.fail_once(runtime, "double", chain(), {"w": 3}, run_id="m")
    with pytest.raises(ab.ResumeError, match=r"pass resume\('m', workflow\)"):
        await runtime.resume_async("m")
    resumed = await runtime.resume_async("m", chain())
    assert [resumed.outputs["c"], steps.calls["src"], steps.calls["double"]] == [5, 1, 2]


def test_the_sync_api_resumes_too(reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps) -> None:
    runtime = ab.Runtime(reg, store=store)
    steps.fail = {"add"}
    with pytest.raises(ab.StepFailedError):
        runtime.run(chain(), {"w": 1}, run_id="y")
    steps.fail = set()
    result = runtime.resume("y", chain())
    assert result.succeeded
    assert [s.reused for s in result.steps.values()] == [True, True, False]
    with pytest.raises(ab.ConfigurationError, match="resume needs a run store"):
        ab.Runtime(reg).resume("y")


async def test_a_for_each_step_is_reused_as_a_whole_and_a_skipped_step_is_recorded(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    runtime = ab.Runtime(reg, store=store)
    steps.value = [1, 2, 3]
    workflow = build(
        {"id": "a", "function": "src"},
        {
            "id": "b",
            "function": "double",
            "for_each": "${steps.a.output}",
            "inputs": {"v": "${item}"},
        },
        {
            "id": "c",
            "function": "add",
            "inputs": {"v": 1, "w": "${inputs.w}"},
            "when": "${inputs.w} == 5",
        },
        name="fan",
        inputs=["w"],
    )
    first = await runtime.run_async(workflow, {"w": 0}, run_id="fe")
    assert first.outputs["b"] == [2, 4, 6]
    assert first.steps["c"].status is ab.StepStatus.SKIPPED
    stored = await store.get_run("fe")
    assert stored is not None
    assert (stored.steps["b"].status, stored.steps["c"].status) == ("succeeded", "skipped")
    # Not finished (c never succeeded): a resume reuses a and b, items and all.
    again = await runtime.run_async(workflow, {"w": 0}, run_id="fe")
    assert [again.steps["a"].reused, again.steps["b"].reused] == [True, True]
    assert again.outputs["b"] == [2, 4, 6]
    assert steps.calls == Counter(src=1, double=3)


async def test_inputs_that_cannot_be_evaluated_fail_the_step_as_in_any_run(
    reg: ab.Registry, store: ab.SqliteRunStore, steps: Steps
) -> None:
    steps.value = {"no": "field"}
    workflow = build(
        {"id": "a", "function": "src"},
        {"id": "b", "function": "double", "inputs": {"v": "${steps.a.output.missing}"}},
    )
    results = []
    for runtime, run_id in ((ab.Runtime(reg, store=store), "x"), (ab.Runtime(reg), None)):
        with pytest.raises(ab.StepFailedError) as raised:
            await runtime.run_async(workflow, run_id=run_id)
        results.append(raised.value.result)
    durable, plain = results
    for result in results:
        assert result.steps["b"].status is ab.StepStatus.FAILED
        assert isinstance(result.steps["b"].error, ab.ExpressionError)
    assert str(durable.steps["b"].error) == str(plain.steps["b"].error)
