"""Registries of agents, functions and tools, and the one resolver every entry point uses.

A workflow file names what its steps call; it can never import or execute anything
by itself. A name resolves through a :class:`Registry` only, unless the caller opts
in to import paths (``"pkg.module:attr"``) for an explicit list of module prefixes,
and then only to what those modules define (the rule is in :mod:`._imports`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from .._exceptions import ConfigurationError, Problem, WorkflowValidationError
from ..integrations import adapt, framework_of
from ._exception_types import resolve_exception_type
from ._imports import import_target
from ._model import KINDS, Step, StepKind, Workflow, callable_kind, is_callable_target
from ._signatures import signature_problems

__all__ = (
    "Registry",
    "agent",
    "function",
    "get_default_registry",
    "resolve_retry_on",
    "resolve_targets",
    "tool",
)

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Names to the agents, functions and tools that workflow steps call.

    Each kind has its own names: a step ``agent: writer`` looks among the agents only.
    Registering a name again replaces the earlier entry, so re-running a notebook
    cell that defines a step works.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        self._entries: dict[StepKind, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._errors: dict[str, type[Exception]] = {}

    def register(self, kind: StepKind, name: str, target: Any) -> None:
        """Register ``target`` as the ``kind`` called ``name``.

        :param kind: ``"agent"``, ``"function"`` or ``"tool"``
        :param name: the name workflow steps use
        :param target: a callable; for an agent also an object with a ``run``
            method; for an agent or a tool also an object of a supported agent framework
            (pydantic-ai, LangChain/LangGraph, OpenAI Agents SDK)
        :raises ConfigurationError: for an unknown kind, an empty name or a target
            that cannot be called
        """
        if kind not in self._entries:
            raise ConfigurationError(f"unknown step kind {kind!r}; use one of {', '.join(KINDS)}")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a {kind} name must be a non-empty string, got {name!r}")
        if not is_callable_target(kind, target):
            raise ConfigurationError(
                f"cannot register {target!r} as {kind} {name!r}: it must be {callable_kind(kind)}"
            )
        self._entries[kind][name] = target

    def register_error(self, error_type: type[Exception], name: str | None = None) -> None:
        """Let ``retry_on:`` name ``error_type``, by ``name`` (default: its ``__name__``).

        Built-in exceptions and agentbridge's own need no registration.

        :raises ConfigurationError: if ``error_type`` is not a subclass of
            :class:`Exception`, or ``name`` is not a non-empty string

        .. versionadded:: 0.2
        """
        if not (isinstance(error_type, type) and issubclass(error_type, Exception)):
            raise ConfigurationError(
                f"cannot register {error_type!r} as an error: it must be a subclass of Exception"
            )
        name = error_type.__name__ if name is None else name
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"an error name must be a non-empty string, got {name!r}")
        self._errors[name] = error_type

    def lookup_error(self, name: str) -> type[Exception] | None:
        """The exception type registered as ``name``, or ``None``.

        .. versionadded:: 0.2
        """
        return self._errors.get(name)

    def names(self, kind: StepKind) -> tuple[str, ...]:
        """The registered names of ``kind``, sorted."""
        return tuple(sorted(self._entries[kind]))

    def lookup(self, kind: StepKind, name: str) -> Any:
        """The target registered as ``kind`` ``name``, or ``None``."""
        return self._entries[kind].get(name)

    @overload
    def agent(self, name: F, /) -> F: ...
    @overload
    def agent(self, name: str | None = None, /) -> Callable[[F], F]: ...
    def agent(self, name: Any = None, /) -> Any:
        """Register an agent: ``@registry.agent`` or ``@registry.agent("name")``.

        An agent is an async callable, an object with an async ``run`` method, or an
        agent of a supported framework (see :mod:`agentbridge.integrations`).
        """
        return self._decorator("agent", name)

    @overload
    def function(self, name: F, /) -> F: ...
    @overload
    def function(self, name: str | None = None, /) -> Callable[[F], F]: ...
    def function(self, name: Any = None, /) -> Any:
        """Register a function: ``@registry.function`` or ``@registry.function("name")``."""
        return self._decorator("function", name)

    @overload
    def tool(self, name: F, /) -> F: ...
    @overload
    def tool(self, name: str | None = None, /) -> Callable[[F], F]: ...
    def tool(self, name: Any = None, /) -> Any:
        """Register a tool: ``@registry.tool`` or ``@registry.tool("name")``."""
        return self._decorator("tool", name)

    def _decorator(self, kind: StepKind, name: Any) -> Any:
        if name is not None and not isinstance(name, str):
            self.register(kind, _default_name(name), name)
            return name

        def decorate(target: F) -> F:
            self.register(kind, name or _default_name(target), target)
            return target

        return decorate

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(self._entries[kind])} {kind}s" for kind in KINDS)
        return f"<Registry: {counts}>"


def _default_name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if not isinstance(name, str):
        raise ConfigurationError(f"{target!r} has no __name__; register it with an explicit name")
    return name


_default_registry = Registry()


def get_default_registry() -> Registry:
    """The registry used when none is given, filled by :func:`agent`, :func:`function`
    and :func:`tool`.

    .. versionadded:: 0.1
    """
    return _default_registry


agent = _default_registry.agent
function = _default_registry.function
tool = _default_registry.tool


def resolve_targets(
    workflow: Workflow, registry: Registry | None, allow_imports: Iterable[str]
) -> Mapping[str, Callable[..., Any]]:
    """The callable of every step, by step id: an agent object's ``run`` method, and an
    object of an agent framework as itself (the runtime adapts it, with
    :func:`agentbridge.integrations.adapt`). Each callable is checked against the
    step's inputs (see :mod:`._signatures`); a framework's object through its adapter,
    whose signature names the inputs the framework takes.

    :raises WorkflowValidationError: listing every step whose target does not resolve,
        and every input its callable's signature cannot take
    """
    registry = check_registry(registry)
    prefixes = check_allow_imports(allow_imports)
    targets: dict[str, Callable[..., Any]] = {}
    problems: list[Problem] = []
    for step in workflow.steps:
        target: Any = step.target
        if isinstance(target, str):
            found = registry.lookup(step.kind, target)
            if found is None:
                found = _import_target(target, step.kind, registry, prefixes)
            if isinstance(found, Problem):
                problems.append(Problem(found.message, step.id, step.line))
                continue
            target = found
        framework = framework_of(target)
        if step.kind == "agent" and not callable(target) and framework is None:
            target = target.run
        targets[step.id] = target
        # A framework's object is called through its adapter, whose signature names the
        # inputs the framework takes: check against that, not the object. An adapter
        # that cannot be imported (an object that only looks like the framework's, the
        # framework absent) leaves the step unchecked, as an unreadable signature does.
        try:
            called = target if framework is None else adapt(target)
        except ImportError:
            continue
        what = f"{step.kind} {step.target_name!r}"
        for message in signature_problems(called, step.inputs, what):
            problems.append(Problem(message, step.id, step.line))
    for step in workflow.steps:
        _retry_types(step, registry, prefixes, problems)
    if problems:
        raise WorkflowValidationError(problems, source=workflow.source)
    return targets


def resolve_retry_on(
    workflow: Workflow, registry: Registry | None, allow_imports: Iterable[str]
) -> Mapping[str, tuple[type[Exception], ...]]:
    """The exception types of every step that has ``retry_on:``, by step id.

    :raises WorkflowValidationError: listing every name that does not resolve (see
        :mod:`._exception_types`)
    """
    registry = check_registry(registry)
    prefixes = check_allow_imports(allow_imports)
    problems: list[Problem] = []
    types = {}
    for step in workflow.steps:
        found = _retry_types(step, registry, prefixes, problems)
        if found is not None:
            types[step.id] = found
    if problems:
        raise WorkflowValidationError(problems, source=workflow.source)
    return types


def _retry_types(
    step: Step, registry: Registry, prefixes: tuple[str, ...], problems: list[Problem]
) -> tuple[type[Exception], ...] | None:
    if step.retry_on is None:
        return None
    types = []
    for name in step.retry_on:
        found = resolve_exception_type(name, registry.lookup_error(name), prefixes)
        if isinstance(found, Problem):
            problems.append(Problem(found.message, step.id, step.line))
        else:
            types.append(found)
    return tuple(types)


def _import_target(name: str, kind: StepKind, registry: Registry, prefixes: tuple[str, ...]) -> Any:
    if ":" not in name and "." not in name:
        registered = ", ".join(registry.names(kind)) or "none"
        return Problem(
            f"unknown {kind} {name!r} (registered {kind}s: {registered}); register it with "
            f"@agentbridge.{kind} or pass the registry that has it"
        )
    value = import_target(name, kind, prefixes)
    if not isinstance(value, Problem) and not is_callable_target(kind, value):
        return Problem(f"{kind} {name!r} imported {value!r}; it must be {callable_kind(kind)}")
    return value


def check_registry(registry: object) -> Registry:
    """``registry``, or the default registry for ``None``."""
    if registry is None:
        return _default_registry
    if not isinstance(registry, Registry):
        raise ConfigurationError(
            f"registry must be an agentbridge.Registry, got {type(registry).__name__}"
        )
    return registry


def check_allow_imports(allow_imports: object) -> tuple[str, ...]:
    """``allow_imports`` as a tuple of module prefixes."""
    if isinstance(allow_imports, str) or not isinstance(allow_imports, Iterable):
        raise ConfigurationError(
            f"allow_imports must be a list of module prefixes such as ['myapp.steps'], "
            f"got {allow_imports!r}"
        )
    prefixes = tuple(allow_imports)
    for prefix in prefixes:
        if not isinstance(prefix, str) or not all(
            part.isidentifier() for part in prefix.split(".")
        ):
            raise ConfigurationError(
                f"allow_imports entries must be dotted module names, got {prefix!r}"
            )
    return prefixes
