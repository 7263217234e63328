"""What an adapted step returns: its output, and the usage its framework reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ("StepOutput",)


@dataclass(frozen=True)
class StepOutput:
    """A step's output together with what running it used (tokens, requests).

    The adapters of :mod:`agentbridge.integrations` return one; any step callable may
    too. The runtime unwraps it: the step's output is :attr:`output`, and
    :attr:`~agentbridge.StepResult.usage` is :attr:`usage`.

    .. versionadded:: 0.2
    """

    #: What the step produced: its output for later steps and the result.
    output: Any
    #: The framework's own usage object (or any data), or ``None``.
    usage: Any = None
