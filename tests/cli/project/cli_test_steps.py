"""Steps the CLI tests run, registered in the default registry as ``--import`` does it.

The names start with ``cli_`` so they cannot collide with steps other tests register.
"""

from __future__ import annotations

import os

import anyio
import sniffio

import agentbridge as ab

_attempts: dict[str, int] = {}


@ab.function("cli_add")
def add(a: int, b: int) -> int:
    """A blocking step: the sum."""
    return a + b


@ab.tool("cli_echo")
async def echo(value: object) -> object:
    """An async step that returns its input unchanged, type and all."""
    return value


@ab.tool("cli_backend")
async def backend() -> str:
    """The async library running the step: ``asyncio`` or ``trio``."""
    return sniffio.current_async_library()


@ab.function("cli_boom")
def boom(message: str) -> None:
    """A step that fails with ``ValueError(message)``."""
    raise ValueError(message)


@ab.function("cli_chatty")
def chatty(text: str) -> str:
    """A step that prints ``text`` on stdout and returns it."""
    print(text)
    return text


@ab.agent("cli_flaky")
async def flaky(key: str) -> str:
    """Fails the first attempt for each ``key``, then succeeds."""
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise ConnectionError(f"first attempt for {key} fails")
    return f"{key} done"


@ab.tool("cli_hang")
async def hang() -> None:
    """Waits until cancelled."""
    await anyio.sleep_forever()


@ab.function("cli_set_env")
def set_env(name: str, value: str) -> str:
    """Sets the environment variable ``name`` to ``value`` while the run goes on."""
    os.environ[name] = value
    return value


@ab.tool("cli_loop")
async def loop() -> str:
    """The module of the running event loop's class (``uvloop`` on uvloop), or ``trio``."""
    if sniffio.current_async_library() == "trio":
        return "trio"
    import asyncio

    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


@ab.function("cli_pid")
def pid() -> int:
    """The id of the process running the step."""
    return os.getpid()
