"""Exit codes, and the one clear message on stderr that every error becomes."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

import agentbridge as ab

__all__ = (
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "UserError",
    "describe",
    "print_traceback",
    "reporting",
)

#: A step failed, or the run failed, was cancelled or timed out.
EXIT_FAILED = 1
#: A usage or validation error: nothing was run.
EXIT_USAGE = 2
#: Ctrl-C, as shells report a SIGINT.
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """A usage or validation error, shown as ``Error: message`` on stderr: exit code 2."""

    exit_code = EXIT_USAGE


class _Unexpected(CliError):
    exit_code = EXIT_FAILED


class _Interrupted(CliError):
    exit_code = EXIT_INTERRUPTED


class UserError(Exception):
    """A mistake in what the user asked for (file, module, input): exit code 2.

    Raised ``from`` the exception that revealed it, so ``--debug`` shows both.
    """


def describe(error: BaseException) -> str:
    """``Type: message`` on one line, or just the type when there is no message."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def print_traceback(error: BaseException) -> None:
    """Print ``error``'s traceback, with its causes, on stderr."""
    click.echo("".join(traceback.format_exception(error)).rstrip("\n"), err=True)


@contextmanager
def reporting(*, debug: bool) -> Iterator[None]:
    """Turn what the block raises into a :class:`CliError` with the right exit code.

    Tracebacks are only printed with ``debug``: a user sees one message saying what is
    wrong; a developer passes ``--debug`` to see where.
    """
    try:
        yield
    except (click.ClickException, click.exceptions.Exit):
        raise
    except BaseException as exc:
        error = _as_cli_error(exc, debug=debug)
        if error is None:
            raise
        if debug:
            print_traceback(exc)
        raise error from None


def _as_cli_error(exc: BaseException, *, debug: bool) -> CliError | None:
    if isinstance(exc, KeyboardInterrupt):
        return _Interrupted("interrupted: the running steps were cancelled")
    if isinstance(exc, (UserError, ab.ConfigurationError, ab.StoreError)):
        return CliError(str(exc))
    if isinstance(exc, ab.WorkflowValidationError):
        return CliError(f"invalid workflow: {exc}")
    if isinstance(exc, ab.BridgeTimeoutError):
        # Without --timeout, each wait for the run's next event has the bridge's default
        # timeout; with it, the run has its own limit and the bridge's does not apply.
        return _Unexpected(
            f"timed out: the run sent no event within the bridge's timeout of"
            f" {exc.timeout:g} s (AGENTBRIDGE_SYNC_TIMEOUT or configure(timeout=...)) and"
            f" was cancelled; give the run its own limit with --timeout SECONDS, or raise"
            f" or unset the bridge's"
        )
    if isinstance(exc, Exception):
        hint = "" if debug else " (run again with --debug to see the traceback)"
        return _Unexpected(f"unexpected error: {describe(exc)}{hint}")
    return None
