"""The issue's reproduction: one ``httpx.AsyncClient`` made on the main thread, used from
an 8-thread pool against a real keep-alive server, with each of the three fixes; and
the mistake itself under the default per-thread scope, which never hangs silently."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable

import httpx
import pytest

import agentbridge as ab
from tests.bridge._subproc import run_snippet

pytestmark = pytest.mark.timeout(60)

CALLS = 200
THREADS = 8


def _paths() -> list[str]:
    return [f"/item/{i}" for i in range(CALLS)]


def _from_the_pool(fetch: Callable[[str], str]) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fetch, _paths()))


async def _make_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, trust_env=False)


async def _get_text(client: httpx.AsyncClient, path: str) -> str:
    return (await client.get(path)).text


def test_a_shared_portal(server_url: str, portal_backend: str) -> None:
    with ab.open_portal(portal_backend, name="http") as portal:
        client = portal.run_sync(_make_client, server_url)
        assert _from_the_pool(lambda path: portal.run_sync(_get_text, client, path)) == _paths()
        assert portal.run_sync(_get_text, client, "/after") == "/after", "no closed loop after"
        portal.run_sync(client.aclose)


def test_the_process_scope(server_url: str, portal_backend: str) -> None:
    ab.configure(portal_scope="process", backend=portal_backend)
    client = ab.run_sync(_make_client, server_url)
    assert _from_the_pool(lambda path: ab.run_sync(_get_text, client, path)) == _paths()
    assert ab.run_sync(_get_text, client, "/after") == "/after"
    ab.run_sync(client.aclose)


def test_a_loop_local_client(server_url: str, portal_backend: str) -> None:
    clients = ab.loop_local(lambda: httpx.AsyncClient(base_url=server_url, trust_env=False))

    async def fetch(path: str) -> str:
        return (await clients.get().get(path)).text

    assert _from_the_pool(lambda path: ab.run_sync(fetch, path, backend=portal_backend)) == (
        _paths()
    )
    assert ab.run_sync(fetch, "/after", backend=portal_backend) == "/after"


@pytest.mark.parametrize("fix", ["shared-portal", "process-scope", "loop-local"])
def test_no_unclosed_transport_at_exit(server_url: str, fix: str) -> None:
    """The same three, in a fresh interpreter under ``-W error``: a quiet exit (the
    loop-local clients are closed by their loops as the portals stop)."""
    outcome = run_snippet(
        f"""
        import concurrent.futures, httpx
        import agentbridge as ab

        URL, FIX = {server_url!r}, {fix!r}
        paths = [f"/item/{{i}}" for i in range({CALLS})]

        async def make():
            return httpx.AsyncClient(base_url=URL, trust_env=False)

        async def get(client, path):
            return (await client.get(path)).text

        clients = ab.loop_local(lambda: httpx.AsyncClient(base_url=URL, trust_env=False))

        async def fetch(path):
            return (await clients.get().get(path)).text

        if FIX == "shared-portal":
            portal = ab.open_portal(name="http")
            client = portal.run_sync(make)
            call = lambda path: portal.run_sync(get, client, path)
        elif FIX == "process-scope":
            ab.configure(portal_scope="process")
            client = ab.run_sync(make)
            call = lambda path: ab.run_sync(get, client, path)
        else:
            call = lambda path: ab.run_sync(fetch, path)
        with concurrent.futures.ThreadPoolExecutor({THREADS}) as pool:
            assert list(pool.map(call, paths)) == paths
        assert call("/after") == "/after"
        if FIX == "shared-portal":
            portal.run_sync(client.aclose)  # a client of one's own is closed by its owner
        elif FIX == "process-scope":
            ab.run_sync(client.aclose)
        print("ok", flush=True)
        """,
        flags=["-W", "error"],
    )
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines == ["ok"], outcome.describe()
    assert outcome.stderr == "", outcome.describe()


# --- the mistake, under the default per-thread scope ---------------------------------------


def test_the_mistake_never_blocks_silently(server_url: str) -> None:
    """Each call returns, raises (the affinity error where asyncio names the mistake), or
    is named by a stall warning once it has waited the threshold; the timeout bounds the
    test. In a child process: the client's connections, spread over the loops of dead
    threads, can never be closed."""
    outcome = run_snippet(
        f"""
        import concurrent.futures, json, logging, threading, time, httpx
        import agentbridge as ab

        THRESHOLD = 0.3
        stalls = []

        class Stalls(logging.Handler):
            def emit(self, record):
                stalls.append(record.getMessage())

        logging.getLogger("agentbridge").addHandler(Stalls(logging.WARNING))

        async def make():
            return httpx.AsyncClient(base_url={server_url!r}, trust_env=False)

        client = ab.run_sync(make)

        async def get(path):
            return (await client.get(path)).text

        ab.run_sync(get, "/warm")  # its pool now holds a connection of this loop
        ab.configure(stall_warning=THRESHOLD, timeout=1.5)
        outcomes = []

        def call(path):
            began = time.monotonic()
            try:
                assert ab.run_sync(get, path) == path
                kind = "ok"
            except ab.LoopAffinityError:
                kind = "affinity"
            except ab.BridgeTimeoutError:
                kind = "timeout"
            except Exception as exc:
                kind = type(exc).__name__
            outcomes.append((kind, time.monotonic() - began))

        with concurrent.futures.ThreadPoolExecutor({THREADS}) as pool:
            list(pool.map(call, [f"/item/{{i}}" for i in range(48)]))
        print(json.dumps({{"outcomes": outcomes, "stalls": stalls}}), flush=True)
        """
    )
    assert outcome.returncode == 0, outcome.describe()
    report = json.loads(outcome.lines[-1])
    outcomes, stalls = report["outcomes"], report["stalls"]
    assert len(outcomes) == 48, "every call came back"
    slow = [kind for kind, elapsed in outcomes if elapsed >= 0.3 * 1.5]
    assert len(stalls) >= len(slow), report
    for message in stalls:
        assert "get()" in message, message
        assert "agentbridge-portal-asyncio-for-ThreadPoolExecutor" in message, message
        assert "awaiting:" in message, message
    kinds = {kind for kind, _ in outcomes}
    assert "affinity" in kinds or stalls, f"the mistake was never named: {report}"
