"""Workflow benchmarks (issue #3): what a workflow step costs beyond the step itself.

Two shapes, each with async and with sync no-op steps: a chain (every step waits for
the previous one) and a fan-out (all steps independent). Each graph runs three ways
side by side on the same asyncio host loop: as an agentbridge workflow (bound once by an
``Executor``, as LangGraph's graph is compiled once), as the plainest hand-written code
(awaits and ``gather`` for async steps; ``to_thread`` for sync ones), and as a LangGraph
``StateGraph``. A step's overhead is its time minus the plain version's, so it is
measured against a floor taken in the same rounds. One more row shows what
``run_workflow_async`` adds by loading, validating and binding the workflow every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import anyio
import anyio.to_thread
from _fixtures import Build, agentbridge_api, hosted_subject, noop, require, sync_noop
from _harness import Group, MaxOverhead, MaxOverheadRatio, MaxRatio, Row, Subject

__all__ = ("groups",)

Shape = Literal["chain", "fan-out"]
Kind = Literal["async", "sync"]
Run = Callable[[], Awaitable[object]]

#: Targets of issue #3.
ASYNC_OVERHEAD = 50e-6
SYNC_RATIO = 1.5
LANGGRAPH_OVERHEAD_RATIO = 1 / 5


@dataclass(frozen=True)
class Graph:
    """One benchmark graph: its shape and the kind of its steps."""

    shape: Shape
    kind: Kind

    @property
    def step(self) -> Callable[[], Any]:
        """The no-op step function."""
        return noop if self.kind == "async" else sync_noop

    def edges(self, steps: int) -> list[tuple[int, int]]:
        """``(before, after)`` step-index pairs: a path for a chain, none for a fan-out."""
        return [(i - 1, i) for i in range(1, steps)] if self.shape == "chain" else []


# --- agentbridge ----------------------------------------------------------------------------


def workflow_mapping(graph: Graph, steps: int) -> dict[str, Any]:
    """The graph as a workflow mapping whose ``function`` targets are the step callables."""
    after: dict[int, list[str]] = {i: [] for i in range(steps)}
    for before, step in graph.edges(steps):
        after[step].append(f"s{before}")
    return {
        "name": f"bench-{graph.shape}-{graph.kind}",
        "steps": [
            {"id": f"s{i}", "function": graph.step, "depends_on": after[i]} for i in range(steps)
        ],
    }


def agentbridge_build(graph: Graph) -> Build:
    """The graph as an agentbridge workflow, bound once by an ``Executor``, run per round.

    Like LangGraph's ``compile()``, loading, validation and binding the steps happen
    once, outside the timed runs.
    """

    def build(steps: int) -> Run:
        executor = agentbridge_api("Executor")(
            agentbridge_api("Workflow").from_dict(workflow_mapping(graph, steps))
        )

        async def run() -> None:
            await executor.run_async()

        return run

    return build


def agentbridge_oneshot_build(graph: Graph) -> Build:
    """``ab.run_workflow_async(mapping)``: loads, validates and binds on every run."""

    def build(steps: int) -> Run:
        run_workflow_async = agentbridge_api("run_workflow_async")
        mapping = workflow_mapping(graph, steps)

        async def run() -> None:
            await run_workflow_async(mapping)

        return run

    return build


# --- the same graph written by hand ---------------------------------------------------------


def plain_build(graph: Graph, offload: Callable[[Callable[[], None]], Awaitable[None]]) -> Build:
    """The graph as plain code: awaits or ``offload`` in a loop, or all at once."""

    def build(steps: int) -> Run:
        one_step: Callable[[], Awaitable[None]] = (
            noop if graph.kind == "async" else lambda: offload(sync_noop)
        )
        if graph.shape == "chain":

            async def chain() -> None:
                for _ in range(steps):
                    await one_step()

            return chain

        async def fan_out() -> None:
            await asyncio.gather(*(one_step() for _ in range(steps)))

        return fan_out

    return build


def _asyncio_to_thread(fn: Callable[[], None]) -> Awaitable[None]:
    return asyncio.to_thread(fn)


# --- LangGraph --------------------------------------------------------------------------------


class _State(TypedDict, total=False):
    """LangGraph's graph state; the no-op nodes leave it empty."""

    unused: int


