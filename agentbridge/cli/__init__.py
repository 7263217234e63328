"""The ``agentbridge`` command line: run, validate and draw workflow files.

``agentbridge run FILE`` runs a workflow with live progress per step (or prints its
result as JSON with ``--json``); ``agentbridge validate FILE`` checks it without running
anything; ``agentbridge graph FILE`` prints its graph as Mermaid or DOT. The command
line needs the ``cli`` extra (click and rich)::

    pip install 'agentbridge-runtime[cli]'

Exit codes: 0 the run succeeded, 1 a step failed (or the run failed), 2 a usage or
validation error, 130 interrupted.

.. versionadded:: 0.1
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._distribution import install_hint

__all__ = ("main",)

#: The modules of the ``cli`` extra, and the message shown when one is missing.
_EXTRA_MODULES = frozenset({"click", "rich"})
_MISSING_EXTRA = f"the CLI needs the 'cli' extra: {install_hint('cli')}"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``agentbridge`` command line with ``argv`` (default: ``sys.argv[1:]``).

    It always ends by raising :exc:`SystemExit` with the exit code: 0 success, 1 a step
    failed, 2 a usage or validation error, 130 interrupted.

    .. versionadded:: 0.1
    """
    try:
        from ._app import cli
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA_MODULES:
            raise
        sys.stderr.write(f"agentbridge: {_MISSING_EXTRA} (cannot import {missing!r})\n")
        raise SystemExit(2) from None
    cli.main(args=list(argv) if argv is not None else None, prog_name="agentbridge")
