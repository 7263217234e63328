"""The plan: a workflow bound to its callables, in the shape a run walks it."""

from __future__ import annotations

import functools
from typing import Any

from agentbridge.runtime._plan import Plan

from ._helpers import build


async def async_fn(**_: Any) -> None:
    return None


def sync_fn(**_: Any) -> None:
    return None


class AsyncCallable:
    async def __call__(self, **_: Any) -> None:
        return None


def test_the_graph_of_a_diamond() -> None:
    workflow = build(
        {"id": "top", "function": "f"},
        {"id": "left", "function": "f", "depends_on": ["top"]},
        {"id": "right", "function": "f", "depends_on": ["top"]},
        {"id": "bottom", "function": "f", "depends_on": ["left", "right"]},
        {"id": "alone", "function": "f"},
    )
    plan = Plan(workflow, {step.id: sync_fn for step in workflow.steps})
    assert plan.roots == ["top", "alone"]
    assert plan.dependents == {
        "top": ["left", "right"],
        "left": ["bottom"],
        "right": ["bottom"],
        "bottom": [],
        "alone": [],
    }
    assert plan.indegree == {"top": 0, "left": 1, "right": 1, "bottom": 2, "alone": 0}
    assert plan.calls["bottom"].step is workflow.steps_by_id["bottom"]
    assert plan.calls["bottom"].fn is sync_fn


def test_which_callables_are_async() -> None:
    targets = {
        "a": async_fn,
        "b": sync_fn,
        "c": functools.partial(functools.partial(async_fn)),
        "d": AsyncCallable(),
        "e": functools.partial(sync_fn),
    }
    workflow = build(*({"id": step_id, "function": "f"} for step_id in targets))
    plan = Plan(workflow, targets)
    assert {step_id: call.is_async for step_id, call in plan.calls.items()} == {
        "a": True,
        "b": False,
        "c": True,
        "d": True,
        "e": False,
    }
