"""An asyncio-only library called from a trio worker thread with ``backend="asyncio"``."""

from __future__ import annotations

import threading

import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(60)


def test_pydantic_ai_agent_from_a_trio_worker_with_backend_asyncio() -> None:
    """pydantic-ai runs only on asyncio; its offline TestModel needs no network."""
    import trio
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    agent = Agent(TestModel(custom_output_text="offline answer"))

    async def main() -> tuple[str, str]:
        def blocking() -> tuple[str, str]:
            result = ab.run_sync(agent.run, "hello", backend="asyncio")
            return result.output, ab.run_sync(_thread_name, backend="asyncio")

        return await trio.to_thread.run_sync(blocking)

    output, portal = trio.run(main)
    assert output == "offline answer"
    assert portal.startswith("agentbridge-portal-asyncio-for-")


async def _thread_name() -> str:
    return threading.current_thread().name
