"""Real engines on this machine: a Dask ``LocalCluster`` of threads per module, one Ray
session for the whole run, everything they write inside pytest's temporary folders and
every socket on 127.0.0.1.

The tests here need ``agentbridge-runtime[dask]`` and ``agentbridge-runtime[ray]``; the light nox
sessions (``mindeps``, ``compat``) leave this folder out.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

import agentbridge as ab

# Read by Ray when it is imported and by its processes: the node's address is 127.0.0.1
# (not the outward interface), the session's token stays in the environment (not
# ~/.ray/auth_token), and nothing reports usage.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

#: Seconds any wait across processes may take before the test fails.
BOUND = 20.0


@pytest.fixture(params=[pytest.param("asyncio"), pytest.param("trio")])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """asyncio and trio (uvloop adds nothing here: the engines never touch the loop)."""
    return request.param


class Keyed:
    """A manager's proxy that carries the manager's key along when pickled.

    A proxy authenticates with its process's key, which only this process's children
    inherit; Ray's workers are not among them. Unpickled, it is the bare proxy again,
    and it forwards attribute access to it where nothing pickles it (Dask's threads).
    """

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.proxy, name)

    def __reduce__(self) -> Any:
        key = _KeyFirst(bytes(multiprocessing.current_process().authkey))
        return _rebuilt, (key, self.proxy)


def _rebuilt(_: None, proxy: Any) -> Any:
    return proxy


def _set_key(key: bytes) -> None:
    multiprocessing.current_process().authkey = key


class _KeyFirst:
    """Unpickled before the proxy it precedes: sets this process's key to the manager's."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def __reduce__(self) -> Any:
        return _set_key, (self.key,)


class _Manager:
    """The manager, making :class:`Keyed` proxies."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def __getattr__(self, name: str) -> Any:
        make = getattr(self.manager, name)
        return lambda *args, **kwargs: Keyed(make(*args, **kwargs))


@pytest.fixture(scope="session")
def manager() -> Iterator[Any]:
    """A manager process whose events, barriers and lists work in every engine's
    workers (see :class:`Keyed`)."""
    with multiprocessing.get_context("spawn").Manager() as shared:
        yield _Manager(shared)


@pytest.fixture(scope="module")
def dask_threads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ab.DaskRunner]:
    """A Dask cluster of two worker threads in this process, for the module. More
    attempts than threads wait on the cluster (``capacity=8``), so cancelling reaches
    tasks Dask holds queued."""
    directory = tmp_path_factory.mktemp("dask")
    with ab.DaskRunner(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        local_directory=str(directory),
        capacity=8,
    ) as runner:
        yield runner


@pytest.fixture(scope="session")
def ray_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ab.RayRunner]:
    """One local Ray of two CPUs for the whole test run (it takes seconds to start)."""
    directory = tmp_path_factory.mktemp("ray")
    with ab.RayRunner(num_cpus=2, temp_dir=str(directory), capacity=8) as runner:
        yield runner


@pytest.fixture(params=["dask", "ray"])
def engine(request: pytest.FixtureRequest) -> ab.DaskRunner | ab.RayRunner:
    """Each engine in turn."""
    fixture = "dask_threads" if request.param == "dask" else "ray_runner"
    runner: ab.DaskRunner | ab.RayRunner = request.getfixturevalue(fixture)
    return runner