def langgraph_build(graph: Graph) -> Build:
    """The graph as a compiled LangGraph ``StateGraph`` whose nodes return no update.

    LangGraph runs sync nodes in its executor when invoked with ``ainvoke``; a fan-out
    is one superstep of ``steps`` parallel nodes.
    """

    def build(steps: int) -> Run:
        langgraph = require("langgraph.graph")
        builder = langgraph.StateGraph(_State)
        names = [f"s{i}" for i in range(steps)]
        for name in names:
            builder.add_node(name, _langgraph_node(graph.step))
        if graph.shape == "chain":
            builder.add_edge(langgraph.START, names[0])
            for before, step in graph.edges(steps):
                builder.add_edge(names[before], names[step])
            builder.add_edge(names[-1], langgraph.END)
        else:
            for name in names:
                builder.add_edge(langgraph.START, name)
                builder.add_edge(name, langgraph.END)
        compiled = builder.compile()
        config = {"recursion_limit": steps + 10}

        async def run() -> None:
            await compiled.ainvoke({}, config)

        return run

    return build


def _langgraph_node(step: Callable[[], Any]) -> Callable[[_State], Any]:
    """A LangGraph node (it receives the state) around a no-op step of the same kind."""
    if step is noop:

        async def async_node(state: _State) -> None:
            await noop()

        return async_node

    def sync_node(state: _State) -> None:
        sync_noop()

    return sync_node


# --- the groups -------------------------------------------------------------------------------


def _group(number: str, graph: Graph) -> Group:
    shape = "chain" if graph.shape == "chain" else "independent steps (fan-out)"
    subjects: list[Subject] = [
        hosted_subject("ab", "ab.Executor.run_async", "asyncio", agentbridge_build(graph)),
        hosted_subject(
            "ab-oneshot", "ab.run_workflow_async", "asyncio", agentbridge_oneshot_build(graph)
        ),
        hosted_subject("langgraph", "LangGraph ainvoke", "asyncio", langgraph_build(graph)),
    ]
    if graph.kind == "async":
        label = "awaits" if graph.shape == "chain" else "asyncio.gather"
        subjects.append(
            hosted_subject("plain", label, "asyncio", plain_build(graph, anyio.to_thread.run_sync))
        )
        rows = [
            Row("ab", "plain", MaxOverhead(ASYNC_OVERHEAD, floor="plain")),
            Row("ab", "langgraph", MaxOverheadRatio(LANGGRAPH_OVERHEAD_RATIO, floor="plain")),
            Row("ab-oneshot", "ab"),
        ]
    else:
        subjects += [
            hosted_subject(
                "anyio",
                "anyio.to_thread.run_sync",
                "asyncio",
                plain_build(graph, anyio.to_thread.run_sync),
            ),
            hosted_subject(
                "asyncio", "asyncio.to_thread", "asyncio", plain_build(graph, _asyncio_to_thread)
            ),
        ]
        rows = [
            Row("ab", "anyio", MaxRatio(SYNC_RATIO)),
            Row("ab", "asyncio"),
            Row("ab", "langgraph", MaxOverheadRatio(LANGGRAPH_OVERHEAD_RATIO, floor="anyio")),
            Row("ab-oneshot", "ab"),
        ]
    return Group(
        f"{number}. workflow {shape}, {graph.kind} no-op steps",
        subjects=subjects,
        rows=rows,
        ops=1000,
        quick_ops=100,
        noun="step",
        note="overhead = time per step minus the plain baseline's, paired per round",
    )


def groups() -> list[Group]:
    """Every workflow group, in report order."""
    graphs = [
        Graph("chain", "async"),
        Graph("fan-out", "async"),
        Graph("chain", "sync"),
        Graph("fan-out", "sync"),
    ]
    return [_group(f"W{index}", graph) for index, graph in enumerate(graphs, start=1)]
