"""Which runner executes each step: the names a workflow uses, resolved before a run.

A step names its runner (``runner: NAME``); the name resolves to a runner object the
caller gave the runtime, or to a built-in one: ``thread`` (the run's own
:class:`~._runner.LocalRunner`, today's behaviour) and ``process`` (a shared default
:class:`~._process.ProcessRunner`). A workflow never names more than that.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError, Problem, WorkflowValidationError
from ._plan import Plan, StepCall
from ._process import default_process_runner
from ._runner import LocalRunner, StepRunner

if TYPE_CHECKING:
    from ._engine import EngineRunner

__all__ = ("RoutedRunner", "check_runners", "route_steps")

#: The name of the run's own runner: async steps on its loop, sync ones in threads.
THREAD = "thread"
#: The name of the shared default process runner, unless the caller gives one.
PROCESS = "process"


def check_runners(runners: Mapping[str, StepRunner] | None) -> Mapping[str, StepRunner]:
    """The caller's runners by name, checked.

    :raises ConfigurationError: for a name that is not an identifier, the reserved
        name ``thread``, or a value that is not a runner
    """
    if runners is None:
        return MappingProxyType({})
    if not isinstance(runners, Mapping):
        raise ConfigurationError(
            f"runners must be a mapping of names to runners such as ab.ProcessRunner(), "
            f"got {type(runners).__name__}"
        )
    checked = {}
    for name, runner in runners.items():
        if not isinstance(name, str) or not name.isascii() or not name.isidentifier():
            raise ConfigurationError(f"a runner's name must be an identifier, got {name!r}")
        if name == THREAD:
            raise ConfigurationError(
                "the runner name 'thread' is built in (the run's own worker threads); "
                "give your runner another name"
            )
        if not isinstance(runner, StepRunner):
            raise ConfigurationError(
                f"runner {name!r} must be a runner such as ab.ProcessRunner(), got "
                f"{type(runner).__name__}"
            )
        checked[name] = runner
    return MappingProxyType(checked)


def route_steps(plan: Plan, runners: Mapping[str, StepRunner]) -> dict[str, StepRunner]:
    """The runner of every step that names one other than ``thread``, by step id.

    :raises WorkflowValidationError: for an unknown name (listing the known ones) or a
        step its runner refuses, every one found
    """
    known = ", ".join(sorted({THREAD, PROCESS, *runners}))
    routes: dict[str, StepRunner] = {}
    problems = []
    for step_id, call in plan.calls.items():
        name = call.step.runner
        if name is None or name == THREAD:
            continue
        runner = runners.get(name)
        if runner is None and name == PROCESS:
            runner = default_process_runner()
        if runner is None:
            problems.append(
                Problem(
                    f"unknown runner {name!r}; the runtime knows: {known} (give others "
                    f"with runners={{{name!r}: ...}})",
                    step_id,
                    call.step.line,
                )
            )
            continue
        refused = runner.refuses(call)
        if refused is not None:
            problems.append(Problem(f"runner {name!r}: {refused}", step_id, call.step.line))
            continue
        routes[step_id] = runner
    if problems:
        raise WorkflowValidationError(problems, source=plan.workflow.source)
    return routes


class RoutedRunner(StepRunner):
    """One run's runner when some steps name theirs: each attempt goes to its step's
    runner, or to the run's :class:`LocalRunner`."""

    __slots__ = ("capacity", "local", "routes")

    def __init__(self, local: LocalRunner, routes: Mapping[str, StepRunner]) -> None:
        self.local = local
        self.routes = routes
        distinct = {id(runner): runner for runner in routes.values()}
        self.capacity = local.capacity + sum(runner.capacity for runner in distinct.values())

    def _of(self, call: StepCall) -> StepRunner:
        return self.routes.get(call.step.id, self.local)

    def on_loop(self, call: StepCall) -> bool:
        """Whether ``call``'s runner runs it on the loop."""
        return self._of(call).on_loop(call)

    async def run(self, call: StepCall, kwargs: dict[str, Any]) -> Any:
        """Execute the attempt on ``call``'s runner."""
        return await self._of(call).run(call, kwargs)

    def cancelled_how(self, call: StepCall) -> str:
        """What ``call``'s runner does on cancellation."""
        return self._of(call).cancelled_how(call)

    def submits_ahead(self, call: StepCall) -> EngineRunner[Any] | None:
        """Whether ``call``'s runner submits attempts ahead (see :mod:`._ahead`)."""
        return self._of(call).submits_ahead(call)

    def runs_elsewhere(self, call: StepCall) -> bool:
        """Whether ``call``'s runner runs it in other processes."""
        return self._of(call).runs_elsewhere(call)
