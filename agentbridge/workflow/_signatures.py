"""Binding a step's inputs against the signature of what it calls, before anything runs.

A step's callable is called with its ``inputs`` as keyword arguments, so the names are
known when the workflow is validated: an unknown keyword, a required argument no input
gives, and a positional-only parameter (which a keyword can never fill) would each fail
every attempt with a ``TypeError``. They are reported as problems instead, one each.

Reading a signature runs no step: :func:`inspect.signature` reads the callable's code
object, ``__signature__``, ``__wrapped__`` and ``functools.partial`` bindings. A
callable whose signature cannot be read (some builtins and C extensions) is not
checked.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Collection, Iterator
from typing import Any

__all__ = ("signature_problems",)

_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def signature_problems(
    target: Callable[..., Any], names: Collection[str], what: str
) -> Iterator[str]:
    """Why calling ``target`` with keyword arguments ``names`` would fail, one message
    per problem; ``what`` names the callable in the messages (``"function 'save'"``)."""
    try:
        signature = inspect.signature(target)
    except Exception:  # any failure to read it means: not checked
        return
    parameters = signature.parameters.values()
    listed = _listing(signature)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    keywords = [p.name for p in parameters if p.kind in _KEYWORD_KINDS]
    for parameter in parameters:
        if parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            continue
        given = parameter.name in names and not takes_any  # else **kwargs takes it
        if parameter.default is inspect.Parameter.empty or given:
            yield (
                f"{what} has the positional-only parameter {parameter.name!r}, which step "
                f"inputs (keyword arguments) cannot give; make it a keyword parameter, or "
                f"register a wrapper that takes it by name ({listed})"
            )
    for name in names:
        if name in keywords or takes_any:
            continue
        if any(p.name == name and p.kind is inspect.Parameter.POSITIONAL_ONLY for p in parameters):
            continue  # reported above
        close = difflib.get_close_matches(name, keywords, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        yield f"input {name!r} is not a parameter of {what}; {hint}({listed})"
    for parameter in parameters:
        if (
            parameter.kind in _KEYWORD_KINDS
            and parameter.default is inspect.Parameter.empty
            and parameter.name not in names
        ):
            yield (
                f"{what} needs the argument {parameter.name!r} and the step's inputs do not "
                f"give it; add `{parameter.name}: ...` to its inputs ({listed})"
            )


def _listing(signature: inspect.Signature) -> str:
    shown = [_shown(p) for p in signature.parameters.values()]
    return f"its parameters: {', '.join(shown)}" if shown else "it takes no parameters"


def _shown(parameter: inspect.Parameter) -> str:
    kind = parameter.kind
    if kind is inspect.Parameter.VAR_POSITIONAL:
        return f"*{parameter.name}"
    if kind is inspect.Parameter.VAR_KEYWORD:
        return f"**{parameter.name}"
    suffix = "=..." if parameter.default is not inspect.Parameter.empty else ""
    slash = " (positional-only)" if kind is inspect.Parameter.POSITIONAL_ONLY else ""
    return f"{parameter.name}{suffix}{slash}"
