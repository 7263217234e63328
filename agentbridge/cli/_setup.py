"""``--runner`` and ``--limit``: the runners a command's steps may use and how large a
workflow it may read, given by whoever runs the command, never by the workflow file.

A workflow file only names a runner (``runner: cluster``); what ``cluster`` is (a Dask
scheduler's address, a pool of processes) comes from ``--runner cluster=dask:ADDRESS``,
as it comes from ``runners=`` in Python. The command starts the runners it was given
before the run and closes them after it, shutting down only what it started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Literal

import click

import agentbridge as ab

from ._errors import UserError

__all__ = ("RunnerSpec", "limits_option", "open_runners", "runners_option")

RunnerKind = Literal["process", "dask", "ray"]
#: A runner the command line can make.
CliRunner = ab.ProcessRunner | ab.DaskRunner | ab.RayRunner
_KINDS: tuple[RunnerKind, ...] = ("process", "dask", "ray")
_EXAMPLES = (
    "--runner pool=process:4, --runner cluster=dask:tcp://10.0.0.5:8786 or --runner cluster=ray"
)
_LIMITS = tuple(field.name for field in dataclasses.fields(ab.LoadLimits))


@dataclasses.dataclass(frozen=True)
class RunnerSpec:
    """One ``--runner NAME=KIND[:ARGUMENT]``: a runner to make, under the name steps use."""

    #: The name steps give in ``runner:``.
    name: str
    #: ``process`` (a pool of worker processes), ``dask`` or ``ray``.
    kind: RunnerKind
    #: The pool's size for ``process``; the address to connect to for ``dask`` and
    #: ``ray`` (without one, the runner starts an engine of its own on this machine).
    argument: str | None

    def make(self) -> CliRunner:
        """The runner, not started yet."""
        if self.kind == "process":
            return ab.ProcessRunner(int(self.argument) if self.argument else None)
        if self.kind == "dask":
            return ab.DaskRunner(self.argument)
        return ab.RayRunner(self.argument)


def _runner_spec(item: str) -> RunnerSpec:
    """``NAME=KIND[:ARGUMENT]`` read, or a ``ValueError`` saying what is wrong with it."""
    name, equals, spec = item.partition("=")
    name = name.strip()
    kind, _, argument = spec.strip().partition(":")
    if not equals or not name or not kind:
        raise ValueError(f"{item!r} is not NAME=KIND[:ARGUMENT]; write it like {_EXAMPLES}")
    if not name.isascii() or not name.isidentifier():
        raise ValueError(f"the runner name {name!r} is not an identifier, as `runner:` needs")
    if name == "thread":
        raise ValueError("the runner name 'thread' is built in; give yours another name")
    if kind not in _KINDS:
        raise ValueError(f"unknown runner kind {kind!r} in {item!r}; use {', '.join(_KINDS)}")
    if kind == "process" and argument and not (argument.isdigit() and int(argument) > 0):
        raise ValueError(
            f"a process runner's argument is its number of worker processes, got {argument!r}; "
            f"write it like --runner {name}=process:4"
        )
    return RunnerSpec(name, kind, argument or None)


def _parse_runners(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> tuple[RunnerSpec, ...]:
    specs: dict[str, RunnerSpec] = {}
    for item in values:
        try:
            spec = _runner_spec(item)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        if spec.name in specs:
            raise click.BadParameter(f"the runner {spec.name!r} is given twice", ctx, param)
        specs[spec.name] = spec
    return tuple(specs.values())


def _parse_limits(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> ab.LoadLimits | None:
    if not values:
        return None
    given: dict[str, int] = {}
    for item in values:
        name, equals, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or name not in _LIMITS:
            raise click.BadParameter(
                f"{item!r} is not LIMIT=NUMBER with one of the limits: {', '.join(_LIMITS)}",
                ctx,
                param,
            )
        try:
            given[name] = int(text.replace("_", ""))
        except ValueError:
            raise click.BadParameter(
                f"{name} takes a whole number, got {text!r}: --limit {name}=50000", ctx, param
            ) from None
    try:
        return ab.LoadLimits(**given)
    except ab.ConfigurationError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


runners_option = click.option(
    "--runner",
    "runner_specs",
    multiple=True,
    metavar="NAME=KIND[:ARG]",
    callback=_parse_runners,
    help="A runner the workflow's steps can name with `runner: NAME` (repeatable). KIND is"
    " process (ARG: worker processes), dask or ray (ARG: the address to connect to;"
    " without one, an engine of its own on this machine; each needs its extra)."
    " Example: --runner cluster=dask:tcp://10.0.0.5:8786.",
)
limits_option = click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="LIMIT=NUMBER",
    callback=_parse_limits,
    help="Raise (or lower) one of the limits on what a workflow or inputs file may hold"
    f" (repeatable): {', '.join(_LIMITS)}. Example: --limit max_steps=50000.",
)


@contextmanager
def open_runners(
    specs: Sequence[RunnerSpec], *, start: bool = True
) -> Iterator[Mapping[str, CliRunner]]:
    """The runners of ``specs`` by name, started unless ``start`` is false (validating
    needs them only to ask what they refuse), and closed on leaving.

    :raises UserError: if a runner cannot start (its engine cannot be reached, or its
        extra is not installed): nothing has run
    """
    with ExitStack() as stack:
        runners: dict[str, CliRunner] = {}
        for spec in specs:
            runner = spec.make()
            if start:
                try:
                    stack.enter_context(runner)
                except ab.RunnerError as exc:
                    raise UserError(f"runner {spec.name!r}: {exc}") from exc
            runners[spec.name] = runner
        yield runners
