"""The options several commands take, each defined once, so every command offers the
same choices and says the same about them."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = (
    "BACKENDS",
    "backend_option",
    "debug_option",
    "file_argument",
    "imports_option",
    "json_option",
    "timeout_option",
)

#: What ``--backend`` offers: every backend the library runs on.
BACKENDS = ("asyncio", "trio", "uvloop")

file_argument = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
imports_option = click.option(
    "--import",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first, so it registers its steps (repeatable). The current"
    " directory is on the import path: --import myapp.steps.",
)
backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="The event loop the run uses (default: asyncio, or $AGENTBRIDGE_BACKEND).",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Cancel the run if it has not finished after SECONDS (exit code 1).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print only the result, as JSON."
)
debug_option = click.option(
    "--debug", is_flag=True, help="Show the traceback of an error, not only its message."
)
